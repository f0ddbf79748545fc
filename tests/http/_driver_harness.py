"""The driver tests' harness: runs operations on either driver, sleeps recorded, never slept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from dixis_integrations.http import AsyncDriver, Budgets, CallRecord, Driver, Operation, RetryPolicy

Handler = Callable[[httpx.Request], Any]


@dataclass
class Harness:
    """A driver of one kind over a handler, with a fake sleep and the call records."""

    kind: str
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(jitter=False))
    budgets: Budgets = field(default_factory=Budgets)
    sleeps: list[float] = field(default_factory=list)
    records: list[CallRecord] = field(default_factory=list)

    def _sync_driver(self, handler: Handler) -> Driver:
        return Driver(
            httpx.Client(transport=httpx.MockTransport(handler)),
            retry=self.retry,
            budgets=self.budgets,
            on_call=self.records.append,
            sleep=self.sleeps.append,
        )

    def _async_driver(self, handler: Handler) -> AsyncDriver:
        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        return AsyncDriver(
            httpx.AsyncClient(transport=httpx.MockTransport(handler)),
            retry=self.retry,
            budgets=self.budgets,
            on_call=self.records.append,
            sleep=sleep,
        )

    def run(self, handler: Handler, operation: Operation[Any]) -> Any:
        """Run ``operation`` to its result on this harness's driver kind."""
        if self.kind == "sync":
            with self._sync_driver(handler) as driver:
                return driver.run(operation)

        async def main() -> Any:
            async with self._async_driver(handler) as driver:
                return await driver.run(operation)

        return asyncio.run(main())

    def send(self, handler: Handler, request: httpx.Request) -> httpx.Response:
        """Send one request as a logical call."""

        def op() -> Operation[httpx.Response]:
            response = yield request
            return response

        result: httpx.Response = self.run(handler, op())
        return result
