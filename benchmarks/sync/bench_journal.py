"""Journal throughput: jobs recorded, claimed and completed per second, SQLite and
PostgreSQL, against a baseline on the same database in the same run.

Each job goes through the journal's full life: ``enqueue`` (one transaction per event of
five jobs), ``claim`` (lease, attempt count) and ``complete`` (result and external id in
one transaction). The baseline does the least any durable job table must do on the same
database: one INSERT per job (five per transaction) and one UPDATE per job, each in its
own transaction, with no lease, dependency or claim logic.

Run: python benchmarks/sync/bench_journal.py [--jobs 2000] [--postgres DSN]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from dixis_integrations.sync.journal import JobSpec, PostgresJournal, SQLiteJournal

STEPS = ("invoice", "inventory", "shipment", "crm_contact", "journey")


def _specs(n_events: int) -> list[list[JobSpec]]:
    return [
        [
            JobSpec("default", f"order.created:{i}", "order.created", s, "k", "p", '{"x": 1}')
            for s in STEPS
        ]
        for i in range(n_events)
    ]


def bench_journal(journal: Any, n_events: int) -> float:
    events = _specs(n_events)
    start = time.perf_counter()
    for specs in events:
        journal.enqueue(specs)
    while True:
        jobs = journal.claim("bench", lease=60, limit=50)
        if not jobs:
            break
        for job in jobs:
            journal.complete(job.key, "bench", external_id="X", result={"ok": True})
    return n_events * len(STEPS) / (time.perf_counter() - start)


def bench_sqlite_baseline(path: Path, n_events: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, state TEXT, payload TEXT, result TEXT)")
    start = time.perf_counter()
    for i in range(n_events):
        conn.execute("BEGIN IMMEDIATE")
        for s in STEPS:
            conn.execute("INSERT INTO t VALUES (?, 'pending', '{}', NULL)", (f"{i}:{s}",))
        conn.execute("COMMIT")
    for i in range(n_events):
        for s in STEPS:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE t SET state='done', result='{}' WHERE k=?", (f"{i}:{s}",))
            conn.execute("COMMIT")
    rate = n_events * len(STEPS) / (time.perf_counter() - start)
    conn.close()
    return rate


def bench_postgres_baseline(dsn: str, n_events: int) -> float:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, state TEXT, payload TEXT, result TEXT)")
        conn.commit()
        start = time.perf_counter()
        for i in range(n_events):
            with conn.transaction():
                for s in STEPS:
                    conn.execute("INSERT INTO t VALUES (%s, 'pending', '{}', NULL)", (f"{i}:{s}",))
        for i in range(n_events):
            for s in STEPS:
                with conn.transaction():
                    conn.execute("UPDATE t SET state='done', result='{}' WHERE k=%s", (f"{i}:{s}",))
        return n_events * len(STEPS) / (time.perf_counter() - start)


def _schema_dsn(dsn: str) -> tuple[str, str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}", schema


def _drop(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per measurement")
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    n_events = max(1, args.jobs // len(STEPS))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        journal = SQLiteJournal(Path(tmp) / "j.db")
        rate = bench_journal(journal, n_events)
        journal.close()
        base = bench_sqlite_baseline(Path(tmp) / "b.db", n_events)
        rows.append(("SQLite (WAL)", rate, base))
    try:
        dsn, schema = _schema_dsn(args.postgres)
    except Exception as exc:
        print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}")
    else:
        try:
            pg = PostgresJournal(dsn)
            rate = bench_journal(pg, n_events)
            pg.close()
            base_dsn, base_schema = _schema_dsn(args.postgres)
            try:
                base = bench_postgres_baseline(base_dsn, n_events)
            finally:
                _drop(args.postgres, base_schema)
            rows.append(("PostgreSQL", rate, base))
        finally:
            _drop(args.postgres, schema)
    print(f"{n_events * len(STEPS)} jobs, each recorded, claimed and completed")
    print("| journal | jobs/s | baseline jobs/s | ratio (journal / baseline) |")
    print("|---|---|---|---|")
    for name, rate, base in rows:
        print(f"| {name} | {rate:,.0f} | {base:,.0f} | {rate / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
