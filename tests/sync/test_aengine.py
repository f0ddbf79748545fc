"""The async engine: the sync engine's plans, journal and outcomes, jobs run on asyncio."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from dixis_integrations.http import AsyncDriver, Driver, RetryPolicy
from dixis_integrations.models.events import Event, OrderCreated
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.sync.aengine import AsyncCallRecorder, AsyncEngine
from dixis_integrations.sync.engine import IN_DOUBT, CallRecorder, Connection, Engine, JobPolicy
from dixis_integrations.sync.journal import Job, JobState, SQLiteJournal
from dixis_integrations.sync.marketday import SENDER, market_day
from dixis_integrations.sync.steps import StepSettings

from .market import MarketEmulator, connections, fast_retry
from .test_in_doubt import STEPS, Blind, Vendor

BASE = "http://market.test"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SQLiteJournal]:
    j = SQLiteJournal(tmp_path / "a.db")
    yield j
    j.close()


def make_engine(journal: SQLiteJournal, emulator: MarketEmulator, **kw: object) -> Engine:
    conns = connections(BASE, transport=emulator.transport(), on_call=CallRecorder(journal))
    return Engine(
        journal,
        conns,
        settings=StepSettings(sender=SENDER),
        policy=JobPolicy(backoff_initial=0.001, backoff_max=0.01),
        sleep=lambda s: None,
        **kw,  # type: ignore[arg-type]
    )


def make_async(
    engine: Engine,
    transport: httpx.AsyncBaseTransport,
    *,
    concurrency: int = 4,
) -> AsyncEngine:
    recorder = AsyncCallRecorder(CallRecorder(engine.journal))
    drivers = {
        key: AsyncDriver(
            httpx.AsyncClient(transport=transport), retry=fast_retry(), on_call=recorder
        )
        for key in engine.connections
    }
    return AsyncEngine(engine, drivers, concurrency=concurrency, on_idle=recorder.flush)


def day_events(orders: int = 12) -> list[Event]:
    return [
        e
        for e in market_day(orders=orders, seed=11, follow_ups=False).events
        if isinstance(e, OrderCreated)
    ]


def _summary(jobs: list[Job]) -> list[tuple[str, str, str, JobState, str | None]]:
    return sorted((j.key, j.step, j.provider, j.state, j.external_id) for j in jobs)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_async_engine_records_what_the_sync_engine_records(
    tmp_path: Path, concurrency: int
) -> None:
    events = day_events()
    sync_market, async_market = MarketEmulator(), MarketEmulator()
    sync_journal = SQLiteJournal(tmp_path / "sync.db")
    async_journal = SQLiteJournal(tmp_path / "async.db")
    try:
        engine = make_engine(sync_journal, sync_market)
        for e in events:
            engine.submit(e)
        sync_summary = engine.drain()

        aengine = make_async(
            make_engine(async_journal, async_market),
            async_market.transport(),
            concurrency=concurrency,
        )

        async def main() -> None:
            await aengine.submit_many(events)
            summary = await aengine.drain()
            await aengine.aclose()
            assert (summary.done, summary.dead) == (sync_summary.done, sync_summary.dead)

        asyncio.run(main())
        sync_jobs, async_jobs = sync_journal.jobs(), async_journal.jobs()
        assert len(sync_jobs) == 5 * len(events)
        assert all(j.state is JobState.DONE for j in async_jobs)
        if concurrency == 1:  # same order of execution: the very same ids
            assert _summary(async_jobs) == _summary(sync_jobs)
        else:  # vendor ids are numbered in arrival order: the same ids, maybe permuted
            assert [k[:4] for k in _summary(async_jobs)] == [k[:4] for k in _summary(sync_jobs)]
            for step in ("invoice", "shipment"):
                assert sorted(j.external_id or "" for j in async_jobs if j.step == step) == sorted(
                    j.external_id or "" for j in sync_jobs if j.step == step
                )
        # the effects, counted at the vendor
        assert async_market.invoice_writes == sync_market.invoice_writes
        assert sorted(async_market.vouchers) == sorted(sync_market.vouchers)
        assert async_market.stock == sync_market.stock
        assert async_market.contact_writes == sync_market.contact_writes
        assert len(async_market.messages) == len(sync_market.messages)
        # every vendor call is in the audit log, with its job
        assert len(async_journal.calls()) == len(sync_journal.calls())
        assert all(c.job_key for c in async_journal.calls())
    finally:
        sync_journal.close()
        async_journal.close()


def test_a_job_done_is_not_run_again(journal: SQLiteJournal) -> None:
    market = MarketEmulator()
    engine = make_engine(journal, market)
    (first, second) = day_events(2)
    engine.submit(first)
    engine.drain()  # the sync engine did the first order
    aengine = make_async(engine, market.transport())

    async def main() -> None:
        await aengine.submit(first)  # delivered again
        await aengine.submit(second)
        summary = await aengine.drain()
        assert summary.done == 5  # the second order only
        await aengine.submit(second)
        assert (await aengine.drain()).executed == 0
        await aengine.aclose()

    asyncio.run(main())
    assert market.invoice_writes == {first.order.id: 1, second.order.id: 1}
    assert sorted(market.vouchers) == sorted([first.order.id, second.order.id])


def test_rate_limited_reschedules_at_retry_at(journal: SQLiteJournal) -> None:
    market = MarketEmulator(faults=FaultPlan(script=deque([Fault.RATE_LIMIT] * 3), retry_after=120))
    engine = make_engine(journal, market, plan={"order.created": ["invoice"]})
    aengine = make_async(engine, market.transport())
    before = datetime.now(UTC)

    async def main() -> None:
        await aengine.submit(day_events(1)[0])
        summary = await aengine.drain(wait=False)
        assert summary.failed == 1
        (outcome,) = summary.outcomes
        assert outcome.error_code == "rate_limited"
        assert outcome.retry_at is not None
        assert outcome.retry_at >= before + timedelta(seconds=119)
        await aengine.aclose()

    asyncio.run(main())
    (job,) = journal.jobs()
    assert job.state is JobState.FAILED
    assert market.invoice_writes == {}


def test_drain_awaits_a_rescheduled_job_without_blocking_the_loop(
    journal: SQLiteJournal,
) -> None:
    market = MarketEmulator(faults=FaultPlan(script=deque([Fault.RATE_LIMIT] * 3), retry_after=1))
    engine = make_engine(journal, market, plan={"order.created": ["invoice"]})
    # the driver sleeps through short waits itself: make it hand them to the engine
    aengine = make_async(engine, market.transport())
    for driver in aengine.drivers.values():
        driver.retry = type(driver.retry)(max_attempts=1, max_retry_after=0.0)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    async def main() -> None:
        await aengine.submit(day_events(1)[0])
        tick = asyncio.create_task(ticker())
        summary = await aengine.drain(max_wait=30)
        tick.cancel()
        assert [o.state for o in summary.outcomes][-1] is JobState.DONE
        assert summary.failed >= 1  # it was rescheduled, then awaited
        await aengine.aclose()

    asyncio.run(main())
    assert ticks > 0  # the loop kept running while the drain waited
    assert journal.counts()[JobState.DONE] == 1


class Gate(httpx.AsyncBaseTransport):
    """Holds every request until ``width`` are in flight together (or nobody else comes)."""

    def __init__(self, inner: httpx.MockTransport, width: int) -> None:
        self.inner = inner
        self.width = width
        self.in_flight = 0
        self.most = 0
        self.full = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= self.width:
            self.full.set()
        with contextlib.suppress(TimeoutError):  # the last few jobs of a drain
            await asyncio.wait_for(self.full.wait(), timeout=0.5)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.full.clear()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_no_more_jobs_run_at_once_than_the_bound(journal: SQLiteJournal, concurrency: int) -> None:
    market = MarketEmulator()
    engine = make_engine(journal, market, plan={"order.created": ["invoice"]})

    async def main() -> Gate:
        gate = Gate(market.transport(), concurrency)
        aengine = make_async(engine, gate, concurrency=concurrency)
        await aengine.submit_many(day_events(9))
        summary = await aengine.drain()
        assert summary.done == 9
        await aengine.aclose()
        return gate

    gate = asyncio.run(main())
    assert gate.most == concurrency  # reached, never passed


def test_a_write_in_doubt_is_parked_by_the_async_engine_too(journal: SQLiteJournal) -> None:
    vendor = Vendor()
    vendor.script = ["503"]
    adapter = Blind()
    engine = Engine(
        journal,
        [Connection("shipping", "blind", adapter, Driver(httpx.Client()))],
        plan={"order.created": ["send", "after"]},
        steps=STEPS,
    )
    drivers = {
        ("shipping", "blind"): AsyncDriver(
            httpx.AsyncClient(transport=httpx.MockTransport(vendor.handler)),
            retry=RetryPolicy(max_attempts=1),
        )
    }
    aengine = AsyncEngine(engine, drivers)
    event = day_events(1)[0]

    async def main() -> None:
        await aengine.submit(event)
        summary = await aengine.drain()
        assert [(o.step, o.error_code) for o in summary.outcomes] == [("send", IN_DOUBT)]
        await aengine.aclose()

    asyncio.run(main())
    assert vendor.effects[event.order.id] == 1
    assert {j.step: j.error_code for j in journal.jobs()} == {
        "send": IN_DOUBT,
        "after": "dependency_dead",
    }


class Stall(httpx.AsyncBaseTransport):
    """Never answers a write of ``path`` until released; everything else goes through."""

    def __init__(self, inner: httpx.MockTransport, path: str) -> None:
        self.inner = inner
        self.path = path
        self.stalled = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == self.path:
            self.stalled.set()
            await self.release.wait()
        return await self.inner.handle_async_request(request)


def test_a_cancelled_drain_leaves_its_job_to_the_lease(tmp_path: Path) -> None:
    from .conftest import Clock

    clock = Clock()
    journal = SQLiteJournal(tmp_path / "c.db", clock=clock)
    market = MarketEmulator()
    engine = make_engine(journal, market, plan={"order.created": ["shipment"]}, clock=clock)
    event = day_events(1)[0]

    async def main() -> None:
        stall = Stall(market.transport(), "/vouchers")
        aengine = make_async(engine, stall)
        await aengine.submit(event)
        drain = asyncio.create_task(aengine.drain())
        await asyncio.wait_for(stall.stalled.wait(), timeout=10)
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
        (job,) = await asyncio.to_thread(journal.jobs)
        assert job.state is JobState.RUNNING  # as a worker that died
        stall.release.set()
        clock.advance(engine.policy.lease + 1)
        summary = await aengine.drain()
        assert [o.state for o in summary.outcomes] == [JobState.DONE]
        await aengine.aclose()

    try:
        asyncio.run(main())
        (job,) = journal.jobs()
        assert job.interrupted  # the carrier can be asked: repeated, found, not made again
        assert list(market.vouchers) == [event.order.id]
    finally:
        journal.close()
