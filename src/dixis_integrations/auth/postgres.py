"""A ``TokenStore`` in PostgreSQL, for several workers or machines (extra ``[postgres]``).

Rows are AES-GCM blobs (see :mod:`.crypto`). :meth:`PostgresTokenStore.lock` is a
session-level ``pg_advisory_lock`` held on a connection of its own. psycopg 3 is imported
only when the store is first used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from dixis_integrations.auth.crypto import TokenCipher
from dixis_integrations.auth.tokens import Token, TokenLockTimeout
from dixis_integrations.errors import ConfigurationError, TransientError

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresTokenStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dixis_tokens (
    provider   TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    blob       BYTEA NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, tenant)
)
"""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigurationError(
            "PostgresTokenStore needs psycopg 3: pip install 'dixis-integrations[postgres]'"
        ) from None
    return psycopg


def _advisory_key(provider: str, tenant: str) -> int:
    """A signed 64-bit key for ``pg_advisory_lock``, stable across processes and runs."""
    digest = hashlib.sha256(f"dixis-token\x00{provider}\x00{tenant}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresTokenStore:
    """Tokens in a PostgreSQL table ``dixis_tokens``, one row per (provider, tenant).

    The table is created on first use (no connection is made in the constructor). Each
    operation uses a short connection of its own, so one store is safe to share between
    threads. The lock lives on a dedicated connection for the length of the ``with``
    block; if the holder dies, PostgreSQL ends its session and frees the lock.
    """

    def __init__(self, dsn: str, cipher: TokenCipher, *, connect_timeout: float = 10.0) -> None:
        self._dsn = dsn
        self._cipher = cipher
        self._connect_timeout = connect_timeout
        self._ready = False

    def _connect(self) -> psycopg.Connection[Any]:
        pg = _psycopg()
        try:
            conn: psycopg.Connection[Any] = pg.connect(
                self._dsn, autocommit=True, connect_timeout=max(1, int(self._connect_timeout))
            )
        except pg.OperationalError:
            # The message may quote the DSN, which can carry a password: do not chain it.
            raise TransientError("cannot connect to the PostgreSQL token store") from None
        if not self._ready:
            # A concurrent first start may create it meanwhile: IF NOT EXISTS is not atomic.
            with suppress(pg.errors.UniqueViolation, pg.errors.DuplicateTable):
                conn.execute(_SCHEMA)
            self._ready = True
        return conn

    def get(self, provider: str, tenant: str) -> Token | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT blob FROM dixis_tokens WHERE provider = %s AND tenant = %s",
                (provider, tenant),
            ).fetchone()
        if row is None:
            return None
        return self._cipher.open(provider, tenant, bytes(row[0]))

    def save(self, provider: str, tenant: str, token: Token) -> None:
        blob = self._cipher.seal(provider, tenant, token)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO dixis_tokens (provider, tenant, blob, updated_at) "
                "VALUES (%s, %s, %s, now()) ON CONFLICT (provider, tenant) "
                "DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at",
                (provider, tenant, blob),
            )

    def delete(self, provider: str, tenant: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "DELETE FROM dixis_tokens WHERE provider = %s AND tenant = %s",
                (provider, tenant),
            )

    @contextmanager
    def lock(self, provider: str, tenant: str, timeout: float) -> Iterator[None]:
        pg = _psycopg()
        key = _advisory_key(provider, tenant)
        conn = self._connect()
        try:
            # lock_timeout bounds the wait of pg_advisory_lock like any other lock wait.
            ms = max(1, int(timeout * 1000))
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{ms}ms",))
            try:
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            except pg.errors.LockNotAvailable:
                raise TokenLockTimeout(
                    f"token lock for {provider}/{tenant} not acquired within {timeout:g}s",
                    vendor=provider,
                ) from None
            try:
                yield
            finally:
                if not conn.closed:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            conn.close()

    def __repr__(self) -> str:
        return "PostgresTokenStore(<dsn hidden>)"
