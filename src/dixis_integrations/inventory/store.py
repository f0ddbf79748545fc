"""Where the stock ledger keeps its state, so a worker that restarts continues exactly.

:class:`LedgerStore` is the contract (positions, the marks that make a change happen once,
open order lines, expected deliveries) and :class:`SQLiteLedgerStore` the default (stdlib
``sqlite3``, WAL, one transaction per ledger change). Marks carry a time and are pruned
after a retention window, so de-duplication memory is bounded.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["LedgerStore", "LineRecord", "PositionRecord", "SQLiteLedgerStore"]


@dataclass(slots=True)
class PositionRecord:
    """One (SKU, location) as stored: the quantities, the high-water mark of the source's
    readings (``as_of``, ``version``) and the low-stock state (``low``, ``crossings``).
    """

    on_hand: Decimal
    committed: Decimal
    incoming: Decimal
    as_of: datetime | None
    version: str | None
    low: bool
    crossings: int


@dataclass(frozen=True, slots=True)
class LineRecord:
    """What one order line committed, and whether it was released."""

    sku: str
    location: str
    quantity: Decimal
    released: bool


@runtime_checkable
class LedgerStore(Protocol):
    """The ledger's durable state. Every method is called inside :meth:`transaction`
    by a ledger holding its own lock; one live ledger uses a store at a time.
    """

    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside commit together or not at all (re-entrant)."""
        ...

    def positions(self) -> Iterator[tuple[str, str, PositionRecord]]:
        """Every stored position."""
        ...

    def save_position(self, sku: str, location: str, record: PositionRecord) -> None:
        """Insert or replace one position."""
        ...

    def save_positions(self, records: Iterable[tuple[str, str, PositionRecord]]) -> None:
        """Insert or replace many positions."""
        ...

    def add_mark(self, kind: str, key: str, at: float) -> bool:
        """Remember ``key`` of ``kind`` (an event id, a reference); ``False`` if known."""
        ...

    def has_mark(self, kind: str, key: str) -> bool:
        """Whether ``key`` of ``kind`` is remembered."""
        ...

    def line(self, order_id: str, line: str) -> LineRecord | None:
        """One order line, if known."""
        ...

    def save_line(self, order_id: str, line: str, record: LineRecord, at: float) -> None:
        """Insert or replace one order line."""
        ...

    def open_lines(self, order_id: str) -> list[str]:
        """The lines of ``order_id`` committed and not released, in commit order."""
        ...

    def expected(self, reference: str) -> tuple[str, str, Decimal] | None:
        """The open purchase order ``reference``: (SKU, location, quantity)."""
        ...

    def save_expected(
        self, reference: str, sku: str, location: str, quantity: Decimal, at: float
    ) -> None:
        """Record an open purchase order."""
        ...

    def drop_expected(self, reference: str) -> None:
        """Forget an open purchase order (delivered)."""
        ...

    def prune(self, before: float) -> int:
        """Forget marks and released lines older than ``before`` (epoch seconds)."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS dixis_stock_positions (
        sku TEXT NOT NULL, location TEXT NOT NULL,
        on_hand TEXT NOT NULL, committed TEXT NOT NULL, incoming TEXT NOT NULL,
        as_of TEXT, version TEXT, low INTEGER NOT NULL, crossings INTEGER NOT NULL,
        PRIMARY KEY (sku, location))""",
    """CREATE TABLE IF NOT EXISTS dixis_stock_marks (
        kind TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL,
        PRIMARY KEY (kind, key))""",
    "CREATE INDEX IF NOT EXISTS dixis_stock_marks_at ON dixis_stock_marks (at)",
    """CREATE TABLE IF NOT EXISTS dixis_stock_lines (
        order_id TEXT NOT NULL, line TEXT NOT NULL, sku TEXT NOT NULL,
        location TEXT NOT NULL, quantity TEXT NOT NULL, released INTEGER NOT NULL,
        at REAL NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (order_id, line))""",
    "CREATE INDEX IF NOT EXISTS dixis_stock_lines_at ON dixis_stock_lines (released, at)",
    """CREATE TABLE IF NOT EXISTS dixis_stock_expected (
        reference TEXT PRIMARY KEY, sku TEXT NOT NULL, location TEXT NOT NULL,
        quantity TEXT NOT NULL, at REAL NOT NULL)""",
)


