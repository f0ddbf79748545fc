"""The default ``TokenStore``: one SQLite file, tokens encrypted, a lock across processes.

Rows are AES-GCM blobs (see :mod:`.crypto`); the database never holds a token in clear.
The lock is ``flock`` on one small sidecar file per (provider, tenant), next to the database.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from dixis_integrations.auth.crypto import TokenCipher
from dixis_integrations.auth.tokens import Token, TokenLockTimeout
from dixis_integrations.errors import ConfigurationError

__all__ = ["SQLiteTokenStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dixis_tokens (
    provider   TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    blob       BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (provider, tenant)
)
"""


class SQLiteTokenStore:
    """Tokens in a SQLite database file (WAL mode), one row per (provider, tenant).

    Why ``flock`` on sidecar files for :meth:`lock`, rather than a lock row in the database:

    - the kernel releases an ``flock`` when its holder dies, so a crashed worker never
      leaves a stale lock behind (a lock row would need leases and clean-up);
    - holding it costs the database nothing: ``BEGIN IMMEDIATE`` held across a token
      request would block every writer of the file, other tenants included, for the whole
      network round trip;
    - ``flock`` locks belong to an open file description, so two threads of one process
      exclude each other too, as two processes do; one file per (provider, tenant) means
      refreshes of different tenants never wait for each other.

    It needs a POSIX system and a local filesystem (not NFS); several machines should
    share a :class:`~dixis_integrations.auth.postgres.PostgresTokenStore` instead.
    Each operation opens its own short connection, so one store is safe to share
    between threads.
    """

    def __init__(self, path: str | os.PathLike[str], cipher: TokenCipher) -> None:
        self.path = Path(path)
        self._cipher = cipher
        self._ready = False

    # -- storage ---------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        if not self._ready:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(_SCHEMA)
            self._ready = True
        return conn

    def get(self, provider: str, tenant: str) -> Token | None:
        with closing(self._connect()) as conn:
            row = conn.execute(
                "SELECT blob FROM dixis_tokens WHERE provider = ? AND tenant = ?",
                (provider, tenant),
            ).fetchone()
        if row is None:
            return None
        return self._cipher.open(provider, tenant, row[0])

    def save(self, provider: str, tenant: str, token: Token) -> None:
        blob = self._cipher.seal(provider, tenant, token)
        with closing(self._connect()) as conn:
            conn.execute(
                "INSERT INTO dixis_tokens (provider, tenant, blob, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (provider, tenant) "
                "DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at",
                (provider, tenant, blob, datetime.now(UTC).isoformat()),
            )

    def delete(self, provider: str, tenant: str) -> None:
        with closing(self._connect()) as conn:
            conn.execute(
                "DELETE FROM dixis_tokens WHERE provider = ? AND tenant = ?", (provider, tenant)
            )

    # -- locking ---------------------------------------------------------------------
    def _lock_path(self, provider: str, tenant: str) -> Path:
        digest = hashlib.sha256(f"{provider}\x00{tenant}".encode()).hexdigest()[:32]
        return self.path.with_name(self.path.name + ".locks") / f"{digest}.lock"

    @contextmanager
    def lock(self, provider: str, tenant: str, timeout: float) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            raise ConfigurationError(
                "SQLiteTokenStore.lock needs a POSIX system; use PostgresTokenStore here"
            ) from None
        path = self._lock_path(provider, tenant)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + max(timeout, 0.0)
            pause = 0.005
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TokenLockTimeout(
                            f"token lock for {provider}/{tenant} not acquired within {timeout:g}s",
                            vendor=provider,
                        ) from None
                    time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
                    pause = min(pause * 2, 0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"SQLiteTokenStore({str(self.path)!r})"
