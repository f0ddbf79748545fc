"""The stock ledger: separate quantities per SKU and location, each change applied once.

The source (Zoho, Cin7, a file) owns *on hand*: its absolute readings replace ours, and a
reading older than the one we hold is refused. The marketplace owns *committed*: an order
line commits at creation and releases at cancellation exactly once, whatever the order and
number of deliveries. *Incoming* is the open purchase orders. A :class:`StockLow` event is
emitted once per downward crossing of the reorder point, and re-armed when stock rises.
Every change is written to a :class:`~dixis_integrations.inventory.store.LedgerStore` in one
transaction, so a ledger reopened on the same store continues exactly; it is thread-safe.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar, cast

from dixis_integrations.errors import FieldError, InvalidInput
from dixis_integrations.inventory.store import (
    LedgerStore,
    LineRecord,
    PositionRecord,
    SQLiteLedgerStore,
)
from dixis_integrations.models.events import DEFAULT_TENANT, StockLow
from dixis_integrations.models.inventory import Correction, StockAdjustment, StockLevel
from dixis_integrations.models.order import Order

__all__ = ["Applied", "Outcome", "StockLedger"]

_ZERO = Decimal(0)
_PRUNE_EVERY = 1000  # changes between two prunings of old marks


class Outcome(StrEnum):
    """What the ledger did with one change."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"  # seen before: nothing changed
    STALE = "stale"  # older than the reading we hold: nothing changed
    SUPERSEDED = "superseded"  # a commit whose order line was already released


@dataclass(frozen=True, slots=True)
class Applied:
    """The result of one change: its outcome, the level after it and any ``StockLow``."""

    outcome: Outcome
    level: StockLevel
    events: tuple[StockLow, ...] = ()


@dataclass(slots=True)
class _Position:
    on_hand: Decimal = _ZERO
    committed: Decimal = _ZERO
    incoming: Decimal = _ZERO
    as_of: datetime | None = None
    version: str | None = None
    low: bool = False
    crossings: int = 0
    seen: int = 0  # the last reconciliation pass that saw this level


_F = TypeVar("_F", bound=Callable[..., Any])


def _atomic(method: _F) -> _F:
    """Run a ledger change under the ledger's lock, as one store transaction."""

    @functools.wraps(method)
    def wrapper(self: StockLedger, *args: Any, **kwargs: Any) -> Any:
        with self._changing():
            return method(self, *args, **kwargs)

    return cast(_F, wrapper)


def _newer(level: StockLevel, pos: _Position) -> bool | None:
    """``True`` newer, ``False`` older, ``None`` the same reading."""
    if pos.as_of is None:
        return True
    if level.as_of != pos.as_of:
        return level.as_of > pos.as_of
    if level.version is None or pos.version is None or level.version == pos.version:
        return None
    try:
        return int(level.version) > int(pos.version)
    except ValueError:
        return level.version > pos.version


def _positive(value: Decimal, name: str) -> None:
    if not value.is_finite() or value <= 0:
        raise InvalidInput(
            "quantity must be positive",
            errors=[FieldError((name,), f"{value} is not a positive quantity", "not_positive")],
        )


