"""Order aggregates: what counts, exact money, dates, and the customer-to-contact mapping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.models.factories import make_customer, make_line, make_order

from dixis_integrations.crm import aggregate_customer, aggregate_orders, contact_from_customer
from dixis_integrations.errors import InvalidInput
from dixis_integrations.models import Money, OrderStatus, Refund

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_cancelled_and_refunded_orders_count_for_nothing() -> None:
    orders = [
        make_order(id="o1", status=OrderStatus.PAID, created_at=T0),
        make_order(id="o2", status=OrderStatus.CANCELLED, created_at=T0 + timedelta(days=5)),
        make_order(id="o3", status=OrderStatus.REFUNDED, created_at=T0 + timedelta(days=6)),
        make_order(id="o4", status=OrderStatus.FULFILLED, created_at=T0 + timedelta(days=2)),
    ]
    agg = aggregate_orders(orders)["cus_1"]
    assert agg.total_orders == 2
    assert agg.total_spent == Money.of("24.80")
    assert agg.last_order_date == date(2026, 3, 3)


def test_partial_refunds_are_subtracted_and_full_ones_drop_the_order() -> None:
    orders = [
        make_order(id="o1", status=OrderStatus.PARTIALLY_REFUNDED, created_at=T0),
        make_order(id="o2", status=OrderStatus.PAID, created_at=T0 + timedelta(days=1)),
    ]
    refunds = [
        Refund(id="r1", order_id="o1", amount=Money.of("2.40")),
        Refund(id="r2", order_id="o2", amount=Money.of("10")),
        Refund(id="r3", order_id="o2", amount=Money.of("2.40")),
    ]
    agg = aggregate_orders(orders, refunds)["cus_1"]
    assert agg.total_orders == 1
    assert agg.total_spent == Money.of("10.00")
    assert agg.last_order_date == date(2026, 3, 1)


def test_customers_are_aggregated_separately() -> None:
    other = make_customer(id="cus_2", email="nikos@example.gr")
    orders = [
        make_order(id="o1"),
        make_order(id="o2", customer=other, lines=[make_line(quantity=3)]),
    ]
    result = aggregate_orders(orders)
    assert list(result) == ["cus_1", "cus_2"]
    assert result["cus_2"].total_spent == Money.of("37.20")


def test_a_customer_whose_orders_were_all_cancelled_has_zero() -> None:
    agg = aggregate_orders([make_order(status=OrderStatus.CANCELLED)])["cus_1"]
    assert (agg.total_orders, agg.total_spent, agg.last_order_date) == (0, Money.of("0"), None)


def test_last_order_date_follows_the_requested_time_zone() -> None:
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    athens = timezone(timedelta(hours=2))
    assert aggregate_customer("cus_1", [make_order(created_at=late)]).last_order_date == date(
        2026, 3, 1
    )
    agg = aggregate_customer("cus_1", [make_order(created_at=late)], tz=athens)
    assert agg.last_order_date == date(2026, 3, 2)


def test_an_unknown_customer_has_an_empty_aggregate() -> None:
    agg = aggregate_customer("nobody", [make_order()])
    assert agg.total_orders == 0
    assert agg.total_spent.is_zero


def test_orders_in_another_currency_are_refused_with_their_path() -> None:
    with pytest.raises(InvalidInput) as info:
        aggregate_orders([make_order(id="o9")], currency="USD")
    assert [e.path for e in info.value.errors] == ["orders.o9.currency"]


@given(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=8))
def test_total_spent_is_the_exact_sum_of_order_totals(quantities: list[int]) -> None:
    orders = [
        make_order(id=f"o{i}", status=OrderStatus.PAID, lines=[make_line(quantity=q)])
        for i, q in enumerate(quantities)
    ]
    agg = aggregate_orders(orders)["cus_1"]
    assert agg.total_spent.amount == sum(Decimal("12.40") * q for q in quantities)
    assert agg.total_orders == len(quantities)


def test_contact_from_customer_carries_the_aggregate() -> None:
    customer = make_customer(phone="6912345678")
    agg = aggregate_customer("cus_1", [make_order(status=OrderStatus.PAID)])
    contact = contact_from_customer(customer, agg, segment="new")
    assert contact.reference == "cus_1"
    assert contact.total_orders == 1
    assert contact.total_spent == Money.of("12.40")
    assert contact.phone == "+306912345678"
    assert contact.segment == "new"


def test_contact_from_customer_refuses_someone_elses_aggregate() -> None:
    agg = aggregate_customer("cus_9", [])
    with pytest.raises(InvalidInput, match="customer_id"):
        contact_from_customer(make_customer(), agg)
