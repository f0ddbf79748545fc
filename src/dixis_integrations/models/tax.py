"""VAT categories, rates per country, and VAT extraction rounded per line.

Greek rates are built in (24/13/6, island 17/9/4, zero, exempt); other countries come
from configuration. Every lookup failure is a ``ConfigurationError``; VAT amounts are
rounded to the currency's minor unit (ROUND_HALF_UP) so that ``net + vat == gross``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from dixis_integrations.errors import ConfigurationError
from dixis_integrations.models._types import ExactDecimal, WireStrEnum
from dixis_integrations.models.money import Money

__all__ = [
    "GREEK_VAT_RATES",
    "VatCategory",
    "VatRate",
    "VatTable",
    "net_from_gross",
    "vat_from_gross",
    "vat_from_net",
]

_HUNDRED: Final = Decimal(100)


class VatCategory(WireStrEnum):
    """The VAT treatment of a product or charge; the rate comes from a :class:`VatTable`.

    The ``ISLAND_*`` categories are Greece's 30% reduced rates for certain Aegean
    islands. ``ZERO`` is taxable at 0% (e.g. intra-EU supplies); ``EXEMPT`` is outside
    VAT altogether. Both have a 0 rate but accountants book them differently.
    """

    STANDARD = "standard"
    REDUCED = "reduced"
    SUPER_REDUCED = "super_reduced"
    ISLAND_STANDARD = "island_standard"
    ISLAND_REDUCED = "island_reduced"
    ISLAND_SUPER_REDUCED = "island_super_reduced"
    ZERO = "zero"
    EXEMPT = "exempt"


GREEK_VAT_RATES: Final[Mapping[VatCategory, Decimal]] = MappingProxyType(
    {
        VatCategory.STANDARD: Decimal(24),
        VatCategory.REDUCED: Decimal(13),
        VatCategory.SUPER_REDUCED: Decimal(6),
        VatCategory.ISLAND_STANDARD: Decimal(17),
        VatCategory.ISLAND_REDUCED: Decimal(9),
        VatCategory.ISLAND_SUPER_REDUCED: Decimal(4),
        VatCategory.ZERO: Decimal(0),
        VatCategory.EXEMPT: Decimal(0),
    }
)
"""Greek VAT rates in percent (Code of VAT, art. 21; islands: 30% reduction)."""

_Percent = Annotated[ExactDecimal, Field(ge=0, lt=100)]
_Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class VatRate(BaseModel):
    """One rate: ``VatRate(category=VatCategory.REDUCED, rate=Decimal(13), country="GR")``.

    ``rate`` is a percentage (``13`` means 13%).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: VatCategory
    rate: _Percent
    country: _Country = "GR"

    @property
    def exempt(self) -> bool:
        """True for the ``EXEMPT`` category (outside VAT, not merely 0%)."""
        return self.category is VatCategory.EXEMPT

    @property
    def fraction(self) -> Decimal:
        """The rate as a fraction: ``0.24`` for 24%."""
        return self.rate / _HUNDRED


_RateInput = Mapping[VatCategory, str | int | Decimal] | Mapping[str, str | int | Decimal]


