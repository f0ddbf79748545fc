"""A carrier that offers only rates and tracking, on a sandbox of its own: the suite's
NotSupported branches run against it, and variants of it that break the contract."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import httpx

from dixis_integrations.http import Endpoint, Operation, completed, unsupported
from dixis_integrations.models.address import Address
from dixis_integrations.models.money import Money
from dixis_integrations.models.shipping import (
    Label,
    LabelFormat,
    Manifest,
    Parcel,
    PickupPoint,
    Quote,
    Service,
    Shipment,
    ShipmentRequest,
    Tracking,
    TrackingStatus,
)
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.sandbox.kit import Emulator, json_response, route

__all__ = ["PartialCarrier", "PartialSandbox", "plain_request"]


class PartialSandbox(Emulator):
    name = "partial"

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    @route("GET", r"/ping")
    def ping(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"ok": True})

    @route("POST", r"/shipments")
    def create(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return json_response(201, {"number": f"P{self.count:05d}"})

    @route("GET", r"/shipments/(?P<number>P\d+)")
    def show(self, request: httpx.Request, number: str) -> httpx.Response:
        return json_response(200, {"number": number, "status": "in_transit"})

    @route("DELETE", r"/shipments/(?P<number>P\d+)")
    def delete(self, request: httpx.Request, number: str) -> httpx.Response:
        return json_response(200, {"number": number})


class PartialCarrier:
    name = "partial"
    capabilities = frozenset({Capability.RATES, Capability.TRACKING})

    def __init__(self) -> None:
        self.endpoint = Endpoint(vendor="partial", base_url="https://partial.test")

    def check(self) -> Operation[HealthStatus]:
        yield self.endpoint.request("GET", "/ping", operation="partial.check")
        return HealthStatus(name=self.name, ok=True)

    def validate(self, request: ShipmentRequest) -> None:
        from dixis_integrations.errors import FieldError, InvalidInput

        o = request.options
        if o.cod or o.saturday or o.refrigerated or o.insurance:
            raise InvalidInput("no extras", errors=[FieldError(("options",), "none offered")])

    def quote(self, request: ShipmentRequest) -> Operation[list[Quote]]:
        excl = Money.of("4.00")
        return completed(
            [
                Quote(
                    carrier=self.name,
                    service=Service.STANDARD,
                    price_excl_vat=excl,
                    price_incl_vat=Money.of("4.96"),
                )
            ]
        )

    def create_shipment(self, request: ShipmentRequest) -> Operation[Shipment]:
        response = yield self.endpoint.request(
            "POST", "/shipments", operation="partial.create", json={"ref": request.reference}
        )
        return Shipment(
            carrier=self.name,
            reference=request.reference,
            tracking_number=response.json()["number"],
            created_at=datetime.now(UTC),
        )

    def label(self, shipment: Shipment, fmt: LabelFormat) -> Operation[Label]:
        return unsupported("label", self.name)

    def cancel(self, shipment: Shipment) -> Operation[Shipment]:
        return unsupported("cancel", self.name)

    def track(self, tracking_number: str) -> Operation[Tracking]:
        response = yield self.endpoint.request(
            "GET", f"/shipments/{tracking_number}", operation="partial.track"
        )
        return Tracking(
            carrier=self.name,
            tracking_number=response.json()["number"],
            status=TrackingStatus.IN_TRANSIT,
        )

    def finalise(self, shipments: Sequence[Shipment]) -> Operation[Manifest]:
        return unsupported("finalise", self.name)

    def pickup_points(self, near: Address | None = None) -> Operation[list[PickupPoint]]:
        return unsupported("pickup_points", self.name)


def plain_request() -> ShipmentRequest:
    home = Address(
        name="Νίκος", street="Αγίου Νικολάου", number="5", city="Πάτρα", postcode="26221"
    )
    return ShipmentRequest(
        reference="r-1", sender=home, recipient=home, parcels=(Parcel(weight_kg="2"),)
    )
