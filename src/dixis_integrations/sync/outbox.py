"""The transactional outbox: a host records an event in the same database transaction as
its own order write, and a relay hands it to the engine afterwards.

If the host's transaction rolls back, the event never existed; if it commits, the relay
delivers it at least once (job keys make a second delivery harmless). Works on the
host's own ``sqlite3`` or psycopg 3 connection; the host owns the transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from dixis_integrations.models.events import Event, parse_event

__all__ = ["OUTBOX_TABLE", "OutboxRelay", "ensure_outbox", "record_event"]

OUTBOX_TABLE = "dixis_outbox"


class _Dispatcher(Protocol):
    def dispatch(self, event: Event) -> list[str]: ...


def _is_postgres(conn: Any) -> bool:
    return type(conn).__module__.startswith("psycopg")


def _p(conn: Any) -> str:
    return "%s" if _is_postgres(conn) else "?"


def ensure_outbox(conn: Any) -> None:
    """Create the outbox table on the host's connection (idempotent; not committed)."""
    serial = "BIGSERIAL" if _is_postgres(conn) else "INTEGER"
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} ("
        f"id {serial} PRIMARY KEY, "
        "event_id TEXT NOT NULL UNIQUE, "
        "payload TEXT NOT NULL, "
        "created_at DOUBLE PRECISION NOT NULL, "
        "relayed_at DOUBLE PRECISION)"
    )


def record_event(conn: Any, event: Event) -> None:
    """Add ``event`` to the outbox inside the host's open transaction (no commit here).

    The same event recorded twice is kept once.
    """
    p = _p(conn)
    conn.execute(
        f"INSERT INTO {OUTBOX_TABLE} (event_id, payload, created_at) "  # noqa: S608 - constants
        f"VALUES ({p}, {p}, {p}) ON CONFLICT (event_id) DO NOTHING",
        (event.event_id, event.model_dump_json(), time.time()),
    )


class OutboxRelay:
    """Moves committed outbox rows to a runner (or anything with ``dispatch(event)``).

    ``connect`` opens a connection to the host's database. On PostgreSQL several relays
    may run at once (``FOR UPDATE SKIP LOCKED``).
    """

    def __init__(self, connect: Callable[[], Any], runner: _Dispatcher) -> None:
        self._connect = connect
        self.runner = runner

    def relay_once(self, *, limit: int = 100) -> int:
        """Dispatch up to ``limit`` waiting events, oldest first; how many were sent."""
        conn = self._connect()
        try:
            postgres = _is_postgres(conn)
            p = _p(conn)
            lock = " FOR UPDATE SKIP LOCKED" if postgres else ""
            if not postgres:
                conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                f"SELECT id, payload FROM {OUTBOX_TABLE} WHERE relayed_at IS NULL "  # noqa: S608
                f"ORDER BY id LIMIT {p}{lock}",
                (limit,),
            ).fetchall()
            for row_id, payload in rows:
                self.runner.dispatch(parse_event(payload))
                conn.execute(
                    f"UPDATE {OUTBOX_TABLE} SET relayed_at = {p} WHERE id = {p}",  # noqa: S608
                    (time.time(), row_id),
                )
            conn.commit()
            return len(rows)
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def relay_all(self, *, batch: int = 100) -> int:
        """Relay until the outbox is empty; how many were sent."""
        total = 0
        while n := self.relay_once(limit=batch):
            total += n
        return total