class VatTable:
    """VAT rates per country (ISO 3166 alpha-2) and category. Immutable.

    ``VatTable.greece()`` holds the Greek rates. Other countries are configured with
    :meth:`from_mapping` (or the constructor, which takes the same mapping); a missing
    country or category is a ``ConfigurationError``, never a silent default.
    """

    __slots__ = ("_rates",)

    def __init__(self, rates: Mapping[str, _RateInput]) -> None:
        """Build a table from ``{country: {category: percent}}``.

        Args:
            rates: country code -> category (a :class:`VatCategory` or its value, any
                case) -> percent as a string, int or Decimal (floats are refused).

        Raises:
            ConfigurationError: for an unknown category, a malformed country code, or a
                rate that is not a number in ``[0, 100)``; ``key`` names the entry.
        """
        parsed: dict[str, Mapping[VatCategory, Decimal]] = {}
        for country, by_category in rates.items():
            key = str(country)
            if not isinstance(country, str) or len(country) != 2 or not country.isalpha():
                raise ConfigurationError("not an ISO 3166 alpha-2 country code", key=key)
            entries: dict[VatCategory, Decimal] = {}
            for name, value in by_category.items():
                entry = f"{key}.{name.value if isinstance(name, VatCategory) else name}"
                try:
                    category = VatCategory(str(name).lower())
                except ValueError:
                    known = ", ".join(c.value for c in VatCategory)
                    raise ConfigurationError(
                        f"unknown VAT category (known: {known})", key=entry
                    ) from None
                entries[category] = _parse_percent(value, entry)
            parsed[country.upper()] = MappingProxyType(entries)
        self._rates: Mapping[str, Mapping[VatCategory, Decimal]] = MappingProxyType(parsed)

    @classmethod
    def greece(cls) -> VatTable:
        """The built-in table with Greece's rates only (shared, immutable)."""
        return _GREECE

    @classmethod
    def from_mapping(
        cls,
        mapping: Mapping[str, Mapping[str, str | int | Decimal]],
        *,
        base: VatTable | None = None,
    ) -> VatTable:
        """Build a table from configuration: ``{"CY": {"standard": "19", "reduced": "9"}}``.

        Args:
            mapping: country code -> category name (a :class:`VatCategory` value, any
                case) -> percent as a string, int or Decimal (floats are refused).
            base: a table to extend; its countries are kept unless ``mapping`` replaces
                them (pass ``VatTable.greece()`` to keep Greece available).

        Raises:
            ConfigurationError: for an unknown category, a malformed country code, or a
                rate that is not a number in ``[0, 100)``; ``key`` names the entry.
        """
        merged: dict[str, _RateInput] = {}
        if base is not None:
            merged.update(base.rates)
        for country, by_category in mapping.items():
            if isinstance(country, str):
                merged.pop(country.upper(), None)
            merged[country] = by_category
        return cls(merged)

    @property
    def rates(self) -> Mapping[str, Mapping[VatCategory, Decimal]]:
        """The rates, read-only: ``{"GR": {VatCategory.STANDARD: Decimal(24), ...}}``."""
        return self._rates

    def countries(self) -> frozenset[str]:
        """The country codes this table has rates for."""
        return frozenset(self._rates)

    def rate(self, category: VatCategory | str, country: str = "GR") -> Decimal:
        """The rate in percent for ``category`` in ``country``.

        Args:
            category: a :class:`VatCategory` or its value (``"reduced"``).
            country: ISO 3166 alpha-2 code, default ``"GR"``.

        Raises:
            ConfigurationError: if the country or the category is not configured.
        """
        by_category = self._rates.get(country)
        if by_category is None:
            raise ConfigurationError(
                f"no VAT rates configured for {country!r}", key=f"vat.{country}"
            )
        try:
            cat = VatCategory(category)
        except ValueError:
            raise ConfigurationError(
                f"unknown VAT category {category!r}", key=f"vat.{country}"
            ) from None
        value = by_category.get(cat)
        if value is None:
            raise ConfigurationError(
                f"no {cat.value} VAT rate configured", key=f"vat.{country}.{cat.value}"
            )
        return value

    def vat_rate(self, category: VatCategory | str, country: str = "GR") -> VatRate:
        """Like :meth:`rate`, as a :class:`VatRate` value object.

        Raises:
            ConfigurationError: if the country or the category is not configured.
        """
        value = self.rate(category, country)
        return VatRate.model_construct(category=VatCategory(category), rate=value, country=country)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VatTable):
            return NotImplemented
        return _plain(self._rates) == _plain(other._rates)

    def __hash__(self) -> int:
        return hash(frozenset((c, frozenset(r.items())) for c, r in self._rates.items()))

    def __repr__(self) -> str:
        return f"VatTable({_plain(self._rates)!r})"


