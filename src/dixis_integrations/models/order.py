"""Orders, their lines and totals, payments and refunds.

Prices are VAT-inclusive. VAT is extracted per line (ROUND_HALF_UP to the cent), and
every total is a sum of cents, so ``net + vat == gross`` holds per line, per VAT
category and for the order. All amounts of an order share the order's ``currency``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Annotated, Any, Final, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from dixis_integrations.models._types import (
    _DECIMAL_LIMIT,
    _MAX_INTEGER_DIGITS,
    _PLAIN_DECIMAL,
    _SMALLEST,
    NonEmptyStr,
    Reference,
    UtcDatetime,
    WireStrEnum,
    _CheckedDecimal,
    utcnow,
)
from dixis_integrations.models.address import Address
from dixis_integrations.models.customer import Customer
from dixis_integrations.models.money import Currency, Money, _exponent, _times
from dixis_integrations.models.product import SaleUnit, Sku
from dixis_integrations.models.tax import VatCategory, VatTable, vat_from_gross

__all__ = [
    "Order",
    "OrderLine",
    "OrderStatus",
    "OrderTotals",
    "Payment",
    "PaymentMethod",
    "Refund",
    "RefundLine",
    "VatAmounts",
]

# ExactDecimal with gt=0, in one Python step: the bound is checked in the fast path;
# any other input gets the step-by-step rules, errors and all. The JSON schema says
# gt=0 exactly as Field(gt=0) would (which would add a Python step of its own).
_checked_quantity: Final[TypeAdapter[Decimal]] = TypeAdapter(
    Annotated[_CheckedDecimal, Field(gt=0)]
)


def _validate_quantity(value: Any) -> Decimal:
    kind = type(value)
    if kind is str:
        if _PLAIN_DECIMAL.fullmatch(value) is not None:
            number = Decimal(value)
            if number > 0:
                return number
    elif kind is int:
        if 0 < value < _DECIMAL_LIMIT:
            return Decimal(value)
    elif kind is Decimal:
        given: Decimal = value
        if (
            given.is_finite()
            and given > 0
            and given.adjusted() < _MAX_INTEGER_DIGITS
            and given == given.quantize(_SMALLEST)
        ):
            return given
    return _checked_quantity.validate_python(value)


class _GreaterThanZeroInSchema:
    """Says ``gt: 0`` in the JSON schema, as ``Field(gt=0)`` does, without checking."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        metadata: dict[str, Any] = {**schema.get("metadata", {}), "pydantic_js_updates": {"gt": 0}}
        schema["metadata"] = metadata  # type: ignore[index]
        return schema


_PositiveQuantity = Annotated[
    Decimal, BeforeValidator(_validate_quantity), _GreaterThanZeroInSchema()
]
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


class OrderStatus(WireStrEnum):
    """Where an order stands in its life."""

    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    FULFILLED = "fulfilled"


class PaymentMethod(WireStrEnum):
    """How the customer pays; ``COD`` is cash on delivery, collected by the carrier."""

    CARD = "card"
    COD = "cod"
    BANK_TRANSFER = "bank_transfer"
    OTHER = "other"


def _field_error(
    loc: tuple[str | int, ...], kind: str, message: str, value: Any
) -> ValidationError:
    """A ValidationError at ``loc``, relative to the field being validated."""
    error = PydanticCustomError(kind, message)
    return ValidationError.from_exception_data(
        "Order", [InitErrorDetails(type=error, loc=loc, input=value)]
    )


def _same_currency(
    value: Money, currency: str | None, what: str, reference: str = "the order"
) -> Money:
    """Refuse ``value`` unless it is in ``currency``; the error is at ``<field>.currency``."""
    if currency is not None and value.currency != currency:
        raise _field_error(
            ("currency",),
            "currency_mismatch",
            f"{what} is in {value.currency} but {reference} is in {currency}",
            value.currency,
        )
    return value


def _not_negative(value: Money, what: str) -> Money:
    if value.is_negative:
        raise ValueError(f"{what} must not be negative")
    return value


