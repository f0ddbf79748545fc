"""The naive baseline: ``csv.DictReader`` row by row into the library's ``segment_customers``.

Same output as ``dixis-integrations segment``; it shows what the file reader's chunked,
parallel fast path buys over the obvious loop.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from dixis_integrations.marketing._seg_files import write_csv
from dixis_integrations.marketing.segmentation import (
    DEFAULT_RULES,
    SegmentOrder,
    _score_columns,
    aggregate,
)

__all__ = ["read_orders"]


def read_orders(path: str) -> Iterator[SegmentOrder]:
    """Every row of the CSV as a ``SegmentOrder``."""
    with open(path, encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(stream):
            yield SegmentOrder(
                row["customer_id"],
                datetime.fromisoformat(row["created_at"]),
                Decimal(row["total_amount"]),
                row["status"],
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("orders")
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--output")
    args = parser.parse_args()
    aggregates = aggregate(read_orders(args.orders), datetime.fromisoformat(args.as_of))
    columns = _score_columns(aggregates, DEFAULT_RULES)
    with (
        open(args.output, "w", encoding="utf-8", newline="")
        if args.output
        else io.nullcontext(sys.stdout) as out
    ):
        write_csv(columns, DEFAULT_RULES, out)


if __name__ == "__main__":
    main()
