"""Claims look past a busy lane: a backlog of one lane at the head of the queue does not
hide the jobs behind it (on SQLite and PostgreSQL). On SQLite, a claim with nothing due
never takes the write lock."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from dixis_integrations.sync.journal import JobSpec, Journal, SQLiteJournal

from .conftest import Clock


def job(event: str, step: str, lane: str | None) -> JobSpec:
    return JobSpec(
        tenant="t",
        event_id=event,
        event_type="order.created",
        step=step,
        kind="inventory" if lane else "crm",
        provider="p",
        payload="{}",
        lane=lane,
    )


def test_a_busy_lane_does_not_hide_the_jobs_behind_it(journal: Journal, clock: Clock) -> None:
    # twenty jobs of one lane, older than a job of no lane and one of another lane
    for i in range(20):
        journal.enqueue([job(f"e{i:02d}", "inventory", "stock:p")])
        clock.advance(1)
    journal.enqueue([job("late", "crm_contact", None), job("other", "inventory", "stock:q")])
    (head,) = journal.claim("w1", lease=10)
    assert head.event_id == "e00"
    taken = [journal.claim(f"w{n}", lease=10) for n in (2, 3, 4)]
    assert sorted(j.event_id for batch in taken for j in batch) == ["late", "other"]
    # the lane frees when its job is done, or when its worker's lease runs out
    journal.complete(head.key, "w1", external_id=None, result=None)
    (second,) = journal.claim("w5", lease=10)
    assert second.event_id == "e01"
    assert journal.claim("w6", lease=10) == []
    clock.advance(20)
    assert [j.event_id for j in journal.claim("w7", lease=10)] == ["e01"]


def test_an_idle_sqlite_claim_never_waits_for_the_write_lock(tmp_path: Path) -> None:
    journal = SQLiteJournal(tmp_path / "journal.db")
    journal.enqueue([job("e", "crm_contact", None)])
    (running,) = journal.claim("w1", lease=60)
    other = sqlite3.connect(tmp_path / "journal.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        started = time.monotonic()
        assert journal.claim("w2", lease=60) == []  # nothing due: no write lock needed
        assert time.monotonic() - started < 5  # the busy timeout is 60 s
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert journal.complete(running.key, "w1", external_id=None, result=None)
    journal.close()
