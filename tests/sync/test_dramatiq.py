"""Dramatiq runner with real worker processes on the local RabbitMQ, one killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from _services import require_rabbitmq
from dixis_integrations.models.events import OrderCreated
from dixis_integrations.sandbox.serve import serve
from dixis_integrations.sync.engine import Engine
from dixis_integrations.sync.journal import JobState, SQLiteJournal
from dixis_integrations.sync.marketday import SENDER, market_day
from dixis_integrations.sync.steps import StepSettings

from .market import MarketEmulator, connections

pytestmark = [pytest.mark.services, pytest.mark.slow]
TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    pytest.importorskip("dramatiq")
    pytest.importorskip("pika")
    broker = require_rabbitmq()
    return {
        **os.environ,
        "DIXIS_TEST_BROKER": broker,
        "DIXIS_TEST_QUEUE": f"dixis-test-{uuid.uuid4().hex[:8]}",
        "DIXIS_TEST_JOURNAL": str(tmp_path / "journal.db"),
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "sync._dramatiq_app",
            "--processes",
            "1",
            "--threads",
            "2",
            "--queues",
            env["DIXIS_TEST_QUEUE"],
        ],
        cwd=TESTS,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_two_dramatiq_workers_one_killed_still_give_one_effect_per_step(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    day = market_day(orders=20, seed=22, follow_ups=True)
    emulator = MarketEmulator(stock=day.opening_stock)
    with serve(emulator.handle) as served:
        env["DIXIS_TEST_MARKET_URL"] = served.base_url
        for name in ("DIXIS_TEST_BROKER", "DIXIS_TEST_QUEUE", "DIXIS_TEST_JOURNAL"):
            monkeypatch.setenv(name, env[name])
        monkeypatch.setenv("DIXIS_TEST_MARKET_URL", served.base_url)
        monkeypatch.syspath_prepend(str(TESTS))
        from dixis_integrations.sync.dramatiq import DramatiqRunner
        from sync import _dramatiq_app

        journal = SQLiteJournal(env["DIXIS_TEST_JOURNAL"])
        engine = Engine(journal, connections(served.base_url), settings=StepSettings(sender=SENDER))
        runner = DramatiqRunner(engine, _dramatiq_app.execute_job)
        workers = [start_worker(env), start_worker(env)]
        try:
            for event in day.events:
                runner.dispatch(event)
            deadline = time.monotonic() + 30
            while journal.counts()[JobState.DONE] < 10 and time.monotonic() < deadline:
                time.sleep(0.05)
            # the whole process group of one worker (its master and its worker process)
            os.killpg(workers[0].pid, signal.SIGKILL)
            workers[0].wait(10)
            deadline = time.monotonic() + 120
            total = len(journal.jobs())
            swept = time.monotonic()
            while journal.counts()[JobState.DONE] < total and time.monotonic() < deadline:
                time.sleep(0.2)
                if time.monotonic() - swept > 10:  # the host's periodic sweep
                    runner.resend_stale(older_than=10)
                    swept = time.monotonic()
            counts = journal.counts()
        finally:
            for w in workers:
                if w.poll() is None:
                    os.killpg(w.pid, signal.SIGTERM)
                    try:
                        w.wait(20)
                    except subprocess.TimeoutExpired:
                        os.killpg(w.pid, signal.SIGKILL)
            _dramatiq_app.broker.flush(env["DIXIS_TEST_QUEUE"])
            _dramatiq_app.broker.close()
        journal.close()
    assert counts[JobState.DONE] == total, counts
    orders = [e.order for e in day.events if isinstance(e, OrderCreated)]
    assert all(n == 1 for n in emulator.invoice_writes.values())
    assert len(emulator.invoices) == len(orders)
    assert sorted(emulator.vouchers) == sorted(o.id for o in orders)
    assert len(emulator.messages) == len(orders)
