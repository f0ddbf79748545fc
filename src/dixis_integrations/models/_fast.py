"""A faster way to validate lists of orders and customers, with exactly the same rules.

Validating a batch of orders with the models' own schema makes about twenty calls into
Python per order: one per amount, quantity, email and cross-field rule. Here the same
pydantic schema is rewritten (never written twice by hand) into a *fast* one:

- amounts and quantities become a pydantic-core union of exact types (a plain numeric
  string by pattern, an ``int`` in range, or a ``Decimal``, the last checked by the same
  test as :func:`~dixis_integrations.models.money._validate_amount`'s fast path);
- emails become a core string schema (strip, lower-case, length, the same pattern);
- the order's and its lines' cross-field rules (currencies, non-negative prices,
  discounts, the defaults in the order's or price's currency, COD, the stated total)
  are dropped from the schema and checked by :func:`_finish_orders`, one Python pass
  over the batch; so are, inside an order, the customer's name rule, the "aware" check
  and UTC conversion of its times, and its addresses' postcode and phone rules (the
  validators that read ``info.data`` are the most expensive calls into Python);
- every other validator is kept as it is (same function, same result).

The fast path only ever *accepts* what the full schema accepts, with the same result;
anything it refuses (any error, any input it does not handle) is validated again by the
full schema, which then produces the usual result or errors. The differential tests in
``tests/models/test_fast.py`` hold the two to that.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from pydantic import TypeAdapter
from pydantic_core import SchemaValidator, core_schema

from dixis_integrations.models import _types, money, order
from dixis_integrations.models._types import EMAIL_PATTERN
from dixis_integrations.models.address import Address, normalize_phone, normalize_postcode
from dixis_integrations.models.customer import Customer
from dixis_integrations.models.money import Money, _exponent, _times

__all__ = ["fast_list_validator"]

_MISSING: Final = object()  # a default the pass fills in (it depends on other fields)

_Finish = Callable[[Sequence[Any], list[Any]], bool]


def _amount_decimal(value: Any) -> Decimal:
    # The Decimal branch of _validate_amount's fast path, nothing more.
    if type(value) is Decimal:
        number: Decimal = value
        if (
            number.is_finite()
            and number.adjusted() < money._MAX_INTEGER_DIGITS
            and number == number.quantize(money._SMALLEST)
        ):
            return number
    raise ValueError("not taken by the fast path")


def _quantity_decimal(value: Any) -> Decimal:
    # The Decimal branch of order._validate_quantity's fast path, nothing more.
    if type(value) is Decimal:
        given: Decimal = value
        if (
            given.is_finite()
            and given > 0
            and given.adjusted() < _types._MAX_INTEGER_DIGITS
            and given == given.quantize(_types._SMALLEST)
        ):
            return given
    raise ValueError("not taken by the fast path")


def _exact_number(pattern: str, lower: int, upper: int, plain: Any) -> core_schema.CoreSchema:
    """A plain numeric string, an int in ``(lower, upper)`` or a Decimal taken by ``plain``."""
    return core_schema.union_schema(
        [
            core_schema.chain_schema(
                [
                    core_schema.str_schema(strict=True, pattern=f"^(?:{pattern})$"),
                    core_schema.decimal_schema(gt=Decimal(0) if lower == 0 else None),
                ]
            ),
            core_schema.chain_schema(
                [
                    core_schema.int_schema(strict=True, gt=lower, lt=upper),
                    core_schema.decimal_schema(),
                ]
            ),
            core_schema.no_info_plain_validator_function(plain),
        ],
        mode="left_to_right",
    )


def _fast_amount() -> core_schema.CoreSchema:
    limit = money._AMOUNT_LIMIT
    return _exact_number(money._PLAIN_AMOUNT.pattern, -limit, limit, _amount_decimal)


def _fast_quantity() -> core_schema.CoreSchema:
    return _exact_number(_types._PLAIN_DECIMAL.pattern, 0, _types._DECIMAL_LIMIT, _quantity_decimal)


def _fast_email() -> core_schema.CoreSchema:
    # normalize_email: strip, lower-case, at most 254 characters, EMAIL_PATTERN.
    return core_schema.str_schema(
        strict=True,
        strip_whitespace=True,
        to_lower=True,
        max_length=254,
        pattern=EMAIL_PATTERN.pattern,
    )


def _key(function: Any) -> Any:
    return getattr(function, "__func__", function)


class _Rewrite:
    """Rewrites a core schema: replaces, drops or keeps each Python validator."""

    def __init__(
        self,
        replace: dict[Any, Callable[[], core_schema.CoreSchema]],
        drop: set[Any],
        fill: set[Any],
        aware_in_pass: set[Any] | None = None,
    ) -> None:
        self.replace = replace
        self.drop = drop
        self.fill = fill
        # dropped validators whose inner datetime's "aware" check the pass makes too
        self.aware_in_pass = aware_in_pass or set()
        self.seen: set[Any] = set()

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self(item) for item in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if isinstance(kind, str) and kind.startswith("function-") and "function" in node:
            function = _key(node["function"]["function"])
            if function in self.replace:
                self.seen.add(function)
                return self.replace[function]()
            if function in self.drop:
                self.seen.add(function)
                inner = dict(self(node["schema"]))
                if "ref" in node:  # the model validator carries the model's ref
                    inner["ref"] = node["ref"]
                if (
                    function in self.aware_in_pass
                    and inner.get("type") == "datetime"
                    and inner.get("tz_constraint") == "aware"
                ):
                    del inner["tz_constraint"]
                return inner
        if kind == "default" and _key(node.get("default_factory")) in self.fill:
            self.seen.add(_key(node["default_factory"]))
            return core_schema.with_default_schema(self(node["schema"]), default=_MISSING)
        return {
            key: value if key in ("metadata", "serialization") else self(value)
            for key, value in node.items()
        }


def _ok_charge(value: Money, currency: str) -> bool:
    """shipping_fee and discount: not negative, whole minor units, in ``currency``."""
    amount = value.amount
    return (
        amount >= 0
        and value.currency == currency
        and amount == amount.quantize(_exponent(currency))
    )


def _finish_line(line: order.OrderLine) -> bool:
    """OrderLine's own rules: the price is not negative; the discount (default zero in
    the price's currency) is whole minor units, not negative, in the price's currency and
    at most the line's subtotal."""
    data = line.__dict__
    price: Money = data["unit_price"]
    if price.amount < 0:
        return False
    discount = data["discount"]
    if discount is _MISSING:
        data["discount"] = Money.zero(price.currency)
        return True
    amount = discount.amount
    if not amount and price.currency == discount.currency:
        return True
    if amount < 0 or discount.currency != price.currency:
        return False
    exponent = _exponent(price.currency)
    if amount != amount.quantize(exponent):
        return False
    return bool(amount <= _times(price.amount, data["quantity"], exponent))


