"""The tracking poller over real carrier sandboxes whose histories advance with the clock."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from dixis_integrations.http import AsyncDriver, Driver
from dixis_integrations.models.shipping import TrackingStatus
from dixis_integrations.sandbox.geniki import GenikiSandbox
from dixis_integrations.shipping import MemoryCheckpointStore, TrackedShipment, TrackingPoller

from ._six import six
from .conftest import shipment_request


def test_poller_follows_geniki_and_acs_through_their_journeys() -> None:
    wired = six()
    drivers = {
        name: Driver(httpx.Client(transport=w.sandbox.transport()), sleep=lambda _: None)
        for name, w in wired.items()
    }
    geniki, acs = wired["geniki"], wired["acs"]
    g = drivers["geniki"].run(geniki.carrier.create_shipment(shipment_request(reference="G1")))
    a = drivers["acs"].run(acs.carrier.create_shipment(shipment_request(reference="A1")))
    assert isinstance(geniki.sandbox, GenikiSandbox)
    geniki.sandbox.set_outcome(g.tracking_number, "retracted")
    drivers["geniki"].run(geniki.carrier.finalise([g]))
    drivers["acs"].run(acs.carrier.finalise([a]))
    store = MemoryCheckpointStore()
    poller = TrackingPoller([w.carrier for w in wired.values()], store)
    shipments = [
        TrackedShipment("geniki", g.tracking_number),
        TrackedShipment("acs", a.tracking_number),
    ]

    def step(hours: float) -> list[tuple[str, TrackingStatus, str | None]]:
        for w in (geniki, acs):
            w.sandbox.advance(hours * 3600)  # type: ignore[attr-defined]
        result = poller.poll(shipments, drivers)
        assert result.errors == {}
        return [(c.carrier, c.status, c.raw_code) for c in result.changes]

    first = step(0)
    # Geniki's job is created but pending: nothing to announce for it yet.
    assert first == [("acs", TrackingStatus.ACCEPTED, "ΠΑΡΑΛΑΒΗ ΑΠΟ ΑΠΟΣΤΟΛΕΑ")]
    assert step(0) == []  # nothing new, nothing emitted
    second = step(14.5)  # Geniki: hub then out for delivery; ACS: out for delivery
    assert ("geniki", TrackingStatus.OUT_FOR_DELIVERY, "C_A3") in second
    # Geniki retracts the out-for-delivery checkpoint an hour later: back to in transit.
    third = step(1)
    assert third == [("geniki", TrackingStatus.IN_TRANSIT, "C_H1")]
    fourth = step(6)  # ACS delivered; Geniki: recipient absent
    assert ("acs", TrackingStatus.DELIVERED, "ΠΑΡΑΔΟΘΗΚΕ") in fourth
    assert ("geniki", TrackingStatus.DELIVERY_FAILED, "C_EA_AS") in fourth
    later = poller.poll(shipments, drivers)
    assert later.skipped == (TrackedShipment("acs", a.tracking_number),)


def test_async_poller_over_the_boxnow_sandbox() -> None:
    wired = six()["boxnow"]
    from dixis_integrations.models.shipping import DeliveryType, ShippingOptions

    options = ShippingOptions(delivery_type=DeliveryType.LOCKER, pickup_point_id="4")
    sync = Driver(httpx.Client(transport=wired.sandbox.transport()))
    shipment = sync.run(wired.carrier.create_shipment(shipment_request(options=options)))
    poller = TrackingPoller([wired.carrier], MemoryCheckpointStore())
    tracked = [TrackedShipment("boxnow", shipment.tracking_number)]

    async def poll() -> Any:
        async with httpx.AsyncClient(transport=wired.sandbox.transport()) as client:
            return await poller.apoll(tracked, AsyncDriver(client))

    assert asyncio.run(poll()).changes == ()  # "new" is pending: nothing to announce yet
    wired.sandbox.advance(21 * 3600)  # type: ignore[attr-defined]
    (change,) = asyncio.run(poll()).changes
    assert change.status is TrackingStatus.AVAILABLE_FOR_PICKUP
    assert change.previous is TrackingStatus.PENDING
