"""Token values and the in-memory store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import SecretStr, ValidationError

from dixis_integrations.auth import MemoryTokenStore, Token, TokenLockTimeout, TokenStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_expires_within_compares_the_expiry_with_now_plus_the_margin() -> None:
    token = Token(access_token=SecretStr("a"), expires_at=NOW + timedelta(seconds=300))
    assert token.expires_within(300, NOW)
    assert token.expires_within(301, NOW)
    assert not token.expires_within(299, NOW)


def test_token_without_expiry_never_expires_within_a_margin() -> None:
    assert not Token(access_token=SecretStr("a")).expires_within(10**9, NOW)


def test_expiry_times_are_normalised_to_utc_and_must_be_aware() -> None:
    athens = timezone(timedelta(hours=2))
    token = Token(
        access_token=SecretStr("a"), expires_at=datetime(2026, 3, 1, 14, 0, tzinfo=athens)
    )
    assert token.expires_at == NOW
    assert token.expires_at is not None
    assert token.expires_at.tzinfo == UTC
    with pytest.raises(ValidationError):
        Token(access_token=SecretStr("a"), expires_at=datetime(2026, 3, 1, 12, 0))


def test_refresh_token_expiry_is_known_when_given() -> None:
    token = Token(
        access_token=SecretStr("a"),
        refresh_token=SecretStr("r"),
        refresh_token_expires_at=NOW,
    )
    assert token.refresh_token_expired(NOW)
    assert not token.refresh_token_expired(NOW - timedelta(seconds=1))


def test_repr_and_str_never_show_the_secrets() -> None:
    token = Token(access_token=SecretStr("acc-SECRET-1"), refresh_token=SecretStr("ref-SECRET-2"))
    for text in (repr(token), str(token), f"{token}", repr(token.model_dump())):
        assert "acc-SECRET-1" not in text
        assert "ref-SECRET-2" not in text


def test_bytes_round_trip_keeps_every_field() -> None:
    token = Token(
        access_token=SecretStr("a"),
        refresh_token=SecretStr("r"),
        token_type="Bearer",
        expires_at=NOW,
        scope="x y",
        extra={"instance_url": "https://eu.example"},
        refresh_token_expires_at=NOW + timedelta(days=100),
        issued_at=NOW - timedelta(hours=1),
    )
    assert Token.from_bytes(token.to_bytes()) == token


def test_memory_store_satisfies_the_protocol_and_round_trips() -> None:
    store = MemoryTokenStore()
    assert isinstance(store, TokenStore)
    token = Token(access_token=SecretStr("a"))
    store.save("p", "t", token)
    assert store.get("p", "t") == token
    store.delete("p", "t")
    assert store.get("p", "t") is None


def test_memory_store_lock_times_out_while_another_thread_holds_it() -> None:
    store = MemoryTokenStore()
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with store.lock("p", "t", timeout=1):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(5)
    try:
        with pytest.raises(TokenLockTimeout), store.lock("p", "t", timeout=0.05):
            pass
    finally:
        release.set()
        thread.join(5)
    with store.lock("p", "t", timeout=1):
        pass


def test_lifetime_is_known_only_with_both_ends() -> None:
    token = Token(access_token=SecretStr("a"), issued_at=NOW, expires_at=NOW + timedelta(60))
    assert token.lifetime() == 60 * 86400
    assert Token(access_token=SecretStr("a"), expires_at=NOW).lifetime() is None
