"""Example Parcels: a complete, tiny carrier plugin for dixis-integrations.

Rates come from a table (no call); vouchers, labels, tracking and cancellation go to the
Example Parcels API (or its sandbox, :mod:`.sandbox`). Registered by one entry point in
the ``dixis_integrations.shipping`` group: installing the package is the registration.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from pydantic import SecretStr

from dixis_integrations.errors import FieldError, InvalidInput, ProviderError
from dixis_integrations.http import (
    Endpoint,
    Limits,
    Operation,
    Window,
    completed,
    idempotency_key,
    register_secret,
    unsupported,
)
from dixis_integrations.models.address import Address
from dixis_integrations.models.money import Money
from dixis_integrations.models.shipping import (
    Label,
    LabelFormat,
    Manifest,
    PickupPoint,
    Quote,
    Service,
    Shipment,
    ShipmentRequest,
    Tracking,
    TrackingEvent,
    TrackingStatus,
)
from dixis_integrations.protocols import Capability, HealthStatus

__all__ = ["RATES", "ExampleCarrier"]

RATES: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal("2"), Decimal("3.20")),
    (Decimal("5"), Decimal("4.50")),
    (Decimal("10"), Decimal("6.90")),
    (Decimal("20"), Decimal("9.80")),
)
"""(up to kg, price excl. VAT in EUR): the carrier's published table."""

_VAT = Decimal("0.24")
_STATUS = {
    "CR": TrackingStatus.PENDING,
    "PU": TrackingStatus.ACCEPTED,
    "CX": TrackingStatus.CANCELLED,
}


