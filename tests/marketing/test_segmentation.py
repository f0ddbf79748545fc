"""Hand-computed checks of RFM scores, named rules, flags and boundaries (segmentation.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from dixis_integrations.errors import ConfigurationError, InvalidInput
from dixis_integrations.marketing.segmentation import (
    DEFAULT_RULES,
    DEFAULT_THRESHOLDS,
    CustomerSegment,
    FlagThresholds,
    SegmentOrder,
    aggregate,
    flag_memberships,
    parse_rule_set,
    rule_set_from_mapping,
    segment_customers,
    segment_memberships,
)

AS_OF = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def paid(customer: str, at: datetime, total: str = "10.00", status: str = "paid") -> SegmentOrder:
    return SegmentOrder(customer, at, Decimal(total), status)


def by_id(results: list[CustomerSegment]) -> dict[str, CustomerSegment]:
    return {result.customer_id: result for result in results}


def design(target: tuple[int, int, int]) -> list[SegmentOrder]:
    """Five customers whose R, F and M are each a permutation of 1..5; ``T`` gets ``target``.

    With five distinct values per metric, position i0 = 0..4 scores 1 + floor(5*i0/5) = i0+1.
    """
    triples = [target]
    for _k in range(4):
        triples.append(
            tuple(sorted(set(range(1, 6)) - {t[i] for t in triples})[0] for i in range(3))  # type: ignore[misc]
        )
    orders = []
    for index, (r, f, m) in enumerate(triples):
        name = "T" if index == 0 else f"other{index}"
        last = AS_OF - timedelta(days=10 * (5 - r))
        orders.append(paid(name, last, f"{m * 1000 - (f - 1)}.00"))
        orders.extend(paid(name, last - timedelta(hours=h + 1), "1.00") for h in range(f - 1))
    return orders


@pytest.mark.parametrize(
    ("triple", "segment"),
    [
        ((5, 5, 5), "Champions"),
        ((4, 4, 4), "Champions"),
        ((3, 3, 3), "Loyal"),
        ((5, 3, 2), "Potential Loyalist"),
        ((4, 2, 1), "Potential Loyalist"),
        ((5, 1, 1), "New Customers"),
        ((5, 1, 5), "New Customers"),
        ((4, 1, 5), "Promising"),
        ((3, 2, 2), "Need Attention"),
        ((3, 3, 2), "Need Attention"),
        ((2, 1, 1), "About To Sleep"),
        ((3, 2, 1), "About To Sleep"),
        ((1, 5, 5), "Cant Lose Them"),
        ((2, 4, 4), "Cant Lose Them"),
        ((1, 3, 2), "At Risk"),
        ((2, 5, 3), "At Risk"),
        ((1, 1, 1), "Hibernating"),
        ((1, 2, 1), "Hibernating"),
        ((2, 2, 1), "About To Sleep"),
        ((3, 4, 1), "Lost"),
        ((2, 3, 1), "Lost"),
        ((1, 4, 1), "Lost"),
    ],
)
def test_each_default_rule_names_the_segment_of_its_scores(
    triple: tuple[int, int, int], segment: str
) -> None:
    result = by_id(segment_customers(design(triple), AS_OF))["T"]
    assert (result.r, result.f, result.m) == triple
    assert result.segment == segment
    assert (result.rule.name if result.rule else "Lost") == segment


def test_first_matching_rule_wins_over_later_ones() -> None:
    # (5, 5, 5) is inside Champions, Loyal and Potential Loyalist's R range: Champions wins.
    assert DEFAULT_RULES.segment(5, 5, 5) == "Champions"
    assert DEFAULT_RULES.segment(5, 3, 3) == "Loyal"
    assert DEFAULT_RULES.match(3, 4, 1) is None


def test_scores_follow_rank_quintiles_and_ties_share_the_first_position() -> None:
    # frequencies 1, 1, 2, 3 -> ascending positions 0, 0, 2, 3 -> 1 + floor(5*i0/4)
    orders = [paid("a", AS_OF), paid("b", AS_OF)]
    orders += [paid("c", AS_OF - timedelta(hours=h)) for h in range(2)]
    orders += [paid("d", AS_OF - timedelta(hours=h)) for h in range(3)]
    results = by_id(segment_customers(orders, AS_OF))
    assert [results[c].f for c in "abcd"] == [1, 1, 3, 4]
    # recency is 0 days for everyone: one tie group at position 0 -> all R = 1
    assert {results[c].r for c in "abcd"} == {1}


def test_monetary_quintiles_on_ten_customers() -> None:
    orders = [paid(f"c{i}", AS_OF, f"{(i + 1) * 10}.00") for i in range(10)]
    results = by_id(segment_customers(orders, AS_OF))
    # position i0 = i, n = 10: 1 + floor(i / 2)
    assert [results[f"c{i}"].m for i in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert results["c0"].basis.cutoffs.monetary == tuple(
        Decimal(v) for v in ("20.00", "40.00", "60.00", "80.00")
    )


def test_recency_scores_descending_so_the_most_recent_scores_five() -> None:
    orders = [paid(f"c{d}", AS_OF - timedelta(days=d)) for d in range(5)]
    results = by_id(segment_customers(orders, AS_OF))
    assert [results[f"c{d}"].r for d in range(5)] == [5, 4, 3, 2, 1]
    assert [results[f"c{d}"].recency_days for d in range(5)] == [0, 1, 2, 3, 4]


def test_identical_behaviour_gives_identical_segment() -> None:
    orders = []
    for customer in ("twin-a", "twin-b"):
        orders += [paid(customer, AS_OF - timedelta(days=3), "55.10"), paid(customer, AS_OF)]
    orders += [paid("other", AS_OF - timedelta(days=40), "999.99")]
    results = by_id(segment_customers(orders, AS_OF))
    a, b = results["twin-a"], results["twin-b"]
    assert a._replace(customer_id="x") == b._replace(customer_id="x")


def test_a_single_customer_scores_one_everywhere() -> None:
    (result,) = segment_customers([paid("solo", AS_OF - timedelta(days=3), "5000.00")], AS_OF)
    assert (result.r, result.f, result.m) == (1, 1, 1)
    assert result.segment == "Hibernating"
    assert result.high_value is True


def test_refunded_and_cancelled_orders_count_nowhere() -> None:
    orders = [
        paid("a", AS_OF, "10.00", "refunded"),
        paid("a", AS_OF, "10.00", "cancelled"),
        paid("b", AS_OF, "10.00", "refunded"),
    ]
    assert segment_customers(orders, AS_OF) == []
    mixed = by_id(segment_customers([*orders, paid("a", AS_OF - timedelta(days=2), "3.00")], AS_OF))
    assert list(mixed) == ["a"]
    assert (mixed["a"].frequency, mixed["a"].monetary, mixed["a"].recency_days) == (
        1,
        Decimal("3.00"),
        2,
    )


def test_an_order_exactly_at_as_of_counts_and_one_after_does_not() -> None:
    results = by_id(segment_customers([paid("at", AS_OF), paid("after", AS_OF + US)], AS_OF))
    assert list(results) == ["at"]
    assert results["at"].recency_days == 0


def test_recency_is_floored_to_whole_days() -> None:
    orders = [
        paid("almost-a-day", AS_OF - timedelta(hours=23, minutes=59)),
        paid("one-day", AS_OF - timedelta(days=1)),
        paid("almost-two", AS_OF - timedelta(days=2) + US),
    ]
    results = by_id(segment_customers(orders, AS_OF))
    assert results["almost-a-day"].recency_days == 0
    assert results["one-day"].recency_days == 1
    assert results["almost-two"].recency_days == 1


def test_high_value_is_strictly_above_one_thousand() -> None:
    orders = [
        paid("exact", AS_OF, "1000.00"),
        paid("cent-more", AS_OF, "1000.01"),
        paid("split", AS_OF, "600.00"),
        paid("split", AS_OF, "400.01"),
    ]
    results = by_id(segment_customers(orders, AS_OF))
    assert results["exact"].high_value is False
    assert results["cent-more"].high_value is True
    assert results["split"].high_value is True
    assert results["split"].monetary == Decimal("1000.01")


def test_frequent_buyer_window_includes_its_first_instant() -> None:
    start = AS_OF - timedelta(days=90)
    inside = [paid("five", start)] + [paid("five", AS_OF - timedelta(days=d)) for d in range(4)]
    outside = [paid("four", start - US)] + [
        paid("four", AS_OF - timedelta(days=d)) for d in range(4)
    ]
    results = by_id(segment_customers(inside + outside, AS_OF))
    assert (results["five"].recent_orders, results["five"].frequent_buyer) == (5, True)
    assert (results["four"].recent_orders, results["four"].frequent_buyer) == (4, False)
    assert results["four"].frequency == 5


def test_at_risk_compares_the_last_order_to_exactly_180_days_before() -> None:
    line = AS_OF - timedelta(days=180)
    orders = [
        paid("on-the-line", line),
        paid("just-before", line - US),
        paid("old-and-new", line - timedelta(days=30)),
        paid("old-and-new", AS_OF - timedelta(days=1)),
    ]
    results = by_id(segment_customers(orders, AS_OF))
    assert results["on-the-line"].at_risk is False
    assert results["just-before"].at_risk is True
    assert results["old-and-new"].at_risk is False


def test_thresholds_are_configurable() -> None:
    thresholds = FlagThresholds(
        high_value_above=Decimal("50"),
        frequent_min_orders=2,
        frequent_window_days=7,
        at_risk_after_days=1,
    )
    orders = [
        paid("a", AS_OF - timedelta(days=2), "30.00"),
        paid("a", AS_OF - timedelta(days=3), "30.00"),
    ]
    (result,) = segment_customers(orders, AS_OF, thresholds=thresholds)
    assert (result.high_value, result.frequent_buyer, result.at_risk) == (True, True, True)
    assert result.basis.thresholds is thresholds


def test_offsets_other_than_utc_are_compared_as_instants() -> None:
    athens = timezone(timedelta(hours=2))
    orders = [paid("a", AS_OF.astimezone(athens) - timedelta(hours=25))]
    (in_athens,) = segment_customers(orders, AS_OF.astimezone(athens))
    (in_utc,) = segment_customers(orders, AS_OF)
    assert in_athens.recency_days == 1
    assert in_athens[:14] == in_utc[:14]


def test_a_generator_is_consumed_once_and_streams() -> None:
    def orders() -> Iterator[SegmentOrder]:
        for i in range(1000):
            yield paid(f"c{i % 10}", AS_OF - timedelta(hours=i), "1.25")

    results = segment_customers(orders(), AS_OF)
    assert len(results) == 10
    assert {r.frequency for r in results} == {100}
    assert {r.monetary for r in results} == {Decimal("125.00")}


def test_naive_as_of_is_a_typed_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        segment_customers([], AS_OF.replace(tzinfo=None))
    assert caught.value.errors[0].path == "as_of"


@pytest.mark.parametrize(
    ("order", "path"),
    [
        (
            SegmentOrder("a", AS_OF.replace(tzinfo=None), Decimal("1.00"), "paid"),
            "orders[1].created_at",
        ),
        (SegmentOrder("a", AS_OF, Decimal("1.001"), "paid"), "orders[1].total"),
        (SegmentOrder("a", AS_OF, Decimal("-1.00"), "paid"), "orders[1].total"),
        (SegmentOrder("a", AS_OF, 1.5, "paid"), "orders[1].total"),  # type: ignore[arg-type]
        (SegmentOrder("a", AS_OF, Decimal("1.00"), "shipped"), "orders[1].status"),
        (SegmentOrder("", AS_OF, Decimal("1.00"), "paid"), "orders[1].customer_id"),
    ],
)
def test_a_bad_order_is_named_by_its_position_and_field(order: SegmentOrder, path: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        segment_customers([paid("ok", AS_OF), order], AS_OF)
    assert caught.value.errors[0].path == path


def test_results_explain_values_scores_thresholds_and_rule() -> None:
    results = by_id(segment_customers(design((5, 5, 5)), AS_OF))
    champion = results["T"]
    text = champion.explain()
    assert "Champions (rule 1 of dixis-rfm v1: R4-5 F4-5 M4-5)" in text
    assert "5000.00 EUR" in text
    assert "1000.00" in text
    assert champion.basis.rules is DEFAULT_RULES
    assert champion.basis.thresholds == DEFAULT_THRESHOLDS
    fallback = by_id(segment_customers(design((3, 4, 1)), AS_OF))["T"]
    assert fallback.rule is None
    assert "no rule of dixis-rfm v1 matched, fallback" in fallback.explain()


def test_memberships_group_customers_for_pushes() -> None:
    results = segment_customers(design((5, 5, 5)), AS_OF)
    groups = segment_memberships(results)
    assert groups["Champions"] == ["T", "other4"]  # (5,5,5) and (4,4,4)
    assert sum(len(v) for v in groups.values()) == 5
    full = segment_memberships(results, rules=DEFAULT_RULES)
    assert list(full) == [*(rule.name for rule in DEFAULT_RULES.rules), "Lost"]
    assert full["Champions"] == ["T", "other4"]
    flags = flag_memberships(results)
    assert flags["high_value"] == sorted(r.customer_id for r in results if r.high_value)
    assert set(flags) == {"high_value", "frequent_buyer", "at_risk"}


def test_aggregates_of_two_chunks_merge_to_the_whole() -> None:
    orders = [*design((3, 3, 3)), paid("T", AS_OF - timedelta(days=400), "7.00")]
    whole = aggregate(orders, AS_OF)
    left, right = aggregate(orders[:4], AS_OF), aggregate(orders[4:], AS_OF)
    assert left.merged(right) == whole
    assert right.merged(left) == whole
    assert whole.customer("T")[0] == 4


def test_merging_aggregates_for_different_as_of_is_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        aggregate([], AS_OF).merged(aggregate([], AS_OF + US))
    assert caught.value.key == "as_of"


CUSTOM_TOML = """
name = "vip-only"
version = 3
fallback = "Everyone Else"

