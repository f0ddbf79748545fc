"""The engine for asyncio hosts: the same plans, journal and outcomes, jobs run concurrently.

:class:`AsyncEngine` wraps an :class:`~.engine.Engine` (its plan, steps, policy,
classification of errors and in-doubt rule are the engine's own) and runs each job's
operation with an :class:`~dixis_integrations.http.AsyncDriver` instead of the
thread-bound driver. The journal is blocking (SQLite, psycopg): every journal call runs
in a worker thread (:func:`asyncio.to_thread`), so the event loop never waits on a
transaction. At most ``concurrency`` jobs run at once; :meth:`AsyncEngine.drain` awaits
rescheduled jobs with ``asyncio.sleep``, never blocking the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from dixis_integrations.http.driver import AsyncDriver, CallRecord
from dixis_integrations.models.events import Event
from dixis_integrations.sync.engine import (
    DrainSummary,
    Engine,
    Outcome,
    _Attempt,
    _Unconfigured,
    current_job,
)
from dixis_integrations.sync.journal import Job

__all__ = ["AsyncCallRecorder", "AsyncEngine"]


class AsyncCallRecorder:
    """An ``AsyncDriver`` ``on_call`` hook that keeps each call in the journal off the loop.

    Wraps a blocking recorder (a :class:`~.engine.CallRecorder`): on an event loop the
    write runs in a worker thread (with the caller's context, so the job key is kept);
    :meth:`flush` awaits the writes still in flight. Without a running loop it records
    in place.
    """

    def __init__(self, recorder: Callable[[CallRecord], None]) -> None:
        self.recorder = recorder
        self._pending: set[asyncio.Task[None]] = set()

    def __call__(self, record: CallRecord) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.recorder(record)
            return
        task = loop.create_task(asyncio.to_thread(self.recorder, record))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        """Wait until every call handed over so far is recorded."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


class AsyncEngine:
    """Executes an engine's jobs on asyncio, at most ``concurrency`` at a time.

    Args:
        engine: the engine whose journal, plan, steps, policy and listeners are used.
        drivers: the async driver of each connection, by ``(kind, name)``.
        concurrency: how many jobs run at once.
        sleep: how to wait for rescheduled jobs (tests pass a fake).
        on_idle: awaited when a drain ends (e.g. :meth:`AsyncCallRecorder.flush`).

    Outcomes are recorded exactly as :meth:`Engine.execute` records them, so the sync
    and async engines may share one journal (and a job done by one is not run by the
    other). Listeners are called on the event loop.
    """

    def __init__(
        self,
        engine: Engine,
        drivers: Mapping[tuple[str, str], AsyncDriver],
        *,
        concurrency: int = 8,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_idle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.engine = engine
        self.journal = engine.journal
        self.drivers = dict(drivers)
        self.concurrency = concurrency
        self._sleep = sleep
        self._on_idle = on_idle

    # -- recording -------------------------------------------------------------------------
    async def submit(self, event: Event) -> list[str]:
        """Plan the event and record its jobs (again is harmless); the job keys."""
        return await asyncio.to_thread(self.engine.submit, event)

    async def submit_many(self, events: Iterable[Event]) -> list[str]:
        """Plan and record many events, in order; every job key."""

        def record() -> list[str]:
            keys: list[str] = []
            for event in events:
                keys.extend(self.engine.submit(event))
            return keys

        return await asyncio.to_thread(record)

    # -- execution -------------------------------------------------------------------------
    async def execute(self, job: Job, worker: str) -> Outcome:
        """Run one claimed job and record its outcome in the journal."""
        engine = self.engine
        token = current_job.set(job.key)
        started = time.monotonic()
        attempt: _Attempt | None = None
        try:
            attempt = await asyncio.to_thread(engine._prepare, job, worker)
            driver = self.drivers.get((job.kind, job.provider))
            if driver is None:
                raise _Unconfigured(f"{job.kind} integration {job.provider!r} has no async driver")
            result = await driver.run(attempt.operation)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise  # cancelled, KeyboardInterrupt: the lease will expire
            outcome = await asyncio.to_thread(
                engine._record_failure, job, worker, exc, attempt, time.monotonic() - started
            )
        else:
            outcome = await asyncio.to_thread(
                engine._record_done, job, worker, result, time.monotonic() - started
            )
        finally:
            engine._leases.release(job.key, worker)
            current_job.reset(token)
        return engine._announce(job, outcome, started)

    async def run_once(self, worker: str, *, limit: int | None = None) -> list[Outcome]:
        """Claim up to ``limit`` (default: ``concurrency``) due jobs and run them at once."""
        n = self.concurrency if limit is None else limit
        jobs = await self._claim(worker, n)
        return list(await asyncio.gather(*(self.execute(job, worker) for job in jobs)))

    async def _claim(self, worker: str, limit: int) -> list[Job]:
        lease = self.engine.policy.lease
        return await asyncio.to_thread(self.journal.claim, worker, lease=lease, limit=limit)

    async def drain(
        self,
        *,
        worker: str = "async",
        wait: bool = True,
        max_wait: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> DrainSummary:
        """Execute due jobs, ``concurrency`` at a time, until none is left.

        With ``wait`` it also awaits jobs rescheduled for later (rate limits, backoff,
        expired leases), giving up after ``max_wait`` seconds in all. Cancelling the drain
        cancels the jobs it runs: their leases expire, as for a worker that died.
        """
        summary = DrainSummary()
        clock = self.engine._clock
        started = clock()
        running: set[asyncio.Task[Outcome]] = set()
        try:
            while True:
                stopping = should_stop is not None and should_stop()
                free = self.concurrency - len(running)
                if free > 0 and not stopping:
                    jobs = await self._claim(worker, free)
                    for job in jobs:
                        running.add(asyncio.create_task(self.execute(job, worker)))
                if running:  # what was just claimed runs too
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        summary.add(task.result())
                    continue
                if stopping or not wait:
                    break
                due = await asyncio.to_thread(self.journal.next_due)
                if due is None:
                    break
                delay = max(0.0, due.timestamp() - clock())
                if max_wait is not None and clock() + delay - started > max_wait:
                    break
                await self._sleep(min(max(delay, 0.01), 1.0))
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            if self._on_idle is not None:
                await self._on_idle()
        return summary

    async def dispatch(self, event: Event) -> list[str]:
        """Record an event's jobs and execute what is due now (without waiting)."""
        keys = await self.submit(event)
        await self.drain(wait=False)
        return keys

    async def aclose(self) -> None:
        """Close the async drivers (the wrapped engine is closed by its owner)."""
        for driver in self.drivers.values():
            await driver.aclose()
