"""Shared fixtures of the shipping tests: requests, and one runner per driver (sync, async)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any, TypeVar

import httpx
import pytest

from dixis_integrations.http import AsyncDriver, Driver, Operation
from dixis_integrations.models.address import Address
from dixis_integrations.models.money import Money
from dixis_integrations.models.shipping import (
    CashOnDelivery,
    Parcel,
    ShipmentRequest,
    ShippingOptions,
)

T = TypeVar("T")
Runner = Callable[[Operation[Any]], Any]


def sender() -> Address:
    return Address(
        name="Κτήμα Παπαδόπουλου",
        company="Dixis Fresh",
        street="Λεωφόρος Συγγρού 120",
        city="Αθήνα",
        postcode="117 45",
        phone="2101234567",
        email="shipping@dixis.example",
    )


def recipient(**changes: Any) -> Address:
    data: dict[str, Any] = {
        "name": "Μαρία Κωνσταντίνου",
        "street": "Ερμού 25",
        "city": "Αθήνα",
        "postcode": "10563",
        "mobile": "6912345678",
        "email": "maria@example.gr",
    }
    data.update(changes)
    return Address(**data)


def shipment_request(
    *,
    weight: str = "2.5",
    options: ShippingOptions | None = None,
    to: Address | None = None,
    parcels: int = 1,
    **changes: Any,
) -> ShipmentRequest:
    return ShipmentRequest(
        reference=changes.pop("reference", "ORD-1001"),
        sender=sender(),
        recipient=to or recipient(),
        parcels=tuple(Parcel(weight_kg=weight) for _ in range(parcels)),
        options=options or ShippingOptions(),
        ship_date=date(2026, 11, 2),
        **changes,
    )


def cod(amount: str = "25.00") -> ShippingOptions:
    return ShippingOptions(cod=CashOnDelivery(amount=Money.of(amount)))


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_runner(mode: str) -> Iterator[Callable[[httpx.BaseTransport | Any], Runner]]:
    """``make_runner(transport)`` -> ``run(operation)`` on the sync or the async driver."""
    closers: list[Callable[[], None]] = []

    def factory(handler: Any) -> Runner:
        if mode == "sync":
            driver = Driver(
                httpx.Client(transport=httpx.MockTransport(handler)), sleep=lambda _: None
            )
            closers.append(driver.client.close)
            return driver.run

        def run(op: Operation[Any]) -> Any:
            async def go() -> Any:
                async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
                    return await AsyncDriver(client, sleep=_no_sleep).run(op)

            return asyncio.run(go())

        return run

    yield factory
    for close in closers:
        close()
