"""An ``Endpoint`` is one vendor connection for one tenant, as the transport driver sees it.

It knows the base URL, the auth to apply, the vendor's limits, and how to read the
vendor's failures (``classify``). Adapters build every request through it, so each
``httpx.Request`` carries its endpoint, its operation name and whether it may be retried.
"""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any, Final

import httpx

from dixis_integrations.errors import (
    AuthError,
    Conflict,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    TransientError,
    ValidationRejected,
)

__all__ = [
    "Classifier",
    "Endpoint",
    "Limits",
    "Window",
    "default_classify",
    "endpoint_of",
    "idempotency_key",
    "is_idempotent",
    "parse_retry_after",
    "request_id_of",
]

_EXT_ENDPOINT = "dixis.endpoint"
_EXT_IDEMPOTENT = "dixis.idempotent"
_EXT_OPERATION = "dixis.operation"
_EXT_KEY = "dixis.idempotency_key"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_NAMESPACE = uuid.UUID("6f1c1a52-3f55-4c39-9a43-4b0d8f1e2a11")

Classifier = Callable[[httpx.Response, "Endpoint"], ProviderError | None]
"""Reads a vendor response: ``None`` when it is a success, else the typed error."""


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` requests in any ``seconds``-long window."""

    limit: int
    seconds: float
    name: str = ""

    def __post_init__(self) -> None:
        if self.limit < 1 or self.seconds <= 0:
            raise ValueError("a window needs a positive limit and length")


@dataclass(frozen=True, slots=True)
class Limits:
    """A vendor's documented limits for one tenant (and optionally for the whole app).

    ``time_scale`` shrinks every window by the same factor, to meet a sandbox that runs
    the vendor's real limits on scaled time.
    """

    windows: tuple[Window, ...] = ()
    concurrency: int | None = None
    app_windows: tuple[Window, ...] = ()
    time_scale: float = 1.0

    def scaled(self, time_scale: float) -> Limits:
        """The same limits on a different time scale."""
        return Limits(self.windows, self.concurrency, self.app_windows, time_scale)


def idempotency_key(tenant: str, operation: str, reference: str) -> str:
    """A deterministic key for one logical write: same inputs, same key, on every retry
    and after a crash. Shaped as a UUID, which every vendor accepts.
    """
    return str(uuid.uuid5(_NAMESPACE, f"{tenant}\x1f{operation}\x1f{reference}"))


def parse_retry_after(value: str | None, now: datetime | None = None) -> datetime | None:
    """``Retry-After`` (seconds or an HTTP date) as an aware UTC instant."""
    if not value:
        return None
    now = now or datetime.now(UTC)
    value = value.strip()
    try:
        return now + timedelta(seconds=max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-correlation-id", "intuit_tid")


def request_id_of(response: httpx.Response, extra: tuple[str, ...] = ()) -> str | None:
    """The vendor's request id from the usual headers, if it sent one.

    ``extra`` names the vendor's own headers, which win over the usual ones.
    """
    names = (
        _names_as_bytes(extra if type(extra) is tuple else tuple(extra))
        if extra
        else _DEFAULT_NAMES
    )
    headers = response.headers
    # httpx keeps each name lower-cased next to the raw one; its public ``raw`` view would
    # build a new list on every call. The names are listed and searched in C: the first
    # name found wins (in ``names`` order), with the first of its values that is not empty.
    entries = getattr(headers, "_list", None)
    if entries is None:  # pragma: no cover - another httpx layout
        entries = [(key, key.lower(), value) for key, value in headers.raw]
    lowered = list(map(_LOWER_NAME, entries))
    for name in names:
        if name in lowered:
            value: bytes = entries[lowered.index(name)][2]
            if not value:  # an empty first value: the next one of that name, if any
                value = next((v for _, n, v in entries if n == name and v), b"")
                if not value:
                    continue
            # ASCII text reads the same in every encoding httpx may pick, and its
            # ``encoding`` property decodes every header to decide: try ASCII first.
            if value.isascii():
                return value.decode("ascii")
            return value.decode(headers.encoding)
    return None


_LOWER_NAME = operator.itemgetter(1)


@functools.lru_cache(maxsize=64)
def _names_as_bytes(extra: tuple[str, ...]) -> tuple[bytes, ...]:
    # The vendor's own headers first, then the usual ones; latin-1 as on the wire.
    names = (*(n.lower() for n in extra), *_REQUEST_ID_HEADERS)
    return tuple(dict.fromkeys(n.encode("latin-1", "replace") for n in names))


_DEFAULT_NAMES: Final = _names_as_bytes(())


def default_classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """Map an HTTP status to the error tree; vendors refine this for their own bodies."""
    status = response.status_code
    if status < 400:
        return None
    rid = request_id_of(response, endpoint.request_id_headers)
    vendor = endpoint.vendor
    text = f"HTTP {status} from {response.request.method} {response.request.url.path}"
    if status == 429:
        return RateLimited(
            text,
            retry_at=parse_retry_after(response.headers.get("retry-after")),
            vendor=vendor,
            request_id=rid,
            status_code=status,
        )
    if status == 401:
        return AuthError(text, vendor=vendor, request_id=rid, status_code=status)
    if status == 403:
        return PermissionDenied(text, vendor=vendor, request_id=rid, status_code=status)
    if status == 404:
        return NotFound(text, vendor=vendor, request_id=rid, status_code=status)
    if status == 409:
        return Conflict(text, vendor=vendor, request_id=rid, status_code=status)
    if status in (408, 425) or status >= 500:
        retry_at = parse_retry_after(response.headers.get("retry-after"))
        if status == 503 and retry_at is not None:
            return RateLimited(
                text, retry_at=retry_at, vendor=vendor, request_id=rid, status_code=status
            )
        return TransientError(text, vendor=vendor, request_id=rid, status_code=status)
    return ValidationRejected(text, vendor=vendor, request_id=rid, status_code=status)


@dataclass(frozen=True)
class Endpoint:
    """One vendor connection for one tenant.

    Attributes:
        vendor: the adapter's name (``"xero"``, ``"acs"``...).
        tenant: whose account this is; budgets and keys are per (vendor, tenant).
        base_url: where requests go (the vendor, or a sandbox on 127.0.0.1).
        auth: applied by the driver to every request (OAuth2, API keys...).
        limits: the vendor's documented request budgets.
        classify: turns a response into a typed error, or ``None`` for success.
        headers: sent with every request.
        idempotency_header: where the vendor takes an idempotency key, if it does.
        timeout: connect/read/write/pool timeouts for one attempt.
        deadline: seconds a logical call may take, retries and waits included.
    """

    vendor: str
    base_url: str
    tenant: str = "default"
    auth: httpx.Auth | None = field(default=None, repr=False)
    limits: Limits = field(default_factory=Limits)
    classify: Classifier = default_classify
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    idempotency_header: str | None = None
    request_id_headers: tuple[str, ...] = ()
    timeout: httpx.Timeout = field(
        default_factory=lambda: httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
    )
    deadline: float = 120.0

    @cached_property
    def _attempt_timeouts(self) -> tuple[dict[str, float | None], float | None]:
        """``timeout.as_dict()`` and its longest value (``None`` if one is unlimited),
        computed once: the driver reads them on every attempt."""
        timeouts = self.timeout.as_dict()
        values = list(timeouts.values())
        longest = (
            None if any(v is None for v in values) else max(v for v in values if v is not None)
        )
        return timeouts, longest

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Request:
        """Build a request for this endpoint.

        Args:
            method: the HTTP method.
            path: appended to ``base_url`` (an absolute URL is used as it is).
            operation: a short name for logs, metrics and the audit log
                (``"xero.create_invoice"``).
            params, json, content, headers: as in ``httpx.Request``.
            idempotency_key: sent in ``idempotency_header`` when the vendor has one;
                either way it marks the request as safe to retry.
            idempotent: force the retry decision; by default GET, HEAD, OPTIONS, PUT and
                DELETE are retryable and POST/PATCH only with an idempotency key.
        """
        url = path if path.startswith(("http://", "https://")) else self.base_url.rstrip("/") + path
        merged: Mapping[str, str] = self.headers
        key_header = self.idempotency_header if idempotency_key is not None else None
        if headers or key_header or type(merged) is not dict:
            merging = {**merged, **(headers or {})}
            if key_header and idempotency_key is not None:
                merging.setdefault(key_header, idempotency_key)
            merged = merging
        # else the endpoint's own dict as it is: httpx.Request copies what it is given
        request = httpx.Request(
            method.upper(), url, params=params, json=json, content=content, headers=merged
        )
        if idempotent is None:
            idempotent = request.method in _SAFE_METHODS or idempotency_key is not None
        request.extensions[_EXT_ENDPOINT] = self
        request.extensions[_EXT_IDEMPOTENT] = idempotent
        request.extensions[_EXT_OPERATION] = operation
        if idempotency_key is not None:
            request.extensions[_EXT_KEY] = idempotency_key
        return request


def endpoint_of(request: httpx.Request) -> Endpoint:
    """The endpoint a request was built by (``Endpoint.request``)."""
    endpoint = request.extensions.get(_EXT_ENDPOINT)
    if not isinstance(endpoint, Endpoint):
        raise TypeError("requests run by the driver must be built with Endpoint.request()")
    return endpoint


def is_idempotent(request: httpx.Request) -> bool:
    """Whether the driver may send this request more than once."""
    return bool(request.extensions.get(_EXT_IDEMPOTENT, request.method in _SAFE_METHODS))


def operation_of(request: httpx.Request) -> str:
    """The operation name the request was built with."""
    return str(request.extensions.get(_EXT_OPERATION, request.method))


def key_of(request: httpx.Request) -> str | None:
    """The idempotency key the request carries, if any."""
    value = request.extensions.get(_EXT_KEY)
    return str(value) if value is not None else None
