"""The journey planner: due sends from journeys, activities and a fake clock, hand-checked."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dixis_integrations.errors import InvalidInput
from dixis_integrations.marketing.journeys import (
    POST_DELIVERY_REVIEW,
    REPLENISHMENT,
    WELCOME,
    WIN_BACK,
    Journey,
    journey_from_mapping,
)
from dixis_integrations.marketing.planner import (
    Activity,
    ActivityKind,
    QuietHours,
    activities_from_event,
    memberships,
    plan,
    replenishment_cadence,
    segment_changes,
    send_key,
)
from dixis_integrations.marketing.segmentation import SegmentOrder, segment_customers
from dixis_integrations.models.customer import Customer
from dixis_integrations.models.events import CustomerCreated

ATHENS = ZoneInfo("Europe/Athens")
# Tuesday 3 March 2026, 10:00 in Athens (UTC+2 in winter)
DAY0 = datetime(2026, 3, 3, 10, 0, tzinfo=ATHENS)


def created(cid: str = "c1", at: datetime = DAY0, event_id: str | None = None) -> Activity:
    return Activity(event_id or f"created:{cid}", cid, ActivityKind.CUSTOMER_CREATED, at)


def ordered(cid: str, at: datetime, ref: str) -> Activity:
    return Activity(f"order:{ref}", cid, ActivityKind.ORDER_PLACED, at, reference=ref)


def steps(sends: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(s.journey_id, s.step_id) for s in sends]


def test_welcome_day_0_mail_is_due_at_once() -> None:
    sends = plan([WELCOME], [created()], DAY0)
    assert steps(sends) == [("welcome", "welcome")]
    assert sends[0].send_at == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert sends[0].key == send_key("default", "welcome", "welcome", "c1", "")


def test_welcome_day_3_and_day_7_come_on_their_days() -> None:
    day3 = DAY0 + timedelta(days=3)
    assert steps(plan([WELCOME], [created()], day3 - timedelta(minutes=1))) == [
        ("welcome", "welcome")
    ]
    assert steps(plan([WELCOME], [created()], day3)) == [
        ("welcome", "welcome"),
        ("welcome", "recommendations"),
    ]
    day7 = plan([WELCOME], [created()], DAY0 + timedelta(days=7))
    # day 0 is now more than 3 days late (stale), day 3 is 4 days late: only day 7 is left
    assert steps(day7) == [("welcome", "offer")]
    assert day7[0].recommendations is False


def test_an_order_on_day_2_ends_the_welcome_series() -> None:
    history = [created(), ordered("c1", DAY0 + timedelta(days=2), "o1")]
    for day in (2, 3, 5, 7, 8):
        assert plan([WELCOME], history, DAY0 + timedelta(days=day)) == []


def test_an_order_after_now_is_not_known_yet() -> None:
    history = [created(), ordered("c1", DAY0 + timedelta(days=5), "o1")]
    assert steps(plan([WELCOME], history, DAY0 + timedelta(days=3))) == [
        ("welcome", "welcome"),
        ("welcome", "recommendations"),
    ]


def test_a_redelivered_event_counts_once() -> None:
    once = plan([WELCOME], [created()], DAY0)
    twice = plan([WELCOME], [created(), created()], DAY0)
    assert once == twice
    assert len(twice) == 1


def test_night_sign_up_is_welcomed_at_nine_next_morning_athens_time() -> None:
    night = datetime(2026, 3, 3, 23, 30, tzinfo=ATHENS)
    assert plan([WELCOME], [created(at=night)], night) == []
    morning = datetime(2026, 3, 4, 9, 0, tzinfo=ATHENS)
    assert plan([WELCOME], [created(at=night)], morning - timedelta(seconds=1)) == []
    sends = plan([WELCOME], [created(at=night)], morning)
    assert sends[0].send_at == datetime(2026, 3, 4, 7, 0, tzinfo=UTC)  # 09:00 EET
    assert sends[0].scheduled_at == datetime(2026, 3, 3, 21, 30, tzinfo=UTC)


def test_quiet_hours_follow_athens_summer_time() -> None:
    quiet = QuietHours()
    # 1 July, 05:30 UTC is 08:30 in Athens (UTC+3): quiet until 06:00 UTC
    assert quiet.next_allowed(datetime(2026, 7, 1, 5, 30, tzinfo=UTC)) == datetime(
        2026, 7, 1, 6, 0, tzinfo=UTC
    )
    # 20:59 local is allowed, 21:00 is not
    assert not quiet.contains(datetime(2026, 7, 1, 20, 59, tzinfo=ATHENS))
    assert quiet.contains(datetime(2026, 7, 1, 21, 0, tzinfo=ATHENS))
    day = QuietHours(start=time(13, 0), end=time(17, 0))
    assert day.contains(datetime(2026, 7, 1, 14, 0, tzinfo=ATHENS))
    assert not day.contains(datetime(2026, 7, 1, 17, 0, tzinfo=ATHENS))


def test_no_quiet_hours_sends_at_night() -> None:
    night = datetime(2026, 3, 3, 23, 30, tzinfo=ATHENS)
    assert len(plan([WELCOME], [created(at=night)], night, quiet_hours=None)) == 1


def test_review_request_the_day_after_each_delivery() -> None:
    history = [
        Activity("d1", "c1", ActivityKind.ORDER_DELIVERED, DAY0, reference="o1"),
        Activity(
            "d2", "c1", ActivityKind.ORDER_DELIVERED, DAY0 + timedelta(hours=2), reference="o2"
        ),
    ]
    assert plan([POST_DELIVERY_REVIEW], history, DAY0 + timedelta(hours=23)) == []
    sends = plan([POST_DELIVERY_REVIEW], history, DAY0 + timedelta(days=1, hours=2))
    assert [s.occurrence for s in sends] == ["o1", "o2"]
    assert sends[0].key != sends[1].key


def test_win_back_once_per_entry_into_at_risk() -> None:
    entered = Activity("e1", "c1", ActivityKind.SEGMENT_ENTERED, DAY0, segment="at_risk")
    again = Activity(
        "e2", "c1", ActivityKind.SEGMENT_ENTERED, DAY0 + timedelta(days=1), segment="at_risk"
    )
    sends = plan([WIN_BACK], [entered, again], DAY0 + timedelta(days=1))
    assert [s.step_id for s in sends] == ["miss_you"]  # still in the segment: no new entry
    left = Activity(
        "l1", "c1", ActivityKind.SEGMENT_LEFT, DAY0 + timedelta(days=20), segment="at_risk"
    )
    back = Activity(
        "e3", "c1", ActivityKind.SEGMENT_ENTERED, DAY0 + timedelta(days=30), segment="at_risk"
    )
    later = plan([WIN_BACK], [entered, again, left, back], DAY0 + timedelta(days=30))
    assert [s.step_id for s in later] == ["miss_you"]
    assert later[0].key != sends[0].key


def test_win_back_stops_when_the_customer_leaves_the_segment() -> None:
    entered = Activity("e1", "c1", ActivityKind.SEGMENT_ENTERED, DAY0, segment="at_risk")
    left = Activity(
        "l1", "c1", ActivityKind.SEGMENT_LEFT, DAY0 + timedelta(days=3), segment="at_risk"
    )
    assert plan([WIN_BACK], [entered, left], DAY0 + timedelta(days=7)) == []


def test_replenishment_follows_the_customers_weekly_cadence() -> None:
    orders = [ordered("c1", DAY0 + timedelta(days=7 * i), f"o{i}") for i in range(3)]
    last = DAY0 + timedelta(days=14)
    # due one day (the lead) before the next expected order: day 20 at 10:00
    assert plan([REPLENISHMENT], orders, last + timedelta(days=6) - timedelta(minutes=1)) == []
    sends = plan([REPLENISHMENT], orders, last + timedelta(days=6))
    assert steps(sends) == [("replenishment", "reminder")]
    assert sends[0].occurrence == "o2"
    assert sends[0].recommendations is True
    # ordering again moves the next reminder a cadence later
    more = [*orders, ordered("c1", last + timedelta(days=5), "o3")]
    assert plan([REPLENISHMENT], more, last + timedelta(days=6)) == []


def test_cadence_is_the_lower_median_gap_and_needs_enough_orders() -> None:
    t = [DAY0, DAY0 + timedelta(days=7), DAY0 + timedelta(days=21), DAY0 + timedelta(days=27)]
    assert replenishment_cadence(t) == timedelta(days=7)  # gaps 7, 14, 6 -> 7
    assert replenishment_cadence(t[:2]) is None
    assert replenishment_cadence(t[:2], min_orders=2) == timedelta(days=7)


def test_no_order_for_days_trigger_and_first_order_trigger() -> None:
    journey = journey_from_mapping(
        {
            "id": "lapsed",
            "trigger": "no_order_for",
            "days": 30,
            "steps": [{"id": "nudge", "template": "t", "subject": "s"}],
            "exit_on": ["ordered"],
        }
    )
    history = [ordered("c1", DAY0, "o1")]
    assert plan([journey], history, DAY0 + timedelta(days=29)) == []
    assert len(plan([journey], history, DAY0 + timedelta(days=30))) == 1
    first = Journey.model_validate(
        {
            "id": "thanks",
            "trigger": "first_order",
            "steps": [{"id": "thanks", "template": "t", "subject": "s"}],
        }
    )
    two = [*history, ordered("c1", DAY0 + timedelta(hours=1), "o2")]
    assert [s.occurrence for s in plan([first], two, DAY0 + timedelta(hours=2))] == [""]


def test_a_late_step_past_stale_after_is_dropped() -> None:
    assert plan([WELCOME], [created()], DAY0 + timedelta(days=3, seconds=1))[0].step_id == (
        "recommendations"
    )


def test_naive_now_and_naive_activity_are_refused() -> None:
    with pytest.raises(InvalidInput, match="now"):
        plan([WELCOME], [], datetime(2026, 3, 3))
    with pytest.raises(InvalidInput) as info:
        Activity("e", "c1", ActivityKind.CUSTOMER_CREATED, datetime(2026, 3, 3))
    assert [e.path for e in info.value.errors] == ["at"]


def test_library_events_become_activities() -> None:
    customer = Customer(id="c9", email="a@b.gr", first_name="Άννα", created_at=DAY0)
    (activity,) = activities_from_event(CustomerCreated(customer=customer))
    assert activity.kind is ActivityKind.CUSTOMER_CREATED
    assert activity.customer_id == "c9"
    assert activity.at == DAY0


_ALL = (WELCOME, POST_DELIVERY_REVIEW, WIN_BACK, REPLENISHMENT)


@settings(max_examples=40, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=40 * 24), min_size=1, max_size=12),
    seed=st.integers(min_value=0, max_value=10_000),
    now_h=st.integers(min_value=0, max_value=45 * 24),
)
def test_input_order_and_duplicates_never_change_the_plan(
    offsets: list[int], seed: int, now_h: int
) -> None:
    kinds = list(ActivityKind)
    history = [created("c1"), created("c2")]
    for i, h in enumerate(offsets):
        kind = kinds[i % len(kinds)]
        segment = (
            "at_risk" if kind in (ActivityKind.SEGMENT_ENTERED, ActivityKind.SEGMENT_LEFT) else None
        )
        history.append(
            Activity(f"e{i}", f"c{1 + i % 2}", kind, DAY0 + timedelta(hours=h), f"r{i}", segment)
        )
    now = DAY0 + timedelta(hours=now_h)
    expected = plan(_ALL, history, now)
    shuffled = history + history[: len(history) // 2]
    random.Random(seed).shuffle(shuffled)
    assert plan(_ALL, shuffled, now) == expected


def test_cart_abandoned_reminder_and_step_conditions() -> None:
    journey = journey_from_mapping(
        {
            "id": "cart",
            "trigger": "cart_abandoned",
            "repeat": True,
            "exit_on": [],
            "steps": [
                {
                    "id": "nudge",
                    "delay": "PT2H",
                    "template": "t",
                    "subject": "s",
                    "conditions": [{"kind": "no_order_since_entry"}],
                },
                {
                    "id": "vip",
                    "delay": "PT3H",
                    "template": "t",
                    "subject": "s",
                    "conditions": [
                        {"kind": "in_segment", "value": "champions"},
                        {"kind": "has_ordered"},
                    ],
                },
            ],
        }
    )
    cart = Activity("cart1", "c1", ActivityKind.CART_ABANDONED, DAY0, reference="k1")
    later = DAY0 + timedelta(hours=3)
    assert [s.step_id for s in plan([journey], [cart], later)] == ["nudge"]
    champion = Activity("s1", "c1", ActivityKind.SEGMENT_ENTERED, DAY0, segment="champions")
    old_order = ordered("c1", DAY0 - timedelta(days=30), "o0")
    sends = plan([journey], [cart, champion, old_order], later)
    assert [(s.step_id, s.occurrence) for s in sends] == [("nudge", "k1"), ("vip", "k1")]
    # an order one hour after the cart fails the nudge's condition (no exit rule here)
    bought = ordered("c1", DAY0 + timedelta(hours=1), "o1")
    assert [s.step_id for s in plan([journey], [cart, champion, old_order, bought], later)] == [
        "vip"
    ]


def test_segmentation_runs_feed_the_win_back_journey() -> None:
    as_of = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # 10:00 in Athens
    orders = [
        SegmentOrder("c1", as_of - timedelta(days=200), Decimal("40.00"), "paid"),
        SegmentOrder("c2", as_of - timedelta(days=3), Decimal("25.00"), "paid"),
    ]
    now = memberships(segment_customers(orders, as_of))
    assert "at_risk" in now["c1"]
    assert "at_risk" not in now["c2"]
    changes = segment_changes({}, now, as_of)
    assert changes == segment_changes({}, now, as_of)  # same runs, same event ids
    sends = plan([WIN_BACK], changes + changes, as_of)
    assert [(s.customer_id, s.step_id) for s in sends] == [("c1", "miss_you")]
    # the next run: c1 ordered again and left at_risk, so the journey stops
    later = as_of + timedelta(days=2)
    back = memberships(
        segment_customers([*orders, SegmentOrder("c1", later, Decimal("10.00"), "paid")], later)
    )
    left = segment_changes(now, back, later)
    assert any(a.kind is ActivityKind.SEGMENT_LEFT and a.segment == "at_risk" for a in left)
    assert plan([WIN_BACK], changes + left, as_of + timedelta(days=7)) == []
