"""Reconciliation: catch what webhooks missed, resumable from a stored checkpoint.

A pass reads the checkpoint, asks the ledger for everything changed since (QBO CDC,
Xero ``If-Modified-Since``), hands each change to the caller, and only then saves the new
checkpoint: a crash mid-pass repeats the page (at least once), it never skips one.
:class:`CheckpointStore` is the same two-method shape as the journal's store, so the
SQLite/PostgreSQL journal can be passed directly; :class:`MemoryCheckpoints` is an
in-memory one for tests and scripts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from dixis_integrations.http.driver import Operation
from dixis_integrations.models.accounting import LedgerChange, LedgerChangePage

__all__ = ["ChangeSource", "CheckpointStore", "MemoryCheckpoints", "reconcile"]


@runtime_checkable
class ChangeSource(Protocol):
    """A ledger adapter that lists changes since a checkpoint (both built-ins do)."""

    name: str

    def changes_since(self, checkpoint: str | None) -> Operation[LedgerChangePage]:
        """Changes after ``checkpoint`` (``None``: as far back as the vendor allows)."""
        ...


class CheckpointStore(Protocol):
    """Where cursors of pull-style syncs are kept, per name and tenant."""

    def get_checkpoint(self, name: str, tenant: str = "default") -> str | None:
        """The saved cursor, or ``None`` before the first pass."""
        ...

    def set_checkpoint(self, name: str, cursor: str, tenant: str = "default") -> None:
        """Save the cursor after the page it ends has been handled."""
        ...


class MemoryCheckpoints:
    """A :class:`CheckpointStore` in a dict (one process; lost on exit)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursors: dict[tuple[str, str], str] = {}

    def get_checkpoint(self, name: str, tenant: str = "default") -> str | None:
        """The saved cursor, or ``None``."""
        with self._lock:
            return self._cursors.get((name, tenant))

    def set_checkpoint(self, name: str, cursor: str, tenant: str = "default") -> None:
        """Save the cursor."""
        with self._lock:
            self._cursors[(name, tenant)] = cursor


def reconcile(
    source: ChangeSource,
    store: CheckpointStore,
    handle: Callable[[LedgerChange], None],
    *,
    tenant: str = "default",
    name: str | None = None,
) -> Operation[int]:
    """One pass: changes since the stored checkpoint, each given to ``handle``.

    The checkpoint (``"<adapter>.changes"`` unless ``name`` is given) is saved only after
    every change was handled; if ``handle`` raises, the pass stops there and the next one
    starts from the old checkpoint again. Returns how many changes were handled.
    """
    key = name or f"{source.name}.changes"
    checkpoint = store.get_checkpoint(key, tenant)
    page = yield from source.changes_since(checkpoint)
    for change in page.changes:
        handle(change)
    store.set_checkpoint(key, page.checkpoint, tenant)
    return len(page.changes)
