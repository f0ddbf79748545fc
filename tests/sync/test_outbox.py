"""The transactional outbox: events exist only if the host's transaction commits."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dixis_integrations.models.events import Event, OrderCreated
from dixis_integrations.sync.marketday import market_day
from dixis_integrations.sync.outbox import OutboxRelay, ensure_outbox, record_event

from .conftest import postgres_schema_dsn


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def dispatch(self, event: Event) -> list[str]:
        self.events.append(event)
        return [event.event_id]


def orders(n: int) -> list[OrderCreated]:
    return [e for e in market_day(orders=n, seed=4).events if isinstance(e, OrderCreated)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def connect(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Any]:
    if request.param == "postgres":
        import psycopg

        dsn = postgres_schema_dsn()
        return lambda: psycopg.connect(dsn)
    path = tmp_path / "host.db"
    return lambda: sqlite3.connect(path)


def test_only_committed_events_are_relayed_once(connect: Callable[[], Any]) -> None:
    first, second = orders(2)
    conn = connect()
    ensure_outbox(conn)
    conn.execute("CREATE TABLE IF NOT EXISTS host_orders (id TEXT PRIMARY KEY)")
    conn.commit()
    # the host's transaction: its order row and the event, together
    conn.execute("INSERT INTO host_orders (id) VALUES ('a')")
    record_event(conn, first)
    record_event(conn, first)  # recorded twice, kept once
    conn.commit()
    conn.execute("INSERT INTO host_orders (id) VALUES ('b')")
    record_event(conn, second)
    conn.rollback()  # the order write failed: its event must not exist
    conn.close()

    sink = Collect()
    relay = OutboxRelay(connect, sink)
    assert relay.relay_all() == 1
    assert [e.event_id for e in sink.events] == [first.event_id]
    assert relay.relay_once() == 0


def test_a_failed_dispatch_leaves_the_event_for_the_next_relay(
    connect: Callable[[], Any],
) -> None:
    (event,) = orders(1)
    conn = connect()
    ensure_outbox(conn)
    record_event(conn, event)
    conn.commit()
    conn.close()

    class Broken:
        def dispatch(self, event: Event) -> list[str]:
            raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        OutboxRelay(connect, Broken()).relay_once()
    sink = Collect()
    assert OutboxRelay(connect, sink).relay_once() == 1
    assert sink.events == [event]
