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

from dixis_integrations.accounting._common import MONEY_FIELDS, trusted
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
# Greece's rates as (pct, 100 + pct), for the VAT in a gross amount; None for a zero rate.
_GREEK_DIVISORS: Final[dict[VatCategory, tuple[Decimal, Decimal] | None]] = {
    c: (p, _HUNDRED + p) if p else None for c, p in GREEK_VAT_RATES.items()
}
_MISSING: Final = (Decimal(-1), Decimal(-1))  # a sentinel, compared by identity
# InvoiceLine(...) runs a Python-level __new__; tuple.__new__ builds the same tuple.
_new_line: Final = tuple.__new__

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
    "lean_lines",
    "tax_plan",
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


# Members read as ``LineKind.ITEM`` cost an enum descriptor call each (several times a
# dictionary lookup): the per-line paths read these instead.
_ITEM: Final = LineKind.ITEM
_SHIPPING: Final = LineKind.SHIPPING
_DISCOUNT: Final = LineKind.DISCOUNT


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
        return trusted(
            Money, {"amount": self.gross_amount, "currency": self.currency}, MONEY_FIELDS
        )

    @property
    def vat(self) -> Money:
        """The VAT in :attr:`gross`."""
        return trusted(Money, {"amount": self.vat_amount, "currency": self.currency}, MONEY_FIELDS)


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
    currency = order.currency
    quantum = _QUANTA.get(currency)
    if quantum is None:
        quantum = _QUANTA[currency] = Decimal(1).scaleb(-minor_units(currency))
    if table is None or table is _GREEK_TABLE:
        table, rates = _GREEK_TABLE, _GREEK_DIVISORS
    else:
        rates = {}
    out: list[InvoiceLine] = []
    gross_by_category: dict[VatCategory, Decimal] = {}
    gross_total = vat_total = _ZERO
    multiply = _EXACT.multiply
    for index, line in enumerate(order.lines):
        category = line.vat_category
        unit = line.unit_price.amount
        discount = line.discount.amount
        # As OrderLine.gross: the exact product, rounded half up to the cent, less discount.
        gross = multiply(unit, line.quantity).quantize(quantum, ROUND_HALF_UP, _EXACT) - discount
        rate = rates.get(category, _MISSING)
        if rate is _MISSING:
            rate = _divisor(table, category, rates)
        # As models.tax.vat_from_gross, on bare Decimals: gross * pct / (100 + pct).
        vat = (gross * rate[0] / rate[1]).quantize(quantum, ROUND_HALF_UP) if rate else _ZERO
        out.append(
            _new_line(InvoiceLine, (
                _ITEM, line.name, line.sku, line.quantity, currency, unit, discount,
                gross, vat, category, index,
            ))
        )  # fmt: skip
        gross_by_category[category] = gross_by_category.get(category, _ZERO) + gross
        gross_total += gross
        vat_total += vat
    shipping = order.shipping_fee.amount
    if shipping:
        category = order.shipping_vat_category
        rate = rates.get(category, _MISSING)
        if rate is _MISSING:
            rate = _divisor(table, category, rates)
        vat = (shipping * rate[0] / rate[1]).quantize(quantum, ROUND_HALF_UP) if rate else _ZERO
        out.append(
            _new_line(InvoiceLine, (
                _SHIPPING, shipping_description, None, _ONE, currency, shipping,
                _ZERO, shipping, vat, category, None,
            ))
        )  # fmt: skip
        gross_by_category[category] = gross_by_category.get(category, _ZERO) + shipping
        gross_total += shipping
        vat_total += vat
    if order.discount.amount:
        for category, amount in _discount_shares(order, gross_by_category, currency):
            rate = rates[category]  # seen on a line above
            vat = (amount * rate[0] / rate[1]).quantize(quantum, ROUND_HALF_UP) if rate else _ZERO
            out.append(
                _new_line(InvoiceLine, (
                    _DISCOUNT, f"{discount_description} ({category.value})", None,
                    _ONE, currency, -amount, _ZERO, -amount, -vat, category, None,
                ))
            )  # fmt: skip
            gross_total -= amount
            vat_total -= vat
    return _new_draft(out, currency, gross_total, vat_total)


def _discount_shares(
    order: Order, gross_by_category: dict[VatCategory, Decimal], currency: str
) -> list[tuple[VatCategory, Decimal]]:
    """The order discount split over the VAT categories in proportion to their gross, to
    the cent, without lost cents; categories whose share is zero left out."""
    categories = [c for c in _CATEGORIES if c in gross_by_category]
    exponent = minor_units(currency)
    weights = [int(gross_by_category[c].scaleb(exponent)) for c in categories]
    shares = _allocate(order.discount, weights, exponent)
    return [(c, amount) for c, amount in zip(categories, shares, strict=True) if amount]


