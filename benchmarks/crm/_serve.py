"""Serve one CRM emulator in its own process, so the client's CPU can be measured alone.

Usage: python benchmarks/crm/_serve.py NAME '{"time_scale": 0.01, ...}'
Prints one JSON line with the credentials, then serves until stdin closes.
"""

from __future__ import annotations

import json
import sys

from dixis_integrations.sandbox import catalog
from dixis_integrations.sandbox.serve import serve_in_thread


def main() -> None:
    name, raw = sys.argv[1], sys.argv[2]
    options = json.loads(raw)
    tweaks = options.pop("_tweaks", {})
    emulator = catalog.load(name)(**options)
    emulator.record_requests = False
    for attr, value in tweaks.items():
        target, _, field = attr.rpartition(".")
        setattr(getattr(emulator, target) if target else emulator, field, value)
    served = serve_in_thread(emulator.handle)
    emulator.bind(served.base_url)
    print(json.dumps(emulator.credentials()), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    rejected = getattr(emulator, "rate_limited", None)
    print(json.dumps({"rate_limited_answers": rejected}), flush=True)
    served.stop()


if __name__ == "__main__":
    main()
