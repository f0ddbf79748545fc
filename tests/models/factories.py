"""Builders and hypothesis strategies shared by the model tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from dixis_integrations.models import (
    Customer,
    Money,
    Order,
    OrderLine,
    SaleUnit,
    VatCategory,
)

GREEK_LETTERS = "αβγδεζηθικλμνξοπρστυφχψωςάέήίόύώϊϋΐΰΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩΆΈΉΊΌΎΏΪΫ"
FIXED_TIME = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def make_customer(**overrides: Any) -> Customer:
    data: dict[str, Any] = {
        "id": "cus_1",
        "email": "maria@example.gr",
        "first_name": "Μαρία",
        "last_name": "Παπαδοπούλου",
        "created_at": FIXED_TIME,
    }
    data.update(overrides)
    return Customer(**data)


def make_line(**overrides: Any) -> OrderLine:
    data: dict[str, Any] = {
        "sku": "OIL-1L",
        "name": "Ελαιόλαδο 1L",
        "quantity": 1,
        "unit_price": Money.of("12.40"),
        "vat_category": VatCategory.REDUCED,
    }
    data.update(overrides)
    return OrderLine(**data)


def make_order(**overrides: Any) -> Order:
    data: dict[str, Any] = {
        "id": "ord_1",
        "customer": make_customer(),
        "lines": [make_line()],
        "created_at": FIXED_TIME,
    }
    data.update(overrides)
    return Order(**data)


greek_text = (
    st.text(alphabet=GREEK_LETTERS + " ", min_size=1, max_size=30).map(str.strip).filter(bool)
)

cents = st.integers(min_value=-(10**9), max_value=10**9)
non_negative_cents = st.integers(min_value=0, max_value=10**7)
money = st.builds(Money.from_cents, cents, st.just("EUR"))
quantities = st.one_of(
    st.integers(min_value=1, max_value=50).map(Decimal),
    st.integers(min_value=1, max_value=20000).map(lambda g: Decimal(g).scaleb(-3)),  # kilos
)


@st.composite
def order_lines(draw: st.DrawFn) -> OrderLine:
    quantity = draw(quantities)
    price = Money.from_cents(draw(st.integers(min_value=0, max_value=50_000)))
    subtotal = (price * quantity).quantize()
    discount_cents = draw(st.integers(min_value=0, max_value=subtotal.cents))
    return OrderLine(
        sku=draw(st.from_regex(r"[A-Z]{2,5}-[0-9]{1,4}", fullmatch=True)),
        name=draw(greek_text),
        quantity=quantity,
        unit=draw(st.sampled_from(SaleUnit)),
        unit_price=price,
        vat_category=draw(st.sampled_from(VatCategory)),
        discount=Money.from_cents(discount_cents),
    )


@st.composite
def orders(draw: st.DrawFn) -> Order:
    lines = draw(st.lists(order_lines(), min_size=1, max_size=6))
    shipping = Money.from_cents(draw(st.integers(min_value=0, max_value=2_000)))
    ceiling = sum((line.gross for line in lines), Money.zero()) + shipping
    discount = Money.from_cents(draw(st.integers(min_value=0, max_value=ceiling.cents)))
    return Order(
        id=draw(st.from_regex(r"[a-z0-9_-]{1,20}", fullmatch=True)),
        customer=make_customer(first_name=draw(greek_text)),
        lines=lines,
        shipping_fee=shipping,
        shipping_vat_category=draw(st.sampled_from(VatCategory)),
        discount=discount,
        created_at=FIXED_TIME,
    )
