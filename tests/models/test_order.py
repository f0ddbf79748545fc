"""Orders: line arithmetic, one currency per order, exact VAT totals, payments, refunds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from pydantic import ValidationError

from dixis_integrations.errors import ConfigurationError
from dixis_integrations.models import (
    Money,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentMethod,
    Refund,
    SaleUnit,
    VatCategory,
    VatTable,
    vat_from_gross,
)

from .factories import FIXED_TIME, make_line, make_order, orders

EUR = Money.of


def first_loc(info: pytest.ExceptionInfo[ValidationError]) -> tuple[int | str, ...]:
    return info.value.errors()[0]["loc"]


# -- lines -----------------------------------------------------------------------------


def test_weighed_line_rounds_quantity_times_price_half_up() -> None:
    line = make_line(
        quantity="1.250", unit=SaleUnit.KG, unit_price=EUR("2.99"), vat_category="reduced"
    )
    assert line.subtotal == EUR("3.74")  # 3.7375
    assert line.gross == EUR("3.74")
    assert line.vat == EUR("0.43")  # 3.74 * 13 / 113 = 0.4303
    assert line.net == EUR("3.31")


def test_line_discount_reduces_gross_and_vat() -> None:
    line = make_line(quantity=2, unit_price=EUR("12.40"), discount=EUR("1.00"))
    assert line.gross == EUR("23.80")
    assert line.vat == EUR("2.74")  # 23.80 * 13 / 113 = 2.7381
    assert line.net + line.vat == line.gross


def test_line_discount_defaults_to_zero_in_the_price_currency() -> None:
    line = make_line(unit_price=Money.of("5", "USD"))
    assert line.discount == Money.zero("USD")


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"quantity": 0}, ("quantity",)),
        ({"quantity": "-1"}, ("quantity",)),
        ({"quantity": 1.5}, ("quantity",)),
        ({"unit_price": EUR("-1")}, ("unit_price",)),
        ({"unit_price": {"amount": "1", "currency": "eur"}}, ("unit_price", "currency")),
        ({"discount": EUR("-0.01")}, ("discount",)),
        ({"discount": EUR("12.41")}, ("discount",)),
        ({"discount": Money.of("1", "USD")}, ("discount", "currency")),
        ({"sku": " OIL"}, ("sku",)),
        ({"vat_category": "luxury"}, ("vat_category",)),
    ],
)
def test_bad_line_values_are_reported_at_their_field(
    overrides: dict[str, object], loc: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as info:
        make_line(**overrides)
    assert first_loc(info) == loc


def test_line_amounts_with_another_table() -> None:
    table = VatTable.from_mapping({"CY": {"reduced": "5"}})
    amounts = make_line(unit_price=EUR("10.50")).amounts(table, "CY")
    assert amounts.vat == EUR("0.50")
    assert amounts.net == EUR("10.00")


# -- the order -------------------------------------------------------------------------


def _worked_example() -> Order:
    return make_order(
        lines=[
            make_line(
                sku="TOM",
                quantity="1.250",
                unit=SaleUnit.KG,
                unit_price=EUR("2.99"),
                vat_category=VatCategory.REDUCED,
            ),
            make_line(
                sku="OIL",
                quantity=2,
                unit_price=EUR("12.40"),
                discount=EUR("1.00"),
                vat_category=VatCategory.REDUCED,
            ),
            make_line(
                sku="BOOK", quantity=1, unit_price=EUR("10.00"), vat_category="super_reduced"
            ),
        ],
        shipping_fee=EUR("3.50"),
        discount=EUR("2.00"),
    )


def test_totals_of_a_worked_example() -> None:
    # Category gross before the order discount: standard (shipping) 3.50,
    # reduced 3.74 + 23.80 = 27.54, super-reduced 10.00; 41.04 in all. The 2.00 discount
    # splits 350:2754:1000 -> 17.06, 134.21, 48.73 cents -> 0.17, 1.34, 0.49 (the spare
    # cent goes to the largest remainder). Each share's VAT is taken off its category.
    totals = _worked_example().totals()
    standard = totals.by_category[VatCategory.STANDARD]
    reduced = totals.by_category[VatCategory.REDUCED]
    super_reduced = totals.by_category[VatCategory.SUPER_REDUCED]
    assert (standard.gross, standard.vat, standard.net) == (EUR("3.33"), EUR("0.65"), EUR("2.68"))
    assert (reduced.gross, reduced.vat, reduced.net) == (EUR("26.20"), EUR("3.02"), EUR("23.18"))
    assert (super_reduced.gross, super_reduced.vat, super_reduced.net) == (
        EUR("9.51"),
        EUR("0.54"),
        EUR("8.97"),
    )
    assert (totals.gross, totals.vat, totals.net) == (EUR("39.04"), EUR("4.21"), EUR("34.83"))
    assert totals.lines_gross == EUR("37.54")
    assert totals.shipping == EUR("3.50")
    assert totals.discount == EUR("2.00")
    assert set(totals.by_category) == {
        VatCategory.STANDARD,
        VatCategory.REDUCED,
        VatCategory.SUPER_REDUCED,
    }


def test_totals_without_discount_are_sums_of_line_vat() -> None:
    order = make_order(
        lines=[make_line(), make_line(sku="TOM", unit_price=EUR("3.10"), vat_category="reduced")],
        shipping_fee=EUR("2.48"),
    )
    totals = order.totals()
    assert totals.vat == sum(line.vat for line in order.lines) + EUR("0.48")
    assert totals.gross == EUR("17.98")
    assert order.total == totals.gross


def test_totals_are_cached_but_callers_cannot_alter_the_cache() -> None:
    order = make_order()
    first = order.totals()
    first.by_category.clear()
    assert order.totals().by_category[VatCategory.REDUCED].gross == EUR("12.40")
    assert order.totals() == order.totals()
    assert order == make_order()  # caching does not change equality


def test_totals_with_a_configured_country() -> None:
    table = VatTable.from_mapping({"CY": {"reduced": "5", "standard": "19"}})
    order = make_order(lines=[make_line(unit_price=EUR("10.50"))], shipping_fee=EUR("1.19"))
    totals = order.totals(table, "CY")
    assert totals.vat == EUR("0.69")  # 0.50 + 0.19
    with pytest.raises(ConfigurationError):
        make_order(lines=[make_line(vat_category="super_reduced")]).totals(table, "CY")


def test_order_fields_default_to_the_order_currency() -> None:
    order = make_order(currency="USD", lines=[make_line(unit_price=Money.of("5", "USD"))])
    assert order.shipping_fee == Money.zero("USD")
    assert order.discount == Money.zero("USD")
    assert order.status is OrderStatus.PENDING
    assert order.totals().gross == Money.of("5.00", "USD")


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"lines": []}, ("lines",)),
        ({"id": ""}, ("id",)),
        ({"id": "x" * 65}, ("id",)),
        ({"currency": "USD"}, ("lines", 0, "unit_price", "currency")),
        ({"shipping_fee": Money.of("1", "USD")}, ("shipping_fee", "currency")),
        ({"shipping_fee": EUR("-1")}, ("shipping_fee",)),
        ({"discount": Money.of("1", "USD")}, ("discount", "currency")),
        ({"discount": EUR("12.41")}, ("discount",)),
        ({"created_at": datetime(2026, 1, 1)}, ("created_at",)),
        ({"status": "shipped"}, ("status",)),
        ({"cod_amount": EUR("12.40")}, ("cod_amount",)),  # payment method is not COD
        ({"lines": [make_line(), {"sku": "X"}]}, ("lines", 1, "name")),
        ({"shipping_address": {"name": "x"}}, ("shipping_address", "street")),
    ],
)
def test_bad_order_values_are_reported_at_their_path(
    overrides: dict[str, object], loc: tuple[str | int, ...]
) -> None:
    with pytest.raises(ValidationError) as info:
        make_order(**overrides)
    assert first_loc(info) == loc


def test_second_line_in_another_currency_is_reported_at_that_line() -> None:
    with pytest.raises(ValidationError) as info:
        make_order(lines=[make_line(), make_line(unit_price=Money.of("1", "USD"))])
    assert first_loc(info) == ("lines", 1, "unit_price", "currency")


def test_cash_on_delivery_amount() -> None:
    order = make_order(payment_method=PaymentMethod.COD, cod_amount=EUR("12.40"))
    assert order.cod_amount == EUR("12.40")
    with pytest.raises(ValidationError) as info:
        make_order(payment_method="cod", cod_amount=EUR("0"))
    assert first_loc(info) == ("cod_amount",)


def test_stated_total_must_match_the_computed_total_to_the_cent() -> None:
    assert _worked_example().model_copy().totals().gross == EUR("39.04")
    order = make_order(
        lines=_worked_example().lines,
        shipping_fee=EUR("3.50"),
        discount=EUR("2.00"),
        stated_total=EUR("39.04"),
    )
    assert order.stated_total == EUR("39.04")
    with pytest.raises(ValidationError) as info:
        make_order(
            lines=_worked_example().lines,
            shipping_fee=EUR("3.50"),
            discount=EUR("2.00"),
            stated_total=EUR("39.05"),
        )
    error = info.value.errors()[0]
    assert error["loc"] == ("stated_total",)
    assert "39.05 EUR" in error["msg"]
    assert "39.04 EUR" in error["msg"]


def test_stated_total_in_another_currency_is_reported_at_its_currency() -> None:
    with pytest.raises(ValidationError) as info:
        make_order(stated_total=Money.of("12.40", "USD"))
    assert first_loc(info) == ("stated_total", "currency")


def test_order_json_round_trip_of_the_worked_example() -> None:
    order = _worked_example()
    again = Order.model_validate_json(order.model_dump_json())
    assert again == order
    assert again.totals() == order.totals()


@settings(max_examples=75)
@given(orders())
def test_breakdown_adds_up_to_the_totals_exactly(order: Order) -> None:
    totals = order.totals()
    parts = list(totals.by_category.values())
    assert sum((p.gross for p in parts), Money.zero()) == totals.gross
    assert sum((p.vat for p in parts), Money.zero()) == totals.vat
    assert sum((p.net for p in parts), Money.zero()) == totals.net
    assert totals.net + totals.vat == totals.gross
    for part in parts:
        assert part.net + part.vat == part.gross
        assert part.gross >= Money.zero()
    expected_gross = sum(line.gross for line in order.lines) + order.shipping_fee - order.discount
    assert totals.gross == expected_gross
    assert totals.gross.cents == totals.gross.quantize().cents


@settings(max_examples=75)
@given(orders())
def test_without_order_discount_vat_is_the_sum_of_per_line_vat(order: Order) -> None:
    order = order.model_copy(update={"discount": Money.zero()})
    shipping_vat = vat_from_gross(
        order.shipping_fee, VatTable.greece().rate(order.shipping_vat_category)
    )
    assert order.totals().vat == sum(line.vat for line in order.lines) + shipping_vat


@settings(max_examples=50)
@given(orders())
def test_order_json_round_trip(order: Order) -> None:
    assert Order.model_validate_json(order.model_dump_json()) == order


# -- payments and refunds ----------------------------------------------------------------


def test_payment_net_amount_subtracts_the_processor_fee() -> None:
    payment = Payment(
        id="pay_1",
        order_id="ord_1",
        amount=EUR("39.04"),
        method=PaymentMethod.CARD,
        paid_at=FIXED_TIME,
        provider="stripe",
        provider_reference="pi_3Nx",
        fee=EUR("0.80"),
        payout_id="po_1",
    )
    assert payment.net_amount == EUR("38.24")
    assert Payment.model_validate_json(payment.model_dump_json()) == payment


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"amount": EUR("0")}, ("amount",)),
        ({"amount": EUR("-5")}, ("amount",)),
        ({"fee": Money.of("0.80", "USD")}, ("fee", "currency")),
        ({"fee": EUR("-0.01")}, ("fee",)),
        ({"paid_at": "2026-01-01T10:00:00"}, ("paid_at",)),
        ({"method": "bitcoin"}, ("method",)),
    ],
)
def test_bad_payment_values_are_reported_at_their_field(
    overrides: dict[str, object], loc: tuple[str, ...]
) -> None:
    data: dict[str, object] = {
        "id": "pay_1",
        "order_id": "ord_1",
        "amount": EUR("10"),
        "method": "card",
        "paid_at": FIXED_TIME,
    }
    data.update(overrides)
    with pytest.raises(ValidationError) as info:
        Payment(**data)
    assert first_loc(info) == loc


def test_refund_with_lines_round_trips_and_checks_quantities() -> None:
    refund = Refund(
        id="re_1",
        order_id="ord_1",
        amount=EUR("3.74"),
        reason="χαλασμένες ντομάτες",
        created_at=FIXED_TIME,
        lines=[{"sku": "TOM", "quantity": "1.250"}],
    )
    assert refund.lines is not None
    assert refund.lines[0].quantity == Decimal("1.250")
    assert Refund.model_validate_json(refund.model_dump_json()) == refund
    with pytest.raises(ValidationError) as info:
        Refund(id="re_2", order_id="ord_1", amount=EUR("1"), lines=[{"sku": "TOM", "quantity": 0}])
    assert first_loc(info) == ("lines", 0, "quantity")
    with pytest.raises(ValidationError) as info:
        Refund(id="re_3", order_id="ord_1", amount=EUR("0"))
    assert first_loc(info) == ("amount",)


def test_order_line_is_hashable_and_frozen() -> None:
    line = make_line()
    assert hash(line) == hash(make_line())
    with pytest.raises(ValidationError):
        line.quantity = Decimal(2)  # type: ignore[misc]
    assert isinstance(make_order().lines, tuple)
    assert isinstance(make_order().lines[0], OrderLine)


def test_model_copy_with_update_recomputes_cached_amounts() -> None:
    line = make_line()
    assert line.gross == EUR("12.40")
    assert line.model_copy(update={"quantity": Decimal(3)}).gross == EUR("37.20")
    order = make_order()
    assert order.totals().gross == EUR("12.40")
    assert order.model_copy(update={"shipping_fee": EUR("5")}).totals().gross == EUR("17.40")
    assert order.totals().gross == EUR("12.40")


@pytest.mark.parametrize(
    ("build", "loc"),
    [
        (lambda: make_order(shipping_fee=EUR("3.505")), ("shipping_fee",)),
        (lambda: make_order(discount=EUR("0.001")), ("discount",)),
        (lambda: make_line(discount=EUR("0.005")), ("discount",)),
        (
            lambda: make_order(payment_method="cod", cod_amount=EUR("12.399")),
            ("cod_amount",),
        ),
        (
            lambda: Refund(id="r", order_id="o", amount=EUR("1.001")),
            ("amount",),
        ),
    ],
)
def test_amounts_added_to_totals_must_be_whole_cents(
    build: Callable[[], object], loc: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert first_loc(info) == loc
    assert "minor units" in info.value.errors()[0]["msg"]


def test_unit_price_may_have_sub_cent_precision() -> None:
    line = make_line(quantity="0.500", unit_price=EUR("2.995"))
    assert line.gross == EUR("1.50")  # 1.4975 rounds half up


def test_yen_orders_total_in_whole_yen() -> None:
    yen = Money.of("1000", "JPY")
    order = make_order(
        currency="JPY",
        lines=[make_line(unit_price=yen, quantity="1.5")],
        discount=Money.of("100", "JPY"),
    )
    totals = order.totals()
    assert totals.gross == Money.of("1400", "JPY")
    assert totals.vat == Money.of("161", "JPY")  # 1500 * 13/113 = 172.57 -> 173, less 11.5 -> 12


def test_refund_lines_accept_sku_quantity_pairs() -> None:
    refund = Refund(
        id="re_5",
        order_id="ord_1",
        amount=EUR("5.00"),
        lines=[("TOM", "0.500"), ["OIL", 1]],
    )
    assert refund.lines is not None
    assert [(line.sku, line.quantity) for line in refund.lines] == [
        ("TOM", Decimal("0.500")),
        ("OIL", Decimal(1)),
    ]
    with pytest.raises(ValidationError) as info:
        Refund(id="r", order_id="o", amount=EUR("1"), lines=[("TOM", 0)])
    assert first_loc(info) == ("lines", 0, "quantity")


def test_line_subtotal_is_exact_even_beyond_28_significant_digits() -> None:
    # In the default 28-digit context this product rounds to ...749.03 (double rounding).
    line = make_line(unit_price=EUR("38185576470620.2223044082"), quantity="73089976031.838056")
    assert line.subtotal.amount == Decimal("2790982868999551275407749.02")
    assert make_order(lines=[line]).totals().gross == line.gross


@pytest.mark.parametrize("quantity", ["1E+12", "1000000000000", "0.0000001"])
def test_quantity_outside_the_exact_range_is_refused_at_quantity(quantity: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_line(quantity=quantity)
    assert first_loc(info) == ("quantity",)