def _whole_minor_units(value: Money, what: str) -> Money:
    # Amounts that are added to totals must already be rounded: a fee of 3.505 EUR
    # would make every total carry a fraction of a cent.
    if value.amount != value.amount.quantize(_exponent(value.currency)):
        raise ValueError(f"{what} must be a whole number of {value.currency} minor units")
    return value


def _zero_in_price_currency(data: dict[str, Any]) -> Money:
    return Money.zero(data["unit_price"].currency)


def _zero_in_order_currency(data: dict[str, Any]) -> Money:
    return Money.zero(data.get("currency", "EUR"))


class _CachingModel(BaseModel):
    """A frozen model whose ``cached_property`` values are dropped by ``model_copy``.

    ``functools.cached_property`` stores its value in the instance ``__dict__``, which
    pydantic's ``model_copy`` copies verbatim: without this, a copy made with
    ``update=`` would keep totals computed from the old values.
    """

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy the model (see pydantic), forgetting values cached from the original."""
        copied = super().model_copy(update=update, deep=deep)
        fields = type(self).model_fields
        for name in [key for key in copied.__dict__ if key not in fields]:
            del copied.__dict__[name]
        return copied


class VatAmounts(BaseModel):
    """Net, VAT and gross of one line, one category or a whole order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    net: Money
    vat: Money
    gross: Money


class OrderLine(_CachingModel):
    """One product on an order: ``quantity`` units (pieces, or kilos such as ``1.250``).

    ``unit_price`` includes VAT. ``discount`` (default zero, in the price's currency) is
    a VAT-inclusive amount off the line, at most the line's undiscounted gross.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    name: NonEmptyStr
    quantity: _PositiveQuantity
    unit: SaleUnit = SaleUnit.PIECE
    unit_price: Money
    vat_category: VatCategory
    discount: Money = Field(default_factory=_zero_in_price_currency)

    @field_validator("unit_price")
    @classmethod
    def _check_unit_price(cls, value: Money) -> Money:
        if value.amount < 0:
            raise ValueError("unit_price must not be negative")
        return value

    @field_validator("discount")
    @classmethod
    def _check_discount(cls, value: Money, info: ValidationInfo) -> Money:
        price: Money | None = info.data.get("unit_price")
        if not value.amount and (price is None or price.currency == value.currency):
            return value  # the common case: no discount
        _whole_minor_units(_not_negative(value, "discount"), "discount")
        if price is None:
            return value
        _same_currency(value, price.currency, "discount", "unit_price")
        quantity: Decimal | None = info.data.get("quantity")
        if quantity is not None:
            subtotal = _times(price.amount, quantity, _exponent(price.currency))
            if value.amount > subtotal:
                raise ValueError(
                    f"discount {value} is more than the line's {subtotal} {price.currency}"
                )
        return value

    @cached_property
    def subtotal(self) -> Money:
        """``quantity * unit_price`` rounded to the cent (ROUND_HALF_UP), before discount."""
        amount = _times(self.unit_price.amount, self.quantity, _exponent(self.unit_price.currency))
        return Money._trusted(amount, self.unit_price.currency)

    @cached_property
    def gross(self) -> Money:
        """What the customer pays for the line: ``subtotal - discount``, VAT included."""
        return self.subtotal - self.discount

    @cached_property
    def vat(self) -> Money:
        """The VAT in :attr:`gross` at the Greek rate of ``vat_category``, to the cent."""
        return vat_from_gross(self.gross, VatTable.greece().rate(self.vat_category))

    @cached_property
    def net(self) -> Money:
        """``gross - vat``."""
        return self.gross - self.vat

    def amounts(self, table: VatTable | None = None, country: str = "GR") -> VatAmounts:
        """Net, VAT and gross of the line with the rates of ``table`` for ``country``.

        Args:
            table: VAT rates; default :meth:`VatTable.greece`.
            country: ISO 3166 alpha-2 code of the taxing country.

        Raises:
            ConfigurationError: if the table has no rate for the line's category there.
        """
        if table is None and country == "GR":
            return VatAmounts.model_construct(net=self.net, vat=self.vat, gross=self.gross)
        rate = (table or VatTable.greece()).rate(self.vat_category, country)
        vat = vat_from_gross(self.gross, rate)
        return VatAmounts.model_construct(net=self.gross - vat, vat=vat, gross=self.gross)


class OrderTotals(BaseModel):
    """The totals of an order; ``by_category`` sums exactly to ``net``/``vat``/``gross``.

    The categories cover the lines and the shipping fee, after the order discount.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    net: Money
    vat: Money
    gross: Money
    lines_gross: Money
    shipping: Money
    discount: Money
    by_category: dict[VatCategory, VatAmounts]


