"""End-to-end orders per minute on the sandboxes, against the ceiling the vendors'
documented limits allow, in the same run.

The hub runs every installed adapter that has an emulator, in-process, on scaled vendor
time (``--time-scale 0.01``: a vendor minute lasts 0.6 s, for the emulators' limits and
the adapters' budgets alike). Orders (invoice, shipment spread over the carriers, CRM
contact) go through a pool of workers. Per vendor, the ceiling is its tightest request
window (from the adapter's ``Limits``) divided by the calls one order costs it (counted
in the audit log); the marketplace's ceiling is the lowest of those. Reported: orders per
vendor minute achieved, the ceiling, and their ratio.

Run: python benchmarks/sync/bench_orders.py [--orders 300] [--time-scale 0.01] [--workers 8]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from dixis_integrations.http import Endpoint, Limits
from dixis_integrations.hub import Integrations
from dixis_integrations.models.events import OrderCreated
from dixis_integrations.sync.engine import JobPolicy, spread_by_order
from dixis_integrations.sync.marketday import market_day
from dixis_integrations.sync.runners import PoolRunner


def _limits_of(adapter: Any) -> list[Limits]:
    found: list[Limits] = []
    for value in vars(adapter).values():
        if isinstance(value, Limits):
            found.append(value)
        elif isinstance(value, Endpoint):
            found.append(value.limits)
    return found


_OTHER_ENDPOINTS = ("batch", "search")


def per_minute(limits: list[Limits]) -> float | None:
    """The tightest documented sustained rate of the ordinary endpoints, in calls per
    vendor minute (windows of batch and search endpoints, unused by orders, left out)."""
    rates = [
        w.limit * 60.0 / w.seconds
        for lim in limits
        for w in lim.windows
        if not any(word in w.name for word in _OTHER_ENDPOINTS)
    ]
    return min(rates) if rates else None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    day = market_day(orders=args.orders, seed=3, follow_ups=False)
    orders = [e for e in day.events if isinstance(e, OrderCreated)]
    hub = Integrations.sandbox(
        time_scale=args.time_scale,
        policy=JobPolicy(backoff_initial=0.01, backoff_max=0.2),
        router=spread_by_order(("shipping",), exclude=("boxnow",)),
        only=None,
    )
    with hub:
        for name in hub.names("inventory"):  # the merchant's catalogue and stock
            emulator = hub.emulators.get(name)
            if emulator is not None and hasattr(emulator, "seed_stock"):
                emulator.seed_stock(day.opening_stock)
        start = time.perf_counter()
        with PoolRunner(hub.engine, workers=args.workers) as pool:
            for event in orders:
                pool.dispatch(event)
            pool.join(timeout=1800)
        elapsed = time.perf_counter() - start
        vendor_minutes = elapsed / args.time_scale / 60.0
        achieved = len(orders) / vendor_minutes
        calls = Counter(c.vendor for c in hub.journal.calls())
        used = {c.name: c for c in hub.connections.values() if calls[c.name]}
        print(
            f"{len(orders)} orders in {elapsed:.2f} s real = {vendor_minutes:.2f} vendor "
            f"minutes (time scale {args.time_scale})"
        )
        print("| vendor | calls/order | limit calls/min | ceiling orders/min |")
        print("|---|---|---|---|")
        ceilings = []
        for name, conn in sorted(used.items()):
            share = sum(1 for j in hub.journal.jobs() if j.provider == name)
            per_order = calls[name] / max(share, 1)
            limit = per_minute(_limits_of(conn.adapter))
            if limit is None:
                print(f"| {name} | {per_order:.2f} | (none documented) | - |")
                continue
            # a carrier sees only its share of the orders
            ceiling = limit / per_order * (len(orders) / max(share, 1))
            ceilings.append(ceiling)
            print(f"| {name} | {per_order:.2f} | {limit:,.0f} | {ceiling:,.0f} |")
        if not ceilings:
            print("no vendor documents a limit: no ceiling to compare with")
            return 0
        ceiling = min(ceilings)
        print(
            f"\nachieved {achieved:,.0f} orders/vendor-minute; ceiling {ceiling:,.0f}; "
            f"ratio {achieved / ceiling:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
