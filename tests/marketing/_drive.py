"""Runs an operation against an emulator in-process, sync or async, with a driver that
never sleeps (the ``run`` fixture of the marketing provider tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dixis_integrations.http import AsyncDriver, Driver, Operation
from dixis_integrations.sandbox.kit import Emulator

Runner = Callable[[Emulator, Operation[Any]], Any]


def run_sync(emulator: Emulator, operation: Operation[Any]) -> Any:
    with httpx.Client(transport=emulator.transport()) as client:
        return Driver(client, sleep=lambda _s: None).run(operation)


def run_async(emulator: Emulator, operation: Operation[Any]) -> Any:
    async def main() -> Any:
        async def no_sleep(_s: float) -> None:
            return None

        async with httpx.AsyncClient(transport=emulator.transport()) as client:
            return await AsyncDriver(client, sleep=no_sleep).run(operation)

    return asyncio.run(main())


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Runs an operation against an emulator, parametrised over both drivers."""
    return run_sync if request.param == "sync" else run_async
