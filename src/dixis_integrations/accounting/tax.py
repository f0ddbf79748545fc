"""Greek VAT for ledgers: our VAT categories -> a tenant's tax codes, and invoice lines.

Pure functions only. :class:`TaxCodeMap` maps each :class:`VatCategory` to the code a
tenant uses (Xero ``TaxType``, QBO ``TaxCodeRef``); :func:`check_tenant_codes` checks it
against what the tenant has; :func:`invoice_lines` turns an order into lines whose gross
and VAT add up, to the cent, to ``Order.totals()``. An unmapped category is refused
before anything is sent, naming the category and the tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from dixis_integrations.errors import ConfigurationError, FieldError, InvalidInput
from dixis_integrations.models.money import Money
from dixis_integrations.models.order import Order
from dixis_integrations.models.tax import VatCategory, VatTable, vat_from_gross

__all__ = [
    "InvoiceLine",
    "LineKind",
    "TaxCodeMap",
    "TenantTaxCode",
    "check_order",
    "check_tenant_codes",
    "codes_from_config",
    "invoice_lines",
]


class TaxCodeMap(BaseModel):
    """Our VAT categories -> one tenant's tax codes: ``{"reduced": "TAX002", ...}``.

    Only the categories a tenant sells in need a code; using another one is refused with
    :class:`InvalidInput` before any call.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    codes: dict[VatCategory, str]

    def code_for(
        self,
        category: VatCategory,
        *,
        tenant: str,
        vendor: str,
        loc: tuple[str | int, ...] = ("vat_category",),
    ) -> str:
        """The tenant's code for ``category``.

        Raises:
            InvalidInput: the category has no code for this tenant (names both).
        """
        code = self.codes.get(category)
        if code is None:
            raise InvalidInput(
                "unmapped VAT category",
                errors=[_unmapped(category, tenant, loc)],
                vendor=vendor,
            )
        return code

    def category_of(self, code: str) -> VatCategory | None:
        """The first category mapped to ``code`` (for reading vendor records back)."""
        for category, mapped in self.codes.items():
            if mapped == code:
                return category
        return None


def _unmapped(category: VatCategory, tenant: str, loc: tuple[str | int, ...]) -> FieldError:
    return FieldError(
        loc,
        f"VAT category {category.value!r} has no tax code for tenant {tenant!r}",
        code="unmapped_vat_category",
    )


@dataclass(frozen=True, slots=True)
class TenantTaxCode:
    """A tax code as the tenant has it: its code, its rate in percent, whether active."""

    code: str
    rate: Decimal
    name: str = ""
    active: bool = True


def check_tenant_codes(
    mapping: TaxCodeMap,
    tenant_codes: Iterable[TenantTaxCode],
    *,
    tenant: str,
    vendor: str,
    table: VatTable | None = None,
    country: str = "GR",
) -> None:
    """Check that every mapped code exists at the tenant, is active and has our rate.

    Raises:
        ConfigurationError: naming the category, the code and the tenant.
    """
    table = table or VatTable.greece()
    by_code = {c.code: c for c in tenant_codes}
    for category, code in mapping.codes.items():
        key = f"tax_codes.{category.value}"
        found = by_code.get(code)
        if found is None:
            raise ConfigurationError(
                f"tax code {code!r} for VAT category {category.value!r} does not exist "
                f"at tenant {tenant!r}",
                key=key,
                vendor=vendor,
            )
        if not found.active:
            raise ConfigurationError(
                f"tax code {code!r} for VAT category {category.value!r} is not active "
                f"at tenant {tenant!r}",
                key=key,
                vendor=vendor,
            )
        expected = table.rate(category, country)
        if found.rate.compare(expected) != 0:
            raise ConfigurationError(
                f"tax code {code!r} is {found.rate}% at tenant {tenant!r} but VAT category "
                f"{category.value!r} is {expected}%",
                key=key,
                vendor=vendor,
            )


