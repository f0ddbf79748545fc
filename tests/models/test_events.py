"""Events: deterministic ids, the discriminated union, and JSON Lines round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dixis_integrations.models import (
    CustomerCreated,
    Event,
    Money,
    Order,
    OrderCancelled,
    OrderCreated,
    OrderPaid,
    OrderRefunded,
    Payment,
    PaymentMethod,
    Refund,
    ShipmentStatusChanged,
    StockLow,
    parse_event,
)
from dixis_integrations.models.shipping import TrackingStatus

from .factories import FIXED_TIME, make_customer, make_order, orders

PAYMENT = Payment(
    id="pay_9",
    order_id="ord_1",
    amount=Money.of("12.40"),
    method=PaymentMethod.CARD,
    paid_at=FIXED_TIME,
    provider="stripe",
)
REFUND = Refund(id="re_4", order_id="ord_1", amount=Money.of("2.00"), created_at=FIXED_TIME)


def all_events() -> list[Event]:
    return [
        OrderCreated(order=make_order(), occurred_at=FIXED_TIME),
        OrderPaid(order_id="ord_1", payment=PAYMENT, occurred_at=FIXED_TIME),
        OrderCancelled(order_id="ord_1", reason="ο πελάτης ακύρωσε", occurred_at=FIXED_TIME),
        OrderRefunded(order_id="ord_1", refund=REFUND, occurred_at=FIXED_TIME),
        CustomerCreated(customer=make_customer(), occurred_at=FIXED_TIME),
        StockLow(
            sku="TOM-KG",
            location="athens",
            available="2.5",
            reorder_point=10,
            occurred_at=FIXED_TIME,
        ),
        ShipmentStatusChanged(
            carrier="acs",
            tracking_number="7201234567",
            status=TrackingStatus.DELIVERED,
            previous=TrackingStatus.OUT_FOR_DELIVERY,
            raw_code="DLV",
            at=FIXED_TIME,
            occurred_at=FIXED_TIME,
        ),
    ]


@pytest.mark.parametrize(
    ("index", "event_id"),
    [
        (0, "order.created:ord_1"),
        (1, "order.paid:ord_1:pay_9"),
        (2, "order.cancelled:ord_1"),
        (3, "order.refunded:ord_1:re_4"),
        (4, "customer.created:cus_1"),
        (5, "stock.low:TOM-KG:athens:2.5:2026-03-14T09:30:00+00:00"),
        (6, "shipment.status_changed:acs:7201234567:delivered:2026-03-14T09:30:00+00:00"),
    ],
)
def test_event_id_is_derived_from_type_and_identity(index: int, event_id: str) -> None:
    assert all_events()[index].event_id == event_id


def test_event_id_does_not_depend_on_when_the_event_object_was_built() -> None:
    first = OrderCreated(order=make_order())
    second = OrderCreated(order=make_order(), occurred_at=FIXED_TIME + timedelta(hours=1))
    assert first.event_id == second.event_id == "order.created:ord_1"


def test_stock_low_id_ignores_the_scale_of_the_quantity() -> None:
    base = {"sku": "TOM", "location": "athens", "reorder_point": 5, "occurred_at": FIXED_TIME}
    assert StockLow(available="2.50", **base).event_id == StockLow(available="2.5", **base).event_id
    assert StockLow(available="0.00", **base).event_id.endswith(":0:2026-03-14T09:30:00+00:00")


def test_explicit_event_id_is_kept_and_empty_is_refused() -> None:
    assert OrderCancelled(order_id="o", event_id="evt_123").event_id == "evt_123"
    with pytest.raises(ValidationError) as info:
        OrderCancelled(order_id="o", event_id="")
    assert info.value.errors()[0]["loc"] == ("event_id",)


def test_tenant_other_than_default_prefixes_the_id() -> None:
    event = OrderCancelled(order_id="ord_1", tenant="dixis-crete")
    assert event.event_id == "dixis-crete/order.cancelled:ord_1"
    assert OrderCancelled(order_id="ord_1").tenant == "default"


def test_occurred_at_is_aware_utc() -> None:
    athens = timezone(timedelta(hours=3))
    event = OrderCancelled(order_id="o", occurred_at=datetime(2026, 7, 1, 12, tzinfo=athens))
    assert event.occurred_at == datetime(2026, 7, 1, 9, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError) as info:
        OrderCancelled(order_id="o", occurred_at=datetime(2026, 7, 1, 12))
    assert info.value.errors()[0]["loc"] == ("occurred_at",)
    with pytest.raises(ValidationError) as info:
        ShipmentStatusChanged(
            carrier="acs", tracking_number="1", status="delivered", at="2026-07-01T12:00:00"
        )
    assert info.value.errors()[0]["loc"] == ("at",)


def test_events_are_frozen_and_refuse_unknown_fields() -> None:
    event = OrderCancelled(order_id="o")
    with pytest.raises(ValidationError):
        event.order_id = "p"  # type: ignore[misc]
    with pytest.raises(ValidationError) as info:
        OrderCancelled(order_id="o", colour="red")  # type: ignore[call-arg]
    assert info.value.errors()[0]["loc"] == ("colour",)


@pytest.mark.parametrize("index", range(7))
def test_every_event_round_trips_through_json_and_dicts(index: int) -> None:
    event = all_events()[index]
    from_json = parse_event(event.model_dump_json())
    assert type(from_json) is type(event)
    assert from_json == event
    assert parse_event(event.model_dump_json().encode()) == event
    assert parse_event(event.model_dump()) == event
    assert parse_event(json.loads(event.model_dump_json())) == event


def test_json_lines_stream_parses_record_by_record() -> None:
    events = all_events()
    stream = "\n".join(e.model_dump_json() for e in events) + "\n"
    parsed = [parse_event(line) for line in stream.splitlines() if line]
    assert parsed == events
    assert [p.type for p in parsed] == [e.type for e in events]


def test_unknown_event_type_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        parse_event('{"type": "order.teleported", "order_id": "x"}')
    assert info.value.errors()[0]["type"] == "union_tag_invalid"
    with pytest.raises(ValidationError) as info:
        parse_event({"order_id": "x"})
    assert info.value.errors()[0]["type"] == "union_tag_not_found"


def test_nested_errors_carry_the_event_type_and_the_field_path() -> None:
    data = json.loads(all_events()[0].model_dump_json())
    data["order"]["lines"][0]["quantity"] = "-1"
    with pytest.raises(ValidationError) as info:
        parse_event(data)
    assert info.value.errors()[0]["loc"] == ("order.created", "order", "lines", 0, "quantity")
    data = json.loads(all_events()[5].model_dump_json())
    data["available"] = 2.5
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(data))
    assert info.value.errors()[0]["loc"] == ("stock.low", "available")


def test_shipment_status_is_the_tracking_enum() -> None:
    event = all_events()[6]
    assert isinstance(event, ShipmentStatusChanged)
    assert event.status is TrackingStatus.DELIVERED
    with pytest.raises(ValidationError) as info:
        ShipmentStatusChanged(carrier="acs", tracking_number="1", status="lost", at=FIXED_TIME)
    assert info.value.errors()[0]["loc"] == ("status",)


def test_stock_low_refuses_negative_reorder_point_and_floats() -> None:
    with pytest.raises(ValidationError) as info:
        StockLow(sku="A", location="x", available=1, reorder_point=-1)
    assert info.value.errors()[0]["loc"] == ("reorder_point",)
    assert StockLow(sku="A", location="x", available="-3", reorder_point=0).available == Decimal(-3)


@settings(max_examples=40)
@given(orders(), st.sampled_from(["default", "acme"]))
def test_order_created_round_trip_for_any_order(order: Order, tenant: str) -> None:
    event = OrderCreated(order=order, tenant=tenant, occurred_at=FIXED_TIME)
    again = parse_event(event.model_dump_json())
    assert again == event
    assert again.event_id == event.event_id
    assert isinstance(again, OrderCreated)
    assert again.order.totals() == order.totals()


class _CustomEvent(Event):
    type: str = "custom.thing"


def test_subclass_without_identity_needs_an_explicit_event_id() -> None:
    assert _CustomEvent(event_id="evt_1").event_id == "evt_1"
    with pytest.raises(NotImplementedError, match="identity"):
        _CustomEvent()
