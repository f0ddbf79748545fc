"""Write a deterministic orders export (CSV) for the segmentation benchmark.

The same ``--seed``, ``--customers`` and ``--orders`` always give byte-identical files:
customers with skewed activity, 2 years of history before ``AS_OF`` (plus a few orders
after it), about 5% refunded and 3% cancelled orders, totals with two decimals.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["AS_OF", "generate"]

AS_OF = "2026-01-01T00:00:00Z"
_AS_OF_DT = datetime(2026, 1, 1, tzinfo=UTC)
_HISTORY_DAYS = 730
_AFTER_DAYS = 5


def generate(path: Path, *, customers: int, orders: int, seed: int = 20260101) -> None:
    """Write ``orders`` rows for ``customers`` customers to ``path`` (CSV with a header)."""
    rng = random.Random(seed)
    start = _AS_OF_DT - timedelta(days=_HISTORY_DAYS)
    days = _HISTORY_DAYS + _AFTER_DAYS
    day_text = [(start + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(days)]
    # Activity weights: a long tail of occasional buyers and a few very frequent ones.
    clock = [f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86400)]
    weights = [rng.paretovariate(1.5) for _ in range(customers)]
    ids = [f"CUST-{i:07d}" for i in range(customers)]
    statuses = ["paid"] * 92 + ["refunded"] * 5 + ["cancelled"] * 3
    width = len(str(orders))
    chosen = rng.choices(range(customers), weights=weights, k=orders)
    with path.open("w", encoding="ascii", newline="\n") as out:
        out.write("order_id,customer_id,created_at,total_amount,status\n")
        lines = []
        for n, c in enumerate(chosen):
            # Recent days are busier than old ones (the business grows).
            d = int(days * rng.random() ** 0.7)
            cents = int(rng.lognormvariate(3.6, 0.8) * 100) + 50
            lines.append(
                f"ORD-{n:0{width}d},{ids[c]},{day_text[d]}{clock[int(86400 * rng.random())]},"
                f"{cents // 100}.{cents % 100:02d},{statuses[int(100 * rng.random())]}\n"
            )
            if len(lines) >= 100_000:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args()
    generate(args.path, customers=args.customers, orders=args.orders, seed=args.seed)


if __name__ == "__main__":
    main()
