"""Run journal jobs as Celery tasks (extra ``[celery]``).

One task per job key, declared ``acks_late`` and ``reject_on_worker_lost``: a worker that
dies mid-job leaves its message to be delivered again, and the journal (claimed with a
lease, completed in one transaction) makes the second delivery find the first effect.
A job that must wait (``RateLimited``, backoff, a dependency not done) is retried with
``eta`` at its next attempt time instead of holding a worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from dixis_integrations.models.events import Event
from dixis_integrations.sync.engine import Engine
from dixis_integrations.sync.runners import next_attempt, stale_keys

__all__ = ["TASK_NAME", "CeleryRunner", "install"]

TASK_NAME = "dixis_integrations.execute_job"


def install(
    app: Any, engine_factory: Callable[[], Engine], *, queue: str | None = None, follow_on: int = 4
) -> Any:
    """Register the job task on a Celery ``app``; returns the task.

    ``engine_factory`` builds the engine once per worker process (on first task).
    ``follow_on``: after its own job, a task executes up to this many more due jobs from the
    journal, so jobs freed by it (a lane, a dependency) do not wait for their message's
    next delivery; a job found waiting is retried later and later (1 s doubling to 30 s).
    """
    engines: dict[str, Engine] = {}
    lock = threading.Lock()

    def engine() -> Engine:
        with lock:
            if "engine" not in engines:
                engines["engine"] = engine_factory()
            return engines["engine"]

    options: dict[str, Any] = {
        "name": TASK_NAME,
        "bind": True,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "max_retries": None,
        "ignore_result": True,
    }
    if queue is not None:
        options["queue"] = queue

    @app.task(**options)  # type: ignore[untyped-decorator]
    def execute_job(self: Any, key: str) -> str:
        state, retry_at = next_attempt(
            engine(), key, waited=self.request.retries, follow_on=follow_on
        )
        if retry_at is not None:
            raise self.retry(eta=retry_at, countdown=None)
        return state

    return execute_job


class CeleryRunner:
    """Records an event's jobs, then sends one task per job."""

    def __init__(self, engine: Engine, task: Any) -> None:
        self.engine = engine
        self.task = task

    def dispatch(self, event: Event) -> list[str]:
        """Record the jobs and enqueue them."""
        keys = self.engine.submit(event)
        for key in keys:
            self.task.apply_async(args=(key,))
        return keys

    def resend_stale(self, *, older_than: float = 60.0) -> int:
        """Send again the jobs due but untouched for ``older_than`` seconds (run it
        periodically, e.g. from a scheduler); how many were sent."""
        keys = stale_keys(self.engine, older_than=older_than)
        for key in keys:
            self.task.apply_async(args=(key,))
        return len(keys)
