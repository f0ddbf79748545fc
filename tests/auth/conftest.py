"""Fixtures of the auth tests: a cipher, and a persistent token store of each kind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from _services import require_postgres
from dixis_integrations.auth import PostgresTokenStore, SQLiteTokenStore, TokenCipher, TokenStore


@pytest.fixture
def token_key() -> str:
    return TokenCipher.generate_key()


@pytest.fixture
def cipher(token_key: str) -> TokenCipher:
    return TokenCipher(token_key)


@pytest.fixture
def provider() -> str:
    """A provider name of its own per test, so tests sharing a database never collide."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_target(store_kind: str, tmp_path: Path) -> str:
    """The database of the store: a file path for SQLite, a DSN for PostgreSQL."""
    if store_kind == "postgres":
        return require_postgres()
    return str(tmp_path / "tokens.db")


def make_store(kind: str, target: str, cipher: TokenCipher) -> TokenStore:
    if kind == "postgres":
        return PostgresTokenStore(target, cipher)
    return SQLiteTokenStore(target, cipher)


@pytest.fixture
def store(
    store_kind: str, store_target: str, cipher: TokenCipher, provider: str
) -> Iterator[TokenStore]:
    made = make_store(store_kind, store_target, cipher)
    yield made
    for tenant in ("t1", "t2", "race"):
        made.delete(provider, tenant)
