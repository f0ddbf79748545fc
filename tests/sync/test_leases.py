"""Leases: one worker at a time runs a job, however long its attempt takes.

A worker renews the lease of every job it holds while it runs (and of the jobs it
claimed together, waiting their turn), and checks it still holds the job before every
write. A worker that lost the job (it stalled past its lease and another claimed it)
sends nothing more and records nothing: the job is the other worker's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dixis_integrations.http import AsyncDriver, Driver, RetryPolicy
from dixis_integrations.models.events import OrderCreated
from dixis_integrations.sync.aengine import AsyncEngine
from dixis_integrations.sync.engine import (
    IN_DOUBT,
    LEASE_LOST,
    Connection,
    DrainSummary,
    Engine,
    JobPolicy,
)
from dixis_integrations.sync.journal import JobState, PostgresJournal, SQLiteJournal
from dixis_integrations.sync.marketday import market_day

from .conftest import Clock
from .test_in_doubt import ADAPTERS, STEPS, Blind, Vendor

AnyJournal = SQLiteJournal | PostgresJournal
LEASE = 30.0


def orders(n: int) -> list[OrderCreated]:
    return [
        e
        for e in market_day(orders=n, seed=8, follow_ups=False).events
        if isinstance(e, OrderCreated)
    ]


class Meddling(Vendor):
    """The vendor of ``test_in_doubt``, calling ``on_read`` while a read is in flight
    (time passing, another worker trying its luck) and counting the writes it sees."""

    def __init__(
        self, on_read: Callable[[], None], on_write: Callable[[], None] = lambda: None
    ) -> None:
        super().__init__()
        self.on_read = on_read
        self.on_write = on_write
        self.writes = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.on_read()
        else:
            self.writes += 1
            self.on_write()
        return super().handler(request)


def engine_for(
    journal: AnyJournal, clock: Callable[[], float], vendor: Vendor, adapter: Blind, lease: float
) -> Engine:
    client = httpx.Client(transport=httpx.MockTransport(vendor.handler))
    driver = Driver(client, retry=RetryPolicy(max_attempts=1), sleep=lambda s: None)
    return Engine(
        journal,
        [Connection("shipping", adapter.name, adapter, driver)],
        plan={"order.created": ["send"]},
        steps=STEPS,
        policy=JobPolicy(backoff_initial=1.0, backoff_max=2.0, lease=lease),
        clock=clock,
    )


def one_order(
    journal: AnyJournal, clock: Clock, vendor: Vendor, adapter: str = "blind"
) -> tuple[Engine, OrderCreated]:
    """An engine on ``vendor`` whose send step reads before it writes, and one order
    submitted to it."""
    made = ADAPTERS[adapter]()
    made.read_first = True  # type: ignore[attr-defined]
    engine = engine_for(journal, clock, vendor, made, LEASE)
    event = orders(1)[0]
    engine.submit(event)
    return engine, event


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_a_slow_attempt_renews_its_lease_before_writing(
    journal: AnyJournal, clock: Clock, adapter: str
) -> None:
    seen: list[int] = []

    def slow_read() -> None:  # the read takes most of the lease; nobody may take the job
        clock.advance(LEASE * 0.6)
        seen.append(len(journal.claim("b", lease=LEASE)))

    vendor = Meddling(slow_read)
    engine, event = one_order(journal, clock, vendor, adapter)
    (outcome,) = engine.run_once("a")
    assert outcome.state is JobState.DONE
    assert seen == [0]
    assert vendor.effects[event.order.id] == 1
    # renewed before the write: 1.2 leases after the claim, the job was still a's
    job = journal.get(outcome.key)
    assert job is not None
    assert job.worker == "a"
    assert job.attempts == 1


def test_a_renewed_lease_keeps_other_workers_out(journal: AnyJournal, clock: Clock) -> None:
    taken: list[int] = []

    def slow_read() -> None:
        clock.advance(LEASE * 0.6)

    def write_in_flight() -> None:  # 1.2 leases after the claim
        clock.advance(LEASE * 0.6)
        taken.append(len(journal.claim("b", lease=LEASE)))

    vendor = Meddling(slow_read, write_in_flight)
    engine, _ = one_order(journal, clock, vendor)
    (outcome,) = engine.run_once("a")
    assert outcome.state is JobState.DONE
    assert taken == [0]  # without the renewal before the write, b would hold it now


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_a_worker_that_lost_its_job_sends_nothing_more(
    journal: AnyJournal, clock: Clock, adapter: str
) -> None:
    claimed = []

    def stalled_read() -> None:  # a stalls past its lease; b claims the job meanwhile
        clock.advance(LEASE + 1)
        claimed.extend(journal.claim("b", lease=LEASE))

    vendor = Meddling(stalled_read)
    engine, event = one_order(journal, clock, vendor, adapter)
    summary = DrainSummary()
    for outcome in engine.run_once("a"):
        summary.add(outcome)
    (lost,) = summary.outcomes
    assert lost.state is JobState.RUNNING
    assert lost.error_code == LEASE_LOST
    assert summary.lost == 1
    assert summary.failed == 0
    assert vendor.writes == 0  # a stopped before its write
    (job,) = claimed
    assert job.interrupted
    current = journal.get(job.key)
    assert current is not None
    assert current.state is JobState.RUNNING
    assert current.worker == "b"  # a recorded nothing over b's claim
    assert current.error_code is None
    # b runs it: a vendor that can tell is simply asked again; one that cannot is parked
    vendor.on_read = lambda: None
    outcome = engine.execute(job, "b")
    if adapter == "keyed":
        assert outcome.state is JobState.DONE
        assert vendor.effects[event.order.id] == 1
    else:
        assert outcome.error_code == IN_DOUBT
        assert vendor.effects[event.order.id] == 0


def test_a_claimed_job_waiting_its_turn_is_not_run_by_two_workers(tmp_path: Path) -> None:
    """Real time: a worker claims two jobs and the first takes three leases to answer;
    the second, waiting its turn, keeps its lease all along, and nobody else runs it."""
    lease = 0.4
    journal = SQLiteJournal(tmp_path / "leases.db")
    first = threading.Event()
    stolen: list[int] = []

    def slow_first() -> None:
        if not first.is_set():
            first.set()
            time.sleep(lease * 3)
            stolen.append(len(journal.claim("b", lease=lease)))

    vendor = Meddling(slow_first)
    adapter = Blind()
    adapter.read_first = True  # type: ignore[attr-defined]
    engine = engine_for(journal, time.time, vendor, adapter, lease)
    events = orders(2)
    for event in events:
        engine.submit(event)
    outcomes = engine.run_once("a", limit=2)
    assert [o.state for o in outcomes] == [JobState.DONE, JobState.DONE]
    assert stolen == [0]
    assert [vendor.effects[e.order.id] for e in events] == [1, 1]
    assert all(not j.interrupted and j.attempts == 1 for j in journal.jobs())


def test_the_async_engine_stops_a_worker_that_lost_its_job(
    journal: AnyJournal, clock: Clock
) -> None:
    claimed = []

    def stalled_read() -> None:
        clock.advance(LEASE + 1)
        claimed.extend(journal.claim("b", lease=LEASE))

    vendor = Meddling(stalled_read)
    engine, _ = one_order(journal, clock, vendor)
    drivers = {
        ("shipping", "blind"): AsyncDriver(
            httpx.AsyncClient(transport=httpx.MockTransport(vendor.handler)),
            retry=RetryPolicy(max_attempts=1),
        )
    }
    aengine = AsyncEngine(engine, drivers)

    async def main() -> list[JobState]:
        outcomes = await aengine.run_once("a")
        await aengine.aclose()
        return [o.state for o in outcomes if o.error_code == LEASE_LOST]

    assert asyncio.run(main()) == [JobState.RUNNING]
    assert vendor.writes == 0
    assert len(claimed) == 1


def _hold_in_child(engine: Engine, answer: Any) -> None:
    leases = engine._leases
    held = leases.hold("child-job", "child", engine.policy.lease)
    thread = leases._thread
    answer.put((held, thread is not None and thread.is_alive()))
    leases.release("child-job", "child")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (Celery's prefork pool)")
def test_a_forked_worker_keeps_its_own_leases(tmp_path: Path) -> None:
    """A worker forked while its parent's keeper ran (Celery prefork) starts its own."""
    journal = SQLiteJournal(tmp_path / "fork.db")
    engine = engine_for(journal, time.time, Vendor(), Blind(), 60.0)
    assert engine._leases.hold("parent-job", "parent", 60.0)
    parent_thread = engine._leases._thread
    assert parent_thread is not None
    assert parent_thread.is_alive()
    ctx = multiprocessing.get_context("fork")
    answer = ctx.Queue()
    child = ctx.Process(target=_hold_in_child, args=(engine, answer))
    child.start()
    try:
        assert answer.get(timeout=30) == (True, True)
    finally:
        child.join(30)
        engine._leases.release("parent-job", "parent")
    assert child.exitcode == 0
