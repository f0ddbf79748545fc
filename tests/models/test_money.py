"""Money: exact construction, arithmetic within a currency, rounding and allocation."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dixis_integrations.errors import InvalidInput
from dixis_integrations.models import CurrencyMismatch, Money, minor_units

from .factories import cents, money


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12.30", Decimal("12.30")), (12, Decimal(12)), (Decimal("0.005"), Decimal("0.005"))],
)
def test_money_accepts_strings_ints_and_decimals(raw: object, expected: Decimal) -> None:
    amount = Money(amount=raw)
    assert amount.amount == expected
    assert amount.currency == "EUR"


def test_money_refuses_float_with_a_clear_error_at_amount() -> None:
    with pytest.raises(ValidationError) as info:
        Money(amount=12.3)
    error = info.value.errors()[0]
    assert error["loc"] == ("amount",)
    assert "float" in error["msg"]


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "sNaN", Decimal("NaN"), True])
def test_money_refuses_non_finite_and_boolean_amounts(raw: object) -> None:
    with pytest.raises(ValidationError) as info:
        Money(amount=raw)
    assert info.value.errors()[0]["loc"] == ("amount",)


@pytest.mark.parametrize("currency", ["eur", "EURO", "E1R", "", "€"])
def test_money_refuses_currency_that_is_not_three_upper_letters(currency: str) -> None:
    with pytest.raises(ValidationError) as info:
        Money.of("1", currency)
    assert info.value.errors()[0]["loc"] == ("currency",)


def test_money_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError) as info:
        Money(amount="1", currency="EUR", cents=100)  # type: ignore[call-arg]
    assert info.value.errors()[0]["loc"] == ("cents",)


def test_money_is_frozen() -> None:
    amount = Money.of("1")
    with pytest.raises(ValidationError):
        amount.amount = Decimal(2)  # type: ignore[misc]


def test_money_serialises_amount_as_a_string() -> None:
    assert Money.of("12.30").model_dump_json() == '{"amount":"12.30","currency":"EUR"}'
    assert Money.of("1E+3").model_dump_json() == '{"amount":"1000","currency":"EUR"}'
    assert Money.of("12.30").model_dump() == {"amount": Decimal("12.30"), "currency": "EUR"}


def test_money_json_refuses_float_numbers_but_takes_integers() -> None:
    with pytest.raises(ValidationError) as info:
        Money.model_validate_json('{"amount": 12.3, "currency": "EUR"}')
    assert info.value.errors()[0]["loc"] == ("amount",)
    assert Money.model_validate_json('{"amount": 12}').amount == Decimal(12)


def test_str_shows_amount_and_currency() -> None:
    assert str(Money.of("12.30", "EUR")) == "12.30 EUR"
    assert str(Money.of("-0.5", "USD")) == "-0.5 USD"


def test_zero_of_a_currency() -> None:
    zero = Money.zero("JPY")
    assert zero.is_zero
    assert zero.currency == "JPY"
    assert not Money.of("0.01").is_zero
    assert Money.of("-0.00").is_zero


def test_add_and_subtract_within_a_currency() -> None:
    assert Money.of("12.30") + Money.of("0.70") == Money.of("13.00")
    assert Money.of("12.30") - Money.of("13") == Money.of("-0.70")


def test_mixing_currencies_raises_currency_mismatch() -> None:
    with pytest.raises(CurrencyMismatch) as info:
        Money.of("1", "EUR") + Money.of("1", "USD")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, InvalidInput)
    assert "EUR" in str(info.value)
    assert "USD" in str(info.value)
    with pytest.raises(CurrencyMismatch):
        Money.of("1", "EUR") - Money.of("1", "USD")
    with pytest.raises(CurrencyMismatch):
        assert Money.of("1", "EUR") < Money.of("2", "USD")


def test_adding_a_plain_number_is_refused() -> None:
    with pytest.raises(TypeError):
        Money.of("1") + 1
    with pytest.raises(TypeError):
        Decimal(1) + Money.of("1")


def test_sum_of_money_starts_from_zero() -> None:
    parts = [Money.of("0.10"), Money.of("0.20"), Money.of("0.30")]
    assert sum(parts) == Money.of("0.60")


def test_multiply_by_int_and_decimal_but_not_float() -> None:
    assert Money.of("2.99") * Decimal("1.250") == Money.of("3.7375")
    assert 3 * Money.of("1.10") == Money.of("3.30")
    with pytest.raises(TypeError):
        Money.of("1") * 1.5
    with pytest.raises(TypeError):
        Money.of("1") * True


def test_negation_and_abs() -> None:
    assert -Money.of("1.50") == Money.of("-1.50")
    assert abs(Money.of("-1.50")) == Money.of("1.50")


def test_comparisons_within_a_currency() -> None:
    small, big = Money.of("1.00"), Money.of("1.01")
    assert small < big
    assert small <= Money.of("1")
    assert big > small
    assert big >= big
    assert max([small, big]) == big


@pytest.mark.parametrize(
    ("amount", "currency", "rounding", "expected"),
    [
        ("0.125", "EUR", None, "0.13"),
        ("-0.125", "EUR", None, "-0.13"),
        ("0.125", "EUR", ROUND_HALF_EVEN, "0.12"),
        ("0.135", "EUR", ROUND_HALF_EVEN, "0.14"),
        ("1234.5", "JPY", None, "1235"),
        ("1.2345", "BHD", None, "1.235"),
        ("7", "EUR", None, "7.00"),
    ],
)
def test_quantize_rounds_to_the_currency_minor_unit(
    amount: str, currency: str, rounding: str | None, expected: str
) -> None:
    money_ = Money.of(amount, currency)
    rounded = money_.quantize() if rounding is None else money_.quantize(rounding)
    assert str(rounded.amount) == expected


def test_minor_units_per_currency() -> None:
    assert minor_units("EUR") == 2
    assert minor_units("JPY") == 0
    assert minor_units("KWD") == 3


def test_cents_and_from_cents() -> None:
    assert Money.of("12.30").cents == 1230
    assert Money.of("-0.05").cents == -5
    assert Money.of("500", "JPY").cents == 500
    assert Money.from_cents(1230) == Money.of("12.30")
    assert Money.from_cents(1235, "BHD") == Money.of("1.235", "BHD")


def test_cents_refuses_sub_cent_amounts_instead_of_rounding_silently() -> None:
    with pytest.raises(ValueError, match="quantize"):
        _ = Money.of("0.125").cents


def test_from_cents_refuses_non_integers() -> None:
    with pytest.raises(TypeError):
        Money.from_cents("100")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.from_cents(1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "weights", "expected"),
    [
        ("10.00", [1, 1, 1], ["3.34", "3.33", "3.33"]),
        ("0.05", [1, 1], ["0.03", "0.02"]),
        ("100", [Decimal("0.7"), Decimal("0.3")], ["70.00", "30.00"]),
        ("1.00", [1, 0, 3], ["0.25", "0.00", "0.75"]),
        ("-10.00", [1, 1, 1], ["-3.34", "-3.33", "-3.33"]),
        ("0.10", [1, 2, 3, 4], ["0.01", "0.02", "0.03", "0.04"]),
    ],
)
def test_allocate_splits_by_largest_remainder(
    amount: str, weights: list[int | Decimal], expected: list[str]
) -> None:
    parts = Money.of(amount).allocate(weights)
    assert [str(p.amount) for p in parts] == expected


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1], [1.5, 1]])
def test_allocate_refuses_bad_weights(weights: list[object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by cause
        Money.of("1").allocate(weights)  # type: ignore[arg-type]


@given(money, money, money)
def test_addition_is_associative_and_commutative(a: Money, b: Money, c: Money) -> None:
    assert (a + b) + c == a + (b + c)
    assert a + b == b + a
    assert (a + b) - b == a


@given(cents)
def test_cents_round_trip(value: int) -> None:
    assert Money.from_cents(value).cents == value
    assert Money.of(Money.from_cents(value).amount).cents == value


@given(money, st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12))
def test_allocate_sums_back_exactly_and_stays_within_a_cent(
    amount: Money, weights: list[int]
) -> None:
    if sum(weights) == 0:
        weights = [*weights, 1]
    parts = amount.allocate(weights)
    assert sum(parts) == amount
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(amount.cents) * weight / total
        assert abs(part.cents - exact) < 1


@given(money)
def test_json_round_trip(amount: Money) -> None:
    assert Money.model_validate_json(amount.model_dump_json()) == amount


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=4))
def test_quantize_is_within_half_a_cent(value: Decimal) -> None:
    rounded = Money.of(value).quantize()
    assert abs(rounded.amount - value) <= Decimal("0.005")
    assert rounded.amount.as_tuple().exponent == -2


@pytest.mark.parametrize("raw", ["1E+15", "-1000000000000000", "0.00000000001"])
def test_money_refuses_amounts_outside_the_exact_range(raw: str) -> None:
    with pytest.raises(ValidationError) as info:
        Money.of(raw)
    assert info.value.errors()[0]["loc"] == ("amount",)


def test_money_accepts_the_edges_of_the_exact_range() -> None:
    assert Money.of("999999999999999.99").quantize().cents == 99999999999999999
    assert Money.of("0.0000000001").amount == Decimal("1E-10")
    assert Money.of("0E-20").is_zero
