"""The ``segment`` specification written with pandas: the baseline for the benchmark.

Same input (CSV with a header) and the same output CSV, byte for byte, as
``dixis-integrations segment`` with the default rule set and thresholds. Totals are read
as float and rounded to integer cents, the usual pandas approach, exact for two-decimal
amounts below 2**53 cents.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

import numpy as np
import pandas as pd

__all__ = ["segment_frame"]

_DAY_NS = 86_400 * 10**9
_RULES = [
    ("Champions", (4, 5), (4, 5), (4, 5)),
    ("Loyal", (3, 5), (3, 5), (3, 5)),
    ("Potential Loyalist", (4, 5), (2, 3), (1, 5)),
    ("New Customers", (5, 5), (1, 1), (1, 5)),
    ("Promising", (4, 4), (1, 1), (1, 5)),
    ("Need Attention", (3, 3), (2, 3), (2, 5)),
    ("About To Sleep", (2, 3), (1, 2), (1, 5)),
    ("Cant Lose Them", (1, 2), (4, 5), (4, 5)),
    ("At Risk", (1, 2), (2, 5), (2, 5)),
    ("Hibernating", (1, 2), (1, 2), (1, 5)),
]
_COLUMNS = [
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "r",
    "f",
    "m",
    "segment",
    "high_value",
    "frequent_buyer",
    "at_risk",
]


def _score(values: pd.Series, *, ascending: bool) -> np.ndarray:
    # method="min": the 1-based position of the first customer of the tie group.
    i0 = values.rank(method="min", ascending=ascending).to_numpy(dtype=np.int64) - 1
    return 1 + (5 * i0) // len(values)


def segment_frame(orders: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Segment ``orders`` (customer_id, created_at, total_amount, status) as of ``as_of``."""
    as_of_ns = pd.Timestamp(as_of).value
    created = pd.to_datetime(orders["created_at"], utc=True, format="ISO8601")
    ns = created.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").view(np.int64)
    keep = (orders["status"] == "paid").to_numpy() & (ns <= as_of_ns)
    frame = pd.DataFrame(
        {
            "customer_id": orders["customer_id"].to_numpy()[keep],
            "ns": ns[keep],
            "cents": np.rint(orders["total_amount"].to_numpy()[keep] * 100).astype(np.int64),
            "recent": ns[keep] >= as_of_ns - 90 * _DAY_NS,
        }
    )
    grouped = frame.groupby("customer_id", sort=True).agg(
        last=("ns", "max"),
        frequency=("ns", "size"),
        cents=("cents", "sum"),
        recent=("recent", "sum"),
    )
    recency = (as_of_ns - grouped["last"]) // _DAY_NS
    r = _score(recency, ascending=False)
    f = _score(grouped["frequency"], ascending=True)
    m = _score(grouped["cents"], ascending=True)
    conditions = [
        (r >= rr[0]) & (r <= rr[1]) & (f >= ff[0]) & (f <= ff[1]) & (m >= mm[0]) & (m <= mm[1])
        for _, rr, ff, mm in _RULES
    ]
    segment = np.select(conditions, [name for name, *_ in _RULES], default="Lost")
    cents = grouped["cents"].to_numpy()
    flag = np.array(["false", "true"])
    out = pd.DataFrame(
        {
            "customer_id": grouped.index.to_numpy(),
            "recency_days": recency.to_numpy(),
            "frequency": grouped["frequency"].to_numpy(),
            "monetary": pd.Series(cents // 100).astype(str).to_numpy()
            + "."
            + pd.Series(cents % 100).astype(str).str.zfill(2).to_numpy(),
            "r": r,
            "f": f,
            "m": m,
            "segment": segment,
            "high_value": flag[(cents > 100_000).astype(np.int64)],
            "frequent_buyer": flag[(grouped["recent"].to_numpy() >= 5).astype(np.int64)],
            "at_risk": flag[
                (grouped["last"].to_numpy() < as_of_ns - 180 * _DAY_NS).astype(np.int64)
            ],
        }
    )
    return out[_COLUMNS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("orders")
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--output")
    args = parser.parse_args()
    orders = pd.read_csv(
        args.orders,
        usecols=["customer_id", "created_at", "total_amount", "status"],
        dtype={"customer_id": str, "created_at": str, "total_amount": np.float64, "status": str},
    )
    result = segment_frame(orders, datetime.fromisoformat(args.as_of))
    result.to_csv(args.output or sys.stdout, index=False, lineterminator="\n")


if __name__ == "__main__":
    main()
