"""Exactly-once across kill -9: worker processes against a served vendor, killed between
the vendor's answer and the journal write, then resumed; effects counted at the vendor."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from collections import deque
from decimal import Decimal
from pathlib import Path

import pytest

from dixis_integrations.models.events import OrderCancelled, OrderCreated
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.sandbox.serve import serve
from dixis_integrations.sync.engine import Engine
from dixis_integrations.sync.journal import JobState, SQLiteJournal
from dixis_integrations.sync.marketday import SENDER, MarketDay, market_day
from dixis_integrations.sync.steps import StepSettings

from .market import MarketEmulator, connections

WORKER = Path(__file__).with_name("_crash_worker.py")


def run_worker(journal: Path, base_url: str, crash_after: int, workers: int = 4) -> int:
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(journal), base_url, str(crash_after), str(workers)],
        timeout=300,
        capture_output=True,
        check=False,
    )
    return proc.returncode


def expected_stock(day: MarketDay) -> dict[str, Decimal]:
    stock = dict(day.opening_stock)
    cancelled = {e.order_id for e in day.events if isinstance(e, OrderCancelled)}
    for e in day.events:
        if isinstance(e, OrderCreated) and e.order.id not in cancelled:
            for line in e.order.lines:
                stock[line.sku] -= line.quantity
    return stock


def crash_and_resume(
    tmp_path: Path, *, orders: int, crashes: int, fault_rate: float, seed: int
) -> None:
    day = market_day(orders=orders, seed=seed)
    emulator = MarketEmulator(
        stock=day.opening_stock,
        faults=FaultPlan(
            rate=fault_rate,
            kinds=(Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.RESET, Fault.EXPIRED_TOKEN),
            retry_after=0.01,
            seed=seed,
            script=deque(),
        ),
        lose_answers=fault_rate / 4,
        seed=seed,
    )
    path = tmp_path / "journal.db"
    rng = random.Random(seed)
    with serve(emulator.handle) as served:
        journal = SQLiteJournal(path)
        engine = Engine(journal, connections(served.base_url), settings=StepSettings(sender=SENDER))
        for event in day.events:
            engine.submit(event)
        total_jobs = len(journal.jobs())
        for _ in range(crashes):
            rc = run_worker(path, served.base_url, crash_after=rng.randint(5, total_jobs // 4))
            assert rc == -signal.SIGKILL
        # at-least-once delivery: the host sends every event again before resuming
        for event in day.events:
            engine.submit(event)
        assert run_worker(path, served.base_url, crash_after=0) == 0
        counts = journal.counts()
        dead = [(j.step, j.error_code, j.error_message) for j in journal.jobs(state=JobState.DEAD)]
        journal.close()
    assert counts[JobState.DONE] == total_jobs, dead
    created = [e.order for e in day.events if isinstance(e, OrderCreated)]
    # counted in the vendor's own state, not in our journal
    assert sorted(emulator.invoice_writes) == sorted(o.id for o in created)
    assert all(n == 1 for n in emulator.invoice_writes.values())
    assert len(emulator.invoices) == len(created)
    assert sorted(emulator.vouchers) == sorted(o.id for o in created)
    assert len(emulator.messages) == len(created)
    assert emulator.stock == expected_stock(day)
    paid = {e.payment.id for e in day.events if e.type == "order.paid"}  # type: ignore[attr-defined]
    assert set(emulator.payments) == paid
    cancelled = {e.order_id for e in day.events if isinstance(e, OrderCancelled)}
    assert emulator.cancelled == cancelled
    assert {i["reference"] for i in emulator.invoices.values() if i.get("voided")} == cancelled


@pytest.mark.slow
def test_kill_9_between_vendor_answer_and_journal_write_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    crash_and_resume(tmp_path, orders=40, crashes=3, fault_rate=0.0, seed=11)


@pytest.mark.slow
def test_kill_9_with_faults_still_gives_one_effect_per_step(tmp_path: Path) -> None:
    crash_and_resume(tmp_path, orders=30, crashes=2, fault_rate=0.2, seed=12)
