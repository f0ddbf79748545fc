"""``dixis-integrations demo``: a marketplace day on the embedded sandboxes.

Every installed adapter that has an emulator runs in-process, the journal is SQLite in a
temporary folder, and no credentials are needed. Areas with no adapter installed are
skipped and named. Prints a progress bar while it runs and the sync report at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO

from dixis_integrations.commands._common import Progress

__all__ = ["add_arguments", "run"]

_AREAS = ("accounting", "shipping", "inventory", "crm", "email")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``demo`` command."""
    parser.add_argument("--orders", type=int, default=300, help="orders in the day (300)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the day")
    parser.add_argument("--faults", type=float, default=0.0, help="fault rate injected (0..1)")
    parser.add_argument("--keep", metavar="DIR", help="keep the journal in DIR")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.01,
        help="vendor time scale: 0.01 runs the vendors' real limits 100x faster (0.01)",
    )
    parser.add_argument("--workers", type=int, default=4, help="worker threads (4)")
    parser.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="report format"
    )


def _open_stock(hub: Any, stock: dict[str, Decimal], err: TextIO) -> None:
    """Give each inventory sandbox the morning's catalogue and stock (what the merchant
    already has in the vendor's system before the day starts)."""
    from dixis_integrations.errors import DixisError
    from dixis_integrations.models.inventory import StockLevel

    now = datetime.now(UTC)
    for name in hub.names("inventory"):
        emulator = hub.emulators.get(name)
        try:
            if emulator is not None and hasattr(emulator, "seed_stock"):
                emulator.seed_stock(stock)
                continue
            inventory = hub.inventory(name)
            for sku, qty in stock.items():
                inventory.set_level(StockLevel(sku=sku, on_hand=qty, as_of=now))
        except DixisError as exc:
            print(f"  inventory {name}: could not set the opening stock ({exc})", file=err)


def run(args: argparse.Namespace) -> int:
    """Run the day; 0 when every job finished, 1 when some are dead or left open."""
    import logging
    from collections import Counter

    from dixis_integrations.hub import Integrations
    from dixis_integrations.sandbox.kit import FaultPlan
    from dixis_integrations.sync.engine import JobPolicy, spread_by_order
    from dixis_integrations.sync.journal import JobState
    from dixis_integrations.sync.marketday import market_day
    from dixis_integrations.sync.monitor import (
        build_report,
        render_csv,
        render_json,
        render_table,
    )
    from dixis_integrations.sync.runners import PoolRunner

    # the summary below lists dead jobs by reason; no log line per job on the screen
    logging.getLogger("dixis_integrations.sync").setLevel(logging.ERROR)
    if args.orders < 1:
        print("dixis-integrations demo: --orders must be at least 1", file=sys.stderr)
        return 2
    faults = FaultPlan(rate=args.faults, seed=args.seed, retry_after=0.01) if args.faults else None
    started = time.monotonic()
    hub = Integrations.sandbox(
        data_dir=args.keep,
        faults=faults,
        time_scale=args.time_scale,
        policy=JobPolicy(backoff_initial=0.01, backoff_max=0.5),
        # BOX NOW delivers to lockers only; the demo's orders go to the door.
        router=spread_by_order(("shipping",), exclude=("boxnow",)),
    )
    with hub:
        configured = {kind: hub.names(kind) for kind in _AREAS}
        err = sys.stderr
        print("Dixis marketplace day on the sandboxes", file=err)
        for kind in _AREAS:
            names = ", ".join(configured[kind]) or "(none installed: skipped)"
            print(f"  {kind:<11} {names}", file=err)
        for skip in hub.skipped:
            print(f"  skipped {skip.kind}/{skip.name}: {skip.reason}", file=err)
        day = market_day(orders=args.orders, seed=args.seed)
        print(
            f"  {day.customers} customers, {day.orders} orders, {len(day.events)} events",
            file=err,
        )
        _open_stock(hub, day.opening_stock, err)
        # The day in the order things happen: sign-ups and orders, then payments, then
        # refunds and cancellations (a refund is booked against a paid invoice).
        phases = (
            {"customer.created", "order.created"},
            {"order.paid"},
            {"order.refunded", "order.cancelled"},
        )
        planned = sum(len(hub.engine.plan(e)) for e in day.events)
        keys: list[str] = []
        progress = Progress(planned, "syncing")
        hub.engine.listeners.append(
            lambda outcome: progress.advance() if outcome.state.value in ("done", "dead") else None
        )
        with PoolRunner(hub.engine, workers=max(1, args.workers)) as pool:
            for phase in phases:
                for event in day.events:
                    if event.type in phase:
                        keys.extend(pool.dispatch(event))
                pool.join(timeout=600)
        progress.finish()
        report = build_report(hub.journal)
        render = {"table": render_table, "json": render_json, "csv": render_csv}[args.format]
        print(render(report))
        dead_jobs = hub.journal.jobs(state=JobState.DEAD)
        dead = Counter((j.step, j.provider, j.error_code) for j in dead_jobs)
        sample = {(j.step, j.provider, j.error_code): j.error_message for j in dead_jobs}
        if dead:
            print("\ndead jobs (see: dixis-integrations jobs list --state dead):", file=err)
            for (step, provider, code), n in dead.most_common(10):
                text = (sample[(step, provider, code)] or "")[:160]
                print(f"  {n:>4} x {step}/{provider} {code}: {text}", file=err)
        if not keys:
            print(
                "\nNo adapter with an emulator is installed, so nothing was synced. "
                "Install adapters (dixis-integrations plugins) and run again.",
                file=err,
            )
        print(f"\ndone in {time.monotonic() - started:.1f}s", file=err)
        if args.keep:
            print(f"journal kept in {args.keep}", file=err)
        return 1 if report.dead_jobs or report.pending_jobs else 0
