"""The ``dixis-integrations`` command line.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; only the module of the command being run is imported, so
``dixis-integrations plugins`` stays quick and a broken area cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("dixis_integrations.commands.demo", "a marketplace day on the sandboxes"),
    "sync": ("dixis_integrations.commands.sync", "replay an export of events"),
    "health": ("dixis_integrations.commands.health", "check every configured integration"),
    "report": ("dixis_integrations.commands.report", "the sync report from the journal"),
    "jobs": ("dixis_integrations.commands.jobs", "list, show and replay journal jobs"),
    "segment": ("dixis_integrations.marketing.segment_cli", "RFM segments from an export"),
    "sandbox": ("dixis_integrations.commands.sandbox", "serve a vendor emulator on 127.0.0.1"),
    "connect": ("dixis_integrations.commands.connect", "authorise a provider (OAuth2)"),
    "plugins": ("dixis_integrations.commands.plugins", "list installed adapters"),
    "config": ("dixis_integrations.commands.config", "validate the configuration file"),
}


def _top_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    return argparse.ArgumentParser(
        prog="dixis-integrations",
        description="Integration adapters for e-commerce marketplaces.",
        epilog="commands:\n" + "\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not args or args[0] in {"-h", "--help"}:
        top.print_help()
        return 0 if args else 2
    if args[0] == "--version":
        from dixis_integrations._version import __version__

        print(__version__)
        return 0
    name = args[0]
    if name not in COMMANDS:
        top.print_usage(sys.stderr)
        print(f"dixis-integrations: unknown command {name!r}", file=sys.stderr)
        return 2
    module_name, help_ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"dixis-integrations {name}: not available ({exc})", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"dixis-integrations {name}", description=help_)
    module.add_arguments(parser)
    ns = parser.parse_args(args[1:])
    code: int = module.run(ns)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
