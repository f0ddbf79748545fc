"""Fixtures for the inventory tests: a runner that drives an operation sync or async."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dixis_integrations.http import AsyncDriver, Driver, Operation

Runner = Callable[[httpx.MockTransport | None, Operation[Any]], Any]


def _run_sync(transport: httpx.MockTransport | None, operation: Operation[Any]) -> Any:
    with httpx.Client(transport=transport) as client:
        return Driver(client, sleep=lambda _s: None).run(operation)


def _run_async(transport: httpx.MockTransport | None, operation: Operation[Any]) -> Any:
    async def main() -> Any:
        async def no_sleep(_s: float) -> None:
            return None

        async with httpx.AsyncClient(transport=transport) as client:
            return await AsyncDriver(client, sleep=no_sleep).run(operation)

    return asyncio.run(main())


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Runs an operation in-process (against a transport), with a driver that never sleeps."""
    return _run_sync if request.param == "sync" else _run_async
