"""The two drivers that run operations: ``Driver`` (threads) and ``AsyncDriver`` (asyncio).

An operation is a generator that yields ``httpx.Request``s built by an
:class:`~dixis_integrations.http.endpoint.Endpoint` and receives ``httpx.Response``s
(a vendor failure is thrown into it as a typed error, so it can recover, e.g. from a
duplicate); its return value is the domain result. Adapters write each operation once;
the drivers own everything else: budgets, auth, timeouts, retries (tenacity, honouring
``Retry-After`` up to a cap, past which :class:`RateLimited` is raised instead of
sleeping), the one idempotency key reused on every attempt, logging without secrets,
and a record of every call for metrics and the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn, TypeAlias, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from dixis_integrations.errors import (
    DixisError,
    NotSupported,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    TransientError,
)
from dixis_integrations.http.budget import Budgets
from dixis_integrations.http.endpoint import (
    _EXT_ENDPOINT,
    _EXT_IDEMPOTENT,
    _EXT_KEY,
    _EXT_OPERATION,
    Endpoint,
    endpoint_of,
    is_idempotent,
    request_id_of,
)
from dixis_integrations.http.redact import _redact_request_url, install_secret_filter, redact_url

__all__ = [
    "AsyncDriver",
    "CallRecord",
    "Driver",
    "Operation",
    "RetryPolicy",
    "completed",
    "unsupported",
]

T = TypeVar("T")
_new = object.__new__
_set = object.__setattr__
Operation: TypeAlias = Generator[httpx.Request, httpx.Response, T]
"""A vendor call written once: yields requests, receives responses, returns the result."""

logger = logging.getLogger("dixis_integrations.http")
install_secret_filter(logger)
# httpx logs every request line (URL and query included) on its own logger
install_secret_filter(logging.getLogger("httpx"))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the drivers retry one logical call.

    Attributes:
        max_attempts: attempts in all, the first included.
        backoff_initial: first backoff in seconds, doubled on each attempt.
        backoff_max: the longest backoff.
        max_retry_after: the longest ``Retry-After`` the driver sleeps through; a longer
            one raises :class:`RateLimited` with ``retry_at`` for a queue to reschedule.
        jitter: randomise each backoff between half and all of its length.
    """

    max_attempts: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    jitter: bool = True

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.backoff_max, self.backoff_initial * 2.0 ** (attempt - 1))
        return base * (0.5 + random.random() / 2) if self.jitter else base


@dataclass(frozen=True)
class CallRecord:
    """What happened to one logical call: for metrics, health and the audit log.

    Holds no secrets: the URL is redacted and no header or body is kept.
    """

    vendor: str
    tenant: str
    operation: str
    method: str
    url: str
    status_code: int | None
    attempts: int
    elapsed: float
    started_at: datetime
    idempotency_key: str | None
    request_id: str | None
    error_code: str | None

    def __getattr__(self, name: str) -> datetime:
        # The driver builds a record on every call and stores its start as the float
        # from time.time(); the datetime is made the first time someone reads it (the
        # same value as before: datetime.fromtimestamp(start, UTC)).
        if name == "started_at":
            data = self.__dict__
            started = data.get("_started")
            if started is not None:
                value = data["started_at"] = datetime.fromtimestamp(started, UTC)
                del data["_started"]
                return value
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def completed(value: T) -> Operation[T]:
    """An operation that needs no call and returns ``value`` (rate tables, caches)."""
    return value
    yield  # pragma: no cover - makes this function a generator


def unsupported(operation: str, vendor: str, reason: str = "") -> Operation[NoReturn]:
    """An operation that raises :class:`NotSupported` when run."""
    raise NotSupported(operation, vendor=vendor, reason=reason)
    yield  # pragma: no cover - makes this function a generator


class _NotSent(TransientError):
    """A transport failure before the request left: always safe to retry."""


