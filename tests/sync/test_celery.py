"""Celery runner with real worker processes on the local Redis, one killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from _services import require_redis
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
    pytest.importorskip("celery")
    broker = require_redis()
    return {
        **os.environ,
        "DIXIS_TEST_BROKER": broker,
        "DIXIS_TEST_QUEUE": f"dixis-test-{uuid.uuid4().hex[:8]}",
        "DIXIS_TEST_JOURNAL": str(tmp_path / "journal.db"),
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }


def start_worker(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "sync._celery_app",
            "worker",
            "-c",
            "2",
            "-P",
            "threads",
            "-Q",
            env["DIXIS_TEST_QUEUE"],
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ],
        cwd=TESTS,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_two_celery_workers_one_killed_still_give_one_effect_per_step(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    day = market_day(orders=20, seed=21, follow_ups=True)
    emulator = MarketEmulator(stock=day.opening_stock)
    with serve(emulator.handle) as served:
        env["DIXIS_TEST_MARKET_URL"] = served.base_url
        for name in ("DIXIS_TEST_BROKER", "DIXIS_TEST_QUEUE", "DIXIS_TEST_JOURNAL"):
            monkeypatch.setenv(name, env[name])
        monkeypatch.setenv("DIXIS_TEST_MARKET_URL", served.base_url)
        monkeypatch.syspath_prepend(str(TESTS))
        from dixis_integrations.sync.celery import CeleryRunner
        from sync import _celery_app

        journal = SQLiteJournal(env["DIXIS_TEST_JOURNAL"])
        engine = Engine(journal, connections(served.base_url), settings=StepSettings(sender=SENDER))
        runner = CeleryRunner(engine, _celery_app.execute_job)
        workers = [start_worker(env, "a"), start_worker(env, "b")]
        try:
            for event in day.events:
                runner.dispatch(event)
            deadline = time.monotonic() + 20
            while journal.counts()[JobState.DONE] < 10 and time.monotonic() < deadline:
                time.sleep(0.05)
            workers[0].send_signal(signal.SIGKILL)
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
                    w.send_signal(signal.SIGTERM)
                    try:
                        w.wait(15)
                    except subprocess.TimeoutExpired:
                        w.kill()
            _celery_app.app.control.purge()
        journal.close()
    assert counts[JobState.DONE] == total, counts
    orders = [e.order for e in day.events if isinstance(e, OrderCreated)]
    assert all(n == 1 for n in emulator.invoice_writes.values())
    assert len(emulator.invoices) == len(orders)
    assert sorted(emulator.vouchers) == sorted(o.id for o in orders)
    assert len(emulator.messages) == len(orders)
