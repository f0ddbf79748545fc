"""The base every vendor emulator is built on: routing, faults, rate limits, webhooks.

An emulator is a plain handler ``httpx.Request -> httpx.Response`` with its state in
memory. It plugs into ``httpx.MockTransport`` in-process, or into :mod:`.serve` over real
HTTP on 127.0.0.1. Emulators are written from the vendors' documentation and depend on
wire formats only: nothing in ``sandbox/`` may import an adapter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

import httpx

__all__ = [
    "Emulator",
    "Fault",
    "FaultPlan",
    "FixedWindow",
    "Route",
    "SandboxClock",
    "WebhookDelivery",
    "json_bytes_exact",
    "json_response",
    "paths",
    "read_json",
    "route",
    "sign_hmac_sha256",
    "xml_response",
]

_F = TypeVar("_F", bound=Callable[..., httpx.Response])


class Fault(StrEnum):
    """A failure an emulator can inject in place of a real answer."""

    RATE_LIMIT = "429"
    SERVER_ERROR = "5xx"
    RESET = "reset"
    TIMEOUT = "timeout"
    MALFORMED = "malformed"
    EXPIRED_TOKEN = "expired_token"  # noqa: S105 - a fault name, not a secret


@dataclass
class FaultPlan:
    """Which faults to inject, and how often.

    ``rate`` is the chance (0..1) that any request gets a fault picked from ``kinds``;
    ``script`` forces the next faults in order, whatever the rate (``None`` entries let a
    request through). Seeded, so a failing run can be replayed exactly.
    """

    rate: float = 0.0
    kinds: tuple[Fault, ...] = tuple(Fault)
    seed: int = 0
    retry_after: float = 1.0
    script: deque[Fault | None] = field(default_factory=deque)
    skip_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("FaultPlan.rate must be between 0 and 1")
        self._rng = random.Random(self.seed)

    def next_fault(self, path: str) -> Fault | None:
        """The fault for the request at ``path``, or ``None`` to answer it normally."""
        if any(path.startswith(p) for p in self.skip_paths):
            return None
        if self.script:
            return self.script.popleft()
        if self.rate and self._rng.random() < self.rate:
            return self._rng.choice(self.kinds)
        return None


class SandboxClock:
    """Time as the emulator sees it, optionally scaled.

    With ``scale=0.01`` a vendor's "60 calls per minute" window lasts 0.6 real seconds,
    so a benchmark can meet the real limits in a fraction of the time.
    """

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale

    def monotonic(self) -> float:
        """Seconds of real monotonic time."""
        return time.monotonic()

    def window(self, vendor_seconds: float) -> float:
        """Real seconds that ``vendor_seconds`` of the vendor's time take."""
        return vendor_seconds * self.scale

    def retry_after(self, vendor_seconds: float) -> str:
        """A ``Retry-After`` value telling a client to wait ``vendor_seconds`` of vendor time.

        At the vendor's pace: whole seconds rounded up, at least 1, as vendors send them.
        On scaled time: the real seconds to wait, with millisecond precision, at least
        0.001; whole seconds there would make a client that honours the header wait up to
        ``1 / scale`` times longer than the scaled window lasts.
        """
        if self.scale == 1.0:
            return str(max(1, math.ceil(vendor_seconds)))
        return f"{max(vendor_seconds * self.scale, 0.001):.3f}"


class FixedWindow:
    """A vendor's request limit: at most ``limit`` calls per ``seconds`` per key.

    Fixed windows aligned to the first call, as most vendors document them. Thread-safe.
    """

    def __init__(self, limit: int, seconds: float, clock: SandboxClock, name: str = "") -> None:
        self.limit = limit
        self.seconds = seconds
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}
        self.rejected = 0

    def hit(self, key: str) -> tuple[bool, int, float]:
        """Count one call for ``key``: (allowed, remaining, vendor seconds until reset)."""
        span = self._clock.window(self.seconds)
        now = self._clock.monotonic()
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= span:
                start, count = now, 0
            if count >= self.limit:
                self.rejected += 1
                reset = (start + span - now) / self._clock.scale
                return False, 0, max(reset, 0.0)
            count += 1
            self._windows[key] = (start, count)
            return True, self.limit - count, (start + span - now) / self._clock.scale


