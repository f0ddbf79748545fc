"""``dixis-integrations plugins``: every adapter found, by kind, with its status."""

from __future__ import annotations

import argparse
import json

from dixis_integrations.registry import PluginStatus, Registry

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``plugins`` command."""
    parser.add_argument("--kind", help="only this kind (accounting, shipping, ...)")
    parser.add_argument(
        "--load", action="store_true", help="import each adapter to check it (slower)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    """List adapters; exit 1 when --load finds one that fails."""
    registry = Registry()
    infos = registry.load_all(args.kind) if args.load else registry.list(args.kind)
    if args.json:
        rows = [
            {
                "kind": i.kind,
                "name": i.name,
                "target": i.target,
                "distribution": i.distribution,
                "status": i.status.value,
                "error": i.error,
            }
            for i in infos
        ]
        print(json.dumps(rows, indent=2))
    else:
        if not infos:
            print("no adapters installed")
        for i in infos:
            status = i.status.value if i.error is None else f"failed: {i.error}"
            dist = f" ({i.distribution})" if i.distribution else ""
            print(f"{i.kind:<11} {i.name:<16} {status}{dist}")
    return 1 if any(i.status is PluginStatus.FAILED for i in infos) else 0
