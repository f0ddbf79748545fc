# ruff: noqa: S608  (SQL text is built from constants only; every value is a parameter)
"""The journal: one row per (tenant, event, step, provider), what makes effects happen once.

A job is pending, running (claimed with a lease), done (with the vendor's external id),
failed (with the typed error and the next attempt time) or dead. A worker claims a job
before its side effect and completes it, result and all, in one transaction; a worker
that dies leaves a running job whose lease expires, and another worker claims it again,
marked :attr:`Job.interrupted` (that lost attempt may or may not have reached the vendor).
:class:`SQLiteJournal` (WAL, ``BEGIN IMMEDIATE``: several processes on one machine) and
:class:`PostgresJournal` (``FOR UPDATE SKIP LOCKED``: many machines) keep one contract.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from dixis_integrations.errors import ConfigurationError

__all__ = [
    "CallRow",
    "CheckpointStore",
    "Job",
    "JobSpec",
    "JobState",
    "Journal",
    "PostgresJournal",
    "SQLiteJournal",
    "job_key",
    "open_journal",
]


class JobState(StrEnum):
    """Where a job stands."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DEAD = "dead"


def job_key(tenant: str, event_id: str, step: str, provider: str) -> str:
    """The deterministic key of one job: same (tenant, event, step, provider), same key."""
    raw = "\x1f".join((tenant, event_id, step, provider)).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job to record: what to do, for which event, through which provider.

    ``payload`` is the event as JSON, ``depends_on`` the keys of the jobs that must be
    done first (the invoice before its payment, the shipment before its label). Jobs
    sharing a ``lane`` never run at the same time (a vendor whose writes read, then
    write the sum: one stock system's adjustments).
    """

    tenant: str
    event_id: str
    event_type: str
    step: str
    kind: str
    provider: str
    payload: str
    depends_on: tuple[str, ...] = ()
    lane: str | None = None

    @property
    def key(self) -> str:
        """The job's deterministic key."""
        return job_key(self.tenant, self.event_id, self.step, self.provider)


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, slots=True)
class Job:
    """One job as the journal holds it. Times are aware UTC."""

    key: str
    tenant: str
    event_id: str
    event_type: str
    step: str
    kind: str
    provider: str
    state: JobState
    payload: str
    depends_on: tuple[str, ...]
    attempts: int
    external_id: str | None
    result: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    next_attempt_at: datetime | None
    lease_until: datetime | None
    worker: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None = None
    interrupted: bool = False
    """The attempt before this claim was lost while running (its worker died and the lease
    expired): it may have reached the vendor, or not. Set by every claim; replay clears it."""

    @property
    def sync_seconds(self) -> float | None:
        """Seconds from recording to done (``None`` until done)."""
        if self.finished_at is None or self.state is not JobState.DONE:
            return None
        return (self.finished_at - self.created_at).total_seconds()


@dataclass(frozen=True, slots=True)
class CallRow:
    """One vendor call, for the audit log and availability (no secrets: see CallRecord)."""

    at: datetime
    tenant: str
    vendor: str
    operation: str
    method: str
    url: str
    status_code: int | None
    attempts: int
    elapsed: float
    idempotency_key: str | None
    request_id: str | None
    error_code: str | None
    job_key: str | None = None

    @property
    def is_write(self) -> bool:
        """Whether the call changed something at the vendor (anything but GET/HEAD/OPTIONS)."""
        return self.method.upper() not in {"GET", "HEAD", "OPTIONS"}