class StockLedger:
    """Stock per (SKU, location), as the marketplace knows it. Thread-safe: every change
    holds one lock and is one store transaction. One live ledger per store (a worker that
    restarts reopens it; several concurrent processes need one shared ledger service).

    De-duplication memory is bounded: event ids, adjustment and delivery references,
    cancellations and released order lines are kept for ``retention`` (by the ledger's
    clock) and then pruned; past that, the per-SKU high-water mark (``as_of``,
    ``version``) still refuses a redelivered or older reading.

    Args:
        reorder_points: SKU -> reorder point (for every location of the SKU).
        tenant: stamped on the ``StockLow`` events.
        clock: the time of changes that do not carry one.
        strict: refuse commits for SKUs the ledger has never seen (``unknown_sku``).
        store: where the state lives; an in-memory SQLite store when omitted.
        retention: how long the once-only marks are kept.
    """

    def __init__(
        self,
        reorder_points: Mapping[str, Decimal] | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        clock: Callable[[], datetime] | None = None,
        strict: bool = True,
        store: LedgerStore | None = None,
        retention: timedelta = timedelta(days=30),
    ) -> None:
        self.reorder_points: dict[str, Decimal] = dict(reorder_points or {})
        self.tenant = tenant
        self.strict = strict
        self.retention = retention
        self._clock = clock or (lambda: datetime.now(UTC))
        self._store: LedgerStore = store if store is not None else SQLiteLedgerStore()
        self._lock = threading.RLock()
        self._changes = 0
        self._depth = 0
        self._dirty: set[tuple[str, str]] = set()
        self._pending: list[StockLow] = []
        self._positions: dict[tuple[str, str], _Position] = {
            (sku, location): _Position(
                r.on_hand, r.committed, r.incoming, r.as_of, r.version, r.low, r.crossings
            )
            for sku, location, r in self._store.positions()
        }

    @property
    def store(self) -> LedgerStore:
        """Where this ledger keeps its state."""
        return self._store

    def close(self) -> None:
        """Close the store."""
        with self._lock:
            self._store.close()

    def prune(self) -> int:
        """Forget once-only marks older than ``retention``; returns how many."""
        with self._lock:
            return self._store.prune((self._clock() - self.retention).timestamp())

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make the changes inside one store transaction (and hold the lock meanwhile):
        a reconciliation page is written at once instead of level by level.
        """
        with self._changing():
            yield

    @contextmanager
    def _changing(self) -> Iterator[None]:
        with self._lock:
            self._depth += 1
            try:
                with self._store.transaction():
                    yield
                    if self._depth == 1 and self._dirty:
                        self._flush()
            except BaseException:
                self._dirty.clear()
                if self._depth == 1:
                    self._reload()  # the store rolled back: so does the cache
                raise
            finally:
                self._depth -= 1

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        self._store.save_positions(
            (
                key[0],
                key[1],
                PositionRecord(
                    pos.on_hand,
                    pos.committed,
                    pos.incoming,
                    pos.as_of,
                    pos.version,
                    pos.low,
                    pos.crossings,
                ),
            )
            for key in dirty
            if (pos := self._positions.get(key)) is not None
        )

    def _reload(self) -> None:
        seen = {key: pos.seen for key, pos in self._positions.items()}
        self._positions = {
            (sku, location): _Position(
                r.on_hand, r.committed, r.incoming, r.as_of, r.version, r.low, r.crossings
            )
            for sku, location, r in self._store.positions()
        }
        for key, pos in self._positions.items():
            pos.seen = seen.get(key, 0)

    def _now(self) -> float:
        return self._clock().timestamp()

    def _save(self, key: tuple[str, str], pos: _Position) -> None:
        self._dirty.add(key)  # written when the outermost change commits
        self._changes += 1
        if self._changes % _PRUNE_EVERY == 0:
            self._store.prune((self._clock() - self.retention).timestamp())

    # -- reading ---------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            return len(self._positions)

    def __contains__(self, key: object) -> bool:
        return key in self._positions

    def level(self, sku: str, location: str = "default") -> StockLevel:
        """The current level of one SKU at one location.

        Raises:
            InvalidInput: ``unknown_sku`` when the ledger holds no such level.
        """
        with self._lock:
            pos = self._positions.get((sku, location))
            if pos is None:
                raise _unknown(sku, location)
            return self._snapshot(sku, location, pos)

    def levels(self) -> Iterator[StockLevel]:
        """Every level, in no particular order."""
        with self._lock:
            items = list(self._positions.items())
        for (sku, location), pos in items:
            yield self._snapshot(sku, location, pos)

    def is_low(self, sku: str, location: str = "default") -> bool:
        """Whether the SKU is below its reorder point (a ``StockLow`` has been emitted)."""
        pos = self._positions.get((sku, location))
        return bool(pos and pos.low)

    def _snapshot(self, sku: str, location: str, pos: _Position) -> StockLevel:
        return StockLevel(
            sku=sku,
            location=location,
            on_hand=pos.on_hand,
            committed=pos.committed,
            incoming=pos.incoming,
            as_of=pos.as_of or self._clock(),
            version=pos.version,
        )

    # -- the source's readings -------------------------------------------------------
    @_atomic
    def observe(self, level: StockLevel, *, event_id: str | None = None) -> Applied:
        """Take an absolute on-hand reading from the source that owns it.

        A reading delivered twice (same ``event_id``), or older than the one held (by
        ``as_of``, then numeric ``version``), changes nothing. Committed and incoming are
        ours and stay as they are.
        """
        key = (level.sku, level.location)
        pos = self._positions.get(key)
        if event_id is not None and not self._store.add_mark("event", event_id, self._now()):
            return Applied(Outcome.DUPLICATE, self._snapshot(*key, pos or _Position()))
        if pos is None:
            pos = self._positions[key] = _Position()
        newer = _newer(level, pos)
        if newer is None:
            return Applied(Outcome.DUPLICATE, self._snapshot(*key, pos))
        if not newer:
            return Applied(Outcome.STALE, self._snapshot(*key, pos))
        pos.on_hand = level.on_hand
        pos.as_of = level.as_of
        pos.version = level.version
        return self._after(key, pos, level.as_of)

    @_atomic
    def correct(self, level: StockLevel, *, source: str, pass_id: int = 0) -> list[Correction]:
        """Make on hand equal the source's full reading (a reconciliation).

        Returns the differences found: ``field="on_hand"`` when ours was fixed, or
        ``field="stale"`` when the reading is older than the one we hold (a webhook came
        after the export was taken): then ours is kept. Low-stock events a fix causes are
        kept for :meth:`drain_events`.
        """
        key = (level.sku, level.location)
        pos = self._positions.get(key)
        ours: Decimal | None = None if pos is None else pos.on_hand
        if pos is None:
            pos = self._positions[key] = _Position()
        pos.seen = pass_id
        if ours is not None and ours == level.on_hand:
            if pos.as_of is None or level.as_of > pos.as_of:
                pos.as_of, pos.version = level.as_of, level.version
                self._save(key, pos)
            return []
        stale = ours is not None and pos.as_of is not None and level.as_of < pos.as_of
        fix = Correction(
            sku=level.sku,
            location=level.location,
            field="stale" if stale else "on_hand",
            ours=ours,
            theirs=level.on_hand,
            source=source,
        )
        if not stale:
            pos.on_hand = level.on_hand
            pos.as_of, pos.version = level.as_of, level.version
            self._pending.extend(self._after(key, pos, level.as_of).events)
        return [fix]

    def unseen(self, pass_id: int) -> Iterator[StockLevel]:
        """Levels a reconciliation pass ``pass_id`` did not see at the source."""
        with self._lock:
            items = list(self._positions.items())
        for (sku, location), pos in items:
            if pos.seen != pass_id:
                yield self._snapshot(sku, location, pos)

    def drain_events(self) -> list[StockLow]:
        """``StockLow`` events raised by :meth:`correct` since the last drain."""
        with self._lock:
            out, self._pending = self._pending, []
        return out

    # -- our own changes ---------------------------------------------------------------
    @_atomic
    def adjust(self, adjustment: StockAdjustment, *, at: datetime | None = None) -> Applied:
        """Apply a delta to on hand once per ``adjustment.reference``.

        Raises:
            InvalidInput: ``unknown_sku``, or the delta would take on hand below zero.
        """
        key = (adjustment.sku, adjustment.location)
        pos = self._positions.get(key)
        if pos is None:
            raise _unknown(*key)
        if self._store.has_mark("adjustment", adjustment.reference):
            return Applied(Outcome.DUPLICATE, self._snapshot(*key, pos))
        if pos.on_hand + adjustment.delta < 0:
            raise InvalidInput(
                "adjustment would make stock negative",
                errors=[FieldError(("delta",), f"on hand is {pos.on_hand}", "negative_stock")],
            )
        self._store.add_mark("adjustment", adjustment.reference, self._now())
        pos.on_hand += adjustment.delta
        return self._after(key, pos, at or self._clock())

    @_atomic
    def commit(
        self,
        order_id: str,
        line: str,
        sku: str,
        quantity: Decimal,
        *,
        location: str = "default",
        at: datetime | None = None,
    ) -> Applied:
        """Commit ``quantity`` of ``sku`` to one order line, once.

        A second delivery is a ``DUPLICATE``; a commit arriving after its line was already
        released (events out of order) is ``SUPERSEDED`` and commits nothing.

        Raises:
            InvalidInput: ``not_positive`` quantity, or ``unknown_sku`` in strict mode.
        """
        _positive(quantity, "quantity")
        key = (sku, location)
        pos = self._positions.get(key)
        if pos is None:
            if self.strict:
                raise _unknown(sku, location)
            pos = self._positions[key] = _Position()
        existing = self._store.line(order_id, line)
        if existing is not None:
            outcome = Outcome.SUPERSEDED if existing.released else Outcome.DUPLICATE
            return Applied(outcome, self._snapshot(*key, pos))
        if self._store.has_mark("cancelled", order_id):
            record = LineRecord(sku, location, quantity, released=True)
            self._store.save_line(order_id, line, record, self._now())
            return Applied(Outcome.SUPERSEDED, self._snapshot(*key, pos))
        self._store.save_line(
            order_id, line, LineRecord(sku, location, quantity, released=False), self._now()
        )
        pos.committed += quantity
        return self._after(key, pos, at or self._clock())

    @_atomic
    def release(self, order_id: str, line: str, *, at: datetime | None = None) -> Applied | None:
        """Give back what one order line committed, once.

        Returns ``None`` when the line was never committed: the release is remembered, so
        a commit delivered later (out of order) commits nothing.
        """
        existing = self._store.line(order_id, line)
        if existing is None:
            self._store.save_line(order_id, line, LineRecord("", "", _ZERO, True), self._now())
            return None
        if existing.released:
            key = (existing.sku, existing.location)
            if key not in self._positions:
                return None
            return Applied(Outcome.DUPLICATE, self._snapshot(*key, self._positions[key]))
        self._store.save_line(
            order_id,
            line,
            LineRecord(existing.sku, existing.location, existing.quantity, True),
            self._now(),
        )
        key = (existing.sku, existing.location)
        pos = self._positions[key]
        pos.committed -= existing.quantity
        return self._after(key, pos, at or self._clock())

    def commit_order(self, order: Order, *, location: str = "default") -> list[Applied]:
        """Commit every line of an order (lines keyed by position), once."""
        return [
            self.commit(
                order.id, str(i), line.sku, line.quantity, location=location, at=order.created_at
            )
            for i, line in enumerate(order.lines)
        ]

    def release_order(self, order: Order) -> list[Applied | None]:
        """Release every line of a cancelled order, once."""
        return [self.release(order.id, str(i)) for i in range(len(order.lines))]

    @_atomic
    def cancel(self, order_id: str, *, at: datetime | None = None) -> list[Applied]:
        """Release every line committed for ``order_id``, once; lines committed later
        (a creation delivered after its cancellation) commit nothing.
        """
        self._store.add_mark("cancelled", order_id, self._now())
        out: list[Applied] = []
        for line in self._store.open_lines(order_id):
            applied = self.release(order_id, line, at=at)
            if applied is not None and applied.outcome is Outcome.APPLIED:
                out.append(applied)
        return out

    @_atomic
    def expect(
        self, reference: str, sku: str, quantity: Decimal, *, location: str = "default"
    ) -> Applied:
        """Count an open purchase order as incoming, once per ``reference``."""
        _positive(quantity, "quantity")
        key = (sku, location)
        pos = self._positions.get(key)
        if pos is None:
            raise _unknown(sku, location)
        if self._store.expected(reference) is not None or self._store.has_mark(
            "received", reference
        ):
            return Applied(Outcome.DUPLICATE, self._snapshot(*key, pos))
        self._store.save_expected(reference, sku, location, quantity, self._now())
        pos.incoming += quantity
        return self._after(key, pos, self._clock())

    @_atomic
    def receive(
        self,
        reference: str,
        sku: str,
        quantity: Decimal,
        *,
        location: str = "default",
        at: datetime | None = None,
    ) -> Applied:
        """Book a delivery against purchase order ``reference``, once: on hand rises by
        ``quantity`` and the order stops counting as incoming.

        When the source's latest on-hand reading is not older than ``at`` (the time the
        goods were booked in), that reading already counts them: only incoming falls, so a
        delivery never reaches on hand twice.
        """
        _positive(quantity, "quantity")
        key = (sku, location)
        pos = self._positions.get(key)
        if pos is None:
            raise _unknown(sku, location)
        if not self._store.add_mark("received", reference, self._now()):
            return Applied(Outcome.DUPLICATE, self._snapshot(*key, pos))
        expected = self._store.expected(reference)
        if expected is not None:
            self._store.drop_expected(reference)
            pos.incoming -= expected[2]
        if at is None or pos.as_of is None or pos.as_of < at:
            pos.on_hand += quantity
        return self._after(key, pos, at or self._clock())

    # -- low stock ----------------------------------------------------------------------
    def _after(self, key: tuple[str, str], pos: _Position, at: datetime) -> Applied:
        events: tuple[StockLow, ...] = ()
        point = self.reorder_points.get(key[0])
        if point is not None:
            available = pos.on_hand - pos.committed
            if available <= point and not pos.low:
                pos.low = True
                pos.crossings += 1
                event = StockLow(
                    sku=key[0],
                    location=key[1],
                    available=available,
                    reorder_point=point,
                    occurred_at=at,
                    tenant=self.tenant,
                )
                # Two crossings can share a time and a level (orders stamped alike): the
                # crossing's number keeps their ids, and so their purchase orders, apart.
                unique = f"{event.event_id}#{pos.crossings}"
                events = (event.model_copy(update={"event_id": unique}),)
            elif available > point and pos.low:
                pos.low = False
        self._save(key, pos)
        return Applied(Outcome.APPLIED, self._snapshot(*key, pos), events)


def _unknown(sku: str, location: str) -> InvalidInput:
    return InvalidInput(
        "unknown SKU",
        errors=[
            FieldError(("sku",), f"{sku!r} at {location!r} is not in the ledger", "unknown_sku")
        ],
    )
