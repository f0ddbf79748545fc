"""Vendor emulators: in-process (``httpx.MockTransport``) or served on 127.0.0.1.

Each emulator is written from the vendor's documentation and never imports adapter code.
The catalogue in :mod:`.catalog` maps a sandbox name to its class without importing it.
"""

from dixis_integrations.sandbox.kit import (
    Emulator,
    Fault,
    FaultPlan,
    FixedWindow,
    SandboxClock,
    json_response,
    route,
    sign_hmac_sha256,
    xml_response,
)

__all__ = [
    "Emulator",
    "Fault",
    "FaultPlan",
    "FixedWindow",
    "SandboxClock",
    "json_response",
    "route",
    "sign_hmac_sha256",
    "xml_response",
]
