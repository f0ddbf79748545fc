"""The fast path of ListAdapter against the models' own schema (differential tests).

Whenever the fast path accepts a batch, the full schema must accept it too and build the
very same models (types, values, Decimal scales, time zones, fields set, shared
defaults). When it refuses, ListAdapter falls back to the full schema, so results and
errors are the full schema's by construction; that is checked as well.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from tests.models.factories import make_customer, make_line

from dixis_integrations.models import (
    Address,
    Customer,
    ListAdapter,
    Money,
    Order,
    PaymentMethod,
    Product,
)
from dixis_integrations.models._fast import fast_list_validator

_WHEN = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
_ORDERS = ListAdapter(Order)
_CUSTOMERS = ListAdapter(Customer)
_FULL_ORDERS: TypeAdapter[list[Order]] = TypeAdapter(list[Order])
_FULL_CUSTOMERS: TypeAdapter[list[Customer]] = TypeAdapter(list[Customer])


def _same(a: Any, b: Any, path: str = "") -> None:
    """Deep equality that also checks types, Decimal scales, tzinfo and fields set."""
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, BaseModel):
        assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__, path
        assert a.__pydantic_extra__ == b.__pydantic_extra__, path
        assert a.__dict__.keys() == b.__dict__.keys(), path
        for name in a.__dict__:
            _same(a.__dict__[name], b.__dict__[name], f"{path}.{name}")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, Decimal):
        assert a.as_tuple() == b.as_tuple(), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, datetime):
        assert a == b, f"{path}: {a!r} != {b!r}"
        assert a.tzinfo is b.tzinfo, f"{path}: {a!r} != {b!r}"
    elif isinstance(a, Enum):
        assert a is b, path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _errors(exc: ValidationError) -> tuple[str, str, str]:
    """Everything an error says: title, types, locations, messages, inputs, context."""
    return exc.title, exc.json(), str(exc)


def _fast(adapter: ListAdapter[Any], rows: list[Any]) -> list[Any] | None:
    """What the fast path alone makes of ``rows`` (``None``: refused)."""
    assert adapter._fast is not None
    rows = copy.deepcopy(rows)  # the pass may fill in models built from these rows
    try:
        items = adapter._fast.validate_python(rows)
    except ValidationError:
        return None
    finish = adapter._finish
    if finish is not None and not finish(rows, items):
        return None
    return items


def _check(adapter: ListAdapter[Any], full: TypeAdapter[Any], rows: list[Any]) -> bool:
    """Assert the differential property; return whether the fast path took the rows."""
    try:
        expected = full.validate_python(copy.deepcopy(rows))
    except ValidationError as exc:
        refused = exc
    else:
        refused = None
    if refused is not None:
        assert _fast(adapter, rows) is None, "the fast path accepted what the schema refuses"
        with pytest.raises(ValidationError) as caught:
            adapter.validate_python(copy.deepcopy(rows))
        assert _errors(caught.value) == _errors(refused)
        return False
    fast = _fast(adapter, rows)
    if fast is not None:
        _same(fast, expected)
    _same(adapter.validate_python(copy.deepcopy(rows)), expected)
    return fast is not None


def _order_row(i: int = 0) -> dict[str, Any]:
    return {
        "id": f"ord_{i}",
        "customer": {
            "id": f"cus_{i}",
            "email": f"maria{i}@example.gr",
            "first_name": "Μαρία",
            "last_name": "Παπαδοπούλου",
            "phone": "6912345678",
            "billing_address": {
                "name": "Μαρία Παπαδοπούλου",
                "street": "Ερμού",
                "number": "10",
                "city": "Αθήνα",
                "postcode": "105 63",
            },
            "created_at": _WHEN,
        },
        "lines": [
            {
                "sku": "OIL-1L",
                "name": "Ελαιόλαδο 1L",
                "quantity": 2,
                "unit_price": {"amount": "12.40", "currency": "EUR"},
                "vat_category": "reduced",
            },
            {
                "sku": "FETA-KG",
                "name": "Φέτα",
                "quantity": Decimal("0.750"),
                "unit_price": {"amount": "11.90", "currency": "EUR"},
                "vat_category": "reduced",
            },
        ],
        "created_at": _WHEN,
    }


class _Dec(Decimal):
    pass


class _Int(int):
    pass


def _mostly(common: list[Any], odd: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly common values, so that many generated batches are valid."""
    repeat = max(4, -(-5 * len(odd) // len(common)))  # odd values about one time in six
    return st.sampled_from(common * repeat + odd)  # hypothesis leans to the first entries


def _rarely(draw: st.DrawFn, one_in: int) -> bool:
    return bool(draw(st.sampled_from([False] * (one_in - 1) + [True])))


_NUMBERS = _mostly(
    ["12.40", "2", "0.750", 1, 3, Decimal("0.750"), Decimal("2"), "1.00", "9.5"],
    [
        "12.40", "0", "-0", "-0.00", "0.001", "3.505", "-1.5", "1e3", " 1.2", "1.2 ", "+1.2",
        "1.2345678901", "1.23456789012", "999999999999999", "1000000000000000",
        "123456789012", "12345678901", "0.1234567", "١٢", "", "abc", "1_000", "NaN",
        0, 1, 2, -3, 10**11, 10**11 - 1, 10**15, 10**15 - 1, -(10**15) + 1, True, False,
        1.5, 2.0, Decimal("2"), Decimal("0.750"), Decimal("1E+2"), Decimal("-0.00"),
        Decimal("NaN"), Decimal("Infinity"), Decimal("1.00000000000"),
        Decimal("0.00000010000"), Decimal("1E-7"), Decimal("1E+14"), Decimal("1E+15"),
        _Dec("1.5"), _Int(2), b"1.5", None,
    ]
)  # fmt: skip
_CURRENCIES = _mostly(["EUR"], ["USD", "JPY", "BHD", "eur", "EURO", 1])
_EMAILS = _mostly(
    ["maria@example.gr", "Maria@Example.GR", " maria@example.gr "],
    [
        "maria@example.gr", "Maria@Example.GR", "  maria@example.gr\n", "maria@example",
        "\x1fmaria@example.gr", "maria@example.gr\x1f", "\u00a0maria@example.gr",
        "\u2003maria@example.gr", "\u212aate@example.gr", "ΜΑΡΙΑ@example.gr",
        "a" * 250 + "@x.gr", "a" * 245 + "@x.gr", " " + "a" * 245 + "@x.gr ",
        "m.a.r.i.a@sub.example.gr", "maria..x@example.gr", "maria@example.gr\n\n",
        "", 5, b"maria@example.gr",
    ]
)  # fmt: skip
_TIMES = _mostly(
    [_WHEN, "2026-03-14T09:30:00Z"],
    [
        _WHEN,
        datetime(2026, 3, 14, 11, 30, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc),  # noqa: UP017 - the same object
        datetime(2026, 3, 14, 9, 30, tzinfo=timezone(timedelta(0))),
        datetime(2026, 3, 14, 9, 30),
        "2026-03-14T09:30:00Z",
        "2026-03-14T11:30:00+02:00",
        date(2026, 3, 14),
        1773480600,
    ],
)


_PHONES = _mostly(
    ["6912345678", "+306912345678", "210 1234567"],
    ["12345", "+35799123456", "99123456", "0030 691 234 5678", "", None, 5],
)
_POSTCODES = _mostly(["10563", "105 63"], ["1056", " 10563", "ABCDE", "", "12345678901234567", 5])


@st.composite
def _address(draw: st.DrawFn) -> Any:
    """An address as a row gives it: mostly a dict, sometimes a model or something odd."""
    kind = draw(st.sampled_from(["dict"] * 8 + ["model", "none", "odd"]))
    if kind == "none":
        return None
    if kind == "odd":
        return draw(st.sampled_from([[], "Ερμού 10", 5]))
    row: dict[str, Any] = {
        "name": "Μαρία Παπαδοπούλου",
        "street": "Ερμού",
        "city": "Αθήνα",
        "postcode": draw(_POSTCODES),
    }
    if draw(st.booleans()):
        row["country"] = draw(_mostly(["GR"], ["CY", "DE", "gr"]))
    for name in ("phone", "mobile"):
        if _rarely(draw, 3):
            row[name] = draw(_PHONES)
    if kind == "model":
        try:
            return Address.model_validate(row)
        except ValidationError:
            return None
    return row


def _money(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["dict"] * 12 + ["money", "number", "extra"]))
    if kind == "money":
        return Money.of("1.00", draw(st.sampled_from(["EUR", "EUR", "USD"])))
    if kind == "number":
        return draw(_NUMBERS)  # not a mapping at all
    money: dict[str, Any] = {"amount": draw(_NUMBERS)}
    if draw(st.booleans()):
        money["currency"] = draw(_CURRENCIES)
    if kind == "extra":
        money["extra"] = 1
    return money


@st.composite
def _line(draw: st.DrawFn) -> Any:
    if _rarely(draw, 10):
        currency = draw(st.sampled_from(["EUR", "USD"]))
        return make_line(unit_price=Money.of("2.00", currency), discount=Money.zero(currency))
    line: dict[str, Any] = {
        "sku": draw(_mostly(["OIL-1L", "FETA KG"], [" OIL", "", "Χ" * 65])),
        "name": draw(_mostly(["Φέτα", "  Φέτα "], ["", " "])),
        "quantity": draw(_NUMBERS),
        "unit_price": draw(st.composite(lambda d: _money(d))()),
        "vat_category": draw(_mostly(["reduced", "standard"], ["REDUCED", "x", 1])),
    }
    if draw(st.booleans()):
        line["discount"] = draw(st.composite(lambda d: _money(d))())
    if _rarely(draw, 6):
        line["unit"] = draw(st.sampled_from(["kg", "piece", "ton"]))
    if _rarely(draw, 16):
        del line[draw(st.sampled_from(sorted(line)))]
    return line


@st.composite
def _customer(draw: st.DrawFn) -> Any:
    if _rarely(draw, 10):
        return make_customer()
    row = copy.deepcopy(_order_row()["customer"])
    row["email"] = draw(_EMAILS)
    row["created_at"] = draw(_TIMES)
    row["phone"] = draw(
        _mostly(["6912345678", "+306912345678", "210 1234567", None], ["12345", "+35799123456"])
    )
    names = draw(_mostly(["both", "company"], ["none", "blank"]))
    if names in ("none", "company", "blank"):
        del row["first_name"], row["last_name"]
    if names == "company":
        row["company"] = "Αγρόκτημα"
    if names == "blank":
        row["first_name"] = "  "
    if draw(st.booleans()):
        row["billing_address"]["postcode"] = draw(_POSTCODES)
        row["billing_address"]["country"] = draw(_mostly(["GR"], ["CY", "DE", "gr"]))
        row["billing_address"]["email"] = draw(_EMAILS)
        if _rarely(draw, 3):
            row["billing_address"]["phone"] = draw(_PHONES)
    if _rarely(draw, 4):
        row["billing_address"] = draw(_address())
    if _rarely(draw, 4):
        row["shipping_address"] = draw(_address())
    if _rarely(draw, 5):
        row["consent"] = {
            "status": draw(st.sampled_from(["granted", "denied", "nope"])),
            "timestamp": draw(_TIMES),
        }
    if _rarely(draw, 7):
        row["vat_number"] = draw(st.sampled_from(["090000045", "EL090000045", "090000046"]))
    return row


@st.composite
def _order(draw: st.DrawFn) -> Any:
    row = _order_row(draw(st.integers(0, 3)))
    row["customer"] = draw(_customer())
    row["lines"] = draw(st.lists(_line(), min_size=int(not _rarely(draw, 10)), max_size=3))
    if draw(st.booleans()):
        row["created_at"] = draw(_TIMES)
    for name in ("shipping_fee", "discount", "cod_amount", "stated_total"):
        if _rarely(draw, 5):
            row[name] = draw(st.composite(lambda d: _money(d))())
    if _rarely(draw, 4):
        row["currency"] = draw(_CURRENCIES)
    if _rarely(draw, 4):
        row["payment_method"] = draw(st.sampled_from(["cod", "card", PaymentMethod.COD]))
    for name in ("shipping_address", "billing_address"):
        if _rarely(draw, 4):
            row[name] = draw(_address())
    if _rarely(draw, 10):
        row["lines"] = tuple(row["lines"])
    if _rarely(draw, 21):
        row["unknown"] = 1
    return row


def _valid_rows() -> list[dict[str, Any]]:
    rows = [_order_row(i) for i in range(3)]
    rows[1]["discount"] = {"amount": "2.00"}
    rows[1]["shipping_fee"] = {"amount": "3.50"}
    rows[1]["lines"][0]["discount"] = {"amount": "1.00"}
    rows[2]["payment_method"] = "cod"
    rows[2]["cod_amount"] = {"amount": "33.73"}
    rows[2]["stated_total"] = {"amount": "33.73"}
    return rows


def test_the_fast_path_takes_common_batches_with_the_same_result() -> None:
    rows = _valid_rows()
    assert _fast(_ORDERS, rows) is not None
    assert _check(_ORDERS, _FULL_ORDERS, rows)
    customers = [row["customer"] for row in rows]
    assert _check(_CUSTOMERS, _FULL_CUSTOMERS, customers)


def test_defaults_are_filled_in_the_right_currency() -> None:
    row = _order_row()
    row["currency"] = "USD"
    for line in row["lines"]:
        line["unit_price"]["currency"] = "USD"
    (order,) = _ORDERS.validate_python([row])
    assert order.shipping_fee is Money.zero("USD")
    assert order.discount is Money.zero("USD")
    assert all(line.discount is Money.zero("USD") for line in order.lines)
    assert "shipping_fee" not in order.model_fields_set


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (lambda r: r["lines"][0].update(discount={"amount": "99.00"}), (0, "lines", 0, "discount")),
        (lambda r: r["lines"][0]["unit_price"].update(amount="-1"), (0, "lines", 0, "unit_price")),
        (lambda r: r.update(discount={"amount": "500.00"}), (0, "discount")),
        (lambda r: r.update(shipping_fee={"amount": "3.505"}), (0, "shipping_fee")),
        (lambda r: r.update(cod_amount={"amount": "5.00"}), (0, "cod_amount")),
        (lambda r: r.update(stated_total={"amount": "1.00"}), (0, "stated_total")),
        (lambda r: r.update(currency="USD"), (0, "lines", 0, "unit_price", "currency")),
        (lambda r: r["lines"][1].update(quantity=1.5), (0, "lines", 1, "quantity")),
        (lambda r: r["customer"].update(email="nope"), (0, "customer", "email")),
        (lambda r: r.update(created_at=datetime(2026, 3, 14, 9, 30)), (0, "created_at")),
        (
            lambda r: r["customer"].update(created_at="2026-03-14T09:30:00"),
            (0, "customer", "created_at"),
        ),
        (
            lambda r: r["customer"]["billing_address"].update(postcode="1056"),
            (0, "customer", "billing_address", "postcode"),
        ),
        (
            lambda r: r.update(shipping_address={**_ADDRESS, "mobile": "12345"}),
            (0, "shipping_address", "mobile"),
        ),
        (
            lambda r: r.update(billing_address={**_ADDRESS, "country": "CY"}),
            (0, "billing_address", "postcode"),
        ),
    ],
)
def test_a_refused_batch_gets_the_schemas_errors(change: Any, loc: tuple[Any, ...]) -> None:
    row = _order_row()
    change(row)
    assert _fast(_ORDERS, [row]) is None
    with pytest.raises(ValidationError) as caught:
        _ORDERS.validate_python([row])
    with pytest.raises(ValidationError) as expected:
        _FULL_ORDERS.validate_python([row])
    assert _errors(caught.value) == _errors(expected.value)
    assert caught.value.errors()[0]["loc"] == loc