def _line_gross(line: OrderLine, exponent: Decimal) -> Decimal:
    """Decimal twin of :attr:`OrderLine.gross`, for loops over many lines."""
    return _times(line.unit_price.amount, line.quantity, exponent) - line.discount.amount


def _gross_total(lines: Iterable[OrderLine], shipping: Money, discount: Money) -> Money:
    """Lines + shipping - discount, computed on Decimals (validation runs it per order)."""
    exponent = _exponent(shipping.currency)
    total = shipping.amount - discount.amount
    for line in lines:
        total += _line_gross(line, exponent)
    return Money._trusted(total, shipping.currency)


def _vat_in(gross: Decimal, pct: Decimal, exponent: Decimal) -> Decimal:
    """Decimal twin of :func:`vat_from_gross` (same formula and rounding)."""
    if not pct:
        return _ZERO
    return (gross * pct / (_HUNDRED + pct)).quantize(exponent, rounding=ROUND_HALF_UP)


def _compute_totals(
    lines: Sequence[OrderLine],
    shipping: Money,
    shipping_category: VatCategory,
    discount: Money,
    table: VatTable,
    country: str,
) -> OrderTotals:
    # Works on Decimals and builds Money objects only for the result: an order's
    # totals are computed for every order an adapter handles.
    currency = shipping.currency
    exponent = _exponent(currency)
    gross: dict[VatCategory, Decimal] = {}
    vat: dict[VatCategory, Decimal] = {}
    rates: dict[VatCategory, Decimal] = {}

    def rate_of(category: VatCategory) -> Decimal:
        pct = rates.get(category)
        if pct is None:
            pct = rates[category] = table.rate(category, country)
        return pct

    def add(category: VatCategory, amount: Decimal) -> None:
        gross[category] = gross.get(category, _ZERO) + amount
        vat[category] = vat.get(category, _ZERO) + _vat_in(amount, rate_of(category), exponent)

    lines_gross = _ZERO
    for line in lines:
        line_gross = _line_gross(line, exponent)
        lines_gross += line_gross
        add(line.vat_category, line_gross)
    if shipping.amount:
        add(shipping_category, shipping.amount)
    if discount.amount:
        # The order discount is spread over the categories in proportion to their gross
        # (to the cent, nothing lost); each share is a negative amount at that category's
        # rate, so it lowers the category's VAT by the VAT it contains.
        categories = [c for c in VatCategory if c in gross]
        weights = [int(gross[c].scaleb(-exponent.adjusted())) for c in categories]
        for category, share in zip(categories, discount.allocate(weights), strict=True):
            add(category, -share.amount)

    def money(amount: Decimal) -> Money:
        return Money._trusted(amount, currency)

    by_category: dict[VatCategory, VatAmounts] = {}
    total_gross = total_vat = _ZERO
    for category in VatCategory:
        if category in gross:
            g, v = gross[category], vat[category]
            total_gross += g
            total_vat += v
            by_category[category] = VatAmounts.model_construct(
                net=money(g - v), vat=money(v), gross=money(g)
            )
    return OrderTotals.model_construct(
        net=money(total_gross - total_vat),
        vat=money(total_vat),
        gross=money(total_gross),
        lines_gross=money(lines_gross),
        shipping=shipping,
        discount=discount,
        by_category=by_category,
    )


