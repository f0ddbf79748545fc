"""Rate shopping: every configured carrier asked at once, one comparable line per carrier.

:func:`shop_rates` (threads) and :func:`ashop_rates` (asyncio) run each carrier's
``validate`` and ``quote`` concurrently with a per-carrier timeout; a carrier that refuses,
fails or times out is reported on its own line and never sinks the others. Carriers with no
rate API quote from a :class:`RateTable` (weight band x :class:`Zone`), so every carrier
can quote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dixis_integrations.errors import DixisError, FieldError, InvalidInput
from dixis_integrations.http.driver import AsyncDriver, Driver, Operation
from dixis_integrations.models._types import ExactDecimal
from dixis_integrations.models.address import Address
from dixis_integrations.models.money import Money
from dixis_integrations.models.shipping import Quote, Service, ShipmentRequest
from dixis_integrations.protocols import ShippingCarrier
from dixis_integrations.shipping._fanout import DriverChoice, run_all, run_all_async

__all__ = [
    "GREEK_VAT",
    "CarrierQuotes",
    "RateBand",
    "RateShop",
    "RateTable",
    "Zone",
    "ZoneResolver",
    "add_vat",
    "ashop_rates",
    "business_days_after",
    "shop_rates",
]

GREEK_VAT = Decimal("0.24")
"""The standard Greek VAT rate courier services are charged at."""


class Zone(StrEnum):
    """Delivery zones Greek carriers price by."""

    MAINLAND = "mainland"
    ISLANDS = "islands"
    REMOTE = "remote"
    CYPRUS = "cyprus"


# Postcode prefixes of islands without a road link: Crete (70-74), the North and East
# Aegean (81-83), the Cyclades (84), the Dodecanese (85), Corfu (490-491), Kefalonia and
# Ithaca (280-283), Zakynthos (290-291), the Saronic islands, Thassos, Samothrace and the
# Sporades. Overridable per carrier.
_ISLAND_PREFIXES = (
    "70",
    "71",
    "72",
    "73",
    "74",
    "81",
    "82",
    "83",
    "84",
    "85",
    "490",
    "491",
    "280",
    "281",
    "283",
    "290",
    "291",
    "18010",
    "18020",
    "18040",
    "18050",
    "18900",
    "64004",
    "68002",
    "37002",
    "37003",
    "37005",
    "34007",
)


class ZoneResolver(BaseModel):
    """Which zone an address is in: islands by postcode prefix, remote by exact postcode.

    Carriers publish their own remote-area lists (ACS's REM product); pass them as
    ``remote_postcodes``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    island_prefixes: tuple[str, ...] = _ISLAND_PREFIXES
    remote_postcodes: frozenset[str] = frozenset()

    def zone(self, address: Address) -> Zone:
        """The zone of ``address``."""
        if address.country == "CY":
            return Zone.CYPRUS
        if address.postcode in self.remote_postcodes:
            return Zone.REMOTE
        if address.postcode.startswith(self.island_prefixes):
            return Zone.ISLANDS
        return Zone.MAINLAND


Price = Annotated[ExactDecimal, Field(ge=0)]


class RateBand(BaseModel):
    """Prices excluding VAT for parcels up to ``max_weight_kg``, per zone."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_weight_kg: Annotated[ExactDecimal, Field(gt=0)]
    prices: dict[Zone, Price]


def add_vat(amount: Decimal, rate: Decimal = GREEK_VAT) -> Decimal:
    """``amount`` plus VAT at ``rate``, rounded half-up to the cent."""
    return (amount * (1 + rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def business_days_after(start: date, days: int) -> date:
    """The date ``days`` working days (Monday to Friday) after ``start``."""
    current = start
    left = days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


class RateTable(BaseModel):
    """A carrier's price list, for carriers with no rate API (or to override one).

    The price of a shipment is the band of its total weight in its zone; above the last
    band each started kilogram costs ``extra_kg``. Surcharges (excluding VAT) are added for
    COD, Saturday and refrigerated delivery; insurance costs ``insurance_rate`` of the
    insured value. Services other than standard multiply the base price.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    currency: str = "EUR"
    vat_rate: ExactDecimal = GREEK_VAT
    bands: tuple[RateBand, ...] = Field(min_length=1)
    extra_kg: dict[Zone, Price] = Field(default_factory=dict)
    cod_fee: Price = Decimal("0")
    saturday_fee: Price = Decimal("0")
    refrigerated_fee: Price = Decimal("0")
    insurance_rate: Price = Decimal("0")
    service_factors: dict[Service, Price] = Field(
        default_factory=lambda: {Service.STANDARD: Decimal(1)}
    )
    transit_days: dict[Zone, int] = Field(
        default_factory=lambda: {Zone.MAINLAND: 1, Zone.ISLANDS: 3, Zone.REMOTE: 3, Zone.CYPRUS: 4}
    )
    zones: ZoneResolver = ZoneResolver()

    @model_validator(mode="after")
    def _bands_ascending(self) -> RateTable:
        weights = [b.max_weight_kg for b in self.bands]
        if weights != sorted(weights) or len(set(weights)) != len(weights):
            raise ValueError("bands must be in strictly ascending max_weight_kg order")
        return self

    def base_price(self, weight_kg: Decimal, zone: Zone) -> Decimal:
        """The price excluding VAT of ``weight_kg`` to ``zone``, before surcharges.

        Raises:
            InvalidInput: if the table has no price for ``zone`` or for this weight.
        """
        for band in self.bands:
            if weight_kg <= band.max_weight_kg:
                if zone not in band.prices:
                    break
                return band.prices[zone]
        else:
            last = self.bands[-1]
            if zone in last.prices and zone in self.extra_kg:
                extra = weight_kg - last.max_weight_kg
                whole = int(extra.to_integral_value(rounding="ROUND_CEILING"))
                return last.prices[zone] + self.extra_kg[zone] * whole
        raise InvalidInput(
            "no rate for this shipment",
            errors=(FieldError(("parcels",), f"no price for {weight_kg} kg to {zone.value}"),),
        )

    def quotes(self, carrier: str, request: ShipmentRequest, today: date) -> list[Quote]:
        """The quote(s) for ``request``: one per service the table prices."""
        factor = self.service_factors.get(request.service)
        if factor is None:
            return []
        zone = self.zones.zone(request.recipient)
        price = self.base_price(request.total_weight_kg, zone) * factor
        options = request.options
        if options.cod is not None:
            price += self.cod_fee
        if options.saturday:
            price += self.saturday_fee
        if options.refrigerated:
            price += self.refrigerated_fee
        if options.insurance is not None:
            price += options.insurance.amount * self.insurance_rate
        excl = price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        days = self.transit_days.get(zone)
        if request.service is Service.SAME_DAY:
            days = 0
        return [
            Quote(
                carrier=carrier,
                service=request.service,
                price_excl_vat=Money.of(excl, self.currency),
                price_incl_vat=Money.of(add_vat(excl, self.vat_rate), self.currency),
                transit_days=days,
                estimated_delivery=business_days_after(today, days) if days is not None else None,
                source="rate_table",
            )
        ]


@dataclass(frozen=True)
class CarrierQuotes:
    """One carrier's line in a rate shop: its quotes, or why it has none."""

    carrier: str
    quotes: tuple[Quote, ...] = ()
    error: DixisError | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the carrier answered with at least one quote."""
        return self.error is None and bool(self.quotes)


@dataclass(frozen=True)
class RateShop:
    """All carriers' lines, in the order the carriers were given."""

    lines: tuple[CarrierQuotes, ...] = field(default_factory=tuple)

    def quotes(self) -> list[Quote]:
        """Every quote, cheapest first (price including VAT, then transit days)."""
        found = [q for line in self.lines for q in line.quotes]
        return sorted(found, key=lambda q: (q.price_incl_vat.amount, q.transit_days or 0))

    def cheapest(self) -> Quote | None:
        """The cheapest quote, if any carrier quoted."""
        found = self.quotes()
        return found[0] if found else None

    def failures(self) -> dict[str, DixisError]:
        """The carriers that gave no quote, with their error."""
        return {line.carrier: line.error for line in self.lines if line.error is not None}

    def line(self, carrier: str) -> CarrierQuotes:
        """The line of one carrier."""
        for line in self.lines:
            if line.carrier == carrier:
                return line
        raise KeyError(carrier)


def _validated(carrier: ShippingCarrier, request: ShipmentRequest) -> Operation[list[Quote]]:
    # validate() runs inside the job, so a refusal lands on the carrier's own line.
    carrier.validate(request)
    return (yield from carrier.quote(request))


def _lines(
    carriers: Sequence[ShippingCarrier],
    outcomes: Sequence[tuple[list[Quote] | DixisError, float]],
) -> RateShop:
    lines = []
    for carrier, (outcome, elapsed) in zip(carriers, outcomes, strict=True):
        if isinstance(outcome, DixisError):
            lines.append(CarrierQuotes(carrier.name, error=outcome, elapsed=elapsed))
        else:
            lines.append(CarrierQuotes(carrier.name, tuple(outcome), elapsed=elapsed))
    return RateShop(tuple(lines))


def shop_rates(
    request: ShipmentRequest,
    carriers: Iterable[ShippingCarrier],
    driver: DriverChoice[Driver],
    *,
    timeout: float = 10.0,
) -> RateShop:
    """Ask every carrier for prices at once, on threads.

    Args:
        request: what to send.
        carriers: the carriers to ask.
        driver: one :class:`Driver` for all, or one per carrier name.
        timeout: seconds each carrier has; a slower one gets a ``ProviderTimeout`` line.
    """
    chosen = list(carriers)
    outcomes = run_all([(c.name, _validated(c, request)) for c in chosen], driver, timeout=timeout)
    return _lines(chosen, outcomes)


async def ashop_rates(
    request: ShipmentRequest,
    carriers: Iterable[ShippingCarrier],
    driver: DriverChoice[AsyncDriver],
    *,
    timeout: float = 10.0,
) -> RateShop:
    """:func:`shop_rates` on asyncio (``asyncio.gather`` over the carriers)."""
    chosen = list(carriers)
    outcomes = await run_all_async(
        [(c.name, _validated(c, request)) for c in chosen], driver, timeout=timeout
    )
    return _lines(chosen, outcomes)