def _finish_address(row: Any, address: Address | None) -> bool:
    """Address's rules left to the pass (as its validators with ``info`` do them): the
    postcode, the phone and the mobile in the format of the address's country."""
    if address is None or address is row:  # none, or an instance taken as it is
        return True
    if type(row) is not dict:
        return False
    data = address.__dict__
    country: str = data["country"]
    try:
        data["postcode"] = normalize_postcode(data["postcode"], country)
        phone = data["phone"]
        if phone is not None:
            data["phone"] = normalize_phone(phone, country)
        mobile = data["mobile"]
        if mobile is not None:
            data["mobile"] = normalize_phone(mobile, country)
    except ValueError:
        return False
    return True


def _finish_customer(row: Any, item: Customer) -> bool:
    """Customer's rules left to the pass: a name or a company; times aware, in UTC; its
    addresses' rules."""
    data = item.__dict__
    if data["company"] is None and not (data["first_name"] or data["last_name"]):
        return False
    created: datetime = data["created_at"]
    if created.tzinfo is not UTC:  # AwareDatetime, then ensure_utc
        if created.utcoffset() is None:
            return False
        data["created_at"] = created.astimezone(UTC)
    consent = data["consent"]
    if consent is not row.get("consent", consent):  # built from the row's own value
        if type(row["consent"]) is not dict:
            return False
        consent_data = consent.__dict__
        stamp: datetime | None = consent_data["timestamp"]
        if stamp is not None and stamp.tzinfo is not UTC:
            if stamp.utcoffset() is None:
                return False
            consent_data["timestamp"] = stamp.astimezone(UTC)
    billing = data["billing_address"]
    if billing is not None and not _finish_address(row.get("billing_address"), billing):
        return False
    shipping = data["shipping_address"]
    return shipping is None or _finish_address(row.get("shipping_address"), shipping)


def _finish_order(row: Any, item: order.Order) -> bool:
    data = item.__dict__
    currency: str = data["currency"]
    created: datetime = data["created_at"]
    if created.tzinfo is not UTC:  # AwareDatetime, then ensure_utc
        if created.utcoffset() is None:
            return False
        data["created_at"] = created.astimezone(UTC)
    customer = data["customer"]
    customer_row = row.get("customer")
    # a customer given as a model instance is taken as it is (as the full schema does)
    if customer is not customer_row and (
        type(customer_row) is not dict or not _finish_customer(customer_row, customer)
    ):
        return False
    zero = Money.zero(currency)  # shared and immutable: every default of this order
    lines: tuple[order.OrderLine, ...] = data["lines"]
    line_rows = row.get("lines")
    if type(line_rows) not in (list, tuple) or len(line_rows) != len(lines):
        return False
    for line_row, line in zip(line_rows, lines, strict=True):
        line_data = line.__dict__
        price: Money = line_data["unit_price"]
        if price.currency != currency:
            return False
        # a line given as a model instance is taken as it is (as the full schema does)
        if line is not line_row:
            if type(line_row) is not dict:
                return False
            if line_data["discount"] is _MISSING:  # the common case, _finish_line inlined
                if price.amount < 0:
                    return False
                line_data["discount"] = zero  # Money.zero(price.currency): the same object
                continue
            if not _finish_line(line):
                return False
        if line_data["discount"].currency != currency:
            return False
    fee = data["shipping_fee"]
    if fee is _MISSING:
        data["shipping_fee"] = fee = zero
    elif not _ok_charge(fee, currency):
        return False
    discount = data["discount"]
    if discount is _MISSING:
        data["discount"] = discount = zero
    elif not _ok_charge(discount, currency):
        return False
    cod = data["cod_amount"]
    if cod is not None and not (
        cod.amount > 0
        and cod.currency == currency
        and cod.amount == cod.amount.quantize(_exponent(currency))
        and data["payment_method"] is order.PaymentMethod.COD
    ):
        return False
    stated = data["stated_total"]
    if stated is not None and (
        stated.currency != currency or stated.quantize() != order._gross_total(lines, fee, discount)
    ):
        return False
    if discount.amount:
        ceiling = order._gross_total(lines, fee, zero)
        if discount > ceiling:
            return False
    shipping = data["shipping_address"]
    if shipping is not None and not _finish_address(row.get("shipping_address"), shipping):
        return False
    billing = data["billing_address"]
    return billing is None or _finish_address(row.get("billing_address"), billing)