_ADDRESS = {"name": "Νίκος", "street": "Αγίου Νικολάου", "city": "Λευκωσία", "postcode": "105 63"}


def test_addresses_and_times_of_an_order_are_finished_by_the_pass() -> None:
    row = _order_row()
    row["customer"]["billing_address"]["phone"] = "210 1234567"
    row["customer"]["created_at"] = "2026-03-14T11:30:00+02:00"
    row["shipping_address"] = {**_ADDRESS, "mobile": "0030 691 234 5678"}
    row["billing_address"] = {**_ADDRESS, "country": "CY", "postcode": "1010", "phone": "99123456"}
    assert _check(_ORDERS, _FULL_ORDERS, [row])  # taken by the fast path, same models
    (order,) = _ORDERS.validate_python([row])
    assert order.customer.billing_address is not None
    assert order.customer.billing_address.postcode == "10563"
    assert order.customer.billing_address.phone == "+302101234567"
    assert order.customer.created_at == _WHEN
    assert order.customer.created_at.tzinfo is UTC
    assert order.shipping_address is not None
    assert order.shipping_address.mobile == "+306912345678"
    assert order.billing_address is not None
    assert order.billing_address.phone == "+35799123456"


def test_instances_in_a_batch_are_taken_as_they_are_and_not_changed() -> None:
    odd = make_customer().model_construct(**{**make_customer().__dict__, "phone": "6912345678"})
    row = _order_row()
    row["customer"] = odd
    row["lines"].append(make_line())
    (order,) = _ORDERS.validate_python([row])
    assert order.customer is odd
    assert odd.phone == "6912345678"  # the full schema does not revalidate it either
    assert order.lines[2] is row["lines"][2]


