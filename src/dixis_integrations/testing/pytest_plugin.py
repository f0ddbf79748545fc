"""Pytest fixtures for code built on dixis-integrations: drivers on sandboxes, fake sleep.

Opt in from a ``conftest.py`` with
``pytest_plugins = ["dixis_integrations.testing.pytest_plugin"]`` (it is deliberately not
auto-loaded). Drivers made by the factories are closed when the test ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from dixis_integrations.http.budget import Budgets
from dixis_integrations.http.driver import AsyncDriver, CallRecord, Driver, RetryPolicy

__all__ = [
    "AsyncDriverFactory",
    "DriverFactory",
    "FakeSleep",
    "async_sandbox_driver",
    "cassette",
    "cassette_dir",
    "fake_sleep",
    "sandbox_driver",
]

Handler = Callable[[httpx.Request], Any]


class FakeSleep:
    """Records the waits a driver asks for instead of sleeping through them.

    Call it (sync drivers) or await :meth:`async_` (async drivers); ``calls`` lists the
    seconds asked for, ``total`` their sum.
    """

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    async def async_(self, seconds: float) -> None:
        """The coroutine form, for :class:`AsyncDriver`."""
        self.calls.append(seconds)

    @property
    def total(self) -> float:
        """Seconds that would have been slept."""
        return sum(self.calls)


class DriverFactory(Protocol):
    """Makes a :class:`Driver` over a sandbox handler (an emulator or a function)."""

    def __call__(
        self,
        handler: Handler,
        *,
        retry: RetryPolicy | None = None,
        budgets: Budgets | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
    ) -> Driver: ...


class AsyncDriverFactory(Protocol):
    """Makes an :class:`AsyncDriver` over a sandbox handler."""

    def __call__(
        self,
        handler: Handler,
        *,
        retry: RetryPolicy | None = None,
        budgets: Budgets | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
    ) -> AsyncDriver: ...


@pytest.fixture
def fake_sleep() -> FakeSleep:
    """A sleep that records instead of waiting."""
    return FakeSleep()


@pytest.fixture
def sandbox_driver(fake_sleep: FakeSleep) -> Iterator[DriverFactory]:
    """Factory: ``sandbox_driver(emulator)`` is a sync Driver talking to it in-process.

    Retries sleep on ``fake_sleep``; pass ``retry``/``budgets``/``on_call`` as needed.
    """
    made: list[Driver] = []

    def make(
        handler: Handler,
        *,
        retry: RetryPolicy | None = None,
        budgets: Budgets | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
    ) -> Driver:
        client = httpx.Client(transport=httpx.MockTransport(handler))
        driver = Driver(client, retry=retry, budgets=budgets, on_call=on_call, sleep=fake_sleep)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.client.close()


@pytest.fixture
def async_sandbox_driver(fake_sleep: FakeSleep) -> Iterator[AsyncDriverFactory]:
    """Factory: like :func:`sandbox_driver`, for an :class:`AsyncDriver`."""
    clients: list[httpx.AsyncClient] = []
    sleep: Callable[[float], Awaitable[None]] = fake_sleep.async_

    def make(
        handler: Handler,
        *,
        retry: RetryPolicy | None = None,
        budgets: Budgets | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
    ) -> AsyncDriver:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(client)
        return AsyncDriver(client, retry=retry, budgets=budgets, on_call=on_call, sleep=sleep)

    yield make

    async def close() -> None:
        for client in clients:
            await client.aclose()

    if clients:
        asyncio.run(close())


@pytest.fixture
def cassette_dir(request: pytest.FixtureRequest) -> Path:
    """Where :func:`cassette` keeps its files: ``cassettes/`` beside the test module."""
    return Path(request.node.path).parent / "cassettes"


@pytest.fixture
def cassette(request: pytest.FixtureRequest, cassette_dir: Path) -> Iterator[Any]:
    """Replay ``cassettes/<module>/<test>.yaml`` strictly (``DIXIS_RECORD=1`` records).

    Secrets are filtered before anything is written; interactions left unplayed fail
    the test. Yields the vcrpy cassette.
    """
    from dixis_integrations.testing.vcr import Recorder  # vcrpy is only needed here

    module = request.node.path.stem
    with Recorder(cassette_dir).use(f"{module}/{request.node.name}") as recorded:
        yield recorded