@runtime_checkable
class Journal(Protocol):
    """The job journal every runner uses; implementations pass one shared test suite."""

    def enqueue(self, specs: Sequence[JobSpec]) -> list[str]:
        """Record jobs (a job already recorded is left as it is); their keys, in order.

        A new job that waits on a job already dead is recorded dead
        (``dependency_dead``), so nothing waits forever; replaying the dead job
        revives it."""
        ...

    def claim(
        self, worker: str, *, lease: float, limit: int = 1, key: str | None = None
    ) -> list[Job]:
        """Claim up to ``limit`` due jobs whose dependencies are done (or ``key`` only).

        Due: pending; failed with its next attempt time passed; running with its lease
        expired (its worker died). Claiming sets running, ``worker``, the lease and
        counts an attempt.
        """
        ...

    def heartbeat(self, key: str, worker: str, *, lease: float) -> bool:
        """Extend the lease of a job this worker holds; ``False`` if it lost it."""
        ...

    def complete(
        self,
        key: str,
        worker: str,
        *,
        external_id: str | None,
        result: dict[str, Any] | None,
        duration: float | None = None,
    ) -> bool:
        """Mark done with the vendor's id and result, in one transaction.

        ``False`` (and nothing changed) when the job is already done.
        """
        ...

    def fail(
        self,
        key: str,
        worker: str,
        *,
        error_code: str,
        message: str,
        retry_at: datetime,
        duration: float | None = None,
    ) -> bool:
        """Mark failed; it becomes due again at ``retry_at``."""
        ...

    def kill(self, key: str, worker: str | None, *, error_code: str, message: str) -> list[str]:
        """Mark dead with the reason, and every job waiting on it; the keys killed."""
        ...

    def replay(self, key: str) -> list[str]:
        """Dead -> pending (attempts reset), with the dependents it took down; the keys."""
        ...

    def resolve(
        self, key: str, *, external_id: str | None, result: dict[str, Any] | None = None
    ) -> list[str]:
        """Dead -> done by a person's word (the effect exists at the vendor as
        ``external_id``), and the dependents it took down back to pending; the keys
        changed (empty when the job is not dead)."""
        ...

    def get(self, key: str) -> Job | None:
        """One job by key."""
        ...

    def jobs(
        self,
        *,
        state: JobState | None = None,
        tenant: str | None = None,
        event_id: str | None = None,
        limit: int | None = None,
        step: str | None = None,
        provider: str | None = None,
        kind: str | None = None,
        external_id: str | None = None,
        event_prefix: str | None = None,
    ) -> list[Job]:
        """Jobs, oldest first, filtered (``event_prefix``: event ids starting with it)."""
        ...

    def counts(self) -> dict[JobState, int]:
        """How many jobs are in each state."""
        ...

    def next_due(self) -> datetime | None:
        """When the earliest job becomes claimable, leaving out pending jobs whose
        dependencies are not done (``None``: nothing left to claim)."""
        ...

    def record_call(self, row: CallRow) -> None:
        """Keep one vendor call for the audit log and availability."""
        ...

    def calls(self, *, writes_only: bool = False, limit: int | None = None) -> list[CallRow]:
        """Vendor calls kept, oldest first."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class CheckpointStore(Protocol):
    """Cursors of pull-style syncs (stock levels, CRM changes, tracking), per tenant."""

    def get_checkpoint(self, name: str, tenant: str = "default") -> str | None:
        """The saved cursor, or ``None`` before the first sync."""
        ...

    def set_checkpoint(self, name: str, cursor: str, tenant: str = "default") -> None:
        """Save the cursor (after the page it ends has been handled)."""
        ...


# -- the shared SQL ------------------------------------------------------------------

_JOB_COLUMNS = (
    "key, tenant, event_id, event_type, step, kind, provider, state, payload, depends_on, "
    "attempts, external_id, result, error_code, error_message, next_attempt_at, "
    "lease_until, worker, created_at, updated_at, started_at, finished_at, duration, "
    "interrupted"
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS dixis_jobs (
        key TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        step TEXT NOT NULL,
        kind TEXT NOT NULL,
        provider TEXT NOT NULL,
        state TEXT NOT NULL,
        payload TEXT NOT NULL,
        depends_on TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        external_id TEXT,
        result TEXT,
        error_code TEXT,
        error_message TEXT,
        next_attempt_at DOUBLE PRECISION,
        lease_until DOUBLE PRECISION,
        worker TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        duration DOUBLE PRECISION,
        lane TEXT,
        interrupted INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS dixis_jobs_due ON dixis_jobs (state, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS dixis_jobs_event ON dixis_jobs (tenant, event_id)",
    "CREATE INDEX IF NOT EXISTS dixis_jobs_lane ON dixis_jobs (lane, state)",
    "CREATE INDEX IF NOT EXISTS dixis_jobs_queue ON dixis_jobs (state, created_at, key)",
    "CREATE INDEX IF NOT EXISTS dixis_jobs_step ON dixis_jobs (tenant, step, provider)",
    "CREATE INDEX IF NOT EXISTS dixis_jobs_external ON dixis_jobs (external_id)",
    """CREATE TABLE IF NOT EXISTS dixis_job_deps (
        key TEXT NOT NULL,
        dep TEXT NOT NULL,
        PRIMARY KEY (key, dep)
    )""",
    "CREATE INDEX IF NOT EXISTS dixis_job_deps_dep ON dixis_job_deps (dep)",
    """CREATE TABLE IF NOT EXISTS dixis_calls (
        at DOUBLE PRECISION NOT NULL,
        tenant TEXT NOT NULL,
        vendor TEXT NOT NULL,
        operation TEXT NOT NULL,
        method TEXT NOT NULL,
        url TEXT NOT NULL,
        status_code INTEGER,
        attempts INTEGER NOT NULL,
        elapsed DOUBLE PRECISION NOT NULL,
        idempotency_key TEXT,
        request_id TEXT,
        error_code TEXT,
        job_key TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS dixis_checkpoints (
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        cursor TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (tenant, name)
    )""",
)

_ADDED_COLUMNS = (
    ("dixis_jobs", "lane", "TEXT"),
    ("dixis_jobs", "interrupted", "INTEGER NOT NULL DEFAULT 0"),
)
"""Columns added after the first release: a journal created before gets them on open."""

# A job is due when it is pending, failed and past its next attempt, or running with an
# expired lease; and every job it depends on is done (a missing dependency blocks it).
_DUE = (
    "((state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= {p}))"
    " OR (state = 'failed' AND next_attempt_at <= {p})"
    " OR (state = 'running' AND lease_until <= {p}))"
    " AND NOT EXISTS (SELECT 1 FROM dixis_job_deps d LEFT JOIN dixis_jobs j2 ON j2.key = d.dep"
    " WHERE d.key = dixis_jobs.key AND (j2.state IS NULL OR j2.state <> 'done'))"
)

_LANE_FREE = (
    "(lane IS NULL OR NOT EXISTS (SELECT 1 FROM dixis_jobs r WHERE r.lane = dixis_jobs.lane"
    " AND r.state = 'running' AND r.lease_until > {p}))"
)

_DEPS_DONE = (
    "NOT EXISTS (SELECT 1 FROM dixis_job_deps d LEFT JOIN dixis_jobs j2 ON j2.key = d.dep"
    " WHERE d.key = dixis_jobs.key AND (j2.state IS NULL OR j2.state <> 'done'))"
)
_DUE_BY_STATE = (
    "state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= {p})",
    "state = 'failed' AND next_attempt_at <= {p}",
    "state = 'running' AND lease_until <= {p}",
)
_QUEUE_HEAD = (
    "SELECT key FROM ("
    + " UNION ALL ".join(
        "SELECT * FROM (SELECT key, created_at FROM dixis_jobs WHERE "
        f"{state} AND {_DEPS_DONE} AND {_LANE_FREE} ORDER BY created_at, key LIMIT {{p}})"
        for state in _DUE_BY_STATE
    )
    + ") ORDER BY created_at, key LIMIT {p}"
)
"""The oldest due jobs, per state in the (state, created_at) index, so finding them reads
a few rows instead of sorting every due job (SQLite: no row locks to take)."""


def _row_to_job(row: Sequence[Any]) -> Job:
    (
        key,
        tenant,
        event_id,
        event_type,
        step,
        kind,
        provider,
        state,
        payload,
        depends_on,
        attempts,
        external_id,
        result,
        error_code,
        error_message,
        next_attempt_at,
        lease_until,
        worker,
        created_at,
        updated_at,
        started_at,
        finished_at,
        duration,
        interrupted,
    ) = row
    created = _dt(created_at)
    updated = _dt(updated_at)
    assert created is not None
    assert updated is not None
    return Job(
        key=key,
        tenant=tenant,
        event_id=event_id,
        event_type=event_type,
        step=step,
        kind=kind,
        provider=provider,
        state=JobState(state),
        payload=payload,
        depends_on=tuple(json.loads(depends_on)),
        attempts=int(attempts),
        external_id=external_id,
        result=json.loads(result) if result is not None else None,
        error_code=error_code,
        error_message=error_message,
        next_attempt_at=_dt(next_attempt_at),
        lease_until=_dt(lease_until),
        worker=worker,
        created_at=created,
        updated_at=updated,
        started_at=_dt(started_at),
        finished_at=_dt(finished_at),
        duration=duration,
        interrupted=bool(interrupted),
    )


_CALL_COLUMNS = (
    "at, tenant, vendor, operation, method, url, status_code, attempts, elapsed, "
    "idempotency_key, request_id, error_code, job_key"
)


def _row_to_call(row: Sequence[Any]) -> CallRow:
    at = _dt(row[0])
    assert at is not None
    return CallRow(at, *row[1:])


class _Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class _SQLJournal:
    """The journal logic on plain SQL; subclasses supply connections and transactions."""

    _p = "?"
    _claim_lock = ""
    _scan_first = False

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    # subclasses
    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[_Cursor]:  # pragma: no cover
        raise NotImplementedError
        yield

    def _q(self, sql: str) -> str:
        return sql.replace("?", self._p)

    def _ensure_schema(self) -> None:
        with self._tx() as cur:
            self._create(cur)

    def _create(self, cur: _Cursor) -> None:
        """Create what is missing: tables, then columns added since, then indexes."""
        cur.execute(_SCHEMA[0])
        for table, column, ddl in _ADDED_COLUMNS:
            if column not in self._columns(cur, table):
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
        for stmt in _SCHEMA[1:]:
            cur.execute(stmt)

    def _columns(self, cur: _Cursor, table: str) -> set[str]:
        cur.execute(f"PRAGMA table_info({table})")
        return {str(row[1]) for row in cur.fetchall()}

    # -- jobs ------------------------------------------------------------------------
    def enqueue(self, specs: Sequence[JobSpec]) -> list[str]:
        now = self._clock()
        keys: list[str] = []
        with self._tx() as cur:
            for spec in specs:
                key = spec.key
                keys.append(key)
                cur.execute(
                    self._q(
                        f"INSERT INTO dixis_jobs ({_JOB_COLUMNS}, lane) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, 0, NULL, NULL, NULL, NULL, "
                        "NULL, NULL, NULL, ?, ?, NULL, NULL, NULL, 0, ?) "
                        "ON CONFLICT (key) DO NOTHING"
                    ),
                    (
                        key,
                        spec.tenant,
                        spec.event_id,
                        spec.event_type,
                        spec.step,
                        spec.kind,
                        spec.provider,
                        spec.payload,
                        json.dumps(list(spec.depends_on)),
                        now,
                        now,
                        spec.lane,
                    ),
                )
                inserted = bool(_rowcount(cur))
                for dep in spec.depends_on:
                    cur.execute(
                        self._q(
                            "INSERT INTO dixis_job_deps (key, dep) VALUES (?, ?) "
                            "ON CONFLICT (key, dep) DO NOTHING"
                        ),
                        (key, dep),
                    )
                if inserted and spec.depends_on:
                    self._born_dead(cur, key, spec.depends_on, now)
        return keys

    def _born_dead(self, cur: _Cursor, key: str, deps: Sequence[str], now: float) -> None:
        """A new job that waits on a job already dead is dead too (``dependency_dead``),
        as it would have been had it existed when that job died; replaying the dead job
        revives it with the rest of its dependants."""
        marks = ", ".join("?" for _ in deps)
        cur.execute(
            self._q(
                f"SELECT key FROM dixis_jobs WHERE key IN ({marks}) AND state = 'dead' "
                "ORDER BY key LIMIT 1"
            ),
            tuple(deps),
        )
        row = cur.fetchone()
        if row is None:
            return
        cur.execute(
            self._q(
                "UPDATE dixis_jobs SET state = 'dead', error_code = 'dependency_dead', "
                "error_message = ?, next_attempt_at = NULL, finished_at = ?, updated_at = ? "
                "WHERE key = ?"
            ),
            (f"a job it waits on is dead ({row[0]})", now, now, key),
        )

    def claim(
        self, worker: str, *, lease: float, limit: int = 1, key: str | None = None
    ) -> list[Job]:
        now = self._clock()
        due = _DUE.format(p=self._p)
        lane_free = _LANE_FREE.format(p=self._p)
        found: list[str] | None = None
        if key is None and self._scan_first:
            # One writer at a time: the candidates are found in a read transaction
            # (readers never wait), the write lock is taken only to claim them, each
            # checked again by key. An idle worker never takes it.
            n = limit * 4 + 4
            with self._tx(write=False) as cur:
                cur.execute(
                    _QUEUE_HEAD.format(p=self._p), (now, now, n, now, now, n, now, now, n, n)
                )
                found = [r[0] for r in cur.fetchall()]
            if not found:
                return []
        with self._tx() as cur:
            if found is not None:
                marks = ", ".join("?" for _ in found)
                cur.execute(
                    self._q(
                        f"SELECT key, lane FROM dixis_jobs WHERE key IN ({marks}) AND {due} "
                        "ORDER BY created_at, key"
                    ),
                    (*found, now, now, now),
                )
            elif key is not None:
                cur.execute(
                    self._q(
                        f"SELECT key, lane FROM dixis_jobs WHERE key = ? AND {due}"
                        f"{self._claim_lock}"
                    ),
                    (key, now, now, now),
                )
            else:
                # Jobs of a lane another worker holds are left out here, not after the
                # LIMIT: a backlog of one lane at the head of the queue must not hide the
                # jobs behind it from every other worker.
                cur.execute(
                    self._q(
                        f"SELECT key, lane FROM dixis_jobs WHERE {due} AND {lane_free} "
                        f"ORDER BY created_at, key LIMIT ?{self._claim_lock}"
                    ),
                    (now, now, now, now, limit * 4 + 4),
                )
            candidates = [(r[0], r[1]) for r in cur.fetchall()]
            lanes: set[str] = set()
            jobs: list[Job] = []
            for k, lane in candidates:
                if len(jobs) >= limit:
                    break
                if lane is not None:
                    if lane in lanes or not self._lane_free(cur, lane, k, now):
                        continue
                    lanes.add(lane)
                cur.execute(
                    self._q(
                        "UPDATE dixis_jobs SET interrupted = CASE WHEN state = 'running' "
                        "THEN 1 ELSE 0 END, state = 'running', worker = ?, lease_until = ?, "
                        "attempts = attempts + 1, started_at = ?, updated_at = ? WHERE key = ?"
                    ),
                    (worker, now + lease, now, now, k),
                )
                cur.execute(self._q(f"SELECT {_JOB_COLUMNS} FROM dixis_jobs WHERE key = ?"), (k,))
                jobs.append(_row_to_job(cur.fetchone()))
        return jobs

    def _lane_free(self, cur: _Cursor, lane: str, key: str, now: float) -> bool:
        """No other job of ``lane`` is running (checked afresh, inside the claim)."""
        cur.execute(
            self._q(
                "SELECT 1 FROM dixis_jobs WHERE lane = ? AND key <> ? AND state = 'running' "
                "AND lease_until > ? LIMIT 1"
            ),
            (lane, key, now),
        )
        return cur.fetchone() is None

    def heartbeat(self, key: str, worker: str, *, lease: float) -> bool:
        now = self._clock()
        with self._tx() as cur:
            cur.execute(
                self._q(
                    "UPDATE dixis_jobs SET lease_until = ?, updated_at = ? "
                    "WHERE key = ? AND state = 'running' AND worker = ?"
                ),
                (now + lease, now, key, worker),
            )
            return bool(_rowcount(cur))

    def complete(
        self,
        key: str,
        worker: str,
        *,
        external_id: str | None,
        result: dict[str, Any] | None,
        duration: float | None = None,
    ) -> bool:
        now = self._clock()
        with self._tx() as cur:
            cur.execute(
                self._q(
                    "UPDATE dixis_jobs SET state = 'done', external_id = ?, result = ?, "
                    "error_code = NULL, error_message = NULL, next_attempt_at = NULL, "
                    "lease_until = NULL, worker = ?, finished_at = ?, updated_at = ?, "
                    "duration = ? WHERE key = ? AND state <> 'done'"
                ),
                (
                    external_id,
                    json.dumps(result, default=str) if result is not None else None,
                    worker,
                    now,
                    now,
                    duration,
                    key,
                ),
            )
            return bool(_rowcount(cur))

    def fail(
        self,
        key: str,
        worker: str,
        *,
        error_code: str,
        message: str,
        retry_at: datetime,
        duration: float | None = None,
    ) -> bool:
        now = self._clock()
        with self._tx() as cur:
            cur.execute(
                self._q(
                    "UPDATE dixis_jobs SET state = 'failed', error_code = ?, error_message = ?, "
                    "next_attempt_at = ?, lease_until = NULL, updated_at = ?, duration = ? "
                    "WHERE key = ? AND state = 'running' AND worker = ?"
                ),
                (error_code, message, retry_at.timestamp(), now, duration, key, worker),
            )
            return bool(_rowcount(cur))

    def kill(self, key: str, worker: str | None, *, error_code: str, message: str) -> list[str]:
        now = self._clock()
        killed: list[str] = []
        with self._tx() as cur:
            if worker is None:
                cur.execute(
                    self._q(
                        "UPDATE dixis_jobs SET state = 'dead', error_code = ?, error_message = ?, "
                        "lease_until = NULL, next_attempt_at = NULL, finished_at = ?, "
                        "updated_at = ? WHERE key = ? AND state NOT IN ('done', 'dead')"
                    ),
                    (error_code, message, now, now, key),
                )
            else:
                cur.execute(
                    self._q(
                        "UPDATE dixis_jobs SET state = 'dead', error_code = ?, error_message = ?, "
                        "lease_until = NULL, next_attempt_at = NULL, finished_at = ?, "
                        "updated_at = ? WHERE key = ? AND state = 'running' AND worker = ?"
                    ),
                    (error_code, message, now, now, key, worker),
                )
            if not _rowcount(cur):
                return killed
            killed.append(key)
            frontier = [key]
            while frontier:
                dep = frontier.pop()
                cur.execute(
                    self._q(
                        "SELECT j.key FROM dixis_job_deps d JOIN dixis_jobs j ON j.key = d.key "
                        "WHERE d.dep = ? AND j.state IN ('pending', 'failed')"
                    ),
                    (dep,),
                )
                for (child,) in cur.fetchall():
                    cur.execute(
                        self._q(
                            "UPDATE dixis_jobs SET state = 'dead', error_code = "
                            "'dependency_dead', error_message = ?, next_attempt_at = NULL, "
                            "finished_at = ?, updated_at = ? WHERE key = ?"
                        ),
                        (f"a job it waits on is dead ({dep})", now, now, child),
                    )
                    killed.append(child)
                    frontier.append(child)
        return killed

    def replay(self, key: str) -> list[str]:
        now = self._clock()
        revived: list[str] = []
        with self._tx() as cur:
            cur.execute(
                self._q(
                    "UPDATE dixis_jobs SET state = 'pending', attempts = 0, error_code = NULL, "
                    "error_message = NULL, next_attempt_at = NULL, lease_until = NULL, "
                    "worker = NULL, finished_at = NULL, interrupted = 0, updated_at = ? "
                    "WHERE key = ? AND state = 'dead'"
                ),
                (now, key),
            )
            if not _rowcount(cur):
                return revived
            revived.append(key)
            revived += self._revive_dependants(cur, key, now)
        return revived

    def resolve(
        self, key: str, *, external_id: str | None, result: dict[str, Any] | None = None
    ) -> list[str]:
        now = self._clock()
        changed: list[str] = []
        with self._tx() as cur:
            cur.execute(
                self._q(
                    "UPDATE dixis_jobs SET state = 'done', external_id = ?, result = ?, "
                    "error_code = NULL, error_message = NULL, next_attempt_at = NULL, "
                    "lease_until = NULL, worker = 'resolved', finished_at = ?, "
                    "interrupted = 0, updated_at = ? WHERE key = ? AND state = 'dead'"
                ),
                (
                    external_id,
                    json.dumps(result, default=str) if result is not None else None,
                    now,
                    now,
                    key,
                ),
            )
            if not _rowcount(cur):
                return changed
            changed.append(key)
            changed += self._revive_dependants(cur, key, now)
        return changed

    def _revive_dependants(self, cur: _Cursor, key: str, now: float) -> list[str]:
        """The jobs ``key``'s death took down (``dependency_dead``), back to pending."""
        revived: list[str] = []
        frontier = [key]
        while frontier:
            dep = frontier.pop()
            cur.execute(
                self._q(
                    "SELECT j.key FROM dixis_job_deps d JOIN dixis_jobs j ON j.key = d.key "
                    "WHERE d.dep = ? AND j.state = 'dead' AND j.error_code = 'dependency_dead'"
                ),
                (dep,),
            )
            for (child,) in cur.fetchall():
                cur.execute(
                    self._q(
                        "UPDATE dixis_jobs SET state = 'pending', attempts = 0, "
                        "error_code = NULL, error_message = NULL, finished_at = NULL, "
                        "interrupted = 0, updated_at = ? WHERE key = ?"
                    ),
                    (now, child),
                )
                revived.append(child)
                frontier.append(child)
        return revived

    def get(self, key: str) -> Job | None:
        with self._tx(write=False) as cur:
            cur.execute(self._q(f"SELECT {_JOB_COLUMNS} FROM dixis_jobs WHERE key = ?"), (key,))
            row = cur.fetchone()
        return _row_to_job(row) if row is not None else None

    def jobs(
        self,
        *,
        state: JobState | None = None,
        tenant: str | None = None,
        event_id: str | None = None,
        limit: int | None = None,
        step: str | None = None,
        provider: str | None = None,
        kind: str | None = None,
        external_id: str | None = None,
        event_prefix: str | None = None,
    ) -> list[Job]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("state", state),
            ("tenant", tenant),
            ("event_id", event_id),
            ("step", step),
            ("provider", provider),
            ("kind", kind),
            ("external_id", external_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        if event_prefix is not None:
            where.append("substr(event_id, 1, ?) = ?")
            params += [len(event_prefix), event_prefix]
        sql = f"SELECT {_JOB_COLUMNS} FROM dixis_jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, key"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._tx(write=False) as cur:
            cur.execute(self._q(sql), params)
            rows = cur.fetchall()
        return [_row_to_job(r) for r in rows]

    def counts(self) -> dict[JobState, int]:
        out = dict.fromkeys(JobState, 0)
        with self._tx(write=False) as cur:
            cur.execute("SELECT state, COUNT(*) FROM dixis_jobs GROUP BY state")
            for state, n in cur.fetchall():
                out[JobState(state)] = int(n)
        return out

    def next_due(self) -> datetime | None:
        with self._tx(write=False) as cur:
            cur.execute(
                "SELECT MIN(CASE WHEN state = 'running' THEN lease_until "
                "WHEN state = 'failed' THEN next_attempt_at "
                "ELSE COALESCE(next_attempt_at, created_at) END) "
                "FROM dixis_jobs WHERE state IN ('running', 'failed') OR (state = 'pending' "
                "AND NOT EXISTS (SELECT 1 FROM dixis_job_deps d LEFT JOIN dixis_jobs j2 "
                "ON j2.key = d.dep WHERE d.key = dixis_jobs.key "
                "AND (j2.state IS NULL OR j2.state <> 'done')))"
            )
            row = cur.fetchone()
        return _dt(row[0]) if row and row[0] is not None else None

    # -- calls -------------------------------------------------------------------------
    def record_call(self, row: CallRow) -> None:
        with self._tx() as cur:
            cur.execute(
                self._q(
                    f"INSERT INTO dixis_calls ({_CALL_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    row.at.timestamp(),
                    row.tenant,
                    row.vendor,
                    row.operation,
                    row.method,
                    row.url,
                    row.status_code,
                    row.attempts,
                    row.elapsed,
                    row.idempotency_key,
                    row.request_id,
                    row.error_code,
                    row.job_key,
                ),
            )

    def calls(self, *, writes_only: bool = False, limit: int | None = None) -> list[CallRow]:
        sql = f"SELECT {_CALL_COLUMNS} FROM dixis_calls"
        params: list[Any] = []
        if writes_only:
            sql += " WHERE method NOT IN ('GET', 'HEAD', 'OPTIONS')"
        sql += " ORDER BY at"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._tx(write=False) as cur:
            cur.execute(self._q(sql), params)
            rows = cur.fetchall()
        return [_row_to_call(r) for r in rows]

    # -- checkpoints -------------------------------------------------------------------
    def get_checkpoint(self, name: str, tenant: str = "default") -> str | None:
        with self._tx(write=False) as cur:
            cur.execute(
                self._q("SELECT cursor FROM dixis_checkpoints WHERE tenant = ? AND name = ?"),
                (tenant, name),
            )
            row = cur.fetchone()
        return str(row[0]) if row is not None else None

    def set_checkpoint(self, name: str, cursor: str, tenant: str = "default") -> None:
        with self._tx() as cur:
            cur.execute(
                self._q(
                    "INSERT INTO dixis_checkpoints (tenant, name, cursor, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (tenant, name) "
                    "DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at"
                ),
                (tenant, name, cursor, self._clock()),
            )


def _rowcount(cur: Any) -> int:
    return int(getattr(cur, "rowcount", 0) or 0)


class SQLiteJournal(_SQLJournal):
    """The default journal: one SQLite file in WAL mode.

    Safe for several threads (one connection per thread) and several processes on one
    machine (``BEGIN IMMEDIATE`` serialises writers; readers never block).
    """

    _p = "?"
    _scan_first = True

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time):
        super().__init__(clock=clock)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._ensure_schema()

    def __repr__(self) -> str:
        return f"SQLiteJournal({str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[_Cursor]:
        conn = self._conn()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()

    def close(self) -> None:
        """Close every connection this journal opened."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


class PostgresJournal(_SQLJournal):
    """The journal on PostgreSQL (extra ``[postgres]``): many workers on many machines.

    Claims use ``FOR UPDATE SKIP LOCKED``, so concurrent workers never wait on, or take,
    each other's jobs. One connection per thread.
    """

    _p = "%s"
    _claim_lock = " FOR UPDATE SKIP LOCKED"

    def __init__(self, dsn: str, *, clock: Callable[[], float] = time.time) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigurationError(
                "PostgreSQL needs the [postgres] extra "
                "(pip install 'dixis-integrations[postgres]')",
                key="journal.url",
            ) from exc
        super().__init__(clock=clock)
        self._dsn = dsn
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._ensure_schema()

    def __repr__(self) -> str:
        return "PostgresJournal(<dsn>)"

    def _conn(self) -> Any:
        import psycopg

        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self._dsn, autocommit=False)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[_Cursor]:
        conn = self._conn()
        with conn.transaction(), conn.cursor() as cur:
            yield cur

    def _lane_free(self, cur: _Cursor, lane: str, key: str, now: float) -> bool:
        # Another claimer may hold this lane's candidate in an open transaction: take the
        # lane's lock (or skip it), then look again with a fresh snapshot.
        cur.execute("SELECT pg_try_advisory_xact_lock(73955, hashtext(%s))", (lane,))
        row = cur.fetchone()
        if not row or not row[0]:
            return False
        return super()._lane_free(cur, lane, key, now)

    def _ensure_schema(self) -> None:
        conn = self._conn()
        with conn.transaction(), conn.cursor() as cur:
            # Serialise concurrent first starts: CREATE IF NOT EXISTS is not race-free.
            cur.execute("SELECT pg_advisory_xact_lock(7395528011)")
            self._create(cur)

    def _columns(self, cur: _Cursor, table: str) -> set[str]:
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
        return {str(row[0]) for row in cur.fetchall()}

    def close(self) -> None:
        """Close every connection this journal opened."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


def open_journal(url: str) -> SQLiteJournal | PostgresJournal:
    """A journal from a URL: ``sqlite:///path/to/file.db`` or ``postgresql://...``.

    Raises:
        ConfigurationError: the scheme is neither (``key="journal.url"``).
    """
    if url.startswith("sqlite:///"):
        return SQLiteJournal(url[len("sqlite:///") :])
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresJournal(url)
    raise ConfigurationError("expected sqlite:///PATH or postgresql://... ", key="journal.url")
