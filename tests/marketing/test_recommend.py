"""Recommendations: bought together, popular in the region this season, never already bought."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dixis_integrations.errors import InvalidInput
from dixis_integrations.marketing.recommend import (
    Purchase,
    ReasonKind,
    RecommendationModel,
    Season,
    season_of,
)

AS_OF = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)  # spring


def p(cid: str, oid: str, sku: str, days_ago: float = 5, region: str | None = "attica") -> Purchase:
    return Purchase(cid, oid, sku, AS_OF - timedelta(days=days_ago), region)


HISTORY = [
    # the customer we recommend for: bought honey
    p("me", "o1", "HONEY"),
    # honey was bought with feta in two orders, with olives in one
    p("a", "a1", "HONEY"),
    p("a", "a1", "FETA"),
    p("b", "b1", "HONEY"),
    p("b", "b1", "FETA"),
    p("b", "b1", "OLIVES"),
    # strawberries: popular in Attica this spring (3 customers), never with honey
    p("c", "c1", "STRAWBERRY"),
    p("d", "d1", "STRAWBERRY"),
    p("e", "e1", "STRAWBERRY"),
    # cherries: popular this spring, but in Crete
    p("f", "f1", "CHERRY", region="crete"),
    p("g", "g1", "CHERRY", region="crete"),
    p("h", "h1", "CHERRY", region="crete"),
    p("i", "i1", "CHERRY", region="crete"),
    # oranges: a winter favourite, out of season now
    p("j", "j1", "ORANGE", days_ago=120),
    p("k", "k1", "ORANGE", days_ago=120),
]


def test_season_boundaries() -> None:
    assert season_of(date(2026, 2, 28)) is Season.WINTER
    assert season_of(date(2026, 3, 1)) is Season.SPRING
    assert season_of(date(2026, 8, 31)) is Season.SUMMER
    assert season_of(date(2026, 11, 30)) is Season.AUTUMN
    assert season_of(date(2026, 12, 1)) is Season.WINTER


def test_ranking_bought_together_then_region_then_season() -> None:
    model = RecommendationModel.build(HISTORY, AS_OF)
    picks = model.recommend("me", limit=5)
    assert picks.skus == ["FETA", "OLIVES", "STRAWBERRY", "CHERRY"]
    assert picks.region == "attica"
    assert picks.season is Season.SPRING
    assert picks.already_bought == ("HONEY",)
    feta = picks.items[0]
    assert (feta.together, feta.regional, feta.seasonal) == (2, 2, 2)
    assert feta.reasons[0].kind is ReasonKind.BOUGHT_TOGETHER
    assert feta.reasons[0].detail == "bought together with HONEY in 2 orders"
    strawberry = picks.items[2]
    assert [r.kind for r in strawberry.reasons] == [
        ReasonKind.POPULAR_IN_REGION,
        ReasonKind.POPULAR_THIS_SEASON,
    ]
    assert strawberry.reasons[0].detail == "bought by 3 customers in attica this spring"


def test_never_recommends_what_the_customer_already_bought() -> None:
    model = RecommendationModel.build([*HISTORY, p("me", "o2", "FETA")], AS_OF)
    assert "FETA" not in model.recommend("me", limit=10).skus
    assert "HONEY" not in model.recommend("me", limit=10).skus


def test_region_override_and_availability() -> None:
    model = RecommendationModel.build(HISTORY, AS_OF)
    crete = model.recommend("me", region="crete", limit=5)
    assert crete.skus[2] == "CHERRY"  # after the two bought-together products
    only = model.recommend("me", available={"CHERRY", "ORANGE"}, limit=5)
    assert only.skus == ["CHERRY"]  # oranges: no evidence this season, not recommended


def test_purchases_after_as_of_are_not_seen() -> None:
    model = RecommendationModel.build([*HISTORY, p("me", "o9", "FETA", days_ago=-1)], AS_OF)
    assert model.recommend("me").skus[0] == "FETA"


def test_a_new_customer_gets_the_seasonal_favourites() -> None:
    model = RecommendationModel.build(HISTORY, AS_OF)
    # cherries: 4 buyers; honey and strawberries: 3 each, the tie goes to the smaller SKU
    assert model.recommend("stranger", limit=3).skus == ["CHERRY", "HONEY", "STRAWBERRY"]


def test_naive_times_are_refused_naming_the_line() -> None:
    bad = Purchase("x", "o", "S", datetime(2026, 5, 1))
    with pytest.raises(InvalidInput) as info:
        RecommendationModel.build([*HISTORY, bad], AS_OF)
    assert info.value.errors[0].path == f"[{len(HISTORY)}].at"


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000))
def test_input_order_never_changes_the_picks(seed: int) -> None:
    shuffled = list(HISTORY)
    random.Random(seed).shuffle(shuffled)
    expected = RecommendationModel.build(HISTORY, AS_OF).recommend("me", limit=5)
    assert RecommendationModel.build(shuffled, AS_OF).recommend("me", limit=5) == expected
