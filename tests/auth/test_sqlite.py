"""SQLiteTokenStore specifics: what lands on disk, and the journal mode."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pydantic import SecretStr

from dixis_integrations.auth import SQLiteTokenStore, Token, TokenCipher

ACCESS = "access-token-plaintext-7f3a9c"
REFRESH = "refresh-token-plaintext-b81d2e"


def _files(db: Path) -> list[Path]:
    return [p for p in db.parent.rglob("*") if p.is_file()]


def test_database_files_never_contain_the_token_text(tmp_path: Path) -> None:
    db = tmp_path / "tokens.db"
    store = SQLiteTokenStore(db, TokenCipher(TokenCipher.generate_key()))
    token = Token(access_token=SecretStr(ACCESS), refresh_token=SecretStr(REFRESH), scope="s")
    store.save("xero", "t1", token)
    store.save("xero", "t2", token)
    assert store.get("xero", "t1") == token  # the store can read it back...
    files = _files(db)
    assert db in files
    for path in files:  # ...but no byte of the database, its WAL or lock files shows it
        raw = path.read_bytes()
        assert ACCESS.encode() not in raw, path
        assert REFRESH.encode() not in raw, path


def test_the_same_token_encrypts_differently_on_each_write(tmp_path: Path) -> None:
    db = tmp_path / "tokens.db"
    store = SQLiteTokenStore(db, TokenCipher(TokenCipher.generate_key()))
    token = Token(access_token=SecretStr(ACCESS))
    store.save("xero", "t1", token)
    store.save("xero", "t2", token)
    with sqlite3.connect(db) as conn:
        blobs = [row[0] for row in conn.execute("SELECT blob FROM dixis_tokens")]
    assert len(blobs) == 2
    assert blobs[0] != blobs[1]


def test_database_uses_write_ahead_logging(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "tokens.db"
    SQLiteTokenStore(db, TokenCipher(TokenCipher.generate_key())).get("xero", "t1")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_constructor_touches_nothing_on_disk(tmp_path: Path) -> None:
    SQLiteTokenStore(tmp_path / "tokens.db", TokenCipher(TokenCipher.generate_key()))
    assert list(tmp_path.iterdir()) == []
