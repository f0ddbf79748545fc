"""Inline and pool runners on the market vendor."""

from __future__ import annotations

from pathlib import Path

import pytest

from dixis_integrations.models.events import OrderCreated, OrderPaid
from dixis_integrations.sync import InlineRunner, JobState, PoolRunner, SQLiteJournal
from dixis_integrations.sync.engine import Engine, JobPolicy, spread_by_order
from dixis_integrations.sync.marketday import SENDER, market_day
from dixis_integrations.sync.steps import StepSettings

from .market import MarketEmulator, connections


def engine_on(tmp_path: Path, emulator: MarketEmulator) -> Engine:
    return Engine(
        SQLiteJournal(tmp_path / "j.db"),
        connections("http://m", transport=emulator.transport()),
        settings=StepSettings(sender=SENDER),
        policy=JobPolicy(backoff_initial=0.001, backoff_max=0.01),
    )


def test_inline_runner_finishes_the_event_before_returning(tmp_path: Path) -> None:
    emulator = MarketEmulator()
    engine = engine_on(tmp_path, emulator)
    event = next(e for e in market_day(orders=2, seed=1).events if isinstance(e, OrderCreated))
    keys = InlineRunner(engine).dispatch(event)
    assert {engine.journal.get(k).state for k in keys} == {JobState.DONE}  # type: ignore[union-attr]
    assert list(emulator.vouchers) == [event.order.id]
    engine.close()


def test_pool_runner_executes_every_job_once(tmp_path: Path) -> None:
    emulator = MarketEmulator()
    engine = engine_on(tmp_path, emulator)
    day = market_day(orders=30, seed=2, follow_ups=False)
    with PoolRunner(engine, workers=4) as pool:
        for event in day.events:
            pool.dispatch(event)
        assert pool.join(timeout=60)
    assert pool.errors == []
    assert engine.journal.counts()[JobState.DONE] == len(engine.journal.jobs())
    assert sorted(emulator.invoice_writes.values()) == [1] * 30
    engine.close()


def test_spread_by_order_is_stable_and_uses_every_candidate() -> None:
    route = spread_by_order(("shipping",), exclude=("boxnow",))
    day = market_day(orders=40, seed=3, follow_ups=False)
    orders = [e for e in day.events if isinstance(e, OrderCreated)]
    chosen = [route(e, "shipping", ["acs", "boxnow", "elta", "geniki"]) for e in orders]
    assert set(chosen) == {"acs", "elta", "geniki"}
    assert chosen == [route(e, "shipping", ["geniki", "elta", "acs"]) for e in orders]
    assert route(orders[0], "crm", ["hubspot", "pipedrive"]) is None


def test_stale_keys_are_the_due_jobs_nobody_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from dixis_integrations.sync.runners import stale_keys

    engine = engine_on(tmp_path, MarketEmulator())
    event = next(e for e in market_day(orders=1, seed=1).events if isinstance(e, OrderCreated))
    keys = engine.submit(event)
    assert stale_keys(engine, older_than=60) == []  # just recorded: its message is on its way
    (claimed,) = engine.journal.claim("w", lease=0.0, key=keys[0])
    later = datetime.now(UTC) + timedelta(seconds=120)
    import dixis_integrations.sync.runners as runners

    class _Later(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return later

    monkeypatch.setattr(runners, "datetime", _Later)
    stale = stale_keys(engine, older_than=60)
    assert sorted(stale) == sorted(keys)  # pending ones and the one whose lease ran out
    assert claimed.key in stale
    engine.close()


def test_a_waiting_job_backs_off_and_a_task_takes_the_due_jobs_behind_its_own(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from dixis_integrations.sync.runners import dependency_wait, next_attempt

    assert [dependency_wait(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert dependency_wait(10_000) == 30.0
    emulator = MarketEmulator()
    engine = engine_on(tmp_path, emulator)
    day = market_day(orders=2, seed=1)
    event = next(e for e in day.events if isinstance(e, OrderCreated))
    paid = next(e for e in day.events if isinstance(e, OrderPaid) and e.order_id == event.order.id)
    keys = engine.submit(event)
    jobs = {engine.journal.get(k).step: k for k in keys}  # type: ignore[union-attr]
    (payment,) = engine.submit(paid)
    # the payment waits for the invoice: its message is told to come back, later each time
    before = datetime.now(UTC)
    state, retry_at = next_attempt(engine, payment, waited=3)
    assert state == "pending"
    assert retry_at is not None
    assert 7.5 <= (retry_at - before).total_seconds() <= 9.0
    # the invoice's task takes the due jobs after its own (at most follow_on of them)
    state, retry_at = next_attempt(engine, jobs["invoice"], follow_on=2)
    assert (state, retry_at) == ("done", None)
    done = [k for k in keys if engine.journal.get(k).state is JobState.DONE]  # type: ignore[union-attr]
    assert len(done) == 3
    # a message of a job already taken finds it done and is not sent again
    taken = next(k for k in done if k != jobs["invoice"])
    assert next_attempt(engine, taken) == ("done", None)
    engine.close()
