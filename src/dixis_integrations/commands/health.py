"""``dixis-integrations health``: every configured integration's check, concurrently.

Exit code 0 when all are up, 1 when any is down, 2 when the configuration is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dixis_integrations.commands._common import add_config_argument, config_path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``health`` command."""
    add_config_argument(parser)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per check")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sandbox", action="store_true", help="check the embedded sandboxes")
    parser.add_argument(
        "--webhooks",
        metavar="PATH",
        help="the webhook delivery store (SQLite) whose last verified deliveries give "
        "each integration's webhook freshness",
    )
    parser.add_argument(
        "--webhook-max-age",
        type=float,
        default=None,
        metavar="SECONDS",
        help="webhooks older than this are stale (default: [webhooks] max_age_seconds, a day)",
    )
    parser.add_argument(
        "--require-webhooks",
        default="",
        metavar="NAMES",
        help="comma-separated integrations that are down when their webhooks are stale",
    )


def run(args: argparse.Namespace) -> int:
    """Run the checks and print them."""
    from dixis_integrations.errors import ConfigurationError
    from dixis_integrations.hub import Integrations

    try:
        hub = (
            Integrations.sandbox() if args.sandbox else Integrations.from_config(config_path(args))
        )
    except ConfigurationError as exc:
        print(f"dixis-integrations health: {exc}", file=sys.stderr)
        return 2
    with hub:
        # the command line's freshness rule, else the configuration's ([webhooks])
        statuses = hub.health(timeout=args.timeout, freshness=_freshness(args, hub))
        if args.json:
            rows = [
                {
                    "name": s.name,
                    "ok": s.ok,
                    "detail": s.detail,
                    "token_expires_at": s.token_expires_at.isoformat()
                    if s.token_expires_at
                    else None,
                    "quota_remaining": s.quota_remaining,
                    **s.extra,
                }
                for s in statuses
            ]
            print(json.dumps(rows, indent=2, ensure_ascii=False))
        else:
            if not statuses:
                print("no integrations configured")
            for s in statuses:
                quota = f" quota {s.quota_remaining}" if s.quota_remaining is not None else ""
                hooks = _hooks_text(s.extra)
                print(f"{'up  ' if s.ok else 'DOWN'}  {s.name:<14} {s.detail}{quota}{hooks}")
        return 0 if all(s.ok for s in statuses) else 1


def _freshness(args: argparse.Namespace, hub: Any) -> Any:
    """The webhook freshness rule of the command line, its omitted parts taken from the
    configuration (``None``: neither asks for one)."""
    required = frozenset(n.strip() for n in args.require_webhooks.split(",") if n.strip())
    if not args.webhooks and not required and args.webhook_max_age is None:
        return None
    from dixis_integrations.sync.monitor import Freshness
    from dixis_integrations.webhooks import SQLiteDeliveryStore

    configured = hub.settings.webhooks
    log = SQLiteDeliveryStore(args.webhooks) if args.webhooks else hub.delivery_store()
    max_age = (
        args.webhook_max_age if args.webhook_max_age is not None else configured.max_age_seconds
    )
    return Freshness(log=log, max_age=max_age, required=required or frozenset(configured.required))


def _hooks_text(extra: dict[str, str]) -> str:
    if "webhook_fresh" not in extra:
        return ""
    seen = extra.get("webhook_last_seen", "never")
    return f" webhooks {'fresh' if extra['webhook_fresh'] == 'yes' else 'STALE'} (last {seen})"
