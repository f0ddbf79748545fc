"""The Celery app the real-worker tests start: the market vendor at $DIXIS_TEST_MARKET_URL
(or, for the soak, the served sandboxes of $DIXIS_TEST_SANDBOXES), the journal at
$DIXIS_TEST_JOURNAL, the broker at $DIXIS_TEST_BROKER."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celery import Celery

from dixis_integrations.sync.celery import install
from dixis_integrations.sync.engine import CallRecorder, Engine, JobPolicy
from dixis_integrations.sync.journal import SQLiteJournal
from dixis_integrations.sync.marketday import SENDER
from dixis_integrations.sync.steps import StepSettings
from sync._queue_soak import soak_engine
from sync.market import connections

app = Celery("dixis_test", broker=os.environ.get("DIXIS_TEST_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=os.environ.get("DIXIS_TEST_QUEUE", "dixis-test"),
    broker_transport_options={
        "visibility_timeout": 4,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
    worker_prefetch_multiplier=1,
    task_acks_on_failure_or_timeout=True,
)


def build_engine() -> Engine:
    if os.environ.get("DIXIS_TEST_SANDBOXES"):  # the soak: the vendors' own sandboxes
        return soak_engine()
    journal = SQLiteJournal(os.environ["DIXIS_TEST_JOURNAL"])
    return Engine(
        journal,
        connections(os.environ["DIXIS_TEST_MARKET_URL"], on_call=CallRecorder(journal)),
        settings=StepSettings(sender=SENDER),
        policy=JobPolicy(lease=2.0, backoff_initial=0.05, backoff_max=0.5, max_attempts=30),
    )


execute_job = install(app, build_engine)
