"""The three built-in inventory sources pass the InventorySource conformance suite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from dixis_integrations.http import AsyncDriver, Driver
from dixis_integrations.inventory.cin7 import Cin7Config, Cin7Core
from dixis_integrations.inventory.files import FileStockSource
from dixis_integrations.sandbox.cin7 import Cin7Sandbox
from dixis_integrations.sandbox.zoho import ZohoSandbox
from dixis_integrations.testing import InventorySourceSuite

from .test_zoho import _adapter as zoho_adapter


class TestZohoConforms(InventorySourceSuite):
    @pytest.fixture
    def sandbox(self) -> ZohoSandbox:
        box = ZohoSandbox()
        box.bind("http://zoho.test")
        box.seed_stock({"FETA-1": 5})
        return box

    @pytest.fixture
    def source(self, sandbox: ZohoSandbox) -> object:
        return zoho_adapter(sandbox)

    @pytest.fixture
    def supplier_id(self, sandbox: ZohoSandbox) -> str:
        return sandbox.add_vendor("Kritsa coop")

    @pytest.fixture
    def async_driver(self, sandbox: ZohoSandbox) -> AsyncDriver:
        return AsyncDriver(httpx.AsyncClient(transport=sandbox.transport()))

    @pytest.fixture
    def driver(self, sandbox: ZohoSandbox) -> Iterator[Driver]:
        with Driver(httpx.Client(transport=sandbox.transport()), sleep=lambda _s: None) as d:
            yield d


class TestCin7Conforms(InventorySourceSuite):
    @pytest.fixture
    def sandbox(self) -> Cin7Sandbox:
        box = Cin7Sandbox()
        box.bind("http://cin7.test")
        box.seed_stock({"OIL-5L": 5})
        return box

    @pytest.fixture
    def source(self, sandbox: Cin7Sandbox) -> object:
        creds = sandbox.credentials()
        return Cin7Core(
            Cin7Config(
                account_id=creds["account_id"],
                application_key=SecretStr(creds["application_key"]),
                base_url=creds["base_url"],
            )
        )

    @pytest.fixture
    def supplier_id(self, sandbox: Cin7Sandbox) -> str:
        return sandbox.add_supplier("Kritsa coop")

    @pytest.fixture
    def async_driver(self, sandbox: Cin7Sandbox) -> AsyncDriver:
        return AsyncDriver(httpx.AsyncClient(transport=sandbox.transport()))

    @pytest.fixture
    def driver(self, sandbox: Cin7Sandbox) -> Iterator[Driver]:
        with Driver(httpx.Client(transport=sandbox.transport()), sleep=lambda _s: None) as d:
            yield d


class TestFileSourceConforms(InventorySourceSuite):
    @pytest.fixture
    def source(self, tmp_path: Path) -> object:
        path = tmp_path / "stock.csv"
        path.write_text("sku,on_hand\nFETA-1,5\n")
        return FileStockSource.from_path(path, as_of=datetime(2026, 11, 20, tzinfo=UTC))

    @pytest.fixture
    def driver(self) -> Iterator[Driver]:
        with Driver(
            httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
        ) as d:
            yield d
