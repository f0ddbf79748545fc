"""Orchestration: events in, jobs in a durable journal, effects out exactly once.

:class:`Engine` plans steps per event type and executes them through adapters
(:class:`AsyncEngine` runs them on asyncio);
:class:`Journal` (SQLite or PostgreSQL) records every job; runners (inline, a local
pool, Celery, Dramatiq) decide where jobs run; :mod:`.monitor` reports from the journal.
Celery and Dramatiq live in :mod:`.celery` and :mod:`.dramatiq` (imported on demand).
"""

from dixis_integrations.sync.aengine import AsyncCallRecorder, AsyncEngine
from dixis_integrations.sync.engine import (
    IN_DOUBT,
    CallRecorder,
    Connection,
    DrainSummary,
    Engine,
    JobPolicy,
    Outcome,
    PlannedStep,
    Router,
    may_have_reached_vendor,
    spread_by_order,
)
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
from dixis_integrations.sync.runners import InlineRunner, PoolRunner, Runner
from dixis_integrations.sync.steps import (
    Dependency,
    StepBook,
    StepContext,
    StepDefinition,
    StepSettings,
    builtin_steps,
)

__all__ = [
    "IN_DOUBT",
    "AsyncCallRecorder",
    "AsyncEngine",
    "CallRecorder",
    "CallRow",
    "CheckpointStore",
    "Connection",
    "Dependency",
    "DrainSummary",
    "Engine",
    "InlineRunner",
    "Job",
    "JobPolicy",
    "JobSpec",
    "JobState",
    "Journal",
    "Outcome",
    "PlannedStep",
    "PoolRunner",
    "PostgresJournal",
    "Router",
    "Runner",
    "SQLiteJournal",
    "StepBook",
    "StepContext",
    "StepDefinition",
    "StepSettings",
    "builtin_steps",
    "job_key",
    "may_have_reached_vendor",
    "open_journal",
    "spread_by_order",
]
