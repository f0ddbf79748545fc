"""Reconciliation: the safety net under webhooks. Full levels are streamed from the source,
page by page, compared with the ledger, and every difference is fixed and reported.

:func:`reconcile` is an operation (run it with a ``Driver`` or an ``AsyncDriver``). After
each page it saves ``{"pass", "cursor"}`` in a :class:`CheckpointStore`, so an interrupted
pass resumes at the next page. Memory holds one page and the ledger's own levels.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

from dixis_integrations.http.driver import Operation
from dixis_integrations.inventory.ledger import StockLedger
from dixis_integrations.models.events import StockLow
from dixis_integrations.models.inventory import Correction, StockLevel
from dixis_integrations.protocols import InventorySource

_BATCH = 1000  # levels per store transaction in a pass

__all__ = [
    "CheckpointStore",
    "MemoryCheckpoints",
    "ReconcileReport",
    "checkpoint_name",
    "reconcile",
    "reconcile_levels",
]


class CheckpointStore(Protocol):
    """Where a pass keeps its place: the same shape as ``sync.journal.CheckpointStore``
    (restated here so that this layer does not import the orchestration above it), so a
    journal's SQLite or PostgreSQL store serves as it is.
    """

    def get_checkpoint(self, name: str, tenant: str = "default") -> str | None:
        """The saved cursor, or ``None``."""
        ...

    def set_checkpoint(self, name: str, cursor: str, tenant: str = "default") -> None:
        """Save the cursor."""
        ...


@dataclass
class ReconcileReport:
    """What one (part of a) reconciliation pass did.

    ``corrections`` lists every fix when ``keep_corrections`` was on (``corrected`` counts
    them either way); ``stale_readings`` (counted in ``stale``) are differences left alone
    because the source's reading is older than a webhook already applied; ``missing``
    lists levels we hold that the source no longer lists (reported, not deleted).
    ``complete`` is ``False`` when the pass stopped early (``max_pages``) and will resume
    from ``cursor``.
    """

    source: str
    pass_id: int
    resumed_from: str | None = None
    pages: int = 0
    levels: int = 0
    corrected: int = 0
    corrections: list[Correction] = field(default_factory=list)
    stale: int = 0
    stale_readings: list[Correction] = field(default_factory=list)
    missing: list[Correction] = field(default_factory=list)
    events: list[StockLow] = field(default_factory=list)
    cursor: str | None = None
    complete: bool = False


class MemoryCheckpoints:
    """A :class:`CheckpointStore` in a dict, for tests and single-process scripts."""

    def __init__(self) -> None:
        self.saved: dict[tuple[str, str], str] = {}

    def get_checkpoint(self, name: str, tenant: str = "default") -> str | None:
        """The saved cursor, or ``None``."""
        return self.saved.get((tenant, name))

    def set_checkpoint(self, name: str, cursor: str, tenant: str = "default") -> None:
        """Save the cursor."""
        self.saved[(tenant, name)] = cursor


def checkpoint_name(source: str) -> str:
    """The checkpoint under which passes over ``source`` keep their place."""
    return f"inventory.reconcile.{source}"


def _load(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        state = json.loads(raw)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def reconcile_levels(
    levels: Iterable[StockLevel],
    ledger: StockLedger,
    report: ReconcileReport,
    *,
    keep_corrections: bool = True,
    on_correction: Callable[[Correction], None] | None = None,
) -> None:
    """Compare and fix a stream of the source's levels (no I/O but the ledger's store),
    into ``report``; the ledger's store commits every ``_BATCH`` levels.
    """
    stream = iter(levels)
    while True:
        chunk = list(islice(stream, _BATCH))
        if not chunk:
            break
        with ledger.batch():
            for level in chunk:
                report.levels += 1
                for fix in ledger.correct(level, source=report.source, pass_id=report.pass_id):
                    if fix.field == "stale":
                        report.stale += 1
                        if keep_corrections:
                            report.stale_readings.append(fix)
                        continue
                    report.corrected += 1
                    if keep_corrections:
                        report.corrections.append(fix)
                    if on_correction is not None:
                        on_correction(fix)
    report.events.extend(ledger.drain_events())


def reconcile(
    source: InventorySource,
    ledger: StockLedger,
    *,
    checkpoints: CheckpointStore | None = None,
    tenant: str = "default",
    max_pages: int | None = None,
    keep_corrections: bool = True,
    on_correction: Callable[[Correction], None] | None = None,
) -> Operation[ReconcileReport]:
    """One reconciliation pass over ``source`` (or its next part, after an interruption).

    Args:
        source: the system that owns on-hand stock.
        ledger: our levels, corrected in place.
        checkpoints: where the pass keeps its place; without one, every call is a full pass.
        tenant: whose checkpoint.
        max_pages: stop after this many pages (the next call resumes).
        keep_corrections: keep every correction in the report (else only count them).
        on_correction: called with each correction as it is made.
    """
    name = checkpoint_name(source.name)
    state = _load(checkpoints.get_checkpoint(name, tenant) if checkpoints else None)
    cursor: str | None = None
    previous = int(state.get("pass", 0))
    if state and not state.get("done", True):
        pass_id, cursor = previous, state.get("cursor")
    else:
        pass_id = previous + 1
    report = ReconcileReport(source=source.name, pass_id=pass_id, resumed_from=cursor)
    while True:
        page = yield from source.stock_page(cursor)
        reconcile_levels(
            page.levels,
            ledger,
            report,
            keep_corrections=keep_corrections,
            on_correction=on_correction,
        )
        report.pages += 1
        cursor = page.next_cursor
        done = cursor is None
        if checkpoints is not None:
            saved = {"pass": pass_id, "cursor": cursor, "done": done}
            checkpoints.set_checkpoint(name, json.dumps(saved), tenant)
        if done:
            break
        if max_pages is not None and report.pages >= max_pages:
            report.cursor = cursor
            return report
    for level in ledger.unseen(pass_id):
        report.missing.append(
            Correction(
                sku=level.sku,
                location=level.location,
                field="missing",
                ours=level.on_hand,
                theirs=None,
                source=source.name,
            )
        )
    report.complete = True
    return report