def _plain(
    rates: Mapping[str, Mapping[VatCategory, Decimal]],
) -> dict[str, dict[VatCategory, Decimal]]:
    return {country: dict(by_category) for country, by_category in rates.items()}


def _parse_percent(value: object, key: str) -> Decimal:
    if isinstance(value, float | bool) or not isinstance(value, str | int | Decimal):
        raise ConfigurationError(f"rate must be a string, int or Decimal, not {value!r}", key=key)
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise ConfigurationError(f"rate {value!r} is not a number", key=key) from None
    if not rate.is_finite() or not 0 <= rate < _HUNDRED:
        raise ConfigurationError(f"rate {value!r} must be in [0, 100)", key=key)
    return rate


_GREECE: Final = VatTable({"GR": GREEK_VAT_RATES})


def _percent(rate: Decimal | int | VatRate) -> Decimal:
    if isinstance(rate, VatRate):
        return rate.rate
    if isinstance(rate, bool) or not isinstance(rate, int | Decimal):
        raise TypeError(f"rate must be a Decimal, int or VatRate, not {type(rate).__name__}")
    if isinstance(rate, Decimal) and not rate.is_finite():
        raise ValueError("rate must be finite")
    if rate < 0:
        raise ValueError("rate must not be negative")
    return Decimal(rate)


def vat_from_gross(
    gross: Money, rate: Decimal | int | VatRate, *, rounding: str = ROUND_HALF_UP
) -> Money:
    """The VAT contained in a VAT-inclusive amount: ``gross * rate / (100 + rate)``.

    Args:
        gross: the amount including VAT (one line, or one category's total).
        rate: percent (``Decimal(24)``) or a :class:`VatRate`.
        rounding: decimal rounding mode, default ``ROUND_HALF_UP``.

    Returns:
        The VAT, rounded to the currency's minor unit.

    Raises:
        TypeError: if ``rate`` is a float or another non-number.
        ValueError: if ``rate`` is negative or not finite.
    """
    pct = _percent(rate)
    if not pct:
        return Money.zero(gross.currency)
    vat = Money.model_construct(
        amount=gross.amount * pct / (_HUNDRED + pct), currency=gross.currency
    )
    return vat.quantize(rounding)


def vat_from_net(
    net: Money, rate: Decimal | int | VatRate, *, rounding: str = ROUND_HALF_UP
) -> Money:
    """The VAT due on a VAT-exclusive amount: ``net * rate / 100``.

    Args:
        net: the amount before VAT.
        rate: percent (``Decimal(13)``) or a :class:`VatRate`.
        rounding: decimal rounding mode, default ``ROUND_HALF_UP``.

    Returns:
        The VAT, rounded to the currency's minor unit.

    Raises:
        TypeError: if ``rate`` is a float or another non-number.
        ValueError: if ``rate`` is negative or not finite.
    """
    pct = _percent(rate)
    vat = Money.model_construct(amount=net.amount * pct / _HUNDRED, currency=net.currency)
    return vat.quantize(rounding)


def net_from_gross(
    gross: Money, rate: Decimal | int | VatRate, *, rounding: str = ROUND_HALF_UP
) -> Money:
    """The net part of a VAT-inclusive amount: ``gross - vat_from_gross(gross, rate)``.

    Subtracting (rather than dividing and rounding again) guarantees
    ``net + vat == gross`` to the cent when ``gross`` is itself in whole minor units.

    Args:
        gross: the amount including VAT.
        rate: percent or a :class:`VatRate`.
        rounding: decimal rounding mode for the VAT, default ``ROUND_HALF_UP``.

    Raises:
        TypeError: if ``rate`` is a float or another non-number.
        ValueError: if ``rate`` is negative or not finite.
    """
    return gross - vat_from_gross(gross, rate, rounding=rounding)
