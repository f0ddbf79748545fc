"""Serve one ledger emulator in its own process, so the client's CPU is measured alone.

Usage: python benchmarks/accounting/_serve.py NAME '{"time_scale": 0.25, ...}'
Prints one JSON line with the credentials, serves until stdin closes, then prints one
JSON line with the number of throttling answers it gave.
"""

from __future__ import annotations

import json
import sys

from dixis_integrations.sandbox import catalog
from dixis_integrations.sandbox.serve import serve_in_thread


def main() -> None:
    name, raw = sys.argv[1], sys.argv[2]
    emulator = catalog.load(name)(**json.loads(raw))
    emulator.record_requests = False
    served = serve_in_thread(emulator.handle)
    emulator.bind(served.base_url)
    print(json.dumps(emulator.credentials()), flush=True)
    sys.stdin.read()
    windows = [v for v in vars(emulator).values() if type(v).__name__ == "FixedWindow"]
    throttled = sum(w.rejected for w in windows) + getattr(emulator, "concurrency_rejected", 0)
    print(json.dumps({"throttled": throttled}), flush=True)
    served.stop()


if __name__ == "__main__":
    main()