def _finish_orders(rows: Sequence[Any], items: list[order.Order]) -> bool:
    """The rules the fast schema left out, for each order built from a dict."""
    for row, item in zip(rows, items, strict=True):
        if item is row:  # an Order instance is taken as it is, as the full schema does
            continue
        if type(row) is not dict or not _finish_order(row, item):
            return False
    return True


def _rules() -> dict[type[Any], tuple[_Rewrite, _Finish | None]]:
    replace: dict[Any, Callable[[], core_schema.CoreSchema]] = {
        _key(money._validate_amount): _fast_amount,
        _key(order._validate_quantity): _fast_quantity,
        _key(_types.normalize_email): _fast_email,
    }
    order_drop = {
        _key(order.OrderLine._check_unit_price),
        _key(order.OrderLine._check_discount),
        _key(order.Order._lines_in_order_currency),
        _key(order.Order._check_shipping_fee),
        _key(order.Order._check_discount),
        _key(order.Order._discount_within_total),
        _key(order.Order._check_cod_amount),
        _key(order.Order._check_stated_total),
    }
    order_fill = {_key(order._zero_in_price_currency), _key(order._zero_in_order_currency)}
    # in an order, the customer's name rule, every UTC conversion (and the "aware" check
    # before it) and the addresses' postcode and phone rules are in the pass
    order_drop |= {
        _key(Customer._require_a_name),
        _key(_types.ensure_utc),
        _key(Address._check_postcode),
        _key(Address._check_phone),
    }
    aware = {_key(_types.ensure_utc)}

    return {
        order.Order: (_Rewrite(replace, order_drop, order_fill, aware), _finish_orders),
        Customer: (_Rewrite(replace, set(), set()), None),
    }


_BUILD_LOCK: Final = threading.Lock()


def _model_classes(node: Any) -> Iterator[type[Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _model_classes(item)
    elif isinstance(node, dict):
        if node.get("type") == "model":
            yield node["cls"]
        for key, value in node.items():
            if key not in ("metadata", "serialization"):
                yield from _model_classes(value)


@contextmanager
def _own_validators(classes: set[type[Any]]) -> Iterator[None]:
    """While the fast validator is built, let pydantic-core build each model from the
    rewritten schema: it otherwise reuses a complete model's own validator (its
    ``__pydantic_validator__``), rules and all, in place of the schema it is given."""
    saved: dict[type[Any], Any] = {}
    with _BUILD_LOCK:
        try:
            for cls in classes:
                if cls.__dict__.get("__pydantic_complete__"):
                    saved[cls] = cls.__dict__["__pydantic_complete__"]
                    type.__setattr__(cls, "__pydantic_complete__", False)
            yield
        finally:
            for cls, value in saved.items():
                type.__setattr__(cls, "__pydantic_complete__", value)


@functools.cache
def fast_list_validator(model: type[Any]) -> tuple[SchemaValidator, _Finish | None] | None:
    """The fast validator of ``list[model]`` and its final pass, or ``None`` if there is
    no fast path for ``model`` (built once per model and process).

    Raises:
        RuntimeError: if a rule the fast path relies on is no longer in the schema.
    """
    rules = _rules().get(model)
    if rules is None:
        return None
    rewrite, finish = rules
    schema = rewrite(TypeAdapter(list[model]).core_schema)  # type: ignore[valid-type]
    expected = {key for key in (*rewrite.drop, *rewrite.fill)}
    if not expected <= rewrite.seen:
        missing = sorted(getattr(f, "__qualname__", repr(f)) for f in expected - rewrite.seen)
        raise RuntimeError(f"the fast schema of {model.__name__} lost track of {missing}")
    with _own_validators(set(_model_classes(schema))):
        validator = SchemaValidator(schema)
    return validator, finish
