"""OAuth2 tokens and where they are kept: the ``Token`` value and the ``TokenStore`` Protocol.

A ``Token`` holds its secrets as ``SecretStr`` so that no repr, log line or error ever shows
them. A ``TokenStore`` keeps one token per (provider, tenant) and offers an exclusive lock
that holds across processes, so that exactly one worker refreshes a token at a time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from dixis_integrations.errors import TokenLockTimeout

__all__ = [
    "MemoryTokenStore",
    "Token",
    "TokenLockTimeout",
    "TokenStore",
]


class Token(BaseModel):
    """An OAuth2 token as a vendor issued it, with its expiry times in aware UTC.

    ``extra`` carries vendor data that travels with the grant (a Xero tenant id, the
    Salesforce ``instance_url``, the QuickBooks ``realmId``); it is not secret.
    ``issued_at`` (when known) lets a refresh margin shrink for short-lived tokens.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    token_type: str = "Bearer"  # noqa: S105 - a scheme name
    expires_at: datetime | None = None
    scope: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)
    refresh_token_expires_at: datetime | None = None
    issued_at: datetime | None = None

    @field_validator("expires_at", "refresh_token_expires_at", "issued_at")
    @classmethod
    def _aware_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware")
        return value.astimezone(UTC)

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        """Whether the access token expires less than ``seconds`` after ``now``.

        A token without a known expiry never "expires within" anything: the vendor's 401
        is then what triggers a refresh.
        """
        if self.expires_at is None:
            return False
        now = now or datetime.now(UTC)
        return self.expires_at - now <= timedelta(seconds=seconds)

    def lifetime(self) -> float | None:
        """Seconds from ``issued_at`` to ``expires_at``, when both are known."""
        if self.issued_at is None or self.expires_at is None:
            return None
        return (self.expires_at - self.issued_at).total_seconds()

    def refresh_token_expired(self, now: datetime | None = None) -> bool:
        """Whether the refresh token is past its known expiry (then only a person can help)."""
        if self.refresh_token_expires_at is None:
            return False
        return self.refresh_token_expires_at <= (now or datetime.now(UTC))

    def to_plain(self) -> dict[str, Any]:
        """Every field with the secrets revealed, for a store to encrypt. Never log this."""
        return {
            "access_token": self.access_token.get_secret_value(),
            "refresh_token": (
                self.refresh_token.get_secret_value() if self.refresh_token is not None else None
            ),
            "token_type": self.token_type,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "scope": self.scope,
            "extra": dict(self.extra),
            "refresh_token_expires_at": (
                self.refresh_token_expires_at.isoformat() if self.refresh_token_expires_at else None
            ),
            "issued_at": self.issued_at.isoformat() if self.issued_at else None,
        }

    def to_bytes(self) -> bytes:
        """``to_plain`` as compact JSON bytes (the plaintext a store encrypts)."""
        return json.dumps(self.to_plain(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Token:
        """The inverse of :meth:`to_bytes`."""
        return cls.model_validate(json.loads(data))


@runtime_checkable
class TokenStore(Protocol):
    """Where tokens live: one per (provider, tenant), encrypted at rest when persistent.

    ``lock`` is an exclusive lock on one (provider, tenant) that holds across threads and
    processes; it raises :class:`TokenLockTimeout` when not acquired within ``timeout``
    seconds. The refresh protocol is: lock, re-read, refresh, save, unlock.
    """

    def get(self, provider: str, tenant: str) -> Token | None:
        """The stored token, or ``None``."""
        ...

    def save(self, provider: str, tenant: str, token: Token) -> None:
        """Store ``token``, replacing any previous one."""
        ...

    def delete(self, provider: str, tenant: str) -> None:
        """Forget the token (no error when there is none)."""
        ...

    def lock(self, provider: str, tenant: str, timeout: float) -> AbstractContextManager[None]:
        """Hold the exclusive lock of (provider, tenant) for the ``with`` block."""
        ...


class MemoryTokenStore:
    """A ``TokenStore`` in this process's memory: for tests, scripts and the demo.

    Its lock holds across threads only (there is no other process to exclude).
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], Token] = {}
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}

    def get(self, provider: str, tenant: str) -> Token | None:
        with self._guard:
            return self._tokens.get((provider, tenant))

    def save(self, provider: str, tenant: str, token: Token) -> None:
        with self._guard:
            self._tokens[(provider, tenant)] = token

    def delete(self, provider: str, tenant: str) -> None:
        with self._guard:
            self._tokens.pop((provider, tenant), None)

    @contextmanager
    def lock(self, provider: str, tenant: str, timeout: float) -> Iterator[None]:
        with self._guard:
            key_lock = self._locks.setdefault((provider, tenant), threading.Lock())
        if not key_lock.acquire(timeout=max(timeout, 0.0)):
            raise TokenLockTimeout(
                f"token lock for {provider}/{tenant} not acquired within {timeout:g}s",
                vendor=provider,
            )
        try:
            yield
        finally:
            key_lock.release()

    def __repr__(self) -> str:
        return f"MemoryTokenStore({len(self._tokens)} tokens)"