class SQLiteLedgerStore:
    """The default :class:`LedgerStore`: one SQLite file (``":memory:"`` for a ledger
    that lives as long as the process). WAL mode; one connection guarded by a lock.
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.path, timeout=60.0, isolation_level=None, check_same_thread=False
        )
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.RLock()
        self._depth = 0
        self._seq = 0
        with self.transaction():
            for statement in _SCHEMA:
                self._db.execute(statement)
            row = self._db.execute("SELECT MAX(seq) FROM dixis_stock_lines").fetchone()
            self._seq = int(row[0] or 0)

    def __repr__(self) -> str:
        return f"SQLiteLedgerStore({self.path!r})"

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (re-entrant)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def positions(self) -> Iterator[tuple[str, str, PositionRecord]]:
        """Every stored position."""
        with self._lock:
            rows = self._db.execute(
                "SELECT sku, location, on_hand, committed, incoming, as_of, version, low, "
                "crossings FROM dixis_stock_positions"
            ).fetchall()
        for sku, location, on_hand, committed, incoming, as_of, version, low, crossings in rows:
            yield (
                sku,
                location,
                PositionRecord(
                    Decimal(on_hand),
                    Decimal(committed),
                    Decimal(incoming),
                    datetime.fromisoformat(as_of) if as_of else None,
                    version,
                    bool(low),
                    int(crossings),
                ),
            )

    def save_position(self, sku: str, location: str, record: PositionRecord) -> None:
        """Insert or replace one position."""
        self.save_positions([(sku, location, record)])

    def save_positions(self, records: Iterable[tuple[str, str, PositionRecord]]) -> None:
        """Insert or replace many positions."""
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO dixis_stock_positions VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    (
                        sku,
                        location,
                        str(r.on_hand),
                        str(r.committed),
                        str(r.incoming),
                        r.as_of.isoformat() if r.as_of else None,
                        r.version,
                        int(r.low),
                        r.crossings,
                    )
                    for sku, location, r in records
                ),
            )

    def add_mark(self, kind: str, key: str, at: float) -> bool:
        """Remember ``key`` of ``kind``; ``False`` if it was already remembered."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO dixis_stock_marks VALUES (?,?,?)", (kind, key, at)
            )
            return cur.rowcount == 1

    def has_mark(self, kind: str, key: str) -> bool:
        """Whether ``key`` of ``kind`` is remembered."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM dixis_stock_marks WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
        return row is not None

    def line(self, order_id: str, line: str) -> LineRecord | None:
        """One order line, if known."""
        with self._lock:
            row = self._db.execute(
                "SELECT sku, location, quantity, released FROM dixis_stock_lines "
                "WHERE order_id = ? AND line = ?",
                (order_id, line),
            ).fetchone()
        if row is None:
            return None
        return LineRecord(row[0], row[1], Decimal(row[2]), bool(row[3]))

    def save_line(self, order_id: str, line: str, record: LineRecord, at: float) -> None:
        """Insert or replace one order line (its commit order is kept)."""
        with self._lock:
            self._seq += 1
            self._db.execute(
                "INSERT INTO dixis_stock_lines VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT (order_id, line) DO UPDATE SET sku = excluded.sku, "
                "location = excluded.location, quantity = excluded.quantity, "
                "released = excluded.released, at = excluded.at",
                (
                    order_id,
                    line,
                    record.sku,
                    record.location,
                    str(record.quantity),
                    int(record.released),
                    at,
                    self._seq,
                ),
            )

    def open_lines(self, order_id: str) -> list[str]:
        """The lines of ``order_id`` committed and not released, in commit order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT line FROM dixis_stock_lines WHERE order_id = ? AND released = 0 "
                "ORDER BY seq",
                (order_id,),
            ).fetchall()
        return [row[0] for row in rows]

    def expected(self, reference: str) -> tuple[str, str, Decimal] | None:
        """The open purchase order ``reference``: (SKU, location, quantity)."""
        with self._lock:
            row = self._db.execute(
                "SELECT sku, location, quantity FROM dixis_stock_expected WHERE reference = ?",
                (reference,),
            ).fetchone()
        return None if row is None else (row[0], row[1], Decimal(row[2]))

    def save_expected(
        self, reference: str, sku: str, location: str, quantity: Decimal, at: float
    ) -> None:
        """Record an open purchase order."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO dixis_stock_expected VALUES (?,?,?,?,?)",
                (reference, sku, location, str(quantity), at),
            )

    def drop_expected(self, reference: str) -> None:
        """Forget an open purchase order (delivered)."""
        with self._lock:
            self._db.execute("DELETE FROM dixis_stock_expected WHERE reference = ?", (reference,))

    def prune(self, before: float) -> int:
        """Forget marks and released lines older than ``before`` (epoch seconds)."""
        with self.transaction():
            gone = self._db.execute("DELETE FROM dixis_stock_marks WHERE at < ?", (before,))
            lines = self._db.execute(
                "DELETE FROM dixis_stock_lines WHERE released = 1 AND at < ?", (before,)
            )
            return int(gone.rowcount) + int(lines.rowcount)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
