"""Inbound webhooks: signature verification and a store of delivered event ids.

:class:`WebhookVerifier` checks an HMAC-SHA256 over the raw body (base64 or hex, compared
in constant time), and the delivery's age where the vendor sends a timestamp. A failure
is a :class:`~dixis_integrations.errors.WebhookError` whose ``code`` is one of
``bad_signature``, ``too_old``, ``replayed`` or ``malformed``; the secret never reaches a
message or a repr. A :class:`DeliveryStore` claims each event id once, so a redelivered
event is recognised and skipped. Both stores also keep, per integration, when its last
verified delivery arrived (:class:`FreshnessLog`), for the health checks' webhook
freshness. :class:`WebhookRequest` is one delivery as a host's web framework received it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlsplit

from pydantic import SecretStr

from dixis_integrations.errors import ConfigurationError, WebhookError

__all__ = [
    "DeliveryStore",
    "Encoding",
    "FreshnessLog",
    "MemoryDeliveryStore",
    "SQLiteDeliveryStore",
    "WebhookRequest",
    "WebhookVerifier",
    "basic_auth",
    "given_secret",
    "sign_payload",
    "verify_signature",
    "webhook_secret",
]

Encoding = Literal["base64", "hex"]
_DAY = 86_400.0


def _key(secret: SecretStr | str | bytes) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode() if isinstance(secret, str) else secret


def sign_payload(
    secret: SecretStr | str | bytes, payload: bytes, *, encoding: Encoding = "base64"
) -> str:
    """HMAC-SHA256 of ``payload`` under ``secret``, base64 or hex encoded."""
    digest = hmac.new(_key(secret), payload, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def _decode(signature: str, encoding: Encoding) -> bytes | None:
    try:
        if encoding == "hex":
            return bytes.fromhex(signature.strip())
        return base64.b64decode(signature.strip(), validate=True)
    except (ValueError, binascii.Error):
        return None


def verify_signature(
    secret: SecretStr | str | bytes,
    payload: bytes,
    signature: str | None,
    *,
    encoding: Encoding = "base64",
    vendor: str | None = None,
) -> None:
    """Check that ``signature`` is the HMAC-SHA256 of ``payload`` (constant time).

    ``signature`` may hold several candidates separated by commas or spaces (vendors
    send one per active secret during rotation); any match is enough.

    Raises:
        WebhookError: ``malformed`` when there is no signature, ``bad_signature`` when
            none matches.
    """
    if not signature or not signature.strip():
        raise WebhookError("webhook has no signature", vendor=vendor, code="malformed")
    expected = hmac.new(_key(secret), payload, hashlib.sha256).digest()
    matched = False
    for candidate in signature.replace(",", " ").split():
        got = _decode(candidate, encoding)
        # compare every candidate, so the time taken does not say which one matched
        if got is not None and hmac.compare_digest(got, expected):
            matched = True
    if not matched:
        raise WebhookError("webhook signature does not match", vendor=vendor, code="bad_signature")


def _default_signed(body: bytes, timestamp: str | None) -> bytes:
    return body if timestamp is None else timestamp.encode() + b"." + body


@dataclass(frozen=True)
class WebhookVerifier:
    """How one vendor signs its webhooks, and the check of one delivery.

    Attributes:
        secret: the signing secret (kept as ``SecretStr``: never in a repr).
        signature_header: the header carrying the signature.
        encoding: ``"base64"`` or ``"hex"``.
        prefix: stripped from the header value first (``"sha256="``).
        timestamp_header: the header with the delivery's Unix time, if the vendor sends
            one; the signed payload then is ``b"<timestamp>.<body>"`` unless
            ``signed_payload`` says otherwise.
        tolerance: the oldest (and most future) delivery accepted, in seconds.
        signed_payload: builds the signed bytes from the body and the timestamp.
        vendor: named in errors.
    """

    secret: SecretStr
    signature_header: str
    encoding: Encoding = "base64"
    prefix: str = ""
    timestamp_header: str | None = None
    tolerance: float = 300.0
    signed_payload: Callable[[bytes, str | None], bytes] = field(
        default=_default_signed, repr=False
    )
    vendor: str | None = None

    def verify(
        self, headers: Mapping[str, str], body: bytes, *, now: datetime | None = None
    ) -> None:
        """Check one delivery: its signature, and its age where it has a timestamp.

        ``headers`` is looked up case-insensitively; ``body`` must be the raw bytes as
        received (parsing and re-serialising changes them).

        Raises:
            WebhookError: ``malformed``, ``bad_signature`` or ``too_old``.
        """
        lowered = {k.lower(): v for k, v in headers.items()}
        signature = lowered.get(self.signature_header.lower())
        if signature is not None and self.prefix and signature.startswith(self.prefix):
            signature = signature[len(self.prefix) :]
        timestamp: str | None = None
        if self.timestamp_header is not None:
            timestamp = lowered.get(self.timestamp_header.lower())
            if timestamp is None:
                raise WebhookError(
                    f"webhook has no {self.timestamp_header} header",
                    vendor=self.vendor,
                    code="malformed",
                )
        payload = self.signed_payload(body, timestamp)
        verify_signature(
            self.secret, payload, signature, encoding=self.encoding, vendor=self.vendor
        )
        if timestamp is not None:
            self._check_age(timestamp, now or datetime.now(UTC))

    def _check_age(self, timestamp: str, now: datetime) -> None:
        try:
            sent = float(timestamp)
        except ValueError:
            raise WebhookError(
                "webhook timestamp is not a number", vendor=self.vendor, code="malformed"
            ) from None
        age = now.timestamp() - sent
        if abs(age) > self.tolerance:
            raise WebhookError(
                f"webhook is {age:.0f}s old, outside the {self.tolerance:g}s tolerance",
                vendor=self.vendor,
                code="too_old",
            )

    def sign(self, body: bytes, *, timestamp: str | None = None) -> dict[str, str]:
        """The headers a vendor would send with ``body`` (for tests and sandboxes)."""
        signature = sign_payload(
            self.secret, self.signed_payload(body, timestamp), encoding=self.encoding
        )
        headers = {self.signature_header: self.prefix + signature}
        if self.timestamp_header is not None and timestamp is not None:
            headers[self.timestamp_header] = timestamp
        return headers


@dataclass(frozen=True)
class WebhookRequest:
    """One webhook delivery as received: the raw body (unparsed: signatures cover the
    bytes), the headers, the method and the full URL called (some vendors sign it, some
    carry a secret in its query). ``received_at`` defaults to now."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"
    url: str = ""
    received_at: datetime | None = None

    def header(self, name: str) -> str | None:
        """A header, looked up case-insensitively."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    def query(self, name: str) -> str | None:
        """A query parameter of :attr:`url`."""
        for key, value in parse_qsl(urlsplit(self.url).query):
            if key == name:
                return value
        return None

    def __repr__(self) -> str:  # the body and headers may carry secrets
        return f"WebhookRequest(method={self.method!r}, bytes={len(self.body)})"


@runtime_checkable
class FreshnessLog(Protocol):
    """When each integration's last verified webhook delivery arrived."""

    def mark_seen(self, integration: str, *, at: float | None = None) -> None:
        """Record a verified delivery of ``integration`` (Unix time; default now)."""
        ...

    def last_seen(self, integration: str) -> datetime | None:
        """When the last verified delivery arrived (aware UTC), ``None`` if never."""
        ...


