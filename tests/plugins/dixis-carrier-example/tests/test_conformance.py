"""Example Parcels passes the dixis-integrations ShippingCarrier conformance suite."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from dixis_carrier_example import ExampleCarrier
from dixis_carrier_example.sandbox import ExampleSandbox

from dixis_integrations.http import AsyncDriver, Driver
from dixis_integrations.models.address import Address
from dixis_integrations.models.shipping import Parcel, ShipmentRequest
from dixis_integrations.testing import ShippingCarrierSuite


@pytest.fixture
def sandbox() -> ExampleSandbox:
    return ExampleSandbox()


class TestExampleCarrier(ShippingCarrierSuite):
    @pytest.fixture
    def carrier(self, sandbox: ExampleSandbox) -> ExampleCarrier:
        return ExampleCarrier(sandbox.api_key, base_url="https://api.example-parcels.test")

    @pytest.fixture
    def driver(self, sandbox: ExampleSandbox) -> Iterator[Driver]:
        with Driver(httpx.Client(transport=sandbox.transport())) as driver:
            yield driver

    @pytest.fixture
    def async_driver(self, sandbox: ExampleSandbox) -> AsyncDriver:
        return AsyncDriver(httpx.AsyncClient(transport=sandbox.transport()))

    @pytest.fixture
    def shipment_request(self) -> ShipmentRequest:
        farm = Address(
            name="Κτήμα Λύρα",
            street="Οδός Ελιάς",
            number="3",
            city="Καλαμάτα",
            postcode="24100",
            phone="2721012345",
        )
        home = Address(
            name="Μαρία Παπαδοπούλου",
            street="Ερμού",
            number="10",
            city="Αθήνα",
            postcode="10563",
            mobile="6912345678",
        )
        return ShipmentRequest(
            reference="ord-1001", sender=farm, recipient=home, parcels=(Parcel(weight_kg="3.5"),)
        )
