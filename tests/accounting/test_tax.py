"""Greek VAT mapping and invoice lines: pure, no vendor involved."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.accounting.conftest import GREEK_XERO_CODES
from tests.models.factories import make_customer, make_line, make_order, orders

from dixis_integrations.accounting.tax import (
    LineKind,
    TaxCodeMap,
    TenantTaxCode,
    check_order,
    check_tenant_codes,
    codes_from_config,
    draft_invoice,
    invoice_lines,
    lean_lines,
    tax_plan,
)
from dixis_integrations.errors import ConfigurationError, InvalidInput
from dixis_integrations.models import Money, Order, VatCategory

CODES = TaxCodeMap(codes=GREEK_XERO_CODES)
TENANT_CODES = [
    TenantTaxCode("TAX001", Decimal(24)),
    TenantTaxCode("TAX002", Decimal(13)),
    TenantTaxCode("TAX003", Decimal("6.0000")),
    TenantTaxCode("TAX004", Decimal(17)),
    TenantTaxCode("TAX005", Decimal(9)),
    TenantTaxCode("TAX006", Decimal(4)),
    TenantTaxCode("ZERORATEDOUTPUT", Decimal(0)),
    TenantTaxCode("EXEMPTOUTPUT", Decimal(0)),
]


def test_unmapped_category_error_names_category_and_tenant() -> None:
    codes = TaxCodeMap(codes={VatCategory.STANDARD: "TAX001"})
    with pytest.raises(InvalidInput) as info:
        codes.code_for(VatCategory.REDUCED, tenant="farm-a", vendor="xero")
    assert "'reduced'" in str(info.value)
    assert "'farm-a'" in str(info.value)
    assert info.value.errors[0].code == "unmapped_vat_category"


def test_tenant_codes_accept_the_greek_rates() -> None:
    check_tenant_codes(CODES, TENANT_CODES, tenant="t", vendor="xero")


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (TENANT_CODES[1:], "'TAX001' for VAT category 'standard' does not exist at tenant 't'"),
        (
            [TenantTaxCode("TAX001", Decimal(23)), *TENANT_CODES[1:]],
            "'TAX001' is 23% at tenant 't' but VAT category 'standard' is 24%",
        ),
        (
            [TenantTaxCode("TAX001", Decimal(24), active=False), *TENANT_CODES[1:]],
            "'TAX001' for VAT category 'standard' is not active at tenant 't'",
        ),
    ],
)
def test_tenant_codes_refuse_missing_inactive_or_wrong_rate(
    codes: list[TenantTaxCode], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        check_tenant_codes(CODES, codes, tenant="t", vendor="xero")
    assert message in str(info.value)
    assert info.value.key == "tax_codes.standard"


def test_codes_from_config_reads_category_names_and_refuses_unknown() -> None:
    assert codes_from_config({"reduced": "TAX002"}).codes == {VatCategory.REDUCED: "TAX002"}
    with pytest.raises(ConfigurationError):
        codes_from_config({"luxury": "X"})


def test_lines_cover_items_shipping_and_discount_per_category() -> None:
    order = make_order(
        lines=[
            make_line(unit_price=Money.of("12.40"), vat_category=VatCategory.REDUCED),
            make_line(sku="WINE", unit_price=Money.of("10.00"), vat_category=VatCategory.STANDARD),
        ],
        shipping_fee=Money.of("3.00"),
        discount=Money.of("2.54"),
    )
    lines = invoice_lines(order)
    assert [line.kind for line in lines] == [
        LineKind.ITEM,
        LineKind.ITEM,
        LineKind.SHIPPING,
        LineKind.DISCOUNT,
        LineKind.DISCOUNT,
    ]
    # Gross per category before the discount: standard 13.00, reduced 12.40 -> 25.40.
    discounts = {line.category: line.gross for line in lines if line.kind is LineKind.DISCOUNT}
    assert discounts == {
        VatCategory.STANDARD: Money.of("-1.30"),
        VatCategory.REDUCED: Money.of("-1.24"),
    }
    assert lines[0].vat == Money.of("1.43")  # 12.40 * 13 / 113
    assert sum((line.gross for line in lines), Money.zero()) == order.total


@settings(max_examples=200, deadline=None)
@given(orders())
def test_lines_add_up_to_the_order_totals_to_the_cent(order: Order) -> None:
    lines = invoice_lines(order)
    totals = order.totals()
    assert sum((line.gross for line in lines), Money.zero()) == totals.gross
    assert sum((line.vat for line in lines), Money.zero()) == totals.vat
    for category, amounts in totals.by_category.items():
        mine = [line for line in lines if line.category is category]
        assert sum((line.vat for line in mine), Money.zero()) == amounts.vat


def test_check_order_reports_every_problem_at_once() -> None:
    customer = make_customer().model_copy(update={"first_name": None, "last_name": None})
    order = make_order().model_copy(
        update={
            "customer": customer,
            "stated_total": Money.of("99.00"),
            "lines": (make_line(vat_category=VatCategory.ISLAND_REDUCED),),
        }
    )
    codes = TaxCodeMap(codes={VatCategory.REDUCED: "TAX002"})
    with pytest.raises(InvalidInput) as info:
        check_order(
            order,
            codes,
            tenant="farm-a",
            vendor="quickbooks",
            number="X" * 22,
            number_max_length=21,
            number_field="DocNumber",
        )
    paths = {e.path for e in info.value.errors}
    assert paths == {"stated_total", "lines[0].vat_category", "customer.name", "DocNumber"}


@given(
    cents=st.integers(min_value=-(10**9), max_value=10**9),
    weights=st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=4),
)
def test_the_discount_split_on_ints_equals_money_allocate(cents: int, weights: list[int]) -> None:
    from dixis_integrations.accounting.tax import _allocate

    if not any(weights):
        weights = [*weights[:-1], 1]
    discount = Money.from_cents(cents)
    assert _allocate(discount, weights, 2) == [m.amount for m in discount.allocate(weights)]


# -- the bulk path's lean lines equal the careful draft ------------------------------------
@settings(max_examples=150, deadline=None)
@given(orders())
def test_lean_lines_equal_the_careful_draft_line_for_line(order: Order) -> None:
    draft = draft_invoice(order)
    lean = lean_lines(order, tax_plan(CODES))
    assert lean is not None
    lines, gross, vat = lean
    assert (gross, vat) == (draft.gross_amount, draft.vat_amount)
    assert [(x.gross_amount, x.vat_amount) for x in draft.lines] == [(x[6], x[7]) for x in lines]
    assert lines == [
        (
            x.kind, x.description, x.sku, x.quantity, x.unit_amount, x.discount_amount,
            x.gross_amount, x.vat_amount, CODES.codes[x.category],
        )
        for x in draft.lines
    ]  # fmt: skip


def test_lean_lines_leave_every_problem_to_the_careful_path() -> None:
    codes = TaxCodeMap(codes={VatCategory.STANDARD: "TAX001"})
    plan = tax_plan(codes)
    standard = make_order(lines=[make_line(vat_category=VatCategory.STANDARD)])
    assert lean_lines(standard, plan) is not None
    unmapped = make_order(lines=[make_line(vat_category=VatCategory.REDUCED)])
    nameless = standard.model_copy(
        update={
            "customer": make_customer().model_copy(update={"first_name": None, "last_name": None})
        }
    )
    stated = standard.model_copy(update={"stated_total": Money.of("999.00")})
    for order in (unmapped, nameless, stated):
        assert lean_lines(order, plan) is None
        with pytest.raises(InvalidInput):  # the careful path reports it
            check_order(order, codes, tenant="t", vendor="v")
