"""A minimal in-test carrier that makes one real (mock) HTTP call per operation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from dixis_integrations.errors import InvalidInput, NotSupported
from dixis_integrations.http import Endpoint, Operation
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
)
from dixis_integrations.protocols import Capability, HealthStatus

Handler = Callable[[httpx.Request], httpx.Response]


class FakeCarrier:
    """Quotes ``price`` from ``GET /quote``; tracks from ``tracks[number]``."""

    capabilities = frozenset({Capability.RATES, Capability.TRACKING})

    def __init__(
        self,
        name: str,
        price: str = "5.00",
        *,
        refuse: bool = False,
        tracks: dict[str, Tracking] | None = None,
    ) -> None:
        self.name = name
        self.price = Decimal(price)
        self.refuse = refuse
        self.tracks = tracks or {}
        self.endpoint = Endpoint(vendor=name, base_url=f"http://{name}.test")

    def check(self) -> Operation[HealthStatus]:
        yield self.endpoint.request("GET", "/health", operation=f"{self.name}.check")
        return HealthStatus(name=self.name, ok=True)

    def validate(self, request: ShipmentRequest) -> None:
        if self.refuse:
            raise InvalidInput("refused", vendor=self.name)

    def quote(self, request: ShipmentRequest) -> Operation[list[Quote]]:
        yield self.endpoint.request("GET", "/quote", operation=f"{self.name}.quote")
        return [
            Quote(
                carrier=self.name,
                service=Service.STANDARD,
                price_excl_vat=Money.of(self.price),
                price_incl_vat=Money.of(self.price * Decimal("1.24")),
            )
        ]

    def create_shipment(self, request: ShipmentRequest) -> Operation[Shipment]:
        raise NotSupported("create_shipment", vendor=self.name)
        yield  # pragma: no cover

    def label(self, shipment: Shipment, fmt: LabelFormat) -> Operation[Label]:
        raise NotSupported("label", vendor=self.name)
        yield  # pragma: no cover

    def cancel(self, shipment: Shipment) -> Operation[Shipment]:
        raise NotSupported("cancel", vendor=self.name)
        yield  # pragma: no cover

    def track(self, tracking_number: str) -> Operation[Tracking]:
        yield self.endpoint.request("GET", f"/track/{tracking_number}", operation="track")
        return self.tracks[tracking_number]

    def finalise(self, shipments: Sequence[Shipment]) -> Operation[Manifest]:
        return Manifest(
            carrier=self.name, id="m", tracking_numbers=(), created_at=datetime.now(UTC)
        )
        yield  # pragma: no cover

    def pickup_points(self, near: Address | None = None) -> Operation[list[PickupPoint]]:
        return []
        yield  # pragma: no cover
