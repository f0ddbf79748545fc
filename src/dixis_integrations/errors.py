"""One error tree for the whole library: every failure a caller can meet is one of these.

Each error carries the ``vendor`` it came from (``None`` for our own checks), whether it
is ``retryable``, the vendor's ``request_id`` where the vendor sent one, and a stable
machine-readable ``code``. Messages never contain secrets: they are built from field
names and vendor error texts, never from credentials or tokens.

    DixisError
    ├── ConfigurationError          bad or missing configuration, found before any call
    ├── PluginLoadError             an entry point failed to import or to conform
    ├── InvalidInput                our own validation refused the input; nothing was sent
    ├── NotSupported                the adapter does not offer this operation
    ├── WebhookError                a webhook failed verification (signature, age, replay)
    ├── IdempotencyConflict         the same key was reused for a different request
    └── ProviderError               the vendor answered with a failure (or did not answer)
        ├── AuthError               credentials rejected
        │   └── ReauthorizationRequired   the refresh token is dead: a person must reconnect
        ├── PermissionDenied        authenticated, but not allowed
        ├── NotFound                the record does not exist at the vendor
        ├── Conflict                duplicate or stale write (QBO 6240, SyncToken 5010...)
        ├── ValidationRejected      the vendor refused the payload
        ├── RateLimited             throttled; ``retry_at`` says when to try again
        └── TransientError          5xx, connection reset, timeout: worth another try
            ├── ProviderTimeout     the vendor did not answer in time
            └── TokenLockTimeout    another worker holds the token lock (it is refreshing)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "AuthError",
    "ConfigurationError",
    "Conflict",
    "DixisError",
    "FieldError",
    "IdempotencyConflict",
    "InvalidInput",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "PluginLoadError",
    "ProviderError",
    "ProviderTimeout",
    "RateLimited",
    "ReauthorizationRequired",
    "TokenLockTimeout",
    "TransientError",
    "ValidationRejected",
    "WebhookError",
]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One thing wrong with one field: ``loc`` is the path (``("lines", 2, "quantity")``)."""

    loc: tuple[str | int, ...]
    message: str
    code: str = "invalid"

    @property
    def path(self) -> str:
        """The location as a dotted path, list indexes in brackets: ``lines[2].quantity``."""
        out = ""
        for part in self.loc:
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{part}" if out else part
        return out or "<root>"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class DixisError(Exception):
    """The root of every error this library raises on purpose."""

    code: str = "error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        vendor: str | None = None,
        request_id: str | None = None,
        code: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.vendor = vendor
        self.request_id = request_id
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        parts = [self.message]
        if self.vendor:
            parts.insert(0, f"[{self.vendor}]")
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.message!r}, vendor={self.vendor!r}, code={self.code!r})"


class ConfigurationError(DixisError):
    """Configuration is missing or wrong; ``key`` names the setting when there is one."""

    code = "configuration"

    def __init__(self, message: str, *, key: str | None = None, vendor: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if key else message, vendor=vendor)
        self.key = key


class PluginLoadError(DixisError):
    """An entry point could not be imported or does not satisfy its Protocol."""

    code = "plugin_load"

    def __init__(self, message: str, *, group: str, name: str) -> None:
        super().__init__(f"plugin {group}:{name}: {message}")
        self.group = group
        self.name = name


class InvalidInput(DixisError):
    """Our own validation refused the input before anything was sent.

    ``errors`` lists every problem found, each with the field path, so a caller can
    show them all at once instead of fixing one per attempt.
    """

    code = "invalid_input"

    def __init__(
        self, message: str, *, errors: Sequence[FieldError] = (), vendor: str | None = None
    ) -> None:
        detail = "; ".join(str(e) for e in errors)
        super().__init__(f"{message}: {detail}" if detail else message, vendor=vendor)
        self.errors: tuple[FieldError, ...] = tuple(errors)


class NotSupported(DixisError):
    """The adapter does not offer this operation (it is not in its capabilities)."""

    code = "not_supported"

    def __init__(self, operation: str, *, vendor: str | None = None, reason: str = "") -> None:
        text = f"{operation} is not supported"
        super().__init__(f"{text}: {reason}" if reason else text, vendor=vendor)
        self.operation = operation


class WebhookError(DixisError):
    """An inbound webhook failed verification: bad signature, too old, or replayed."""

    code = "webhook"


class IdempotencyConflict(DixisError):
    """An idempotency key was reused for a request with different content."""

    code = "idempotency_conflict"


class ProviderError(DixisError):
    """The vendor answered with a failure, or the call to it failed."""

    code = "provider"

    def __init__(
        self,
        message: str,
        *,
        vendor: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
        vendor_code: str | None = None,
        code: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(
            message, vendor=vendor, request_id=request_id, code=code, retryable=retryable
        )
        self.status_code = status_code
        self.vendor_code = vendor_code


class AuthError(ProviderError):
    """The vendor refused our credentials."""

    code = "auth"


class ReauthorizationRequired(AuthError):
    """The grant is gone (``invalid_grant``, revoked app): a person must connect again."""

    code = "reauthorization_required"


class PermissionDenied(ProviderError):
    """Authenticated, but not allowed to do this."""

    code = "permission_denied"


class NotFound(ProviderError):
    """The record does not exist at the vendor."""

    code = "not_found"


class Conflict(ProviderError):
    """A duplicate or stale write: the vendor already has it, or our copy is out of date."""

    code = "conflict"


class ValidationRejected(ProviderError):
    """The vendor refused the payload; ``errors`` carries its per-field reasons."""

    code = "validation_rejected"

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[FieldError] = (),
        vendor: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
        vendor_code: str | None = None,
    ) -> None:
        super().__init__(
            message,
            vendor=vendor,
            request_id=request_id,
            status_code=status_code,
            vendor_code=vendor_code,
        )
        self.errors: tuple[FieldError, ...] = tuple(errors)


class RateLimited(ProviderError):
    """Throttled. ``retry_at`` (aware UTC) says when the vendor will take calls again.

    Raised instead of sleeping when the wait is longer than the driver's cap, so that a
    queue can reschedule the work rather than block a worker for hours.
    """

    code = "rate_limited"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_at: datetime | None = None,
        vendor: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
        vendor_code: str | None = None,
        scope: str | None = None,
    ) -> None:
        super().__init__(
            message,
            vendor=vendor,
            request_id=request_id,
            status_code=status_code,
            vendor_code=vendor_code,
        )
        if retry_at is not None and retry_at.tzinfo is None:
            raise ValueError("retry_at must be timezone-aware")
        self.retry_at = retry_at
        self.scope = scope

    def seconds_to_wait(self, now: datetime | None = None) -> float | None:
        """Seconds from ``now`` (default: the current UTC time) until ``retry_at``."""
        if self.retry_at is None:
            return None
        now = now or datetime.now(UTC)
        return max(0.0, (self.retry_at - now).total_seconds())


class TransientError(ProviderError):
    """A failure worth retrying: 5xx, a dropped connection, a malformed answer."""

    code = "transient"
    retryable = True


class ProviderTimeout(TransientError):
    """The vendor did not answer within the timeout."""

    code = "timeout"


class TokenLockTimeout(TransientError):
    """The token lock of a (provider, tenant) was not acquired in time.

    Another worker holds it (it is refreshing, or it is stuck); worth another try later.
    """

    code = "token_lock_timeout"
