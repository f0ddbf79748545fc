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
from decimal import ROUND_HALF_UP, Context, Decimal
from enum import StrEnum
from typing import Final, NamedTuple

from pydantic import BaseModel, ConfigDict

from dixis_integrations.accounting._common import trusted
from dixis_integrations.errors import ConfigurationError, FieldError, InvalidInput
from dixis_integrations.models.money import Money, minor_units
from dixis_integrations.models.order import Order
from dixis_integrations.models.tax import GREEK_VAT_RATES, VatCategory, VatTable

_ZERO = Decimal(0)
_GREEK_RATES: Final = dict(GREEK_VAT_RATES)
_GREEK_TABLE: Final = VatTable.greece()
_QUANTA: dict[str, Decimal] = {}
_EXACT = Context(prec=80, rounding=ROUND_HALF_UP)  # exact products of bounded amounts
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_CATEGORIES: Final = tuple(VatCategory)

__all__ = [
    "InvoiceDraft",
    "InvoiceLine",
    "LineKind",
    "TaxCodeMap",
    "TenantTaxCode",
    "check_order",
    "check_tenant_codes",
    "codes_from_config",
    "draft_invoice",
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


class InvoiceLine(NamedTuple):
    """One invoice line, VAT-inclusive: ``gross`` is what the customer pays for it.

    ``gross == round_half_up(quantity * unit_price) - discount`` and ``vat`` is the VAT
    contained in ``gross`` at ``category``'s rate, rounded per line as our totals are.
    Discount lines carry the order discount's share of one category, as a negative line.
    Amounts are kept as exact ``Decimal``s in ``currency`` (``*_amount``); the
    :class:`Money` views (``gross``, ``vat``...) are built on demand.
    """

    kind: LineKind
    description: str
    sku: str | None
    quantity: Decimal
    currency: str
    unit_amount: Decimal
    discount_amount: Decimal
    gross_amount: Decimal
    vat_amount: Decimal
    category: VatCategory
    source_index: int | None = None

    @property
    def net_amount(self) -> Decimal:
        """``gross_amount - vat_amount``."""
        return self.gross_amount - self.vat_amount

    @property
    def unit_price(self) -> Money:
        """The VAT-inclusive unit price."""
        return Money(amount=self.unit_amount, currency=self.currency)

    @property
    def discount(self) -> Money:
        """The VAT-inclusive discount on the line."""
        return Money(amount=self.discount_amount, currency=self.currency)

    @property
    def gross(self) -> Money:
        """What the customer pays for the line, VAT included."""
        return Money(amount=self.gross_amount, currency=self.currency)

    @property
    def vat(self) -> Money:
        """The VAT in :attr:`gross`."""
        return Money(amount=self.vat_amount, currency=self.currency)

    @property
    def net(self) -> Money:
        """``gross - vat``."""
        return Money(amount=self.net_amount, currency=self.currency)


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    """An order as invoice lines, with their sums (equal to ``Order.totals()``)."""

    lines: tuple[InvoiceLine, ...]
    currency: str
    gross_amount: Decimal
    vat_amount: Decimal

    @property
    def gross(self) -> Money:
        """What the customer pays: the order's gross total."""
        # Sums of the order's validated amounts, exact: no second validation.
        return trusted(Money, {"amount": self.gross_amount, "currency": self.currency})

    @property
    def vat(self) -> Money:
        """The VAT in :attr:`gross`."""
        return trusted(Money, {"amount": self.vat_amount, "currency": self.currency})


def _vat_in(gross: Decimal, pct: Decimal, quantum: Decimal) -> Decimal:
    # Same arithmetic as models.tax.vat_from_gross, on bare Decimals (hot path).
    if not pct:
        return _ZERO
    return (gross * pct / (_HUNDRED + pct)).quantize(quantum, rounding=ROUND_HALF_UP)


def _allocate(discount: Money, weights: list[int], exponent: int) -> list[Decimal]:
    # Money.allocate's largest-remainder split on bare ints (it builds a Money per part,
    # the costliest step of a discounted order): the same shares, the same tie rule.
    # Anything unusual (no positive weight, a fraction of a minor unit) takes Money's
    # own method, for its checks and errors.
    total = discount.amount.scaleb(exponent)
    total_weight = sum(weights)
    if total_weight <= 0 or total != total.to_integral_value() or min(weights) < 0:
        return [share.amount for share in discount.allocate(weights)]
    cents = int(total)
    sign = -1 if cents < 0 else 1
    remaining = abs(cents)
    floors: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        share, remainder = divmod(remaining * weight, total_weight)
        floors.append(share)
        remainders.append(remainder)
    leftover = remaining - sum(floors)
    if leftover:
        ranked = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
        for i in ranked[:leftover]:
            floors[i] += 1
    return [Decimal(sign * c).scaleb(-exponent) for c in floors]


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
    return draft_invoice(
        order,
        shipping_description=shipping_description,
        discount_description=discount_description,
        table=table,
    ).lines


def draft_invoice(
    order: Order,
    *,
    shipping_description: str = "Shipping",
    discount_description: str = "Discount",
    table: VatTable | None = None,
) -> InvoiceDraft:
    """:func:`invoice_lines` with the sums of gross and VAT (computed once, exactly)."""
    table = table or VatTable.greece()
    currency = order.currency
    quantum = _QUANTA.get(currency)
    if quantum is None:
        quantum = _QUANTA[currency] = Decimal(1).scaleb(-minor_units(currency))
    rates: dict[VatCategory, Decimal] = dict(GREEK_VAT_RATES) if table is VatTable.greece() else {}
    out: list[InvoiceLine] = []
    gross_by_category: dict[VatCategory, Decimal] = {}
    multiply = _EXACT.multiply
    for index, line in enumerate(order.lines):
        category = line.vat_category
        pct = rates.get(category)
        if pct is None:
            pct = rates[category] = table.rate(category)
        unit = line.unit_price.amount
        discount = line.discount.amount
        # As OrderLine.gross: the exact product, rounded half up to the cent, less discount.
        gross = multiply(unit, line.quantity).quantize(quantum, ROUND_HALF_UP, _EXACT) - discount
        out.append(
            InvoiceLine(
                LineKind.ITEM, line.name, line.sku, line.quantity, currency, unit, discount,
                gross, _vat_in(gross, pct, quantum), category, index,
            )
        )  # fmt: skip
        gross_by_category[category] = gross_by_category.get(category, _ZERO) + gross
    shipping = order.shipping_fee.amount
    if shipping:
        category = order.shipping_vat_category
        pct = rates.get(category)
        if pct is None:
            pct = rates[category] = table.rate(category)
        out.append(
            InvoiceLine(
                LineKind.SHIPPING, shipping_description, None, _ONE, currency, shipping,
                _ZERO, shipping, _vat_in(shipping, pct, quantum), category,
            )
        )  # fmt: skip
        gross_by_category[category] = gross_by_category.get(category, _ZERO) + shipping
    gross_total = _ZERO
    vat_total = _ZERO
    for made in out:
        gross_total += made.gross_amount
        vat_total += made.vat_amount
    if order.discount.amount:
        categories = [c for c in _CATEGORIES if c in gross_by_category]
        exponent = minor_units(currency)
        weights = [int(gross_by_category[c].scaleb(exponent)) for c in categories]
        shares = _allocate(order.discount, weights, exponent)
        for category, amount in zip(categories, shares, strict=True):
            if not amount:
                continue
            vat = _vat_in(amount, rates[category], quantum)
            out.append(
                InvoiceLine(
                    LineKind.DISCOUNT, f"{discount_description} ({category.value})", None,
                    _ONE, currency, -amount, _ZERO, -amount, -vat, category,
                )
            )  # fmt: skip
            gross_total -= amount
            vat_total -= vat
    return InvoiceDraft(tuple(out), currency, gross_total, vat_total)


def check_order(
    order: Order,
    mapping: TaxCodeMap,
    *,
    tenant: str,
    vendor: str,
    number: str | None = None,
    number_max_length: int | None = None,
    number_field: str = "number",
) -> InvoiceDraft:
    """Everything we can check before sending an order, all problems at once.

    Checks that the lines add up (to ``stated_total`` when given), that every VAT
    category used has a tax code for ``tenant``, that the customer has a name, and that
    the document ``number`` fits the vendor's limit. Returns the invoice draft, whose
    lines sum to the order's totals.

    Raises:
        InvalidInput: with one :class:`FieldError` per problem.
    """
    errors: list[FieldError] = []
    draft = draft_invoice(order)
    if order.stated_total is not None and order.stated_total.amount.compare(draft.gross.amount):
        errors.append(
            FieldError(
                ("stated_total",),
                f"stated total {order.stated_total} does not match the lines' {draft.gross}",
                code="total_mismatch",
            )
        )
    codes = mapping.codes
    for index, line in enumerate(order.lines):
        if line.vat_category not in codes:
            errors.append(_unmapped(line.vat_category, tenant, ("lines", index, "vat_category")))
    if order.shipping_fee.amount and order.shipping_vat_category not in codes:
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
    return draft


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