def _divisor(
    table: VatTable,
    category: VatCategory,
    rates: dict[VatCategory, tuple[Decimal, Decimal] | None],
) -> tuple[Decimal, Decimal] | None:
    # The table's rate (raising as VatTable.rate does for a category it lacks), cached.
    pct = table.rate(category)
    rate = rates[category] = (pct, _HUNDRED + pct) if pct else None
    return rate


def _new_draft(
    lines: list[InvoiceLine], currency: str, gross: Decimal, vat: Decimal
) -> InvoiceDraft:
    return InvoiceDraft(tuple(lines), currency, gross, vat)


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
    if order.stated_total is not None and order.stated_total.amount.compare(draft.gross_amount):
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


TaxPlan = dict[VatCategory, tuple[str, Decimal, Decimal]]
"""Per tenant: each mapped category -> (the tenant's code, rate in percent, 100 + rate)."""

LeanLine = tuple[LineKind, str, "str | None", Decimal, Decimal, Decimal, Decimal, Decimal, str]
"""An invoice line as a plain tuple: (kind, description, sku, quantity, unit amount,
discount, gross, VAT, the tenant's code)."""


def tax_plan(mapping: TaxCodeMap) -> TaxPlan:
    """What :func:`lean_lines` needs per tenant, computed once: Greece's rates."""
    plan: TaxPlan = {}
    for category, code in mapping.codes.items():
        pct = _GREEK_RATES[category]
        plan[category] = (code, pct, _HUNDRED + pct)
    return plan


def lean_lines(
    order: Order,
    plan: TaxPlan,
    *,
    shipping_description: str = "Shipping",
    discount_description: str = "Discount",
) -> tuple[list[LeanLine], Decimal, Decimal] | None:
    """:func:`draft_invoice`'s lines (Greek VAT), each with the tenant's code, and their
    gross and VAT sums: the bulk path's draft, without a line object per line.

    ``None`` when the order needs :func:`check_order`'s careful path: a VAT category
    without a code, a stated total the lines do not reach, a customer without a name.
    That path then reports every problem (or, for anything this one does not cover,
    drafts the order itself). Same arithmetic as :func:`draft_invoice`, line for line:
    a test holds the two equal.
    """
    customer = order.customer
    if not (customer.first_name or customer.last_name or customer.company):
        return None
    currency = order.currency
    quantum = _QUANTA.get(currency)
    if quantum is None:
        quantum = _QUANTA[currency] = Decimal(1).scaleb(-minor_units(currency))
    multiply = _EXACT.multiply
    out: list[LeanLine] = []
    gross_by_category: dict[VatCategory, Decimal] = {}
    gross_total = vat_total = _ZERO
    for line in order.lines:
        category = line.vat_category
        entry = plan.get(category)
        if entry is None:
            return None
        code, pct, divisor = entry
        unit = line.unit_price.amount
        discount = line.discount.amount
        gross = multiply(unit, line.quantity).quantize(quantum, ROUND_HALF_UP, _EXACT) - discount
        vat = (gross * pct / divisor).quantize(quantum, ROUND_HALF_UP) if pct else _ZERO
        out.append((_ITEM, line.name, line.sku, line.quantity, unit, discount, gross, vat, code))
        gross_by_category[category] = gross_by_category.get(category, _ZERO) + gross
        gross_total += gross
        vat_total += vat
    shipping = order.shipping_fee.amount
    if shipping:
        category = order.shipping_vat_category
        entry = plan.get(category)
        if entry is None:
            return None
        code, pct, divisor = entry
        vat = (shipping * pct / divisor).quantize(quantum, ROUND_HALF_UP) if pct else _ZERO
        out.append(
            (_SHIPPING, shipping_description, None, _ONE, shipping, _ZERO, shipping,
             vat, code)
        )  # fmt: skip
        gross_by_category[category] = gross_by_category.get(category, _ZERO) + shipping
        gross_total += shipping
        vat_total += vat
    if order.discount.amount:
        for category, amount in _discount_shares(order, gross_by_category, currency):
            code, pct, divisor = plan[category]
            vat = (amount * pct / divisor).quantize(quantum, ROUND_HALF_UP) if pct else _ZERO
            out.append(
                (_DISCOUNT, f"{discount_description} ({category.value})", None, _ONE,
                 -amount, _ZERO, -amount, -vat, code)
            )  # fmt: skip
            gross_total -= amount
            vat_total -= vat
    stated = order.stated_total
    if stated is not None and stated.amount.compare(gross_total):
        return None
    return out, gross_total, vat_total


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
