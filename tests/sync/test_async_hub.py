"""The async hub runs the engine on the in-process sandboxes as the sync hub does.

The vendors' rate limits run at a hundredth of real time (``time_scale``), as in the demo.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from dixis_integrations.hub import AsyncIntegrations, Integrations
from dixis_integrations.models.events import Event, OrderCreated
from dixis_integrations.sync.journal import JobState
from dixis_integrations.sync.marketday import MarketDay, market_day

Row = tuple[str, str, str, JobState, str | None]


def _open_stock(hub: Integrations, day: MarketDay) -> None:
    for name in hub.names("inventory"):
        emulator = hub.emulators.get(name)
        if emulator is not None and hasattr(emulator, "seed_stock"):
            emulator.seed_stock(day.opening_stock)


def _rows(hub: Integrations) -> list[Row]:
    return sorted((j.key, j.step, j.provider, j.state, j.error_code) for j in hub.journal.jobs())


def _vouchers(hub: Integrations) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in hub.names("shipping"):
        emulator: Any = hub.emulators.get(name)
        out[name] = len(getattr(emulator, "vouchers", {}) or {})
    return out


@pytest.fixture
def day() -> MarketDay:
    return market_day(orders=15, seed=21, follow_ups=False)


def test_the_async_hub_drains_the_day_as_the_sync_hub_does(
    day: MarketDay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    events: list[Event] = list(day.events)
    with Integrations.sandbox(time_scale=0.01) as hub:
        _open_stock(hub, day)
        for e in events:
            hub.submit(e)
        hub.engine.drain(max_wait=30)
        expected = _rows(hub)
        expected_vouchers = _vouchers(hub)

    async def main() -> tuple[list[Row], dict[str, int]]:
        async with AsyncIntegrations.sandbox(concurrency=6, time_scale=0.01) as ahub:
            _open_stock(ahub.hub, day)
            for e in events:
                await ahub.submit(e)
            summary = await ahub.drain(max_wait=30)
            assert summary.executed >= len(expected)
            calls = await asyncio.to_thread(ahub.hub.journal.calls)
            assert calls  # recorded off the loop, all flushed before the drain returned
            assert all(c.job_key for c in calls if c.is_write)
            return _rows(ahub.hub), _vouchers(ahub.hub)

    rows, vouchers = asyncio.run(main())
    orders = [e for e in events if isinstance(e, OrderCreated)]
    assert sum(vouchers.values()) == len(orders) == 15
    assert rows == expected
    assert vouchers == expected_vouchers
    assert sum(1 for r in rows if r[3] is JobState.DONE) > 4 * len(events)
