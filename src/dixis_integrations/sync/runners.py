"""Where jobs run: inline in the caller (the default) or on a local pool of worker threads.

Every runner records the jobs in the journal first and only then executes them, so a
crash anywhere loses nothing: the next runner started on the same journal resumes.
Celery and Dramatiq runners live in :mod:`.celery` and :mod:`.dramatiq` (extras).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from dixis_integrations.models.events import Event
from dixis_integrations.sync.engine import DrainSummary, Engine
from dixis_integrations.sync.journal import JobState

__all__ = ["InlineRunner", "PoolRunner", "Runner", "next_attempt", "stale_keys", "worker_name"]


def worker_name(prefix: str = "worker") -> str:
    """A name unique to this process and call: host, pid and a random suffix."""
    return f"{prefix}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Runner(Protocol):
    """Takes events and sees their jobs executed."""

    def dispatch(self, event: Event) -> list[str]:
        """Record the event's jobs and get them executed; their keys."""
        ...


class InlineRunner:
    """Executes jobs in the calling thread, right away (the default).

    ``dispatch`` returns once the event's jobs are done, failed for later, or dead;
    ``drain`` also waits for rescheduled jobs, up to ``max_wait`` seconds.
    """

    def __init__(self, engine: Engine, *, max_wait: float | None = 0.0) -> None:
        self.engine = engine
        self.max_wait = max_wait
        self.name = worker_name("inline")

    def dispatch(self, event: Event) -> list[str]:
        """Record and execute the event's jobs now."""
        keys = self.engine.submit(event)
        self.engine.drain(worker=self.name, wait=bool(self.max_wait), max_wait=self.max_wait)
        return keys

    def dispatch_many(self, events: Iterable[Event]) -> list[str]:
        """Record many events, then execute all their jobs."""
        keys: list[str] = []
        for event in events:
            keys.extend(self.engine.submit(event))
        self.engine.drain(worker=self.name, wait=bool(self.max_wait), max_wait=self.max_wait)
        return keys

    def drain(self, *, max_wait: float | None = None) -> DrainSummary:
        """Execute whatever is due (resume after a crash), waiting up to ``max_wait``."""
        return self.engine.drain(worker=self.name, wait=True, max_wait=max_wait)


class PoolRunner:
    """A local pool of worker threads claiming jobs from the journal.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Threads suit the
    work (waiting on vendors); several processes may also share one journal.
    """

    def __init__(self, engine: Engine, *, workers: int = 4, poll: float = 0.05) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.engine = engine
        self.workers = workers
        self.poll = poll
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def __enter__(self) -> PoolRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the worker threads."""
        self._stop.clear()
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"dixis-worker-{i}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the workers to finish their current job and stop."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def dispatch(self, event: Event) -> list[str]:
        """Record the event's jobs and wake the workers."""
        keys = self.engine.submit(event)
        with self._wake:
            self._wake.notify_all()
        return keys

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no job is pending, running or failed; ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            counts = self.engine.journal.counts()
            busy = (JobState.PENDING, JobState.RUNNING, JobState.FAILED)
            if not any(counts[s] for s in busy):
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(self.poll)

    def _loop(self) -> None:
        name = worker_name("pool")
        while not self._stop.is_set():
            try:
                outcomes = self.engine.run_once(name, limit=1)
            except Exception as exc:  # a journal hiccup must not kill the worker
                self.errors.append(exc)
                outcomes = []
                time.sleep(self.poll)
            if outcomes:
                continue
            with self._wake:
                self._wake.wait(self.poll)


_WAIT_FOR_DEPENDENCY = 1.0
_MAX_WAIT_FOR_DEPENDENCY = 30.0
_local = threading.local()


def _queue_worker() -> str:
    name: str | None = getattr(_local, "name", None)
    if name is None:
        name = worker_name("queue")
        _local.name = name
    return name


def dependency_wait(waited: int) -> float:
    """Seconds before a job waiting on a dependency or a busy lane is looked at again,
    after ``waited`` earlier looks: 1 s, doubling, at most 30 s. Tasks that finish a job
    also take the due jobs behind it (``follow_on``), so a waiting job rarely needs its own
    message to come back."""
    return min(_WAIT_FOR_DEPENDENCY * 2.0 ** max(0, min(waited, 16)), _MAX_WAIT_FOR_DEPENDENCY)


def next_attempt(
    engine: Engine, key: str, *, waited: int = 0, follow_on: int = 0
) -> tuple[str, datetime | None]:
    """Claim and execute one job; (state, when to try again or ``None``).

    ``waited``: how many times this job's message already found it waiting (its next
    look backs off, see :func:`dependency_wait`). ``follow_on``: after executing the job,
    execute up to this many more due jobs from the journal (their own messages then find
    them done), so work freed by this one (a lane, a dependency) goes on at once.
    """
    name = _queue_worker()
    jobs = engine.journal.claim(name, lease=engine.policy.lease, key=key)
    now = datetime.now(UTC)
    if not jobs:
        job = engine.journal.get(key)
        if job is None or job.state in (JobState.DONE, JobState.DEAD):
            return (job.state.value if job else "missing"), None
        if job.state is JobState.FAILED and job.next_attempt_at is not None:
            return job.state.value, job.next_attempt_at
        if job.state is JobState.RUNNING and job.lease_until is not None:
            return job.state.value, job.lease_until
        return job.state.value, now + timedelta(seconds=dependency_wait(waited))
    outcome = engine.execute(jobs[0], name)
    if follow_on > 0:
        engine.run_once(name, limit=follow_on)
    if outcome.state is JobState.FAILED:
        return outcome.state.value, outcome.retry_at or now
    if outcome.state is JobState.RUNNING:  # another worker took it over: look again later
        return outcome.state.value, now + timedelta(seconds=engine.policy.lease)
    return outcome.state.value, None


def stale_keys(engine: Engine, *, older_than: float) -> list[str]:
    """Jobs due now that nothing touched for ``older_than`` seconds: their queue message
    may be lost (a broker restart, a sweep that did not come). The journal, not the
    broker, says what is left to do; sending them again is harmless (claims guard them).
    """
    now = datetime.now(UTC)
    horizon = now - timedelta(seconds=older_than)
    keys: list[str] = []
    for state in (JobState.PENDING, JobState.FAILED, JobState.RUNNING):
        for job in engine.journal.jobs(state=state):
            if job.updated_at > horizon:
                continue
            if state is JobState.FAILED and job.next_attempt_at and job.next_attempt_at > now:
                continue
            if state is JobState.RUNNING and job.lease_until and job.lease_until > now:
                continue
            keys.append(job.key)
    return keys
