"""What the Celery and Dramatiq soaks share: the engine a worker process builds over the
served sandboxes, and the host's side of the run (dispatch, kill one worker, resume,
count the effects at the vendors)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Protocol

from dixis_integrations.auth import SQLiteTokenStore, TokenCipher
from dixis_integrations.http import RetryPolicy
from dixis_integrations.hub import Integrations
from dixis_integrations.models.events import Event
from dixis_integrations.sync.engine import Engine, JobPolicy, spread_by_order
from dixis_integrations.sync.journal import JobState

ORDERS_ENV = "DIXIS_QUEUE_SOAK_ORDERS"
ROUTER = spread_by_order(("shipping",), exclude=("boxnow",))


def soak_engine() -> Engine:
    """The engine of a worker process of a queue soak (``$DIXIS_TEST_SANDBOXES``: the
    served sandboxes' config; the journal and the token store next to each other)."""
    with open(os.environ["DIXIS_TEST_SANDBOXES"], encoding="utf-8") as f:
        sandboxes = json.load(f)
    journal = os.environ["DIXIS_TEST_JOURNAL"]
    store = SQLiteTokenStore(journal + ".tokens", TokenCipher(os.environ["DIXIS_SOAK_KEY"]))
    hub = Integrations.attach(
        sandboxes,
        journal_url=f"sqlite:///{journal}",
        time_scale=float(os.environ["DIXIS_SOAK_TIME_SCALE"]),
        policy=JobPolicy(lease=3.0, backoff_initial=0.05, backoff_max=0.5, max_attempts=40),
        router=ROUTER,
        token_store=store,
        retry=RetryPolicy(backoff_initial=0.002, backoff_max=0.02, max_retry_after=5.0),
    )
    return hub.engine


class QueueRunner(Protocol):
    engine: Engine

    def dispatch(self, event: Event) -> list[str]: ...

    def resend_stale(self, *, older_than: float = 60.0) -> int: ...


def settled(engine: Engine) -> bool:
    counts = engine.journal.counts()
    return not any(counts[s] for s in (JobState.PENDING, JobState.RUNNING, JobState.FAILED))


def wait(
    runner: QueueRunner, until: Callable[[], bool], *, timeout: float, sweep: float = 5.0
) -> None:
    """Wait for ``until``, sending again every ``sweep`` seconds the jobs due but left
    untouched (the host's periodic sweep: messages of a killed worker, lost retries)."""
    deadline = time.monotonic() + timeout
    swept = time.monotonic()
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled in {timeout} s: {runner.engine.journal.counts()}")
        time.sleep(0.2)
        if time.monotonic() - swept > sweep:
            runner.resend_stale(older_than=sweep)
            swept = time.monotonic()


@contextmanager
def workers(start: Callable[[str], subprocess.Popen[bytes]]) -> Iterator[list[Any]]:
    """Two worker processes (each in its own process group), stopped at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:

        def stop() -> None:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(5)

        stack.callback(stop)
        procs.extend([start("a"), start("b")])
        yield procs


def kill(proc: subprocess.Popen[bytes]) -> None:
    """kill -9 a worker and everything it started."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def env_for(tmp_path: Path, config: Path, time_scale: float, key: str) -> dict[str, str]:
    return {
        "DIXIS_TEST_SANDBOXES": str(config),
        "DIXIS_TEST_JOURNAL": str(tmp_path / "journal.db"),
        "DIXIS_SOAK_TIME_SCALE": str(time_scale),
        "DIXIS_SOAK_KEY": key,
    }
