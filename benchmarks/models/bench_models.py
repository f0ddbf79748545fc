"""How much the domain models' own checks cost, as ratios against plain pydantic.

The baseline models have the same shape and the same JSON input but no validators of
ours (no float refusal, currency, postcode, phone, AFM, discount or total checks), and
are measured in the same run, so the ratio is what the rules of dixis_integrations add.

Run: python benchmarks/models/bench_models.py
"""

from __future__ import annotations

import timeit
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from dixis_integrations.models import Address, Customer, Money, Order, OrderLine


class _PlainMoney(BaseModel):
    amount: Decimal
    currency: str


class _PlainAddress(BaseModel):
    country: str
    name: str
    company: str | None
    street: str
    number: str | None
    city: str
    postcode: str
    region: str | None
    phone: str | None
    mobile: str | None
    email: str | None
    floor: str | None
    notes: str | None


class _PlainCustomer(BaseModel):
    id: str
    email: str
    first_name: str | None
    last_name: str | None
    company: str | None
    phone: str | None
    vat_number: str | None
    billing_address: _PlainAddress | None
    shipping_address: _PlainAddress | None
    consent: dict[str, object]
    acquisition: dict[str, object] | None
    created_at: datetime
    locale: str


class _PlainLine(BaseModel):
    sku: str
    name: str
    quantity: Decimal
    unit: str
    unit_price: _PlainMoney
    vat_category: str
    discount: _PlainMoney


class _PlainOrder(BaseModel):
    id: str
    number: str | None
    currency: str
    shipping_fee: _PlainMoney
    shipping_vat_category: str
    discount: _PlainMoney
    customer: _PlainCustomer
    lines: list[_PlainLine]
    created_at: datetime
    status: str
    shipping_address: _PlainAddress | None
    billing_address: _PlainAddress | None
    payment_method: str
    cod_amount: _PlainMoney | None
    notes: str | None
    stated_total: _PlainMoney | None


def _sample_order() -> Order:
    address = Address(
        name="Μαρία Παπαδοπούλου",
        street="Ερμού",
        number="25",
        city="Αθήνα",
        postcode="105 63",
        phone="210 1234567",
        email="maria@example.gr",
    )
    customer = Customer(
        id="cus_1",
        email="maria@example.gr",
        first_name="Μαρία",
        last_name="Παπαδοπούλου",
        phone="6912345678",
        vat_number="090000045",
        billing_address=address,
    )
    lines = [
        OrderLine(
            sku=f"SKU-{i}",
            name="Ντομάτες Κρήτης",
            quantity="1.250",
            unit="kg",
            unit_price=Money.of("2.99"),
            vat_category="reduced",
            discount=Money.of("0.10") if i % 2 else Money.zero(),
        )
        for i in range(8)
    ]
    return Order(
        id="ord_1",
        customer=customer,
        lines=lines,
        shipping_fee=Money.of("3.50"),
        discount=Money.of("1.00"),
        shipping_address=address,
    )


def _best(stmt: object, number: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number  # type: ignore[arg-type]


def main() -> None:
    money_json = Money.of("12.30").model_dump_json()
    order = _sample_order()
    order_json = order.model_dump_json()
    _PlainOrder.model_validate_json(order_json)  # the baseline accepts the same input

    money_ours = _best(lambda: Money.model_validate_json(money_json), 20_000)
    money_base = _best(lambda: _PlainMoney.model_validate_json(money_json), 20_000)
    order_ours = _best(lambda: Order.model_validate_json(order_json), 500)
    order_base = _best(lambda: _PlainOrder.model_validate_json(order_json), 500)
    totals = _best(lambda: Order.model_validate_json(order_json).totals(), 500)

    print(
        f"Money from JSON:  {money_ours * 1e6:8.2f} us  baseline {money_base * 1e6:8.2f} us"
        f"  ratio {money_ours / money_base:5.2f}"
    )
    print(
        f"Order from JSON:  {order_ours * 1e6:8.2f} us  baseline {order_base * 1e6:8.2f} us"
        f"  ratio {order_ours / order_base:5.2f}   (8 lines, 2 addresses)"
    )
    print(
        f"Order + totals(): {totals * 1e6:8.2f} us  vs our validation alone"
        f"  ratio {totals / order_ours:5.2f}"
    )
    print(f"Orders per second with totals (this machine): {1 / totals:,.0f}")


if __name__ == "__main__":
    main()
