"""One suite for every persistent TokenStore (SQLite and PostgreSQL, parametrised)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from dixis_integrations.auth import Token, TokenCipher, TokenLockTimeout, TokenStore
from dixis_integrations.errors import ConfigurationError

from .conftest import make_store

WORKER = Path(__file__).with_name("_worker.py")


def _token(access: str = "access-AAA", refresh: str | None = "refresh-RRR") -> Token:
    return Token(
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh) if refresh else None,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        scope="accounting",
        extra={"realmId": "9130"},
        refresh_token_expires_at=datetime(2030, 6, 1, tzinfo=UTC) + timedelta(days=1),
    )


@contextmanager
def _held_by_other_process(
    kind: str, target: str, provider: str, tenant: str, key: str
) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "DIXIS_TOKEN_KEY": key}
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "hold", kind, target, provider, tenant],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=10)


def test_get_returns_none_when_nothing_is_stored(store: TokenStore, provider: str) -> None:
    assert store.get(provider, "t1") is None


def test_saved_token_round_trips_with_every_field(store: TokenStore, provider: str) -> None:
    token = _token()
    store.save(provider, "t1", token)
    assert store.get(provider, "t1") == token


def test_save_replaces_the_previous_token_of_the_same_tenant_only(
    store: TokenStore, provider: str
) -> None:
    store.save(provider, "t1", _token("first"))
    store.save(provider, "t2", _token("other"))
    store.save(provider, "t1", _token("second"))
    first = store.get(provider, "t1")
    other = store.get(provider, "t2")
    assert first is not None
    assert first.access_token.get_secret_value() == "second"
    assert other is not None
    assert other.access_token.get_secret_value() == "other"


def test_delete_forgets_the_token_and_tolerates_absence(store: TokenStore, provider: str) -> None:
    store.save(provider, "t1", _token())
    store.delete(provider, "t1")
    store.delete(provider, "t1")
    assert store.get(provider, "t1") is None


def test_a_store_with_another_key_cannot_read_the_tokens(
    store: TokenStore, store_kind: str, store_target: str, provider: str
) -> None:
    store.save(provider, "t1", _token())
    stranger = make_store(store_kind, store_target, TokenCipher(TokenCipher.generate_key()))
    with pytest.raises(ConfigurationError) as info:
        stranger.get(provider, "t1")
    assert info.value.key == "DIXIS_TOKEN_KEY"


def test_lock_times_out_with_a_typed_error_while_another_process_holds_it(
    store: TokenStore, store_kind: str, store_target: str, provider: str, token_key: str
) -> None:
    with _held_by_other_process(store_kind, store_target, provider, "t1", token_key):
        with pytest.raises(TokenLockTimeout) as info, store.lock(provider, "t1", timeout=0.2):
            pytest.fail("the lock was granted while another process held it")
        assert info.value.retryable
        # Another tenant is not blocked by that lock.
        with store.lock(provider, "t2", timeout=2):
            pass
    # Released when the other process lets go.
    with store.lock(provider, "t1", timeout=5):
        pass


def test_lock_excludes_other_threads_until_released(store: TokenStore, provider: str) -> None:
    inside = threading.Event()
    release = threading.Event()
    outcome: list[str] = []

    def holder() -> None:
        with store.lock(provider, "t1", timeout=5):
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert inside.wait(5)
        try:
            with store.lock(provider, "t1", timeout=0.1):
                outcome.append("granted")
        except TokenLockTimeout:
            outcome.append("timed out")
    finally:
        release.set()
        thread.join(5)
    with store.lock(provider, "t1", timeout=5):
        outcome.append("granted after release")
    assert outcome == ["timed out", "granted after release"]


def test_lock_is_released_when_the_holder_process_dies(
    store: TokenStore, store_kind: str, store_target: str, provider: str, token_key: str
) -> None:
    with _held_by_other_process(store_kind, store_target, provider, "t1", token_key) as proc:
        with pytest.raises(TokenLockTimeout), store.lock(provider, "t1", timeout=0.1):
            pytest.fail("the lock was granted while another process held it")
        proc.kill()  # a worker crashes mid-refresh, without any clean-up
        proc.wait(5)
        with store.lock(provider, "t1", timeout=5):
            pass
