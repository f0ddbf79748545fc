"""VAT: categories and rates, configured tables, and per-line VAT extraction."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dixis_integrations.errors import ConfigurationError
from dixis_integrations.models import (
    Money,
    VatCategory,
    VatRate,
    VatTable,
    net_from_gross,
    vat_from_gross,
    vat_from_net,
)

from .factories import non_negative_cents


@pytest.mark.parametrize(
    ("category", "rate"),
    [
        (VatCategory.STANDARD, 24),
        (VatCategory.REDUCED, 13),
        (VatCategory.SUPER_REDUCED, 6),
        (VatCategory.ISLAND_STANDARD, 17),
        (VatCategory.ISLAND_REDUCED, 9),
        (VatCategory.ISLAND_SUPER_REDUCED, 4),
        (VatCategory.ZERO, 0),
        (VatCategory.EXEMPT, 0),
    ],
)
def test_greek_table_has_the_statutory_rates(category: VatCategory, rate: int) -> None:
    assert VatTable.greece().rate(category) == Decimal(rate)
    assert VatTable.greece().rate(category.value, "GR") == Decimal(rate)


def test_exempt_is_distinct_from_zero_rated() -> None:
    table = VatTable.greece()
    assert table.vat_rate(VatCategory.EXEMPT).exempt
    assert not table.vat_rate(VatCategory.ZERO).exempt


def test_unknown_country_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        VatTable.greece().rate(VatCategory.STANDARD, "CY")
    assert info.value.key == "vat.CY"


def test_unknown_category_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        VatTable.greece().rate("luxury")


def test_from_mapping_configures_another_country() -> None:
    table = VatTable.from_mapping({"CY": {"standard": "19", "REDUCED": 9, "zero": Decimal(0)}})
    assert table.rate(VatCategory.STANDARD, "CY") == Decimal(19)
    assert table.rate(VatCategory.REDUCED, "CY") == Decimal(9)
    assert table.countries() == frozenset({"CY"})
    with pytest.raises(ConfigurationError) as info:
        table.rate(VatCategory.SUPER_REDUCED, "CY")
    assert info.value.key == "vat.CY.super_reduced"


def test_from_mapping_can_extend_the_greek_table() -> None:
    table = VatTable.from_mapping({"CY": {"standard": "19"}}, base=VatTable.greece())
    assert table.countries() == frozenset({"GR", "CY"})
    assert table.rate(VatCategory.REDUCED) == Decimal(13)
    assert VatTable.greece().countries() == frozenset({"GR"})  # the base is untouched


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"CY": {"luxury": "30"}}, "CY.luxury"),
        ({"CY": {"standard": 19.0}}, "CY.standard"),
        ({"CY": {"standard": "abc"}}, "CY.standard"),
        ({"CY": {"standard": "100"}}, "CY.standard"),
        ({"CY": {"standard": "-1"}}, "CY.standard"),
        ({"CYP": {"standard": "19"}}, "CYP"),
    ],
)
def test_from_mapping_reports_the_bad_key(mapping: dict[str, dict[str, object]], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        VatTable.from_mapping(mapping)  # type: ignore[arg-type]
    assert info.value.key == key


def test_vat_rate_refuses_out_of_range_percent_at_rate() -> None:
    with pytest.raises(ValidationError) as info:
        VatRate(category=VatCategory.STANDARD, rate=Decimal(120))
    assert info.value.errors()[0]["loc"] == ("rate",)
    assert VatRate(category=VatCategory.STANDARD, rate=Decimal(24)).fraction == Decimal("0.24")


@pytest.mark.parametrize(
    ("gross", "rate", "vat"),
    [
        ("12.40", 24, "2.40"),  # 12.40 * 24 / 124 = 2.40 exactly
        ("1.00", 13, "0.12"),  # 0.11504... rounds up
        ("10.00", 6, "0.57"),  # 0.56603...
        ("100.00", 17, "14.53"),  # 14.52991...
        ("5.00", 0, "0.00"),
        ("-12.40", 24, "-2.40"),  # refunds: symmetric
    ],
)
def test_vat_from_gross_hand_picked(gross: str, rate: int, vat: str) -> None:
    assert vat_from_gross(Money.of(gross), Decimal(rate)) == Money.of(vat)
    assert net_from_gross(Money.of(gross), rate) == Money.of(gross) - Money.of(vat)


def test_vat_rounding_is_half_up_by_default_and_selectable() -> None:
    # 0.50 * 13% = 0.065: a tie.
    assert vat_from_net(Money.of("0.50"), 13) == Money.of("0.07")
    assert vat_from_net(Money.of("0.50"), 13, rounding=ROUND_HALF_EVEN) == Money.of("0.06")


def test_vat_accepts_a_vat_rate_object() -> None:
    rate = VatTable.greece().vat_rate(VatCategory.STANDARD)
    assert vat_from_net(Money.of("10.00"), rate) == Money.of("2.40")


def test_vat_refuses_float_rates() -> None:
    with pytest.raises(TypeError):
        vat_from_gross(Money.of("1"), 24.0)  # type: ignore[arg-type]


@given(non_negative_cents, st.sampled_from(VatCategory))
def test_net_plus_vat_is_gross_for_every_category(gross_cents: int, category: VatCategory) -> None:
    gross = Money.from_cents(gross_cents)
    rate = VatTable.greece().rate(category)
    vat = vat_from_gross(gross, rate)
    net = net_from_gross(gross, rate)
    assert net + vat == gross
    assert Money.zero() <= vat <= gross
    # The rounded VAT is within half a cent of the exact value.
    exact = gross.amount * rate / (100 + rate)
    assert abs(vat.amount - exact) <= Decimal("0.005")


@given(non_negative_cents, st.sampled_from(VatCategory))
def test_vat_from_net_then_back_from_gross_is_within_a_cent(
    net_cents: int, category: VatCategory
) -> None:
    net = Money.from_cents(net_cents)
    rate = VatTable.greece().rate(category)
    vat = vat_from_net(net, rate)
    assert abs((vat_from_gross(net + vat, rate) - vat).cents) <= 1


def test_tables_are_read_only_and_compare_by_content() -> None:
    greek = VatTable.greece()
    with pytest.raises(TypeError):
        greek.rates["GR"][VatCategory.STANDARD] = Decimal(1)  # type: ignore[index]
    with pytest.raises(TypeError):
        greek.rates["CY"] = {}  # type: ignore[index]
    assert greek.rate(VatCategory.STANDARD) == Decimal(24)
    same = VatTable({"GR": {c.value: str(r) for c, r in greek.rates["GR"].items()}})
    assert same == greek
    assert hash(same) == hash(greek)
    assert VatTable.from_mapping({"gr": {"standard": "23"}}, base=greek) != greek


def test_from_mapping_replaces_a_base_country_whole() -> None:
    table = VatTable.from_mapping({"GR": {"standard": "23"}}, base=VatTable.greece())
    assert table.rate(VatCategory.STANDARD) == Decimal(23)
    with pytest.raises(ConfigurationError):
        table.rate(VatCategory.REDUCED)
