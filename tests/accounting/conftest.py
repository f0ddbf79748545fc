"""Fixtures for the accounting adapters: sandboxes, configs, and a sync/async runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import httpx
import pytest

from dixis_integrations.http import AsyncDriver, Driver
from dixis_integrations.http.budget import Budgets
from dixis_integrations.models import VatCategory

T = TypeVar("T")

GREEK_XERO_CODES = {
    VatCategory.STANDARD: "TAX001",
    VatCategory.REDUCED: "TAX002",
    VatCategory.SUPER_REDUCED: "TAX003",
    VatCategory.ISLAND_STANDARD: "TAX004",
    VatCategory.ISLAND_REDUCED: "TAX005",
    VatCategory.ISLAND_SUPER_REDUCED: "TAX006",
    VatCategory.ZERO: "ZERORATEDOUTPUT",
    VatCategory.EXEMPT: "EXEMPTOUTPUT",
}


class StaticBearer(httpx.Auth):
    """A bearer token from a sandbox's credentials (no refresh)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class Runner:
    """Runs operations through a sync or an async driver over one transport."""

    def __init__(self, mode: str, transport: httpx.MockTransport) -> None:
        self.mode = mode
        self.transport = transport
        self.sleeps: list[float] = []
        self.budgets = Budgets()
        self.on_sleep: Callable[[float], None] | None = None

    def _slept(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(seconds)

    def __call__(self, operation: Generator[httpx.Request, httpx.Response, T]) -> T:
        if self.mode == "sync":
            with Driver(
                httpx.Client(transport=self.transport),
                sleep=self._slept,
                budgets=self.budgets,
            ) as driver:
                return driver.run(operation)

        async def fake_sleep(seconds: float) -> None:
            self._slept(seconds)

        async def go() -> T:
            async with AsyncDriver(
                httpx.AsyncClient(transport=self.transport),
                sleep=fake_sleep,
                budgets=self.budgets,
            ) as driver:
                return await driver.run(operation)

        return asyncio.run(go())


class Exchanges(list[tuple[httpx.Request, httpx.Response]]):
    """Every request an emulator answered, with its response, in order."""

    def transport(self, emulator: Any) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            response: httpx.Response = emulator.handle(request)
            self.append((request, response))
            return response

        return httpx.MockTransport(handler)

    @staticmethod
    def cached_parses(responses: list[httpx.Response]) -> list[Any]:
        """The parsed answers still kept on ``responses`` (``None`` for each that keeps
        none). Responses often live on in reference cycles until a garbage collection:
        the parsed answers (hundreds of objects per call) must not live on with them."""
        return [r.extensions.get("dixis.accounting.json") for r in responses]


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_runner(mode: str) -> Callable[[Any], Runner]:
    def build(emulator: Any) -> Runner:
        return Runner(mode, emulator.transport())

    return build
