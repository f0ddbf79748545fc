"""The library's conformance suite, run over each of the six built-in carriers and its sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dixis_integrations.http import AsyncDriver, Driver
from dixis_integrations.models.shipping import (
    DeliveryType,
    LabelFormat,
    ShipmentRequest,
    ShippingOptions,
)
from dixis_integrations.protocols import ShippingCarrier
from dixis_integrations.sandbox.acs import ACSSandbox
from dixis_integrations.sandbox.boxnow import BoxNowSandbox
from dixis_integrations.sandbox.courier_center import CourierCenterSandbox
from dixis_integrations.sandbox.elta import ELTASandbox
from dixis_integrations.sandbox.geniki import GenikiSandbox
from dixis_integrations.sandbox.kit import Emulator
from dixis_integrations.sandbox.speedex import SpeedexSandbox
from dixis_integrations.shipping.acs import ACS, ACSConfig
from dixis_integrations.shipping.boxnow import BoxNow, BoxNowConfig
from dixis_integrations.shipping.courier_center import CourierCenter, CourierCenterConfig
from dixis_integrations.shipping.elta import ELTA, ELTAConfig
from dixis_integrations.shipping.geniki import Geniki, GenikiConfig
from dixis_integrations.shipping.speedex import Speedex, SpeedexConfig
from dixis_integrations.testing import ShippingCarrierSuite

from . import conftest as data


class _Sandboxed(ShippingCarrierSuite):
    """Wires the suite's fixtures to one sandbox per test."""

    @pytest.fixture
    def sandbox(self) -> Emulator:
        raise NotImplementedError

    @pytest.fixture
    def driver(self, sandbox: Emulator) -> Iterator[Driver]:
        client = httpx.Client(transport=sandbox.transport())
        yield Driver(client, sleep=lambda _: None)
        client.close()

    @pytest.fixture
    def async_driver(self, sandbox: Emulator) -> Iterator[AsyncDriver]:
        async def no_sleep(_: float) -> None:
            return None

        client = httpx.AsyncClient(transport=sandbox.transport())
        yield AsyncDriver(client, sleep=no_sleep)
        asyncio.run(client.aclose())

    @pytest.fixture
    def shipment_request(self) -> ShipmentRequest:
        return data.shipment_request()


class TestACS(_Sandboxed):
    @pytest.fixture
    def sandbox(self) -> Emulator:
        return ACSSandbox()

    @pytest.fixture
    def carrier(self, sandbox: ACSSandbox) -> ShippingCarrier:
        creds: Any = sandbox.credentials()
        return ACS(ACSConfig(base_url="http://acs.test/ACSRestServices/api", **creds))

    @pytest.fixture
    def label_formats(self) -> tuple[LabelFormat, ...]:
        return (LabelFormat.PDF_A4, LabelFormat.PDF_THERMAL)


class TestBoxNow(_Sandboxed):
    @pytest.fixture
    def sandbox(self) -> Emulator:
        return BoxNowSandbox()

    @pytest.fixture
    def carrier(self, sandbox: BoxNowSandbox) -> ShippingCarrier:
        creds: Any = sandbox.credentials()
        return BoxNow(BoxNowConfig(base_url="http://boxnow.test", **creds))

    @pytest.fixture
    def shipment_request(self) -> ShipmentRequest:
        options = ShippingOptions(delivery_type=DeliveryType.LOCKER, pickup_point_id="4")
        return data.shipment_request(options=options)

    @pytest.fixture
    def label_formats(self) -> tuple[LabelFormat, ...]:
        return (LabelFormat.PDF_A4, LabelFormat.ZPL)


class TestGeniki(_Sandboxed):
    @pytest.fixture
    def sandbox(self) -> Emulator:
        return GenikiSandbox()

    @pytest.fixture
    def carrier(self, sandbox: GenikiSandbox) -> ShippingCarrier:
        creds: Any = sandbox.credentials()
        return Geniki(GenikiConfig(base_url="http://geniki.test/JobServicesV2.asmx", **creds))

    @pytest.fixture
    def label_formats(self) -> tuple[LabelFormat, ...]:
        return (LabelFormat.PDF_A4, LabelFormat.PDF_THERMAL, LabelFormat.ZPL)


class TestSpeedex(_Sandboxed):
    @pytest.fixture
    def sandbox(self) -> Emulator:
        return SpeedexSandbox()

    @pytest.fixture
    def carrier(self, sandbox: SpeedexSandbox) -> ShippingCarrier:
        creds: Any = sandbox.credentials()
        return Speedex(SpeedexConfig(base_url="http://speedex.test/accesspoint.asmx", **creds))


class TestCourierCenter(_Sandboxed):
    @pytest.fixture
    def sandbox(self) -> Emulator:
        return CourierCenterSandbox()

    @pytest.fixture
    def carrier(self, sandbox: CourierCenterSandbox) -> ShippingCarrier:
        creds: Any = sandbox.credentials()
        return CourierCenter(CourierCenterConfig(base_url="http://cc.test/ccservice/api", **creds))


class TestELTA(_Sandboxed):
    @pytest.fixture
    def sandbox(self) -> Emulator:
        return ELTASandbox()

    @pytest.fixture
    def carrier(self, sandbox: ELTASandbox) -> ShippingCarrier:
        creds: Any = sandbox.credentials()
        return ELTA(ELTAConfig(base_url="http://elta.test", **creds))