class ExampleCarrier:
    """The Example Parcels carrier.

    Args:
        api_key: the account's API key (kept secret: never logged or shown).
        base_url: the API, or a sandbox on 127.0.0.1.
        tenant: whose account this is, for budgets and idempotency keys.
    """

    name = "example"
    capabilities = frozenset(
        {
            Capability.RATES,
            Capability.LABELS,
            Capability.TRACKING,
            Capability.CANCELLATION,
            Capability.COD,
            Capability.IDEMPOTENCY_KEYS,
        }
    )

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        base_url: str = "https://api.example-parcels.test",
        tenant: str = "default",
    ) -> None:
        secret = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        register_secret(secret.get_secret_value())
        self.endpoint = Endpoint(
            vendor=self.name,
            base_url=base_url,
            tenant=tenant,
            headers={"X-Api-Key": secret.get_secret_value()},
            idempotency_header="Idempotency-Key",
            limits=Limits(windows=(Window(10, 1.0),)),
        )

    def __repr__(self) -> str:
        return (
            f"ExampleCarrier(base_url={self.endpoint.base_url!r}, tenant={self.endpoint.tenant!r})"
        )

    # -- health ------------------------------------------------------------------------
    def check(self) -> Operation[HealthStatus]:
        response = yield self.endpoint.request("GET", "/v1/ping", operation="example.check")
        return HealthStatus(name=self.name, ok=bool(response.json().get("ok")))

    # -- requests ------------------------------------------------------------------------
    def validate(self, request: ShipmentRequest) -> None:
        errors: list[FieldError] = []
        if request.total_weight_kg > RATES[-1][0]:
            errors.append(FieldError(("parcels",), f"over {RATES[-1][0]} kg in all", "too_heavy"))
        if request.recipient.country != "GR":
            errors.append(FieldError(("recipient", "country"), "Greece only", "country"))
        options = request.options
        if options.saturday:
            errors.append(FieldError(("options", "saturday"), "no Saturday delivery"))
        if options.refrigerated:
            errors.append(FieldError(("options", "refrigerated"), "no cold chain"))
        if options.insurance is not None:
            errors.append(FieldError(("options", "insurance"), "no insurance"))
        if options.cod is not None and options.cod.amount.currency != "EUR":
            errors.append(FieldError(("options", "cod", "amount"), "EUR only"))
        if errors:
            raise InvalidInput(
                "Example Parcels cannot take this shipment", errors=errors, vendor=self.name
            )

    def quote(self, request: ShipmentRequest) -> Operation[list[Quote]]:
        self.validate(request)
        weight = request.total_weight_kg
        price = next(p for limit, p in RATES if weight <= limit)
        excl = Money.of(price)
        incl = (excl * (1 + _VAT)).quantize()
        return completed(
            [
                Quote(
                    carrier=self.name,
                    service=Service.STANDARD,
                    price_excl_vat=excl,
                    price_incl_vat=incl,
                    transit_days=2,
                    source="table",
                )
            ]
        )

    def create_shipment(self, request: ShipmentRequest) -> Operation[Shipment]:
        self.validate(request)
        body = _voucher_body(request)
        key = idempotency_key(self.endpoint.tenant, "example.create_shipment", request.reference)
        response = yield self.endpoint.request(
            "POST",
            "/v1/vouchers",
            operation="example.create_shipment",
            json=body,
            idempotency_key=key,
        )
        data = response.json()
        return Shipment(
            carrier=self.name,
            reference=data["reference"],
            tracking_number=data["voucher"],
            created_at=datetime.fromisoformat(data["created_at"]),
            cod=request.options.cod,
        )

    def label(self, shipment: Shipment, fmt: LabelFormat) -> Operation[Label]:
        if fmt is LabelFormat.ZPL:
            return unsupported("label", self.name, "PDF labels only")
        return self._label(shipment, fmt)

    def _label(self, shipment: Shipment, fmt: LabelFormat) -> Operation[Label]:
        response = yield self.endpoint.request(
            "GET", f"/v1/vouchers/{shipment.tracking_number}/label", operation="example.label"
        )
        return Label(tracking_number=shipment.tracking_number, format=fmt, content=response.content)

    def track(self, tracking_number: str) -> Operation[Tracking]:
        response = yield self.endpoint.request(
            "GET", f"/v1/vouchers/{tracking_number}", operation="example.track"
        )
        return _tracking(self.name, response.json())

    def cancel(self, shipment: Shipment) -> Operation[Shipment]:
        response = yield self.endpoint.request(
            "DELETE", f"/v1/vouchers/{shipment.tracking_number}", operation="example.cancel"
        )
        if response.json().get("status") != "cancelled":
            raise ProviderError("voucher was not cancelled", vendor=self.name)
        return shipment.model_copy(update={"cancellable": False})

    def finalise(self, shipments: Sequence[Shipment]) -> Operation[Manifest]:
        return unsupported("finalise", self.name, "Example Parcels collects without a pickup list")

    def pickup_points(self, near: Address | None = None) -> Operation[list[PickupPoint]]:
        return unsupported("pickup_points", self.name, "no lockers or shops")


def _voucher_body(request: ShipmentRequest) -> dict[str, object]:
    to = request.recipient
    cod = request.options.cod
    return {
        "reference": request.reference,
        "recipient": {
            "name": to.name,
            "street": f"{to.street} {to.number or ''}".strip(),
            "city": to.city,
            "postcode": to.postcode,
            "phone": to.phone or to.mobile,
        },
        "weight_kg": str(request.total_weight_kg),
        "cod": str(cod.amount.amount) if cod is not None else None,
    }


def _tracking(carrier: str, data: dict[str, object]) -> Tracking:
    raw_events = data.get("events")
    events = tuple(
        TrackingEvent(
            status=_STATUS.get(str(e["code"]), TrackingStatus.EXCEPTION),
            at=datetime.fromisoformat(str(e["at"])),
            raw_code=str(e["code"]),
            description=str(e.get("text") or ""),
        )
        for e in (raw_events if isinstance(raw_events, list) else [])
    )
    status = events[-1].status if events else TrackingStatus.PENDING
    return Tracking(
        carrier=carrier, tracking_number=str(data["voucher"]), status=status, events=events
    )
