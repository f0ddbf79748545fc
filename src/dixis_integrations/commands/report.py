"""``dixis-integrations report``: the sync report from the journal (table, JSON or CSV)."""

from __future__ import annotations

import argparse
import sys

from dixis_integrations.commands._common import add_config_argument, config_path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``report`` command."""
    add_config_argument(parser)
    parser.add_argument("--journal", help="a journal URL (instead of the configuration's)")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--audit", action="store_true", help="print the audit log instead")


def run(args: argparse.Namespace) -> int:
    """Print the report."""
    import json

    from dixis_integrations.commands.jobs import open_configured_journal
    from dixis_integrations.errors import ConfigurationError
    from dixis_integrations.sync.monitor import (
        audit_log,
        build_report,
        render_csv,
        render_json,
        render_table,
    )

    try:
        journal = open_configured_journal(args.journal, config_path(args))
    except ConfigurationError as exc:
        print(f"dixis-integrations report: {exc}", file=sys.stderr)
        return 2
    try:
        if args.audit:
            print(json.dumps(audit_log(journal), indent=2, ensure_ascii=False))
            return 0
        report = build_report(journal)
        render = {"table": render_table, "json": render_json, "csv": render_csv}[args.format]
        print(render(report))
        return 0
    finally:
        journal.close()
