"""The Dramatiq broker and actor the real-worker tests start: the market vendor at
$DIXIS_TEST_MARKET_URL (or, for the soak, the served sandboxes of $DIXIS_TEST_SANDBOXES),
the journal at $DIXIS_TEST_JOURNAL, RabbitMQ at $DIXIS_TEST_BROKER."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from dixis_integrations.sync.dramatiq import install
from dixis_integrations.sync.engine import CallRecorder, Engine, JobPolicy
from dixis_integrations.sync.journal import SQLiteJournal
from dixis_integrations.sync.marketday import SENDER
from dixis_integrations.sync.steps import StepSettings
from sync._queue_soak import soak_engine
from sync.market import connections

broker = RabbitmqBroker(
    url=os.environ.get("DIXIS_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672/")
)
dramatiq.set_broker(broker)


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


execute_job = install(
    broker, build_engine, queue_name=os.environ.get("DIXIS_TEST_QUEUE", "dixis-test")
)
