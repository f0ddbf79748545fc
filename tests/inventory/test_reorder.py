"""The reorder policy: reorder quantity, pack-size rounding, incoming counted."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dixis_integrations.errors import InvalidInput
from dixis_integrations.inventory.reorder import (
    ReorderRule,
    plan_purchase_order,
    reorder_quantity,
    rule_for,
)
from dixis_integrations.models.inventory import StockLevel
from dixis_integrations.models.money import Money
from dixis_integrations.models.product import Product, Supplier
from dixis_integrations.models.tax import VatCategory

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def _level(on_hand: str, committed: str = "0", incoming: str = "0") -> StockLevel:
    return StockLevel(
        sku="OIL-5L",
        on_hand=Decimal(on_hand),
        committed=Decimal(committed),
        incoming=Decimal(incoming),
        as_of=T0,
    )


RULE = ReorderRule(Decimal(10), Decimal(25), Decimal(6), "farm-7")


def test_above_the_point_nothing_is_ordered() -> None:
    assert reorder_quantity(_level("11"), RULE) == 0


def test_the_reorder_quantity_is_rounded_up_to_the_pack_size() -> None:
    assert reorder_quantity(_level("10"), RULE) == Decimal(30)


def test_incoming_stock_counts_so_no_second_order_is_raised() -> None:
    first = reorder_quantity(_level("4"), RULE)
    assert reorder_quantity(_level("4", incoming=str(first)), RULE) == 0


def test_a_shortfall_larger_than_the_reorder_quantity_is_covered_whole() -> None:
    assert reorder_quantity(_level("2", committed="30"), RULE) == Decimal(42)


def test_landing_exactly_on_the_point_adds_one_pack() -> None:
    rule = ReorderRule(Decimal(10), Decimal(6), Decimal(6), "s")
    assert reorder_quantity(_level("4"), rule) == Decimal(12)


@given(
    on_hand=st.integers(0, 500),
    committed=st.integers(0, 500),
    incoming=st.integers(0, 100),
    point=st.integers(0, 200),
    qty=st.integers(1, 100),
    pack=st.sampled_from(["1", "0.5", "6", "12"]),
)
def test_after_ordering_the_position_is_above_the_point_in_whole_packs(
    on_hand: int, committed: int, incoming: int, point: int, qty: int, pack: str
) -> None:
    rule = ReorderRule(Decimal(point), Decimal(qty), Decimal(pack), "s")
    level = _level(str(on_hand), str(committed), str(incoming))
    quantity = reorder_quantity(level, rule)
    position = level.available + level.incoming
    if position > point:
        assert quantity == 0
    else:
        assert quantity >= qty
        assert quantity % Decimal(pack) == 0
        assert position + quantity > point
        assert position + quantity - Decimal(pack) <= point or quantity - Decimal(pack) < qty


def test_a_rule_with_a_zero_pack_size_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        ReorderRule(Decimal(1), Decimal(1), Decimal(0))
    assert err.value.errors[0].loc == ("pack_size",)


def test_rule_for_reads_the_product_and_its_supplier() -> None:
    product = Product(
        sku="OIL-5L",
        name="Olive oil 5 l",
        vat_category=VatCategory.REDUCED,
        price=Money.of("45.00", "EUR"),
        reorder_point=Decimal(10),
        reorder_quantity=Decimal(25),
        supplier=Supplier(id="farm-7", name="Kritsa coop", pack_size=Decimal(6)),
    )
    assert rule_for(product) == RULE
    order = plan_purchase_order(_level("3"), RULE, reference="po-1", at=T0)
    assert order is not None
    assert (order.supplier_id, order.lines[0].quantity) == ("farm-7", Decimal(30))