class LineKind(StrEnum):
    """What an invoice line stands for."""

    ITEM = "item"
    SHIPPING = "shipping"
    DISCOUNT = "discount"


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One invoice line, VAT-inclusive: ``gross`` is what the customer pays for it.

    ``gross == round_half_up(quantity * unit_price) - discount`` and ``vat`` is the VAT
    contained in ``gross`` at ``category``'s rate, rounded per line as our totals are.
    Discount lines carry the order discount's share of one category, as a negative line.
    """

    kind: LineKind
    description: str
    sku: str | None
    quantity: Decimal
    unit_price: Money
    discount: Money
    gross: Money
    vat: Money
    category: VatCategory
    source_index: int | None = None

    @property
    def net(self) -> Money:
        """``gross - vat``."""
        return self.gross - self.vat


def invoice_lines(
    order: Order,
    *,
    shipping_description: str = "Shipping",
    discount_description: str = "Discount",
    table: VatTable | None = None,
) -> tuple[InvoiceLine, ...]:
    """The order as invoice lines whose gross and VAT sum to ``order.totals()``.

    Product lines first (in order), then the shipping fee, then one negative discount
    line per VAT category (the order discount spread as :meth:`Order.totals` spreads it).
    """
    table = table or VatTable.greece()
    currency = order.currency
    zero = Money.zero(currency)
    out: list[InvoiceLine] = []
    gross_by_category: dict[VatCategory, Money] = {}
    for index, line in enumerate(order.lines):
        rate = table.rate(line.vat_category)
        out.append(
            InvoiceLine(
                kind=LineKind.ITEM,
                description=line.name,
                sku=line.sku,
                quantity=line.quantity,
                unit_price=line.unit_price,
                discount=line.discount,
                gross=line.gross,
                vat=vat_from_gross(line.gross, rate),
                category=line.vat_category,
                source_index=index,
            )
        )
        gross_by_category[line.vat_category] = (
            gross_by_category.get(line.vat_category, zero) + line.gross
        )
    shipping = order.shipping_fee
    if not shipping.is_zero:
        category = order.shipping_vat_category
        out.append(
            InvoiceLine(
                kind=LineKind.SHIPPING,
                description=shipping_description,
                sku=None,
                quantity=Decimal(1),
                unit_price=shipping,
                discount=zero,
                gross=shipping,
                vat=vat_from_gross(shipping, table.rate(category)),
                category=category,
            )
        )
        gross_by_category[category] = gross_by_category.get(category, zero) + shipping
    if not order.discount.is_zero:
        categories = [c for c in VatCategory if c in gross_by_category]
        shares = order.discount.allocate([gross_by_category[c].cents for c in categories])
        for category, share in zip(categories, shares, strict=True):
            if share.is_zero:
                continue
            out.append(
                InvoiceLine(
                    kind=LineKind.DISCOUNT,
                    description=f"{discount_description} ({category.value})",
                    sku=None,
                    quantity=Decimal(1),
                    unit_price=-share,
                    discount=zero,
                    gross=-share,
                    vat=-vat_from_gross(share, table.rate(category)),
                    category=category,
                )
            )
    return tuple(out)


def check_order(
    order: Order,
    mapping: TaxCodeMap,
    *,
    tenant: str,
    vendor: str,
    number: str | None = None,
    number_max_length: int | None = None,
    number_field: str = "number",
) -> tuple[InvoiceLine, ...]:
    """Everything we can check before sending an order, all problems at once.

    Checks that the lines add up (to ``stated_total`` when given), that every VAT
    category used has a tax code for ``tenant``, that the customer has a name, and that
    the document ``number`` fits the vendor's limit. Returns the invoice lines.

    Raises:
        InvalidInput: with one :class:`FieldError` per problem.
    """
    errors: list[FieldError] = []
    lines = invoice_lines(order)
    gross = sum((line.gross for line in lines), Money.zero(order.currency))
    vat = sum((line.vat for line in lines), Money.zero(order.currency))
    totals = order.totals()
    if gross != totals.gross or vat != totals.vat:
        errors.append(
            FieldError(("lines",), f"lines add up to {gross} (VAT {vat}), not {totals.gross}")
        )
    if order.stated_total is not None and order.stated_total.quantize() != totals.gross:
        errors.append(
            FieldError(
                ("stated_total",),
                f"stated total {order.stated_total} does not match the lines' {totals.gross}",
                code="total_mismatch",
            )
        )
    for index, line in enumerate(order.lines):
        if line.vat_category not in mapping.codes:
            errors.append(_unmapped(line.vat_category, tenant, ("lines", index, "vat_category")))
    if not order.shipping_fee.is_zero and order.shipping_vat_category not in mapping.codes:
        errors.append(_unmapped(order.shipping_vat_category, tenant, ("shipping_vat_category",)))
    customer = order.customer
    if not (customer.first_name or customer.last_name or customer.company):
        errors.append(
            FieldError(
                ("customer", "name"),
                "first_name, last_name or company is required",
                code="missing",
            )
        )
    if number is not None and number_max_length is not None and len(number) > number_max_length:
        errors.append(
            FieldError(
                (number_field,),
                f"{len(number)} characters; {vendor} allows at most {number_max_length}",
                code="too_long",
            )
        )
    if errors:
        raise InvalidInput("order cannot be posted", errors=errors, vendor=vendor)
    return lines


def codes_from_config(raw: Mapping[str, str]) -> TaxCodeMap:
    """A :class:`TaxCodeMap` from configuration (category names as strings).

    Raises:
        ConfigurationError: for an unknown category name.
    """
    codes: dict[VatCategory, str] = {}
    for name, code in raw.items():
        try:
            codes[VatCategory(name)] = code
        except ValueError:
            raise ConfigurationError(f"unknown VAT category {name!r}", key="tax_codes") from None
    return TaxCodeMap(codes=codes)
