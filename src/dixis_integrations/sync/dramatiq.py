"""Run journal jobs as Dramatiq messages (extra ``[dramatiq]``, RabbitMQ broker).

One message per job key. Dramatiq acknowledges a message only after the actor returns,
so a worker killed mid-job has its message delivered again; the journal (claimed with a
lease, completed in one transaction) makes the second delivery find the first effect.
A job that must wait (``RateLimited``, backoff, a dependency not done) is sent again
with a ``delay`` until its next attempt time instead of holding a worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dixis_integrations.models.events import Event
from dixis_integrations.sync.engine import Engine
from dixis_integrations.sync.runners import next_attempt, stale_keys

__all__ = ["ACTOR_NAME", "DramatiqRunner", "install"]

ACTOR_NAME = "dixis_integrations_execute_job"


def install(
    broker: Any,
    engine_factory: Callable[[], Engine],
    *,
    queue_name: str = "default",
    follow_on: int = 4,
) -> Any:
    """Declare the job actor on ``broker``; returns the actor.

    ``engine_factory`` builds the engine once per worker process (on first message).
    ``follow_on``: after its own job, a message executes up to this many more due jobs from
    the journal, so jobs freed by it (a lane, a dependency) do not wait for their
    message's next delivery; a job found waiting is sent again later and later (1 s
    doubling to 30 s).
    """
    import dramatiq

    engines: dict[str, Engine] = {}
    lock = threading.Lock()

    def engine() -> Engine:
        with lock:
            if "engine" not in engines:
                engines["engine"] = engine_factory()
            return engines["engine"]

    def execute_job(key: str, waited: int = 0) -> str:
        state, retry_at = next_attempt(engine(), key, waited=waited, follow_on=follow_on)
        if retry_at is not None:
            delay_ms = max(0, int((retry_at - datetime.now(UTC)).total_seconds() * 1000))
            actor.send_with_options(args=(key, waited + 1), delay=delay_ms)
        return state

    actor = dramatiq.actor(
        actor_name=ACTOR_NAME,
        broker=broker,
        queue_name=queue_name,
        max_retries=20,
        min_backoff=100,
        max_backoff=30_000,
    )(execute_job)
    return actor


class DramatiqRunner:
    """Records an event's jobs, then sends one message per job."""

    def __init__(self, engine: Engine, actor: Any) -> None:
        self.engine = engine
        self.actor = actor

    def dispatch(self, event: Event) -> list[str]:
        """Record the jobs and enqueue them."""
        keys = self.engine.submit(event)
        for key in keys:
            self.actor.send(key)
        return keys

    def resend_stale(self, *, older_than: float = 60.0) -> int:
        """Send again the jobs due but untouched for ``older_than`` seconds (run it
        periodically, e.g. from a scheduler); how many were sent."""
        keys = stale_keys(self.engine, older_than=older_than)
        for key in keys:
            self.actor.send(key)
        return len(keys)