class Order(_CachingModel):
    """A customer's order, identified by our ``id`` (1 to 64 characters).

    Every amount (line prices and discounts, ``shipping_fee``, ``discount``,
    ``cod_amount``, ``stated_total``) must be in ``currency``; a mismatch is reported
    at the amount's own path (``lines[1].unit_price.currency``).

    ``discount`` is an order-level, VAT-inclusive amount off the total (coupons). It is
    spread across the VAT categories in proportion to their gross, so it lowers the VAT
    as well (see :meth:`totals`); it cannot exceed lines plus shipping.

    ``stated_total``, when given (e.g. the total the shop showed), must equal the
    computed gross total to the cent, or validation fails at ``stated_total``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Reference
    number: Reference | None = None
    currency: Currency = "EUR"
    # Declared before ``customer`` and ``lines`` so that their currency defaults only
    # depend on ``currency`` (a default factory reading validated data is skipped
    # when any earlier field failed).
    shipping_fee: Money = Field(default_factory=_zero_in_order_currency)
    shipping_vat_category: VatCategory = VatCategory.STANDARD
    discount: Money = Field(default_factory=_zero_in_order_currency)
    customer: Customer
    lines: Annotated[tuple[OrderLine, ...], Field(min_length=1)]
    created_at: UtcDatetime = Field(default_factory=utcnow)
    status: OrderStatus = OrderStatus.PENDING
    shipping_address: Address | None = None
    billing_address: Address | None = None
    payment_method: PaymentMethod = PaymentMethod.OTHER
    cod_amount: Money | None = None
    notes: NonEmptyStr | None = None
    stated_total: Money | None = None

    @field_validator("lines")
    @classmethod
    def _lines_in_order_currency(
        cls, lines: tuple[OrderLine, ...], info: ValidationInfo
    ) -> tuple[OrderLine, ...]:
        currency = info.data.get("currency")
        if currency is None:
            return lines
        for line in lines:
            if line.unit_price.currency != currency or line.discount.currency != currency:
                break
        else:
            return lines  # the common case, checked without building anything
        for index, line in enumerate(lines):
            for name in ("unit_price", "discount"):
                amount: Money = getattr(line, name)
                if amount.currency != currency:
                    raise _field_error(
                        (index, name, "currency"),
                        "currency_mismatch",
                        f"{name} is in {amount.currency} but the order is in {currency}",
                        amount.currency,
                    )
        return lines  # pragma: no cover - the loop above found a mismatch

    @field_validator("shipping_fee")
    @classmethod
    def _check_shipping_fee(cls, value: Money, info: ValidationInfo) -> Money:
        _whole_minor_units(_not_negative(value, "shipping_fee"), "shipping_fee")
        return _same_currency(value, info.data.get("currency"), "shipping_fee")

    @field_validator("discount")
    @classmethod
    def _check_discount(cls, value: Money, info: ValidationInfo) -> Money:
        _whole_minor_units(_not_negative(value, "discount"), "discount")
        return _same_currency(value, info.data.get("currency"), "discount")

    @model_validator(mode="after")
    def _discount_within_total(self) -> Self:
        if not self.discount.amount:
            return self
        ceiling = _gross_total(self.lines, self.shipping_fee, Money.zero(self.currency))
        if self.discount > ceiling:
            raise _field_error(
                ("discount",),
                "discount_too_large",
                f"discount {self.discount} is more than lines plus shipping, {ceiling}",
                str(self.discount),
            )
        return self

    @field_validator("cod_amount")
    @classmethod
    def _check_cod_amount(cls, value: Money | None, info: ValidationInfo) -> Money | None:
        if value is None:
            return None
        if not value.is_positive:
            raise ValueError("cod_amount must be greater than zero")
        _whole_minor_units(value, "cod_amount")
        _same_currency(value, info.data.get("currency"), "cod_amount")
        method = info.data.get("payment_method")
        if method is not None and method is not PaymentMethod.COD:
            raise ValueError(f"cod_amount is only for payment_method 'cod', not {method.value!r}")
        return value

    @field_validator("stated_total")
    @classmethod
    def _check_stated_total(cls, value: Money | None, info: ValidationInfo) -> Money | None:
        if value is None:
            return None
        _same_currency(value, info.data.get("currency"), "stated_total")
        data = info.data
        if all(k in data for k in ("lines", "shipping_fee", "discount")):
            computed = _gross_total(data["lines"], data["shipping_fee"], data["discount"])
            if value.quantize() != computed:
                raise ValueError(
                    f"stated total {value} does not match the computed total {computed}"
                )
        return value

    @cached_property
    def _greek_totals(self) -> OrderTotals:
        return _compute_totals(
            self.lines,
            self.shipping_fee,
            self.shipping_vat_category,
            self.discount,
            VatTable.greece(),
            "GR",
        )

    def totals(self, table: VatTable | None = None, country: str = "GR") -> OrderTotals:
        """Net, VAT and gross of the order, with a breakdown per VAT category.

        Line VAT is extracted per line; the shipping fee is taxed at
        ``shipping_vat_category``; the order ``discount`` is spread over the categories
        in proportion to their gross (largest remainder, to the cent) and its VAT is
        subtracted from each. The breakdown sums exactly to the totals.

        Args:
            table: VAT rates; default :meth:`VatTable.greece` (computed once per order).
            country: ISO 3166 alpha-2 code of the taxing country.

        Raises:
            ConfigurationError: if ``table`` lacks a rate used by the order.
        """
        if table is None and country == "GR":
            cached = self._greek_totals
            # A fresh breakdown dict each time, so that no caller can alter the cache.
            return cached.model_copy(update={"by_category": dict(cached.by_category)})
        return _compute_totals(
            self.lines,
            self.shipping_fee,
            self.shipping_vat_category,
            self.discount,
            table or VatTable.greece(),
            country,
        )

    @property
    def total(self) -> Money:
        """The gross amount the customer pays (lines + shipping - discount)."""
        return self._greek_totals.gross


class Payment(BaseModel):
    """Money received for an order; ``fee`` is what the processor kept (e.g. Stripe)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Reference
    order_id: Reference
    amount: Money
    method: PaymentMethod
    paid_at: UtcDatetime
    provider: NonEmptyStr | None = None
    provider_reference: NonEmptyStr | None = None
    fee: Money | None = None
    payout_id: Reference | None = None

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Money) -> Money:
        if not value.is_positive:
            raise ValueError("amount must be greater than zero")
        return _whole_minor_units(value, "amount")

    @field_validator("fee")
    @classmethod
    def _check_fee(cls, value: Money | None, info: ValidationInfo) -> Money | None:
        if value is None:
            return None
        _whole_minor_units(_not_negative(value, "fee"), "fee")
        amount: Money | None = info.data.get("amount")
        if amount is not None:
            _same_currency(value, amount.currency, "fee", "amount")
        return value

    @property
    def net_amount(self) -> Money:
        """``amount - fee``: what reaches the payout."""
        return self.amount - self.fee if self.fee is not None else self.amount


class RefundLine(BaseModel):
    """A quantity of one SKU given back; also accepts a ``(sku, quantity)`` pair."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    quantity: _PositiveQuantity

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, data: Any) -> Any:
        if isinstance(data, tuple | list) and len(data) == 2:
            return {"sku": data[0], "quantity": data[1]}
        return data


class Refund(BaseModel):
    """Money returned to the customer, optionally itemised by ``lines``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Reference
    order_id: Reference
    amount: Money
    reason: NonEmptyStr | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)
    lines: tuple[RefundLine, ...] | None = None

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Money) -> Money:
        if not value.is_positive:
            raise ValueError("amount must be greater than zero")
        return _whole_minor_units(value, "amount")
