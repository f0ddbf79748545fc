"""Rate tables, zones and rate shopping: each carrier on its own line, failures included."""

from __future__ import annotations

import asyncio
import threading
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dixis_integrations.errors import InvalidInput, ProviderTimeout, TransientError
from dixis_integrations.http import AsyncDriver, Driver
from dixis_integrations.models.money import Money
from dixis_integrations.models.shipping import Service, ShippingOptions
from dixis_integrations.protocols import ShippingCarrier
from dixis_integrations.shipping.rates import (
    RateBand,
    RateTable,
    Zone,
    ZoneResolver,
    add_vat,
    ashop_rates,
    business_days_after,
    shop_rates,
)

from ._fakes import FakeCarrier
from .conftest import cod, recipient, shipment_request

TABLE = RateTable(
    bands=(
        RateBand(
            max_weight_kg=Decimal(2),
            prices={Zone.MAINLAND: Decimal("3.00"), Zone.ISLANDS: Decimal("4.50")},
        ),
        RateBand(
            max_weight_kg=Decimal(5),
            prices={Zone.MAINLAND: Decimal("4.00"), Zone.ISLANDS: Decimal("6.00")},
        ),
    ),
    extra_kg={Zone.MAINLAND: Decimal("0.50")},
    cod_fee=Decimal("1.20"),
    insurance_rate=Decimal("0.01"),
)


def test_zones_by_postcode_prefix_and_remote_list() -> None:
    zones = ZoneResolver(remote_postcodes=frozenset({"19007"}))
    assert zones.zone(recipient(postcode="10563")) is Zone.MAINLAND
    assert zones.zone(recipient(postcode="84100")) is Zone.ISLANDS  # Syros
    assert zones.zone(recipient(postcode="71202")) is Zone.ISLANDS  # Heraklion
    assert zones.zone(recipient(postcode="19007")) is Zone.REMOTE
    assert (
        zones.zone(recipient(country="CY", postcode="1010", mobile="+35799123456")) is Zone.CYPRUS
    )


def test_rate_table_prices_the_band_plus_surcharges_with_vat() -> None:
    (quote,) = TABLE.quotes("x", shipment_request(weight="3", options=cod()), date(2026, 11, 6))
    assert quote.price_excl_vat == Money.of("5.20")
    assert quote.price_incl_vat == Money.of("6.45")
    assert quote.source == "rate_table"
    assert quote.transit_days == 1
    assert quote.estimated_delivery == date(2026, 11, 9)  # Friday + 1 working day


def test_rate_table_charges_started_kilos_above_the_last_band() -> None:
    assert TABLE.base_price(Decimal("6.2"), Zone.MAINLAND) == Decimal("5.00")


def test_rate_table_without_a_zone_price_is_a_typed_error() -> None:
    with pytest.raises(InvalidInput):
        TABLE.base_price(Decimal("6"), Zone.ISLANDS)


def test_rate_table_bands_must_ascend() -> None:
    with pytest.raises(ValueError, match="ascending"):
        RateTable(bands=tuple(reversed(TABLE.bands)))


def test_rate_table_quotes_nothing_for_a_service_it_does_not_price() -> None:
    assert TABLE.quotes("x", shipment_request(service=Service.SAME_DAY), date(2026, 11, 2)) == []


def test_vat_and_business_days_helpers() -> None:
    assert add_vat(Decimal("4.12")) == Decimal("5.11")
    assert business_days_after(date(2026, 11, 6), 3) == date(2026, 11, 11)


def _handler(
    slow: str | None = None, broken: str | None = None, gate: threading.Event | None = None
) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        if host == broken:
            return httpx.Response(500, json={"error": "down"})
        if host == slow and gate is not None:
            gate.wait(5)
        return httpx.Response(200, json={})

    return handle


def carriers() -> list[ShippingCarrier]:
    return [
        FakeCarrier("alpha", "6.00"),
        FakeCarrier("beta", "4.00"),
        FakeCarrier("gamma", "5.00"),
        FakeCarrier("delta", refuse=True),
    ]


def test_shop_rates_returns_one_line_per_carrier_and_sorts_quotes() -> None:
    driver = Driver(
        httpx.Client(transport=httpx.MockTransport(_handler(broken="gamma"))), sleep=lambda _: None
    )
    shop = shop_rates(shipment_request(), carriers(), driver)
    assert [line.carrier for line in shop.lines] == ["alpha", "beta", "gamma", "delta"]
    assert [q.carrier for q in shop.quotes()] == ["beta", "alpha"]
    assert shop.cheapest() is not None
    failures = shop.failures()
    assert isinstance(failures["gamma"], TransientError)
    assert isinstance(failures["delta"], InvalidInput)
    assert shop.line("beta").ok
    assert not shop.line("delta").ok


def test_a_carrier_that_times_out_is_reported_and_the_others_still_quote() -> None:
    gate = threading.Event()
    driver = Driver(httpx.Client(transport=httpx.MockTransport(_handler(slow="alpha", gate=gate))))
    try:
        shop = shop_rates(shipment_request(), carriers()[:3], driver, timeout=0.3)
    finally:
        gate.set()
    assert isinstance(shop.failures()["alpha"], ProviderTimeout)
    assert sorted(q.carrier for q in shop.quotes()) == ["beta", "gamma"]


def test_async_shop_rates_times_out_one_carrier_alone() -> None:
    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host.startswith("alpha"):
            await asyncio.sleep(5)
        return httpx.Response(200, json={})

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
            return await ashop_rates(
                shipment_request(), carriers(), AsyncDriver(client), timeout=0.2
            )

    shop = asyncio.run(go())
    assert isinstance(shop.failures()["alpha"], ProviderTimeout)
    assert isinstance(shop.failures()["delta"], InvalidInput)
    assert [q.carrier for q in shop.quotes()] == ["beta", "gamma"]


def test_a_driver_per_carrier_and_a_missing_one_is_reported() -> None:
    driver = Driver(httpx.Client(transport=httpx.MockTransport(_handler())))
    shop = shop_rates(shipment_request(), carriers()[:2], {"alpha": driver})
    assert shop.line("alpha").ok
    assert shop.failures()["beta"].code == "configuration"


def test_no_carriers_gives_an_empty_shop() -> None:
    request = shipment_request(options=ShippingOptions(saturday=True))
    driver = Driver(httpx.Client(transport=httpx.MockTransport(_handler())))
    shop = shop_rates(request, [], driver)
    assert shop.lines == ()
    assert shop.cheapest() is None
