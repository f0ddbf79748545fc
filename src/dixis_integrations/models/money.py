"""Money: an exact ``Decimal`` amount with an ISO 4217 currency, never a float.

Arithmetic and comparisons only mix equal currencies (else :class:`CurrencyMismatch`);
rounding happens only when asked (:meth:`Money.quantize`), with an explicit mode.
JSON form: ``{"amount": "12.30", "currency": "EUR"}`` (the amount is a string).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from fractions import Fraction
from typing import Annotated, Any, Final, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    StringConstraints,
    TypeAdapter,
)
from pydantic_core import core_schema

from dixis_integrations.errors import FieldError, InvalidInput

__all__ = [
    "Currency",
    "CurrencyMismatch",
    "Money",
    "minor_units",
]

# ISO 4217 minor units for the currencies whose exponent is not 2. Everything else is 2.
_MINOR_UNITS: Final[dict[str, int]] = {
    "BHD": 3,
    "BIF": 0,
    "CLF": 4,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "RWF": 0,
    "TND": 3,
    "UGX": 0,
    "UYI": 0,
    "UYW": 4,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}
_EXPONENTS: dict[str, Decimal] = {}
_MAX_INTEGER_DIGITS: Final = 15
_MAX_DECIMALS: Final = 10
_SMALLEST: Final = Decimal(1).scaleb(-_MAX_DECIMALS)
# Products of an amount (25 digits at most) and a quantity (18 at most) are exact here.
_EXACT: Final = Context(prec=60)
_NEW: Final = object.__new__
_SET: Final = object.__setattr__


def minor_units(currency: str) -> int:
    """The number of decimal places of ``currency``'s minor unit (ISO 4217).

    Args:
        currency: an ISO 4217 code such as ``"EUR"`` (2) or ``"JPY"`` (0).

    Returns:
        The exponent; currencies not in the exception table use 2.
    """
    return _MINOR_UNITS.get(currency, 2)


def _exponent(currency: str) -> Decimal:
    exp = _EXPONENTS.get(currency)
    if exp is None:
        exp = _EXPONENTS[currency] = Decimal(1).scaleb(-minor_units(currency))
    return exp


def _times(amount: Decimal, factor: Decimal | int, exponent: Decimal | None = None) -> Decimal:
    """``amount * factor`` computed exactly; rounded half up to ``exponent`` if given."""
    product = _EXACT.multiply(amount, factor)
    if exponent is None:
        return product
    return product.quantize(exponent, rounding=ROUND_HALF_UP, context=_EXACT)


def _check_amount_input(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError(
            f"floats are not accepted for money (got {value!r}); "
            "pass a string like '12.30', an int or a Decimal"
        )
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    return value


def _check_amount_range(value: Decimal) -> Decimal:
    # Bounded so that every amount, and its product with a quantity, fits the default
    # 28-digit decimal context: arithmetic stays exact and quantize() cannot overflow.
    # (pydantic's max_digits/decimal_places say the same but cost four times as much.)
    if value.adjusted() >= _MAX_INTEGER_DIGITS:
        raise ValueError(f"amount has more than {_MAX_INTEGER_DIGITS} integer digits")
    if value != value.quantize(_SMALLEST):  # trailing zeros past the limit are harmless
        raise ValueError(f"amount has more than {_MAX_DECIMALS} decimal places")
    return value


class _AmountAsText:
    """Writes an amount to JSON as ``format(amount, "f")`` (``"12.30"``, never ``1E+1``).

    pydantic-core calls the built-in ``format`` itself: no Python function per amount.
    The serialisation JSON schema says ``string``, as a ``PlainSerializer`` returning
    ``str`` would.
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        schema["serialization"] = core_schema.format_ser_schema("f", when_used="json")  # type: ignore[index]
        return schema


Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""An ISO 4217 alphabetic code: three upper-case ASCII letters."""

# The full rules, step by step: pydantic's decimal parsing between our two checks. Every
# input the fast paths below do not take goes through it, so errors are unchanged.
_checked_amount: Final[TypeAdapter[Decimal]] = TypeAdapter(
    Annotated[Decimal, BeforeValidator(_check_amount_input), AfterValidator(_check_amount_range)]
)
# Plain amounts as adapters and JSON carry them ("12.30", "-0.5"): valid by their shape.
_PLAIN_AMOUNT: Final = re.compile(
    rf"-?[0-9]{{1,{_MAX_INTEGER_DIGITS}}}(?:\.[0-9]{{1,{_MAX_DECIMALS}}})?"
)
_AMOUNT_LIMIT: Final = 10**_MAX_INTEGER_DIGITS


def _validate_amount(value: Any) -> Decimal:
    # One Python call per amount: the common inputs (a plain numeric string, an int in
    # range, a finite Decimal in range) are accepted here; everything else, floats and
    # errors included, takes the step-by-step rules for the same result and messages.
    kind = type(value)
    if kind is str:
        if _PLAIN_AMOUNT.fullmatch(value) is not None:
            return Decimal(value)
    elif kind is int:
        if -_AMOUNT_LIMIT < value < _AMOUNT_LIMIT:
            return Decimal(value)
    elif kind is Decimal:
        number: Decimal = value
        if (
            number.is_finite()
            and number.adjusted() < _MAX_INTEGER_DIGITS
            and number == number.quantize(_SMALLEST)
        ):
            return number
    return _checked_amount.validate_python(value)


_Amount = Annotated[
    Decimal,
    BeforeValidator(_validate_amount),  # pydantic's decimal step then passes it through
    _AmountAsText(),
]


class CurrencyMismatch(InvalidInput, ValueError):
    """Two amounts in different currencies were combined or compared.

    It is also a ``ValueError``, so inside a model validator it becomes a pydantic
    ``ValidationError`` at the field being validated.
    """

    code = "currency_mismatch"

    def __init__(self, left: str, right: str, operation: str) -> None:
        super().__init__(
            f"cannot {operation} {left} and {right}",
            errors=(FieldError(("currency",), f"{left} != {right}", code=self.code),),
        )
        self.left = left
        self.right = right


_ZEROS: dict[tuple[type[Money], str], Money] = {}


class Money(BaseModel):
    """An amount of one currency. Immutable, hashable, exact.

    ``Money(amount="12.30")`` or ``Money.of("12.30", "EUR")``; floats are refused, as are
    NaN and infinities, amounts of 10**15 or more and more than 10 decimal places (so
    that arithmetic never leaves the exact range of the decimal context). The amount
    keeps the scale it was given (``"12.3"`` stays ``12.3``) until :meth:`quantize`
    rounds it to the currency's minor unit.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: _Amount
    currency: Currency = "EUR"

    # -- construction ---------------------------------------------------------------

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str = "EUR") -> Self:
        """Build and validate an amount: ``Money.of("12.30", "EUR")``.

        Args:
            amount: a numeric string, an int or a Decimal (never a float).
            currency: ISO 4217 code, default ``"EUR"``.

        Raises:
            pydantic.ValidationError: if the amount or the currency is invalid.
        """
        return cls(amount=amount, currency=currency)

    @classmethod
    def zero(cls, currency: str = "EUR") -> Self:
        """Zero in ``currency`` (validated).

        Raises:
            pydantic.ValidationError: if the currency code is invalid.
        """
        if type(currency) is not str:
            return cls(amount=Decimal(0), currency=currency)
        key = (cls, currency)
        zero = _ZEROS.get(key)
        if zero is None:  # validated once per currency; the value is immutable
            zero = _ZEROS[key] = cls(amount=Decimal(0), currency=currency)
        return zero  # type: ignore[return-value]

    @classmethod
    def from_cents(cls, cents: int, currency: str = "EUR") -> Self:
        """Build from an integer count of minor units: ``from_cents(1230)`` is 12.30 EUR.

        Args:
            cents: minor units (cents for EUR, yen for JPY, fils for BHD).
            currency: ISO 4217 code.

        Raises:
            TypeError: if ``cents`` is not an int.
            pydantic.ValidationError: if the currency code is invalid.
        """
        if not isinstance(cents, int) or isinstance(cents, bool):
            raise TypeError(f"cents must be an int, not {type(cents).__name__}")
        return cls(amount=Decimal(cents).scaleb(-minor_units(currency)), currency=currency)

    @classmethod
    def _trusted(cls, amount: Decimal, currency: str) -> Self:
        # For amounts computed from already valid ones: skip revalidation. This is what
        # ``model_construct`` does, without its per-call field scan, which made it the
        # most expensive step of computing an order's totals.
        new = _NEW(cls)
        _SET(new, "__dict__", {"amount": amount, "currency": currency})
        _SET(new, "__pydantic_fields_set__", {"amount", "currency"})
        _SET(new, "__pydantic_extra__", None)
        _SET(new, "__pydantic_private__", None)
        return new

    def _new(self, amount: Decimal) -> Self:
        return self._trusted(amount, self.currency)

    # -- properties -----------------------------------------------------------------

    @property
    def cents(self) -> int:
        """The amount in integer minor units (``12.30 EUR`` -> ``1230``).

        Raises:
            ValueError: if the amount has more decimals than the currency's minor unit;
                call :meth:`quantize` first to choose how to round.
        """
        scaled = self.amount.scaleb(minor_units(self.currency))
        if scaled != scaled.to_integral_value():
            raise ValueError(
                f"{self} has more decimals than {self.currency} allows; quantize() it first"
            )
        return int(scaled)

    @property
    def is_zero(self) -> bool:
        """True when the amount is zero (of any scale or sign)."""
        return not self.amount

    @property
    def is_positive(self) -> bool:
        """True when the amount is greater than zero."""
        return self.amount > 0

    @property
    def is_negative(self) -> bool:
        """True when the amount is less than zero."""
        return self.amount < 0

    # -- rounding and splitting -----------------------------------------------------

    def quantize(self, rounding: str = ROUND_HALF_UP) -> Self:
        """Round to the currency's minor unit (EUR 2 places, JPY 0, BHD 3).

        Args:
            rounding: a :mod:`decimal` rounding mode, default ``ROUND_HALF_UP`` (ties away
                from zero, the commercial rule in Greece); e.g. ``ROUND_HALF_EVEN``.

        Raises:
            ValueError: if ``rounding`` is not a decimal rounding mode.
        """
        try:
            return self._new(self.amount.quantize(_exponent(self.currency), rounding=rounding))
        except (TypeError, InvalidOperation) as exc:  # pragma: no cover - defensive
            raise ValueError(f"cannot quantize {self} with rounding {rounding!r}") from exc

    def allocate(self, weights: Sequence[int | Decimal]) -> list[Self]:
        """Split into parts proportional to ``weights`` without losing a minor unit.

        Uses the largest-remainder method: each part gets its floor share, and the
        remaining minor units go one by one to the largest remainders (earlier parts
        first on ties). The parts always sum exactly to ``self``.

        Args:
            weights: non-negative ints or Decimals, at least one of them positive.

        Returns:
            One Money per weight, each a whole number of minor units.

        Raises:
            ValueError: if weights are empty, negative, all zero or floats, or if the
                amount is not a whole number of minor units (quantize first).
        """
        if not weights:
            raise ValueError("allocate() needs at least one weight")
        for weight in weights:
            if isinstance(weight, float | bool) or not isinstance(weight, int | Decimal):
                raise ValueError(f"weights must be ints or Decimals, not {weight!r}")
            if isinstance(weight, Decimal) and not weight.is_finite():
                raise ValueError("weights must be finite")
            if weight < 0:
                raise ValueError("weights must not be negative")
        # Exact integer arithmetic: Decimal weights are scaled to integers first.
        if all(isinstance(w, int) for w in weights):
            scaled = [int(w) for w in weights]
        else:
            fractions = [Fraction(w) for w in weights]
            denominator = math.lcm(*(f.denominator for f in fractions))
            scaled = [int(f * denominator) for f in fractions]
        total_weight = sum(scaled)
        if total_weight == 0:
            raise ValueError("at least one weight must be positive")
        total = self.cents
        sign = -1 if total < 0 else 1
        remaining = abs(total)
        floors: list[int] = []
        remainders: list[int] = []
        for weight in scaled:
            share, remainder = divmod(remaining * weight, total_weight)
            floors.append(share)
            remainders.append(remainder)
        leftover = remaining - sum(floors)
        if leftover:
            order = sorted(range(len(scaled)), key=lambda i: (-remainders[i], i))
            for i in order[:leftover]:
                floors[i] += 1
        exp = minor_units(self.currency)
        return [self._new(Decimal(sign * c).scaleb(-exp)) for c in floors]

    # -- arithmetic -----------------------------------------------------------------

    def _check(self, other: Money, operation: str) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(self.currency, other.currency, operation)

    def __add__(self, other: object) -> Self:
        if not isinstance(other, Money):
            return NotImplemented
        self._check(other, "add")
        return self._new(self.amount + other.amount)

    def __radd__(self, other: object) -> Self:
        # Lets sum() start from its default 0; any other non-Money operand is refused.
        # Note that sum([]) is still the int 0: pass a start, sum(parts, Money.zero(cur)).
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: object) -> Self:
        if not isinstance(other, Money):
            return NotImplemented
        self._check(other, "subtract")
        return self._new(self.amount - other.amount)

    def __mul__(self, factor: object) -> Self:
        if isinstance(factor, bool) or not isinstance(factor, int | Decimal):
            return NotImplemented
        if isinstance(factor, Decimal) and not factor.is_finite():
            raise ValueError("cannot multiply money by a non-finite Decimal")
        return self._new(_times(self.amount, factor))

    __rmul__ = __mul__

    def __neg__(self) -> Self:
        return self._new(-self.amount)

    def __pos__(self) -> Self:
        return self

    def __abs__(self) -> Self:
        return self._new(abs(self.amount))

    # -- comparisons (within one currency) ---------------------------------------------

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._check(other, "compare")
        return self.amount < other.amount

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._check(other, "compare")
        return self.amount <= other.amount

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._check(other, "compare")
        return self.amount > other.amount

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._check(other, "compare")
        return self.amount >= other.amount

    def __str__(self) -> str:
        return f"{format(self.amount, 'f')} {self.currency}"
