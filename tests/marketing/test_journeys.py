"""Journeys as data: the built-ins, loading from TOML/JSON, and validation with field paths."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dixis_integrations.errors import InvalidInput
from dixis_integrations.marketing.journeys import (
    BUILT_IN,
    WELCOME,
    ConditionKind,
    ExitRule,
    Trigger,
    journey_from_mapping,
    parse_journey,
)


def test_welcome_series_is_day_0_3_7_and_ends_on_an_order() -> None:
    assert [(s.id, s.delay) for s in WELCOME.steps] == [
        ("welcome", timedelta(0)),
        ("recommendations", timedelta(days=3)),
        ("offer", timedelta(days=7)),
    ]
    assert ExitRule.ORDERED in WELCOME.exit_on
    assert WELCOME.steps[1].recommendations


def test_built_ins_cover_welcome_review_win_back_and_replenishment() -> None:
    assert {(j.id, j.trigger) for j in BUILT_IN} == {
        ("welcome", Trigger.CUSTOMER_CREATED),
        ("post_delivery_review", Trigger.ORDER_DELIVERED),
        ("win_back", Trigger.SEGMENT_ENTERED),
        ("replenishment", Trigger.REPLENISHMENT_DUE),
    }
    assert next(j for j in BUILT_IN if j.id == "win_back").segment == "at_risk"


def test_a_journey_loads_from_toml() -> None:
    journey = parse_journey(
        """
        id = "cart"
        version = 2
        trigger = "cart_abandoned"
        repeat = true
        exit_on = ["ordered", "unsubscribed"]

        [[steps]]
        id = "reminder"
        delay = "PT2H"
        template = "cart_reminder"
        subject = "Ξεχάσατε κάτι;"
        conditions = [{ kind = "no_order_since_entry" }]
        """
    )
    assert journey.version == 2
    assert journey.steps[0].delay == timedelta(hours=2)
    assert journey.steps[0].conditions[0].kind is ConditionKind.NO_ORDER_SINCE_ENTRY


def test_a_journey_loads_from_json() -> None:
    text = (
        '{"id": "x", "trigger": "first_order", '
        '"steps": [{"id": "a", "template": "t", "subject": "s", "delay": 86400}]}'
    )
    assert parse_journey(text, format="json").steps[0].delay == timedelta(days=1)


def test_invalid_journey_names_each_field() -> None:
    with pytest.raises(InvalidInput) as info:
        journey_from_mapping(
            {
                "id": "Bad Id",
                "trigger": "segment_entered",
                "steps": [{"id": "a", "template": "", "subject": "s"}],
            }
        )
    paths = [e.path for e in info.value.errors]
    assert paths == ["id", "steps[0].template"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"trigger": "segment_entered"}, "segment_entered needs 'segment'"),
        ({"trigger": "no_order_for"}, "no_order_for needs 'days'"),
    ],
)
def test_trigger_parameters_are_required(data: dict[str, str], message: str) -> None:
    base = {"id": "j", "steps": [{"id": "a", "template": "t", "subject": "s"}]}
    with pytest.raises(InvalidInput, match=message):
        journey_from_mapping({**base, **data})


def test_steps_out_of_order_or_duplicated_are_refused() -> None:
    steps = [
        {"id": "a", "template": "t", "subject": "s", "delay": 60},
        {"id": "a", "template": "t", "subject": "s", "delay": 0},
    ]
    with pytest.raises(InvalidInput, match="unique"):
        journey_from_mapping({"id": "j", "trigger": "first_order", "steps": steps})


def test_negative_delay_and_bad_text_are_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        journey_from_mapping(
            {"id": "j", "trigger": "first_order",
             "steps": [{"id": "a", "template": "t", "subject": "s", "delay": -5}]}
        )  # fmt: skip
    assert info.value.errors[0].path == "steps[0]"
    with pytest.raises(InvalidInput, match="TOML"):
        parse_journey("id = ")