def test_models_without_a_fast_path_use_the_schema() -> None:
    assert fast_list_validator(Product) is None
    adapter = ListAdapter(Product)
    row = {"sku": "A", "name": "B", "vat_category": "reduced", "price": {"amount": "1"}}
    assert adapter.validate_python([row]) == TypeAdapter(list[Product]).validate_python([row])


def test_non_list_input_uses_the_schema() -> None:
    rows = (_order_row(),)
    _same(_ORDERS.validate_python(rows), _FULL_ORDERS.validate_python(rows))
    _same(_ORDERS.validate_python(iter([_order_row()])), _FULL_ORDERS.validate_python(rows))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_order(), min_size=1, max_size=3))
def test_fast_orders_match_the_schema(rows: list[Any]) -> None:
    _check(_ORDERS, _FULL_ORDERS, rows)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_customer(), min_size=1, max_size=3))
def test_fast_customers_match_the_schema(rows: list[Any]) -> None:
    _check(_CUSTOMERS, _FULL_CUSTOMERS, rows)


def test_the_generated_orders_exercise_both_paths() -> None:
    taken = refused = 0

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(_order())
    def run(row: Any) -> None:
        nonlocal taken, refused
        if _check(_ORDERS, _FULL_ORDERS, [row]):
            taken += 1
        else:
            refused += 1

    run()
    assert taken >= 10  # derandomized: the same examples on every run
    assert refused >= 10
