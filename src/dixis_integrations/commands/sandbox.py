"""``dixis-integrations sandbox serve NAME [--port N]``: a vendor emulator on 127.0.0.1.

Prints the base URL and the credentials a client needs, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading

from dixis_integrations.errors import ConfigurationError
from dixis_integrations.sandbox import catalog
from dixis_integrations.sandbox.kit import FaultPlan
from dixis_integrations.sandbox.serve import serve_in_thread

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``sandbox`` command."""
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the emulators available")
    serve = sub.add_parser("serve", help="serve one emulator over HTTP on 127.0.0.1")
    serve.add_argument("name", help="the emulator (see 'sandbox list')")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument("--fault-rate", type=float, default=0.0, help="chance of a fault")
    serve.add_argument("--time-scale", type=float, default=1.0, help="scale vendor time")
    serve.add_argument("--once", action="store_true", help="print the details and exit")


def run(args: argparse.Namespace) -> int:
    """List emulators, or serve one until Ctrl-C."""
    if args.action == "list":
        for name in sorted(catalog.SANDBOXES):
            print(name)
        return 0
    try:
        cls = catalog.load(args.name)
    except ConfigurationError as exc:
        print(f"dixis-integrations sandbox: {exc}", file=sys.stderr)
        return 2
    emulator = cls(faults=FaultPlan(rate=args.fault_rate), time_scale=args.time_scale)
    served = serve_in_thread(emulator.handle, port=args.port)
    if hasattr(emulator, "bind"):
        emulator.bind(served.base_url)
    details = {"name": args.name, "base_url": served.base_url, **emulator.credentials()}
    print(json.dumps(details, indent=2), flush=True)
    if args.once:
        served.stop()
        return 0
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        served.stop()
    return 0