@runtime_checkable
class DeliveryStore(Protocol):
    """Event ids already delivered, each remembered for a while (its TTL)."""

    def claim(self, event_id: str, *, ttl: float = _DAY) -> bool:
        """Remember ``event_id``: ``True`` the first time, ``False`` for a redelivery.

        Atomic: of two workers claiming the same id at once, exactly one gets ``True``.
        """
        ...

    def release(self, event_id: str) -> None:
        """Forget ``event_id`` (its handling failed, so the next delivery may retry it)."""
        ...

    def check(self, event_id: str, *, ttl: float = _DAY) -> None:
        """:meth:`claim`, raising :class:`WebhookError` (``replayed``) for a redelivery."""
        ...


class _ClaimCheck:
    def claim(self, event_id: str, *, ttl: float = _DAY) -> bool:
        raise NotImplementedError

    def check(self, event_id: str, *, ttl: float = _DAY) -> None:
        """:meth:`claim`, raising :class:`WebhookError` (``replayed``) for a redelivery."""
        if not self.claim(event_id, ttl=ttl):
            raise WebhookError(f"event {event_id} was delivered already", code="replayed")


class MemoryDeliveryStore(_ClaimCheck):
    """Delivered event ids in memory: for one process, and for tests."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}
        self._seen: dict[str, float] = {}
        self._clock = clock

    def claim(self, event_id: str, *, ttl: float = _DAY) -> bool:
        """Remember ``event_id``; ``False`` when it is already remembered and not expired."""
        now = self._clock()
        with self._lock:
            if len(self._until) > 1024:
                self._until = {k: v for k, v in self._until.items() if v > now}
            until = self._until.get(event_id)
            if until is not None and until > now:
                return False
            self._until[event_id] = now + ttl
            return True

    def release(self, event_id: str) -> None:
        """Forget ``event_id``."""
        with self._lock:
            self._until.pop(event_id, None)

    def mark_seen(self, integration: str, *, at: float | None = None) -> None:
        """Record a verified delivery of ``integration`` (default: now)."""
        moment = self._clock() if at is None else at
        with self._lock:
            self._seen[integration] = max(moment, self._seen.get(integration, moment))

    def last_seen(self, integration: str) -> datetime | None:
        """When the last verified delivery of ``integration`` arrived."""
        with self._lock:
            moment = self._seen.get(integration)
        return None if moment is None else datetime.fromtimestamp(moment, UTC)


class SQLiteDeliveryStore(_ClaimCheck):
    """Delivered event ids in a SQLite file, shared by the processes of one machine."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self._clock = clock
        self._local = threading.local()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS webhook_deliveries ("
                " event_id TEXT PRIMARY KEY, expires_at REAL NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS webhook_freshness ("
                " integration TEXT PRIMARY KEY, seen_at REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    def claim(self, event_id: str, *, ttl: float = _DAY) -> bool:
        """Remember ``event_id``; ``False`` when it is already remembered and not expired."""
        now = self._clock()
        db = self._connect()
        # one statement: insert, or take over an expired row; nothing when a live row exists
        cursor = db.execute(
            "INSERT INTO webhook_deliveries (event_id, expires_at) VALUES (?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET expires_at = excluded.expires_at"
            " WHERE webhook_deliveries.expires_at <= ?",
            (event_id, now + ttl, now),
        )
        return cursor.rowcount == 1

    def release(self, event_id: str) -> None:
        """Forget ``event_id``."""
        self._connect().execute("DELETE FROM webhook_deliveries WHERE event_id = ?", (event_id,))

    def mark_seen(self, integration: str, *, at: float | None = None) -> None:
        """Record a verified delivery of ``integration`` (default: now; never moves back)."""
        moment = self._clock() if at is None else at
        self._connect().execute(
            "INSERT INTO webhook_freshness (integration, seen_at) VALUES (?, ?)"
            " ON CONFLICT (integration) DO UPDATE SET seen_at = excluded.seen_at"
            " WHERE webhook_freshness.seen_at < excluded.seen_at",
            (integration, moment),
        )

    def last_seen(self, integration: str) -> datetime | None:
        """When the last verified delivery of ``integration`` arrived."""
        row = (
            self._connect()
            .execute("SELECT seen_at FROM webhook_freshness WHERE integration = ?", (integration,))
            .fetchone()
        )
        return None if row is None else datetime.fromtimestamp(float(row[0]), UTC)

    def purge(self) -> int:
        """Delete expired rows; returns how many."""
        cursor = self._connect().execute(
            "DELETE FROM webhook_deliveries WHERE expires_at <= ?", (self._clock(),)
        )
        return cursor.rowcount

    def close(self) -> None:
        """Close this thread's connection."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def webhook_secret(options: Mapping[str, Any], key: str, integration: str) -> SecretStr:
    """The secret ``key`` of an integration's webhook options (what a vendor that signs
    nothing sends back: a basic-auth password, a secret in the URL...).

    Raises:
        ConfigurationError: it is not configured (the key is named).
    """
    value = options.get(key)
    if value is None:
        raise ConfigurationError(
            f"webhooks of {integration} need {key!r}", key=f"webhooks.{integration}.{key}"
        )
    return value if isinstance(value, SecretStr) else SecretStr(str(value))


def basic_auth(request: WebhookRequest) -> tuple[str, str] | None:
    """The (user, password) of a delivery's basic ``Authorization`` header, if any."""
    header = request.header("authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def given_secret(request: WebhookRequest, options: Mapping[str, Any]) -> str | None:
    """The secret a delivery carried: in the URL's query (``secret`` unless the options'
    ``secret_param`` says otherwise), else as the basic-auth password."""
    given = request.query(str(options.get("secret_param", "secret")))
    if given is None:
        pair = basic_auth(request)
        given = pair[1] if pair else None
    return given
