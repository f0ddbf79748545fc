"""Celery runner with real worker processes on the local Redis, one killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

from _services import require_redis
from dixis_integrations.hub import Integrations
from dixis_integrations.models.events import OrderCreated
from dixis_integrations.sandbox.serve import serve
from dixis_integrations.sync.engine import Engine
from dixis_integrations.sync.journal import JobState, SQLiteJournal
from dixis_integrations.sync.marketday import SENDER, market_day
from dixis_integrations.sync.steps import StepSettings

from ._queue_soak import ORDERS_ENV, ROUTER, env_for, kill, settled, wait, workers
from .market import MarketEmulator, connections
from .test_soak import (
    KEY,
    LATER,
    TIME_SCALE,
    check_effects,
    resolve_by_hand,
    sandbox_config,
    served_sandboxes,
)

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


def start_worker(env: dict[str, str], name: str, *, threads: int = 2) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "sync._celery_app",
            "worker",
            "-c",
            str(threads),
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
        start_new_session=True,
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

        # the app is imported once per test session: its queue is the one to consume
        env["DIXIS_TEST_QUEUE"] = _celery_app.app.conf.task_default_queue

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


@pytest.mark.timeout(900)
def test_celery_soak_on_the_sandboxes_with_one_of_two_workers_killed(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The soak of ``test_soak`` on Celery: the vendors' own sandboxes served over HTTP
    with 20% faults, two worker processes, one killed with SIGKILL mid-run, then resume;
    the effects counted at the vendors."""
    orders = int(os.environ.get(ORDERS_ENV, "1000"))
    day = market_day(orders=orders, seed=41)
    with ExitStack() as stack:
        sandboxes = served_sandboxes(stack)
        sandboxes["cin7"][0].seed_stock(day.opening_stock)
        config = tmp_path / "sandboxes.json"
        sandbox_config(sandboxes, config)
        env.update(env_for(tmp_path, config, TIME_SCALE, KEY))
        for name, value in env.items():
            if name.startswith("DIXIS_"):
                monkeypatch.setenv(name, value)
        monkeypatch.syspath_prepend(str(TESTS))
        from dixis_integrations.sync.celery import CeleryRunner
        from sync import _celery_app

        # the app is imported once per test session: its queue is the one to consume
        env["DIXIS_TEST_QUEUE"] = _celery_app.app.conf.task_default_queue

        host = Integrations.attach(
            json.loads(config.read_text(encoding="utf-8")),
            journal_url=f"sqlite:///{env['DIXIS_TEST_JOURNAL']}",
            time_scale=TIME_SCALE,
            router=ROUTER,
        )
        stack.callback(host.close)
        stack.callback(_celery_app.app.control.purge)
        runner = CeleryRunner(host.engine, _celery_app.execute_job)
        procs = stack.enter_context(workers(lambda name: start_worker(env, name, threads=4)))
        for event in day.events:
            if event.type not in LATER:
                runner.dispatch(event)
        first = len(host.journal.jobs())
        wait(runner, lambda: host.journal.counts()[JobState.DONE] >= first // 3, timeout=300)
        kill(procs[0])  # mid-run: its claimed jobs' leases expire, its messages come back
        wait(runner, lambda: settled(host.engine), timeout=600)
        for event in day.events:  # at-least-once: everything again, and the day's follow-ups
            runner.dispatch(event)
        wait(runner, lambda: settled(host.engine), timeout=600)

        def resume() -> None:  # the replayed or resolved jobs, and those waiting on them
            runner.resend_stale(older_than=0)
            wait(runner, lambda: settled(host.engine), timeout=600)

        parked = resolve_by_hand(host.engine, sandboxes, resume)
        if orders >= 500:
            assert parked, "the faults parked no shipment: the operator's rounds went untested"
        check_effects(day, sandboxes, host.journal.jobs())
