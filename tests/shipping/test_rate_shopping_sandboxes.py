"""Rate shopping across the six carrier sandboxes: one line each, a timeout stays on its line.

No timing assertion here: the speed claim lives in ``benchmarks/shipping``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

import httpx
import pytest

from dixis_integrations.errors import InvalidInput, ProviderTimeout
from dixis_integrations.http import AsyncDriver, Driver
from dixis_integrations.models.shipping import DeliveryType, ShippingOptions
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.shipping import ashop_rates, shop_rates

from ._six import six
from .conftest import shipment_request

LOCKER = ShippingOptions(delivery_type=DeliveryType.LOCKER, pickup_point_id="4")


def _drivers(wired: dict[str, Any], hold: threading.Event | None = None) -> dict[str, Driver]:
    drivers = {}
    for name, w in wired.items():
        handler = w.sandbox.handle
        if name == "acs" and hold is not None:

            def handler(request: httpx.Request, _inner: Any = handler) -> httpx.Response:
                hold.wait(10)  # ACS "hangs" until the test releases it
                return _inner(request)

        drivers[name] = Driver(
            httpx.Client(transport=httpx.MockTransport(handler)), sleep=lambda _: None
        )
    return drivers


def test_every_carrier_that_can_take_the_parcel_quotes() -> None:
    wired = six()
    shop = shop_rates(
        shipment_request(options=LOCKER), [w.carrier for w in wired.values()], _drivers(wired)
    )
    assert [line.carrier for line in shop.lines] == list(wired)
    # A locker delivery: BOX NOW, ACS (Smartpoint) and Courier Center (BOX NOW lockers) take
    # it; the others refuse on their own line, naming the field.
    assert sorted(q.carrier for q in shop.quotes()) == ["acs", "boxnow", "courier_center"]
    for name in ("elta", "geniki", "speedex"):
        error = shop.failures()[name]
        assert isinstance(error, InvalidInput)
        assert "options.delivery_type" in [e.path for e in error.errors]
    door = shop_rates(shipment_request(), [w.carrier for w in wired.values()], _drivers(wired))
    assert sorted(q.carrier for q in door.quotes()) == sorted(set(wired) - {"boxnow"})


def test_one_carrier_timing_out_still_yields_the_other_five() -> None:
    wired = six()
    hold = threading.Event()
    request = shipment_request()
    carriers = [w.carrier for w in wired.values()]
    try:
        shop = shop_rates(request, carriers, _drivers(wired, hold), timeout=0.5)
    finally:
        hold.set()
    assert isinstance(shop.failures()["acs"], ProviderTimeout)
    quoted = {q.carrier for q in shop.quotes()}
    assert quoted == {"courier_center", "elta", "geniki", "speedex"}  # BOX NOW: lockers only
    assert isinstance(shop.failures()["boxnow"], InvalidInput)
    assert len(shop.lines) == 6


def test_a_carrier_whose_transport_times_out_is_reported_after_its_retries() -> None:
    wired = six()
    wired["acs"].sandbox.faults = FaultPlan(script=deque([Fault.TIMEOUT] * 8))
    shop = shop_rates(shipment_request(), [w.carrier for w in wired.values()], _drivers(wired))
    error = shop.failures()["acs"]
    assert isinstance(error, ProviderTimeout)
    assert len(shop.quotes()) == 4


def test_async_rate_shopping_across_the_six_with_one_hanging() -> None:
    wired = six()

    async def go() -> Any:
        drivers = {}
        clients = []
        for name, w in wired.items():
            inner = w.sandbox.handle

            async def handler(
                request: httpx.Request, _inner: Any = inner, _name: str = name
            ) -> httpx.Response:
                if _name == "acs":
                    await asyncio.sleep(10)
                return _inner(request)

            client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
            clients.append(client)
            drivers[name] = AsyncDriver(client)
        try:
            return await ashop_rates(
                shipment_request(), [w.carrier for w in wired.values()], drivers, timeout=0.3
            )
        finally:
            for client in clients:
                await client.aclose()

    shop = asyncio.run(go())
    assert isinstance(shop.failures()["acs"], ProviderTimeout)
    assert {q.carrier for q in shop.quotes()} == {"courier_center", "elta", "geniki", "speedex"}


@pytest.mark.parametrize("name", ["acs", "geniki", "speedex", "elta", "courier_center"])
def test_each_carrier_quotes_a_door_delivery_alone(name: str) -> None:
    wired = six()
    shop = shop_rates(shipment_request(), [wired[name].carrier], _drivers(wired))
    (quote,) = shop.quotes()
    assert quote.price_incl_vat > quote.price_excl_vat
