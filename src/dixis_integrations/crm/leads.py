"""Leads kept locally: a ``LeadStore`` Protocol, its SQLite default, and ``LeadBook``, which
writes a lead to a CRM and to the store together.

The store is the host's record of every lead it sent (CRM id, email, source, status).
``LeadBook`` operations run in a driver like any other; the store is written only after
the CRM accepted the change, so a failed call leaves the local record as it was.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

from dixis_integrations.errors import FieldError, InvalidInput
from dixis_integrations.http.driver import Operation
from dixis_integrations.models.crm import Lead, LeadStatus
from dixis_integrations.protocols import CRMProvider

__all__ = ["LeadBook", "LeadStore", "SQLiteLeadStore"]


@runtime_checkable
class LeadStore(Protocol):
    """Where leads are kept, by our lead id."""

    def save(self, lead: Lead) -> None:
        """Insert or replace the lead with this id."""
        ...

    def get(self, lead_id: str) -> Lead | None:
        """The lead with this id, if kept."""
        ...

    def find_by_email(self, email: str) -> list[Lead]:
        """Every lead with this email (lower-cased), oldest first."""
        ...

    def list(self, status: LeadStatus | None = None) -> list[Lead]:
        """All leads, or those in ``status``, oldest first."""
        ...

    def delete_email(self, email: str) -> int:
        """Forget every lead with this email (GDPR); returns how many were removed."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS dixis_leads (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    provider TEXT,
    crm_id TEXT,
    source TEXT,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dixis_leads_email ON dixis_leads (email);
CREATE INDEX IF NOT EXISTS dixis_leads_status ON dixis_leads (status);
"""


class SQLiteLeadStore:
    """The default :class:`LeadStore`: one SQLite file (or ``":memory:"``), stdlib only.

    Safe to share between threads of one process (one connection behind a lock).
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"SQLiteLeadStore({self.path!r})"

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def save(self, lead: Lead) -> None:
        """Insert or replace the lead with this id."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO dixis_leads"
                " (id, email, status, provider, crm_id, source, created_at, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    lead.id,
                    lead.email.lower(),
                    lead.status.value,
                    lead.provider,
                    lead.crm_id,
                    lead.source,
                    lead.created_at.isoformat(),
                    lead.model_dump_json(),
                ),
            )

    def _select(self, where: str, args: tuple[str, ...]) -> list[Lead]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT body FROM dixis_leads {where} ORDER BY created_at, id",  # noqa: S608
                args,
            ).fetchall()
        return [Lead.model_validate_json(row[0]) for row in rows]

    def get(self, lead_id: str) -> Lead | None:
        """The lead with this id, if kept."""
        found = self._select("WHERE id = ?", (lead_id,))
        return found[0] if found else None

    def find_by_email(self, email: str) -> list[Lead]:
        """Every lead with this email, oldest first."""
        return self._select("WHERE email = ?", (email.strip().lower(),))

    def list(self, status: LeadStatus | None = None) -> list[Lead]:
        """All leads, or those in ``status``, oldest first."""
        if status is None:
            return self._select("", ())
        return self._select("WHERE status = ?", (status.value,))

    def delete_email(self, email: str) -> int:
        """Forget every lead with this email; returns how many were removed."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM dixis_leads WHERE email = ?", (email.strip().lower(),))
            return cur.rowcount


class LeadBook:
    """Leads in a CRM and in a local store, kept in step.

    Args:
        store: where leads are kept (default: an in-memory SQLite store).
    """

    def __init__(self, store: LeadStore | None = None) -> None:
        self.store: LeadStore = store if store is not None else SQLiteLeadStore()

    def create(self, lead: Lead, crm: CRMProvider) -> Operation[Lead]:
        """Create ``lead`` in ``crm`` and keep it, with its CRM id, in the store.

        The adapter checks the lead first (``InvalidInput``, nothing sent or kept).
        """
        created = yield from crm.create_lead(lead)
        self.store.save(created)
        return created

    def convert(self, lead_id: str, crm: CRMProvider) -> Operation[Lead]:
        """Convert the kept lead to a customer in ``crm``, then mark it converted here.

        Raises:
            InvalidInput: no lead with this id is kept, or it was never sent to a CRM.
        """
        lead = self.store.get(lead_id)
        if lead is None:
            raise InvalidInput(
                "unknown lead", errors=(FieldError(("lead_id",), f"no lead {lead_id!r}"),)
            )
        if lead.crm_id is None:
            raise InvalidInput(
                "lead was never created in a CRM",
                errors=(FieldError(("crm_id",), "missing", code="missing"),),
            )
        converted = yield from crm.convert_lead(lead)
        self.store.save(converted)
        return converted
