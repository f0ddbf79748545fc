"""Which emulators exist, by name, as ``module:Class`` strings (nothing is imported here).

Add a line when a new emulator lands. ``load(name)`` imports one on demand.
"""

from __future__ import annotations

import importlib
from typing import Any

from dixis_integrations.errors import ConfigurationError

__all__ = ["SANDBOXES", "load"]

SANDBOXES: dict[str, str] = {
    "oauth": "dixis_integrations.sandbox.oauth:OAuthServer",
    "xero": "dixis_integrations.sandbox.xero:XeroSandbox",
    "quickbooks": "dixis_integrations.sandbox.quickbooks:QuickBooksSandbox",
    "hubspot": "dixis_integrations.sandbox.hubspot:HubSpotSandbox",
    "salesforce": "dixis_integrations.sandbox.salesforce:SalesforceSandbox",
    "pipedrive": "dixis_integrations.sandbox.pipedrive:PipedriveSandbox",
    "zoho": "dixis_integrations.sandbox.zoho:ZohoSandbox",
    "cin7": "dixis_integrations.sandbox.cin7:Cin7Sandbox",
    "acs": "dixis_integrations.sandbox.acs:ACSSandbox",
    "boxnow": "dixis_integrations.sandbox.boxnow:BoxNowSandbox",
    "courier_center": "dixis_integrations.sandbox.courier_center:CourierCenterSandbox",
    "elta": "dixis_integrations.sandbox.elta:ELTASandbox",
    "geniki": "dixis_integrations.sandbox.geniki:GenikiSandbox",
    "speedex": "dixis_integrations.sandbox.speedex:SpeedexSandbox",
    "mailchimp": "dixis_integrations.sandbox.mailchimp:MailchimpSandbox",
    "brevo": "dixis_integrations.sandbox.brevo:BrevoSandbox",
}


def load(name: str) -> Any:
    """Import and return the emulator class registered as ``name``."""
    try:
        target = SANDBOXES[name]
    except KeyError:
        known = ", ".join(sorted(SANDBOXES))
        raise ConfigurationError(f"unknown sandbox {name!r}; known: {known}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
