"""Annotated field types shared by the domain models (private: re-exported where public).

Each type is a plain ``Annotated`` alias so pydantic-core does the work; the Python
validators here are small and run once per field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    GetCoreSchemaHandler,
    StringConstraints,
    TypeAdapter,
)
from pydantic_core import core_schema

__all__ = [
    "EMAIL_PATTERN",
    "Email",
    "ExactDecimal",
    "NonEmptyStr",
    "Reference",
    "UtcDatetime",
    "WireStrEnum",
    "check_decimal_range",
    "ensure_utc",
    "normalize_email",
    "reject_float",
    "utcnow",
]

# A deliberately strict subset of RFC 5321: dot-atom local part, a domain of LDH labels
# and a letter TLD. Quoted local parts and IP-literal domains are refused on purpose.
EMAIL_PATTERN: Final = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


class WireStrEnum(StrEnum):
    """A ``StrEnum`` that pydantic writes to JSON as its text without Python code.

    pydantic's enum serialiser reads ``member.value``, a Python property, for every
    field it writes; a ``StrEnum`` member *is* its value as a string, so pydantic-core's
    own string serialiser writes the same text without calling Python at all (a
    function serialiser, even ``str.__str__``, costs a call per field). Python-mode
    dumps still return the member (that serialiser passes ``str`` subclasses through
    outside JSON mode), and the JSON schemas are unchanged.
    """

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        schema["serialization"] = core_schema.simple_ser_schema("str")  # type: ignore[index]
        return schema


def reject_float(value: Any) -> Any:
    """Refuse ``float`` before pydantic coerces it to ``Decimal`` (binary floats are inexact).

    Raises:
        ValueError: if ``value`` is a float (``bool`` and ``int`` are fine).
    """
    if isinstance(value, float):
        raise ValueError(
            f"floats are not accepted for exact amounts (got {value!r}); "
            "pass a string like '12.30', an int or a Decimal"
        )
    return value


def ensure_utc(value: datetime) -> datetime:
    """Return an aware datetime converted to UTC (naive ones are refused before this)."""
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def normalize_email(value: str) -> str:
    """Strip and lowercase an email address and check it against :data:`EMAIL_PATTERN`.

    Raises:
        ValueError: if the address is malformed or longer than 254 characters.
    """
    email = value.strip().lower()
    if len(email) > 254 or EMAIL_PATTERN.match(email) is None:
        raise ValueError("not a valid email address")
    return email


def utcnow() -> datetime:
    """The current time, aware, in UTC (the default for ``created_at`` style fields)."""
    return datetime.now(UTC)


_MAX_INTEGER_DIGITS: Final = 12
_MAX_DECIMALS: Final = 6
_SMALLEST: Final = Decimal(1).scaleb(-_MAX_DECIMALS)


def check_decimal_range(value: Decimal) -> Decimal:
    """Keep quantities and rates in a range where arithmetic with amounts stays exact.

    Raises:
        ValueError: with 12 or more integer digits, or more than 6 decimal places.
    """
    if value.adjusted() >= _MAX_INTEGER_DIGITS:
        raise ValueError(f"more than {_MAX_INTEGER_DIGITS} integer digits")
    if value != value.quantize(_SMALLEST):  # trailing zeros past the limit are harmless
        raise ValueError(f"more than {_MAX_DECIMALS} decimal places")
    return value


# The full rules, step by step; the fast paths below hand every other input to them.
_CheckedDecimal = Annotated[
    Decimal, BeforeValidator(reject_float), AfterValidator(check_decimal_range)
]
_checked_decimal: Final[TypeAdapter[Decimal]] = TypeAdapter(_CheckedDecimal)
_PLAIN_DECIMAL: Final = re.compile(
    rf"-?[0-9]{{1,{_MAX_INTEGER_DIGITS - 1}}}(?:\.[0-9]{{1,{_MAX_DECIMALS}}})?"
)
_DECIMAL_LIMIT: Final = 10 ** (_MAX_INTEGER_DIGITS - 1)


def _validate_exact_decimal(value: Any) -> Decimal:
    # One Python call: plain numeric strings, ints and Decimals in range are taken
    # here; anything else (floats, errors) gets the same result and messages as before.
    kind = type(value)
    if kind is str:
        if _PLAIN_DECIMAL.fullmatch(value) is not None:
            return Decimal(value)
    elif kind is int:
        if -_DECIMAL_LIMIT < value < _DECIMAL_LIMIT:
            return Decimal(value)
    elif kind is Decimal:
        number: Decimal = value
        if (
            number.is_finite()
            and number.adjusted() < _MAX_INTEGER_DIGITS
            and number == number.quantize(_SMALLEST)
        ):
            return number
    return _checked_decimal.validate_python(value)


ExactDecimal = Annotated[Decimal, BeforeValidator(_validate_exact_decimal)]
"""A finite ``Decimal`` that refuses floats (ints, numeric strings and Decimals pass),
with fewer than 12 integer digits and at most 6 decimal places (grams of a kilo)."""

UtcDatetime = Annotated[AwareDatetime, AfterValidator(ensure_utc)]
"""A timezone-aware datetime, converted to UTC; naive datetimes are refused."""

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
"""A string with surrounding whitespace stripped that is not empty afterwards."""

Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
"""An identifier of ours or a vendor's: 1 to 64 characters after stripping."""

Email = Annotated[str, AfterValidator(normalize_email)]
"""An email address, stripped and lowercased, checked with a strict pattern."""
