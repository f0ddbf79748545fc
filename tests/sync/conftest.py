"""Fixtures of the orchestration tests: a journal of each kind, on a clock the test moves."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from _services import require_postgres
from dixis_integrations.sync.journal import PostgresJournal, SQLiteJournal


class Clock:
    """Wall time that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def postgres_schema_dsn() -> str:
    """A DSN on a fresh schema of the test database, so tests never see each other's rows."""
    import psycopg

    dsn = require_postgres()
    schema = f"dixis_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def journal_target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(kind, target): a file path for SQLite, a DSN on a fresh schema for PostgreSQL."""
    if request.param == "postgres":
        return "postgres", postgres_schema_dsn()
    return "sqlite", str(tmp_path / "journal.db")


@pytest.fixture
def journal(
    journal_target: tuple[str, str], clock: Clock
) -> Iterator[SQLiteJournal | PostgresJournal]:
    kind, target = journal_target
    j: SQLiteJournal | PostgresJournal = (
        PostgresJournal(target, clock=clock)
        if kind == "postgres"
        else SQLiteJournal(target, clock=clock)
    )
    yield j
    j.close()
