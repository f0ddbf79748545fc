"""What every built-in carrier adapter shares (private): validation, rate tables, clocks.

Adapters subclass :class:`CarrierBase`, declare their :class:`CarrierRules` and add their
own checks in ``_extra_checks``; everything vendor-specific stays in their module.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dixis_integrations.errors import FieldError, InvalidInput, NotSupported
from dixis_integrations.http.driver import Operation
from dixis_integrations.models.address import Address, split_street
from dixis_integrations.models.shipping import (
    LabelFormat,
    Quote,
    Shipment,
    ShipmentRequest,
)
from dixis_integrations.protocols import Capability
from dixis_integrations.shipping.rates import RateBand, RateTable, Zone
from dixis_integrations.shipping.validation import CarrierRules, check_request, raise_if_invalid

__all__ = [
    "ATHENS",
    "CarrierBase",
    "SessionCache",
    "default_rate_table",
    "json_bytes",
    "national_phone",
    "require_cancellable",
    "street_and_number",
    "today_in_athens",
]

ATHENS = ZoneInfo("Europe/Athens")


_DECIMAL_MARK = re.compile(r'"\\u0000dec:(-?[0-9.]+)\\u0000"')


def json_bytes(body: Any) -> bytes:
    """JSON with Decimals written as exact JSON numbers (``Decimal("1.20")`` -> ``1.20``).

    The standard encoder would need a float for that; a marked string is swapped for the
    number text instead, so no amount or weight ever passes through binary floating point.
    """

    def mark(value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"\x00dec:{value:f}\x00"
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    text = json.dumps(body, default=mark, ensure_ascii=False, separators=(",", ":"))
    return _DECIMAL_MARK.sub(lambda m: m.group(1), text).encode()


def today_in_athens() -> date:
    """Today's date where the carriers work."""
    return datetime.now(UTC).astimezone(ATHENS).date()


def national_phone(e164: str | None) -> str:
    """A Greek or Cypriot E.164 number without its country code (carriers want that)."""
    if not e164:
        return ""
    for prefix in ("+30", "+357"):
        if e164.startswith(prefix):
            return e164[len(prefix) :]
    return e164


def street_and_number(address: Address) -> tuple[str, str]:
    """Street and house number, split from the street line when ``number`` is not set."""
    if address.number:
        return address.street, address.number
    street, number = split_street(address.street)
    return street, number or ""


def default_rate_table(
    mainland: str,
    islands: str,
    remote: str,
    extra_kg: str,
    *,
    cod_fee: str = "1.50",
    cyprus: str | None = None,
) -> RateTable:
    """An indicative price list (excluding VAT) for a carrier without a rate API.

    Bands of 2, 5 and 10 kg; each band adds a third of the first band's price. Replace it
    with the prices of your own contract through the adapter's config.
    """
    base = {Zone.MAINLAND: Decimal(mainland), Zone.ISLANDS: Decimal(islands)}
    base[Zone.REMOTE] = Decimal(remote)
    if cyprus is not None:
        base[Zone.CYPRUS] = Decimal(cyprus)
    bands = []
    for i, kg in enumerate(("2", "5", "10")):
        prices = {z: (p * (3 + i) / 3).quantize(Decimal("0.01")) for z, p in base.items()}
        bands.append(RateBand(max_weight_kg=Decimal(kg), prices=prices))
    step = Decimal(extra_kg)
    return RateTable(
        bands=tuple(bands),
        extra_kg={z: step if z is Zone.MAINLAND else step * 2 for z in base},
        cod_fee=Decimal(cod_fee),
        saturday_fee=Decimal("4.00"),
        refrigerated_fee=Decimal("3.50"),
        insurance_rate=Decimal("0.005"),
    )


def require_cancellable(shipment: Shipment, vendor: str) -> None:
    """Refuse, before sending, to cancel a shipment already handed over."""
    if shipment.finalised or not shipment.cancellable:
        raise InvalidInput(
            "the shipment can no longer be cancelled",
            errors=(
                FieldError(
                    ("shipment", "finalised"),
                    "it is on a pickup list or manifest; cancel it with the carrier",
                    code="not_cancellable",
                ),
            ),
            vendor=vendor,
        )


class SessionCache:
    """One session key or token per adapter, shared by its threads and tasks.

    Carriers that log in (Speedex sessions, Geniki keys, BOX NOW tokens) keep the key here
    until it expires or the carrier rejects it; :meth:`forget` only drops the key that was
    rejected, so a key another caller just renewed survives.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: tuple[str, float] | None = None

    def get(self) -> str | None:
        """The cached key, if it has not expired."""
        with self._lock:
            if self._value is None or self._value[1] <= time.monotonic():
                return None
            return self._value[0]

    def set(self, key: str, lifetime: float = float("inf")) -> None:
        """Keep ``key`` for ``lifetime`` real seconds."""
        with self._lock:
            self._value = (key, time.monotonic() + lifetime)

    def forget(self, key: str) -> None:
        """Drop ``key`` if it is still the cached one."""
        with self._lock:
            if self._value is not None and self._value[0] == key:
                self._value = None

    def __repr__(self) -> str:
        return "SessionCache(<hidden>)"


class CarrierBase:
    """Shared behaviour: validation against ``rules``, rate-table quotes, formats."""

    name: str = "carrier"
    capabilities: frozenset[Capability] = frozenset()
    rules: CarrierRules
    label_formats: frozenset[LabelFormat] = frozenset({LabelFormat.PDF_A4})

    def _extra_checks(self, request: ShipmentRequest) -> list[FieldError]:
        """Carrier-specific combinations; the base rules are checked first."""
        return []

    def validate(self, request: ShipmentRequest) -> None:
        """Refuse what this carrier cannot take, before anything is sent.

        Raises:
            InvalidInput: naming each field that is wrong for this carrier.
        """
        errors = check_request(request, self.rules) + self._extra_checks(request)
        raise_if_invalid(self.name, errors)

    def _check_label_format(self, fmt: LabelFormat) -> None:
        if fmt not in self.label_formats:
            raise NotSupported(
                f"label format {fmt.value}",
                vendor=self.name,
                reason=f"offers {', '.join(sorted(f.value for f in self.label_formats))}",
            )

    def _table_quotes(self, table: RateTable, request: ShipmentRequest) -> Operation[list[Quote]]:
        # A generator like every operation: checks run when the driver runs it.
        self.validate(request)
        today = request.ship_date or today_in_athens()
        return table.quotes(self.name, request, today)
        yield  # pragma: no cover - makes this function a generator