@dataclass(frozen=True)
class Route:
    """One endpoint: method, a regular expression over the path, the bound handler name."""

    method: str
    pattern: re.Pattern[str]
    attr: str


def route(method: str, path: str) -> Callable[[_F], _F]:
    """Mark an emulator method as the handler of ``method`` on paths matching ``path``.

    ``path`` is a regular expression matched against the whole URL path; named groups are
    passed to the handler as keyword arguments.
    """

    def mark(fn: _F) -> _F:
        routes: list[tuple[str, str]] = getattr(fn, "__sandbox_routes__", [])
        routes.append((method.upper(), path))
        fn.__sandbox_routes__ = routes  # type: ignore[attr-defined]
        return fn

    return mark


def json_bytes_exact(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON with every ``Decimal`` written as the exact JSON
    number in plain notation (``12.40``, never ``12.4`` or a string), as vendors that
    keep amounts in decimals answer.

    Each ``Decimal`` is first written as a string between two tags of a random token;
    a token that any other text of the body happens to hold is drawn again, so only
    amounts are unwrapped, whatever the strings contain.
    """
    while True:
        written = _tagged_json(body, secrets.token_hex(8))
        if written is not None:
            return written


def _tagged_json(body: Any, tag: str) -> bytes | None:
    """:func:`json_bytes_exact` with ``tag`` around the amounts, or ``None`` when some
    other text of the body holds ``tag``."""
    count = 0

    def number(value: object) -> str:
        nonlocal count
        if isinstance(value, Decimal):
            count += 1
            return f"{tag}{value:f}{tag}"
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    text = json.dumps(body, default=number, ensure_ascii=False, separators=(",", ":"))
    if text.count(tag) != 2 * count:
        return None
    return text.replace(f'"{tag}', "").replace(f'{tag}"', "").encode()


def json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """A JSON answer; ``body`` is serialised with ``default=str`` (Decimals, dates)."""
    content = json.dumps(body, default=str, ensure_ascii=False).encode()
    h = {"content-type": "application/json; charset=utf-8", **(headers or {})}
    return httpx.Response(status, content=content, headers=h)


def xml_response(
    status: int, body: str | bytes, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """An XML (or SOAP) answer."""
    content = body.encode() if isinstance(body, str) else body
    h = {"content-type": "text/xml; charset=utf-8", **(headers or {})}
    return httpx.Response(status, content=content, headers=h)


def sign_hmac_sha256(secret: bytes | str, payload: bytes, *, encoding: str = "base64") -> str:
    """HMAC-SHA256 of ``payload``, as vendors sign their webhooks (base64 or hex)."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, payload, hashlib.sha256).digest()
    if encoding == "hex":
        return digest.hex()
    import base64

    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class WebhookDelivery:
    """One outbound webhook the emulator sent (or tried to send)."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None
    error: str | None = None


class Emulator:
    """Base class of every vendor emulator.

    Subclasses declare endpoints with :func:`route` and keep their state in memory.
    The base applies, in order: fault injection, the emulator's own ``authenticate`` hook,
    its rate limits (``limit`` hook), then the route. Everything runs under one lock, so
    an emulator served on several threads behaves like one consistent vendor.
    """

    name: ClassVar[str] = "sandbox"
    _routes: ClassVar[tuple[Route, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: list[Route] = []
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for method, path in getattr(value, "__sandbox_routes__", ()):
                    found.append(Route(method, re.compile(path + r"\Z"), attr))
        cls._routes = tuple(found)

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
    ) -> None:
        self.faults = faults or FaultPlan()
        self.clock = SandboxClock(time_scale)
        self.lock = threading.RLock()
        self.requests: list[httpx.Request] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._webhook_client = webhook_client
        self._mounts: list[tuple[str, Emulator]] = []
        self.record_requests = True
        self.base_url = "http://sandbox.invalid"

    def bind(self, base_url: str) -> None:
        """Tell the emulator where it is served (for URLs it puts in its answers)."""
        self.base_url = base_url.rstrip("/")
        for _, other in self._mounts:
            other.bind(base_url)

    # -- composition -----------------------------------------------------------------
    def mount(self, prefix: str, other: Emulator) -> None:
        """Send requests whose path starts with ``prefix`` to ``other`` (e.g. OAuth)."""
        self._mounts.append((prefix, other))

    # -- hooks subclasses override ---------------------------------------------------
    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        """Return an error response when the request's credentials are not good."""
        return None

    def limit(self, request: httpx.Request) -> httpx.Response | None:
        """Return the vendor's throttling response when a limit is exceeded."""
        return None

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        """The vendor-shaped answer for an injected fault; override for real bodies."""
        if fault is Fault.RATE_LIMIT:
            return json_response(
                429,
                {"error": "rate limited"},
                {"Retry-After": str(self.faults.retry_after)},
            )
        if fault is Fault.SERVER_ERROR:
            return json_response(503, {"error": "service unavailable"})
        if fault is Fault.MALFORMED:
            return httpx.Response(
                200, content=b'{"truncated": ', headers={"content-type": "application/json"}
            )
        if fault is Fault.EXPIRED_TOKEN:
            return json_response(401, {"error": "invalid_token"})
        raise AssertionError(fault)  # pragma: no cover - RESET and TIMEOUT raise below

    def not_found(self, request: httpx.Request) -> httpx.Response:
        """The answer for a path no route matches."""
        return json_response(404, {"error": f"no route for {request.method} {request.url.path}"})

    def credentials(self) -> dict[str, str]:
        """What a client needs to talk to this emulator (printed by ``sandbox serve``)."""
        return {}

    # -- the handler ---------------------------------------------------------------
    def __call__(self, request: httpx.Request) -> httpx.Response:
        return self.handle(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as the vendor would."""
        path = request.url.path
        for prefix, other in self._mounts:
            if path.startswith(prefix):
                return other.handle(request)
        request.read()
        with self.lock:
            # Every arrival is recorded, faulted ones included: tests assert on what the
            # vendor saw (e.g. the same idempotency key on every attempt).
            if self.record_requests:
                self.requests.append(request)
            fault = self.faults.next_fault(path)
        if fault is Fault.RESET:
            raise httpx.ConnectError("connection reset by peer (injected)", request=request)
        if fault is Fault.TIMEOUT:
            raise httpx.ReadTimeout("read timed out (injected)", request=request)
        if fault is not None:
            return self.fault_response(fault, request)
        with self.lock:
            denied = self.authenticate(request)
            if denied is not None:
                return denied
            throttled = self.limit(request)
            if throttled is not None:
                return throttled
            for r in self._routes:
                if r.method != request.method:
                    continue
                m = r.pattern.match(path)
                if m:
                    handler: Callable[..., httpx.Response] = getattr(self, r.attr)
                    return handler(request, **m.groupdict())
            return self.not_found(request)

    def transport(self) -> httpx.MockTransport:
        """This emulator as an in-process transport for ``httpx.Client``/``AsyncClient``."""
        return httpx.MockTransport(self.handle)

    # -- outbound webhooks -----------------------------------------------------------
    def deliver_webhook(self, url: str, body: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        """POST a signed webhook to ``url`` and remember the outcome."""
        client = self._webhook_client or httpx.Client(timeout=5.0)
        try:
            resp = client.post(url, content=body, headers=dict(headers))
            delivery = WebhookDelivery(url, body, dict(headers), resp.status_code)
        except httpx.HTTPError as exc:
            delivery = WebhookDelivery(url, body, dict(headers), None, error=type(exc).__name__)
        finally:
            if self._webhook_client is None:
                client.close()
        self.webhook_deliveries.append(delivery)
        return delivery


def read_json(request: httpx.Request) -> Any:
    """The request body as JSON, or ``None`` when it is empty or not JSON."""
    if not request.content:
        return None
    try:
        return json.loads(request.content)
    except ValueError:
        return None


def paths(requests: Iterable[httpx.Request]) -> list[str]:
    """``METHOD /path`` for each request: handy in tests that assert what was called."""
    return [f"{r.method} {r.url.path}" for r in requests]
