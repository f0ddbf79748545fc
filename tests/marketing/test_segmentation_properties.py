"""Property tests: order independence, mergeable aggregates, and scores against the spec."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from dixis_integrations.marketing.segmentation import (
    DEFAULT_RULES,
    SegmentOrder,
    aggregate,
    segment_customers,
)

AS_OF = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)

orders_strategy = st.lists(
    st.builds(
        SegmentOrder,
        customer_id=st.sampled_from([f"c{i}" for i in range(12)]),
        created_at=st.integers(-400 * 86_400_000_000, 2 * 86_400_000_000).map(
            lambda us: AS_OF + timedelta(microseconds=us)
        ),
        total=st.integers(0, 300_000).map(lambda cents: Decimal(cents).scaleb(-2)),
        status=st.sampled_from(["paid", "paid", "paid", "refunded", "cancelled"]),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(orders=orders_strategy, data=st.data())
def test_permuting_the_input_never_changes_the_output(
    orders: list[SegmentOrder], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(orders))
    assert segment_customers(shuffled, AS_OF) == segment_customers(orders, AS_OF)


@settings(max_examples=150, deadline=None)
@given(orders=orders_strategy, cuts=st.lists(st.integers(0, 60), max_size=4))
def test_merging_aggregates_of_any_split_equals_aggregating_the_whole(
    orders: list[SegmentOrder], cuts: list[int]
) -> None:
    bounds = [0, *sorted(min(c, len(orders)) for c in cuts), len(orders)]
    parts = [aggregate(orders[a:b], AS_OF) for a, b in itertools.pairwise(bounds)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merged(part)
    assert merged == aggregate(orders, AS_OF)
    assert parts[-1].merged(parts[0]) == parts[0].merged(parts[-1])


def _spec_scores(values: dict[str, int], *, descending: bool) -> dict[str, int]:
    """The specification, literally: sort, take the tie group's first 0-based position."""
    order = sorted(values.values(), reverse=descending)
    n = len(order)
    return {c: 1 + (5 * order.index(v)) // n for c, v in values.items()}


@settings(max_examples=200, deadline=None)
@given(orders=orders_strategy)
def test_scores_segments_and_flags_match_a_literal_reading_of_the_spec(
    orders: list[SegmentOrder],
) -> None:
    counting = [o for o in orders if o.status == "paid" and o.created_at <= AS_OF]
    customers = sorted({o.customer_id for o in counting})
    last = {c: max(o.created_at for o in counting if o.customer_id == c) for c in customers}
    recency = {c: (AS_OF - last[c]) // timedelta(days=1) for c in customers}
    frequency = {c: sum(o.customer_id == c for o in counting) for c in customers}
    money = {
        c: sum((o.total for o in counting if o.customer_id == c), Decimal(0)) for c in customers
    }
    cents = {c: int(money[c] * 100) for c in customers}
    r = _spec_scores(recency, descending=True) if customers else {}
    f = _spec_scores(frequency, descending=False) if customers else {}
    m = _spec_scores(cents, descending=False) if customers else {}
    results = segment_customers(orders, AS_OF)
    assert [x.customer_id for x in results] == customers
    for x in results:
        c = x.customer_id
        assert (x.recency_days, x.frequency, x.monetary) == (recency[c], frequency[c], money[c])
        assert (x.r, x.f, x.m) == (r[c], f[c], m[c])
        expected = next(
            (rule.name for rule in DEFAULT_RULES.rules if rule.matches(r[c], f[c], m[c])), "Lost"
        )
        assert x.segment == expected
        recent = sum(
            o.customer_id == c and o.created_at >= AS_OF - timedelta(days=90) for o in counting
        )
        assert x.high_value == (money[c] > Decimal("1000.00"))
        assert x.frequent_buyer == (recent >= 5)
        assert x.at_risk == (last[c] < AS_OF - timedelta(days=180))
