"""Orchestration: events in, jobs in a durable journal, effects out exactly once.

:class:`Engine` plans steps per event type and executes them through adapters;
:class:`Journal` (SQLite or PostgreSQL) records every job; runners (inline, a local
pool, Celery, Dramatiq) decide where jobs run; :mod:`.monitor` reports from the journal.
"""

from dixis_integrations.sync.journal import (
    CallRow,
    CheckpointStore,
    Job,
    JobSpec,
    JobState,
    Journal,
    PostgresJournal,
    SQLiteJournal,
    job_key,
    open_journal,
)

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