[[rules]]
name = "VIP"
r = [5, 5]
f = 5
m = [4, 5]
"""


def test_a_custom_rule_set_loads_from_toml_and_json() -> None:
    rules = parse_rule_set(CUSTOM_TOML)
    assert (rules.name, rules.version, rules.fallback) == ("vip-only", "3", "Everyone Else")
    assert rules.rules[0].f == (5, 5)
    same = parse_rule_set(
        '{"name": "vip-only", "version": "3", "fallback": "Everyone Else",'
        ' "rules": [{"name": "VIP", "r": [5, 5], "f": [5, 5], "m": [4, 5]}]}',
        format="json",
    )
    assert same == rules
    results = by_id(segment_customers(design((5, 5, 4)), AS_OF, rules=rules))
    assert results["T"].segment == "VIP"
    assert {r.segment for k, r in results.items() if k != "T"} == {"Everyone Else"}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"rules": [{"name": "x", "r": [0, 5], "f": 1, "m": 1}]}, "rules[0].r"),
        ({"rules": [{"name": "x", "r": [5, 4], "f": 1, "m": 1}]}, "rules[0].r"),
        ({"rules": [{"name": "x", "r": 1, "f": [1, 6], "m": 1}]}, "rules[0].f"),
        ({"rules": [{"name": "x", "r": 1, "f": 1, "m": "high"}]}, "rules[0].m"),
        ({"rules": [{"name": " ", "r": 1, "f": 1, "m": 1}]}, "rules[0].name"),
        ({"rules": [{"name": "x", "r": 1, "f": 1}]}, "rules[0].m"),
        ({"rules": [{"name": "x", "r": 1, "f": 1, "m": 1, "z": 2}]}, "rules[0].z"),
        ({"fallback": ""}, "fallback"),
        ({"fallback": None}, "fallback"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
        ({"rules": "all"}, "rules"),
    ],
)
def test_bad_rule_sets_name_the_offending_key(change: dict[str, object], key: str) -> None:
    data: dict[str, object] = {
        "name": "n",
        "version": "1",
        "fallback": "Lost",
        "rules": [{"name": "x", "r": 1, "f": 1, "m": 1}],
    }
    data.update(change)
    if change.get("fallback", 0) is None:
        del data["fallback"]
    with pytest.raises(ConfigurationError) as caught:
        rule_set_from_mapping(data)
    assert caught.value.key == key


def test_bad_threshold_values_name_their_key() -> None:
    with pytest.raises(ConfigurationError) as caught:
        FlagThresholds(frequent_min_orders=-1)
    assert caught.value.key == "frequent_min_orders"
    with pytest.raises(ConfigurationError) as caught:
        FlagThresholds.from_mapping({"high_value_above": "lots"}, key_prefix="thresholds.")
    assert caught.value.key == "thresholds.high_value_above"