def _transport_error(exc: httpx.HTTPError, endpoint: Endpoint) -> ProviderError:
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return _NotSent(
            f"could not connect in time ({name})", vendor=endpoint.vendor, code="timeout"
        )
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"no answer in time ({name})", vendor=endpoint.vendor)
    if isinstance(exc, httpx.ConnectError):
        return _NotSent(f"could not connect ({name})", vendor=endpoint.vendor)
    return TransientError(f"transport failure ({name})", vendor=endpoint.vendor)


class _Call:
    """The retry decisions of one logical call, shared by both drivers."""

    __slots__ = (
        "attempts",
        "endpoint",
        "idempotent",
        "next_wait",
        "policy",
        "request",
        "response",
        "started",
        "started_at",
        "status",
    )

    def __init__(self, request: httpx.Request, policy: RetryPolicy) -> None:
        self.request = request
        extensions = request.extensions
        endpoint = extensions.get(_EXT_ENDPOINT)
        # endpoint_of() and is_idempotent(), read inline for requests built by Endpoint
        self.endpoint = endpoint if type(endpoint) is Endpoint else endpoint_of(request)
        idempotent = extensions.get(_EXT_IDEMPOTENT)
        self.idempotent = idempotent if type(idempotent) is bool else is_idempotent(request)
        self.policy = policy
        self.started = time.monotonic()
        self.started_at = time.time()  # a datetime only if a record is built
        self.attempts = 0
        self.status: int | None = None
        self.response: httpx.Response | None = None
        self.next_wait = 0.0

    def wait_for(self, exc: BaseException, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``exc``; ``None`` when not to retry."""
        if not isinstance(exc, DixisError) or not exc.retryable:
            return None
        if not (self.idempotent or _surely_not_processed(exc)):
            return None  # a write that may have landed is never sent blindly again
        if isinstance(exc, RateLimited) and exc.retry_at is not None:
            wait = exc.seconds_to_wait() or 0.0
            if wait > self.policy.max_retry_after:
                return None
        else:
            wait = self.policy.backoff(attempt)
        if time.monotonic() - self.started + wait > self.endpoint.deadline:
            return None
        return wait

    def should_retry(self, exc: BaseException) -> bool:
        """Decide on a retry after ``exc``, remembering how long to wait first."""
        if self.attempts >= self.policy.max_attempts:
            return False
        wait = self.wait_for(exc, self.attempts)
        if wait is None:
            return False
        self.next_wait = wait
        return True

    def wait(self, state: RetryCallState) -> float:
        return self.next_wait

    def timeouts(self) -> dict[str, float | None]:
        """This attempt's timeouts: the endpoint's, cut to what is left of the deadline."""
        endpoint = self.endpoint
        timeouts, longest = endpoint._attempt_timeouts
        left = endpoint.deadline - (time.monotonic() - self.started)
        if left <= 0:
            raise ProviderTimeout(
                f"deadline of {endpoint.deadline:g}s passed after {self.attempts - 1} attempts",
                vendor=endpoint.vendor,
            )
        if longest is not None and longest <= left:
            return dict(timeouts)  # each request gets its own dict, as as_dict() gave
        return {k: left if v is None or v > left else v for k, v in timeouts.items()}

    def record(self, error: BaseException | None) -> CallRecord:
        elapsed = time.monotonic() - self.started
        req = self.request
        endpoint = self.endpoint
        error_code: str | None = None
        request_id: str | None = None
        if error is not None and isinstance(error, DixisError):
            error_code = error.code
            request_id = error.request_id or None
        if request_id is None:
            response = self.response
            if response is not None:
                request_id = request_id_of(response, endpoint.request_id_headers)
        extensions = req.extensions
        key = extensions.get(_EXT_KEY)
        operation = extensions.get(_EXT_OPERATION, req.method)
        # Built on every call when a host records calls: skip the frozen __setattr__ path
        # and the datetime of the start (CallRecord.__getattr__ makes it when read).
        record = _new(CallRecord)
        _set(
            record,
            "__dict__",
            {
                "vendor": endpoint.vendor,
                "tenant": endpoint.tenant,
                "operation": operation if type(operation) is str else str(operation),
                "method": req.method,
                "url": _redact_request_url(req.url),
                "status_code": self.status,
                "attempts": self.attempts,
                "elapsed": elapsed,
                "_started": self.started_at,
                "idempotency_key": key if key is None or type(key) is str else str(key),
                "request_id": request_id,
                "error_code": error_code,
            },
        )
        return record


def _surely_not_processed(exc: DixisError) -> bool:
    """Whether the vendor certainly did not act on the request that failed with ``exc``.

    True for a connection that never opened and for a throttle answer (429, or a
    vendor's own throttle signal); not for a 5xx, even one with ``Retry-After``.
    """
    if isinstance(exc, _NotSent):
        return True
    if isinstance(exc, RateLimited):
        status = exc.status_code
        return status is None or status < 500
    return False


def _log_attempt(call: _Call, response: httpx.Response | None, exc: BaseException | None) -> None:
    if not logger.isEnabledFor(logging.DEBUG):
        return
    logger.debug(
        "%s %s %s -> %s (attempt %d, %s)",
        call.endpoint.vendor,
        call.request.method,
        redact_url(call.request.url),
        response.status_code if response is not None else type(exc).__name__,
        call.attempts,
        request_id_of(response) if response is not None else "-",
    )


def _answered(call: _Call, response: httpx.Response) -> httpx.Response:
    """An attempt's answer: logged, recorded on the call and classified (the vendor's
    failure raised as its typed error)."""
    if logger.isEnabledFor(logging.DEBUG):  # checked here: one call less per attempt
        _log_attempt(call, response, None)
    call.status = response.status_code
    call.response = response
    endpoint = call.endpoint
    error = endpoint.classify(response, endpoint)
    if error is not None:
        raise error
    return response


class _Base:
    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        budgets: Budgets | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.budgets = budgets if budgets is not None else Budgets()
        self.on_call = on_call

    def _finish(self, call: _Call, error: BaseException | None) -> None:
        if self.on_call is not None:
            self.on_call(call.record(error))


class Driver(_Base):
    """Runs operations on threads with an ``httpx.Client``.

    Args:
        client: the HTTP client (its transport decides where requests go: a real
            network, or a sandbox's ``MockTransport``). One is created if omitted.
        retry: the retry policy.
        budgets: request budgets, shared with other drivers of the same host.
        on_call: called with a :class:`CallRecord` after every logical call.
        sleep: how to wait between attempts (tests pass a fake).
    """

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        retry: RetryPolicy | None = None,
        budgets: Budgets | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(retry=retry, budgets=budgets, on_call=on_call)
        self._owns_client = client is None
        self.client = client if client is not None else httpx.Client()
        self._sleep = sleep

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client if this driver created it."""
        if self._owns_client:
            self.client.close()

    def run(self, operation: Operation[T]) -> T:
        """Run an operation to its result, sending each request it yields."""
        try:
            request = next(operation)
            while True:
                try:
                    response = self.send(request)
                except DixisError as exc:
                    request = operation.throw(exc)
                else:
                    request = operation.send(response)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            operation.close()

    def send(self, request: httpx.Request) -> httpx.Response:
        """Send one request (a logical call) with budgets, retries and classification."""
        call = _Call(request, self.retry)
        try:
            try:
                response = self._attempt(call)
            except DixisError as exc:
                if not call.should_retry(exc):
                    raise
                response = self._retry(call)
        except BaseException as exc:
            self._finish(call, exc)
            raise
        on_call = self.on_call  # _finish(call, None), inlined: it runs once per call
        if on_call is not None:
            on_call(call.record(None))
        return response

    def _retry(self, call: _Call) -> httpx.Response:
        # Built only once a first attempt failed: the common path pays nothing for it.
        self._sleep(call.next_wait)
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.max_attempts - call.attempts),
            retry=retry_if_exception(call.should_retry),
            wait=call.wait,
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                response = self._attempt(call)
        return response

    def _attempt(self, call: _Call) -> httpx.Response:
        call.attempts += 1
        timeouts = call.timeouts()
        endpoint = call.endpoint
        limits = endpoint.limits
        budgets = self.budgets
        # A budget that admitted the call is released once, by the finally below: no Slot
        # (acquire() and Slot.release(), less the object and its released flag).
        app_budget = budget = None
        try:
            if limits.app_windows:
                admitting = budgets.for_key(endpoint.vendor, endpoint.tenant, limits, app=True)
                admitting._admit()
                app_budget = admitting
            if limits.windows or limits.concurrency:
                admitting = budgets.for_key(endpoint.vendor, endpoint.tenant, limits)
                admitting._admit()
                budget = admitting
            request = call.request
            request.extensions["timeout"] = timeouts
            try:
                response = self.client.send(request, auth=endpoint.auth)
                response.read()
            except httpx.HTTPError as exc:
                _log_attempt(call, None, exc)
                raise _transport_error(exc, endpoint) from exc
        finally:
            if budget is not None:
                budget._release()
            if app_budget is not None:
                app_budget._release()
        return _answered(call, response)


class AsyncDriver(_Base):
    """Runs the same operations on asyncio with an ``httpx.AsyncClient``.

    Same arguments as :class:`Driver`; ``sleep`` is a coroutine function.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        retry: RetryPolicy | None = None,
        budgets: Budgets | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(retry=retry, budgets=budgets, on_call=on_call)
        self._owns_client = client is None
        self.client = client if client is not None else httpx.AsyncClient()
        self._sleep = sleep

    async def __aenter__(self) -> AsyncDriver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client if this driver created it."""
        if self._owns_client:
            await self.client.aclose()

    async def run(self, operation: Operation[T]) -> T:
        """Run an operation to its result, sending each request it yields."""
        try:
            request = next(operation)
            while True:
                try:
                    response = await self.send(request)
                except DixisError as exc:
                    request = operation.throw(exc)
                else:
                    request = operation.send(response)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            operation.close()

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send one request (a logical call) with budgets, retries and classification."""
        call = _Call(request, self.retry)
        try:
            try:
                response = await self._attempt(call)
            except DixisError as exc:
                if not call.should_retry(exc):
                    raise
                response = await self._retry(call)
        except BaseException as exc:
            self._finish(call, exc)
            raise
        on_call = self.on_call  # _finish(call, None), inlined: it runs once per call
        if on_call is not None:
            on_call(call.record(None))
        return response

    async def _retry(self, call: _Call) -> httpx.Response:
        await self._sleep(call.next_wait)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.max_attempts - call.attempts),
            retry=retry_if_exception(call.should_retry),
            wait=call.wait,
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                response = await self._attempt(call)
        return response

    async def _attempt(self, call: _Call) -> httpx.Response:
        call.attempts += 1
        timeouts = call.timeouts()
        endpoint = call.endpoint
        limits = endpoint.limits
        budgets = self.budgets
        # A budget that admitted the call is released once, by the finally below: no Slot.
        app_budget = budget = None
        try:
            if limits.app_windows:
                admitting = budgets.for_key(endpoint.vendor, endpoint.tenant, limits, app=True)
                await admitting._admit_async()
                app_budget = admitting
            if limits.windows or limits.concurrency:
                admitting = budgets.for_key(endpoint.vendor, endpoint.tenant, limits)
                await admitting._admit_async()
                budget = admitting
            request = call.request
            request.extensions["timeout"] = timeouts
            try:
                response = await self.client.send(request, auth=endpoint.auth)
                await response.aread()
            except httpx.HTTPError as exc:
                _log_attempt(call, None, exc)
                raise _transport_error(exc, endpoint) from exc
        finally:
            if budget is not None:
                budget._release()
            if app_budget is not None:
                app_budget._release()
        return _answered(call, response)
