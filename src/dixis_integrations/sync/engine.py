"""The engine: events in, a plan of steps, one journal job per step, effects out once.

``submit(event)`` plans the event (steps and providers per event type, chosen by the
host) and records one job per (tenant, event, step, provider). ``execute(job)`` runs a
claimed job through its adapter and driver and records the outcome: done with the
vendor's id in the same transaction; failed with the next attempt time (``RateLimited``
reschedules at ``retry_at`` instead of blocking); dead with the reason when retrying
cannot help. Runners (:mod:`.runners`) decide which process claims which job.

A write that may have reached a vendor which can neither take our idempotency key nor
be asked by our reference (see :attr:`.steps.StepDefinition.repeatable`) is never sent
again: the job is parked dead with ``error_code`` :data:`IN_DOUBT` for a person to check.

A job is executed by one worker at a time. Its lease is renewed while it runs (a
background thread, every quarter of :attr:`JobPolicy.lease`), so a slow attempt is not
taken over by another worker; and before each write the worker checks that the lease is
still its own, renewing it on the spot when it is more than half spent. A worker that
finds the job taken (its process stalled past the lease) stops before sending anything
more and records nothing: the outcome is :data:`LEASE_LOST`, and the job is the other
worker's.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pydantic
from pydantic import BaseModel

from dixis_integrations.errors import (
    AuthError,
    ConfigurationError,
    Conflict,
    DixisError,
    FieldError,
    IdempotencyConflict,
    InvalidInput,
    NotSupported,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ReauthorizationRequired,
    TokenLockTimeout,
)
from dixis_integrations.http.driver import CallRecord, Driver, Operation, _surely_not_processed
from dixis_integrations.http.endpoint import is_idempotent
from dixis_integrations.models.events import Event, parse_event
from dixis_integrations.sync.journal import CallRow, Job, JobSpec, JobState, Journal, job_key
from dixis_integrations.sync.steps import (
    DEFAULT_PLAN_STEPS,
    StepBook,
    StepContext,
    StepSettings,
    builtin_steps,
    external_id_of,
    result_data,
)

__all__ = [
    "IN_DOUBT",
    "LEASE_LOST",
    "CallRecorder",
    "Connection",
    "DrainSummary",
    "Engine",
    "JobPolicy",
    "Outcome",
    "PlannedStep",
    "Router",
    "current_job",
    "may_have_reached_vendor",
    "order_id_of",
    "retry_delay",
    "spread_by_order",
]

log = logging.getLogger("dixis_integrations.sync")

current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "dixis_current_job", default=None
)
"""The key of the job being executed in this context (for the audit log)."""

IN_DOUBT = "in_doubt"
"""The ``error_code`` of a job parked because its write may have reached a vendor that
can neither take an idempotency key nor be asked by our reference: repeating it could
make a second effect (a second voucher). A person checks at the vendor, then replays the
job (nothing there) or leaves it dead (it is there)."""


LEASE_LOST = "lease_lost"
"""The ``error_code`` of an :class:`Outcome` whose worker lost the job's lease before it
finished (another worker claimed the job): it stopped before its next write and recorded
nothing. The outcome's state is ``running``: the job is the other worker's."""


def may_have_reached_vendor(exc: BaseException) -> bool:
    """Whether a write that failed with ``exc`` may still have been processed by the vendor.

    ``False`` only when the error proves nothing happened there: the connection never
    opened, the vendor throttled (429), our own checks or the driver refused before
    sending (invalid input, unsupported, a deadline already passed, the token lock), or
    the vendor answered with a refusal (any 4xx but 408). ``True`` for a read timeout, a
    connection dropped after sending, a 5xx, and anything unknown.
    """
    if isinstance(
        exc,
        InvalidInput | ConfigurationError | NotSupported | IdempotencyConflict | TokenLockTimeout,
    ):
        return False
    if isinstance(exc, DixisError) and _surely_not_processed(exc):
        return False
    if isinstance(exc, ProviderTimeout) and exc.__cause__ is None and exc.status_code is None:
        return False  # the driver's deadline passed before this attempt was sent
    if isinstance(exc, ProviderError) and exc.status_code is not None:
        status = exc.status_code
        return not (400 <= status < 500 and status != 408)
    return True


class _WriteWatch:
    """What one attempt sent: whether a non-idempotent request may have reached the vendor."""

    __slots__ = ("landed", "pending")

    def __init__(self) -> None:
        self.landed = False  # a write was answered, or failed without proof it did not land
        self.pending = False  # a write was handed to the driver, its outcome not yet seen

    @property
    def in_doubt(self) -> bool:
        return self.landed or self.pending


def _watched(operation: Operation[Any], watch: _WriteWatch) -> Operation[Any]:
    """``operation``, telling ``watch`` about every write it sends and how it ended."""
    try:
        request = next(operation)
        while True:
            write = not is_idempotent(request)
            if write:
                watch.pending = True
            try:
                response = yield request
            except DixisError as exc:
                if write:
                    watch.pending = False
                    watch.landed = watch.landed or may_have_reached_vendor(exc)
                request = operation.throw(exc)
            else:
                if write:
                    watch.pending = False
                    watch.landed = True
                request = operation.send(response)
    except StopIteration as stop:
        return stop.value
    finally:
        operation.close()


class _InDoubt(Exception):
    """The job's previous attempt was lost while running, and it cannot be repeated."""


class _LeaseLost(Exception):
    """Another worker holds the job now: this attempt stops before its next write."""


class _Leases:
    """The leases of the jobs an engine is executing: kept alive while they run, and
    checked before every write.

    A daemon thread renews every held lease each quarter of the lease; it starts with the
    first job held and ends when none is. :meth:`held` is the check before a write: it
    answers from memory while more than half of the lease is left, and renews it on the
    spot otherwise (``False`` when the journal says another worker has the job).
    """

    def __init__(self, journal: Journal, lease: float, clock: Callable[[], float]) -> None:
        self.journal = journal
        self.lease = lease
        self._clock = clock
        self._until: dict[tuple[str, str], float] = {}  # (key, worker) -> deadline by the clock
        self._lost: set[tuple[str, str]] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def hold(self, key: str, worker: str, remaining: float) -> bool:
        """Keep ``key`` alive while ``worker`` runs it, ``remaining`` seconds of its lease
        left by the clock; ``False`` (nothing held) when another worker has it."""
        if self._pid != os.getpid():  # a forked worker: its parent's keeper did not follow
            self._pid = os.getpid()
            self._until, self._lost = {}, set()
            self._cond, self._thread = threading.Condition(), None
        if remaining < self.lease / 2 and not self._renew((key, worker)):
            return False
        with self._cond:
            self._until.setdefault((key, worker), self._clock() + min(remaining, self.lease))
            if self._thread is None:
                self._thread = threading.Thread(target=self._keep, name="dixis-leases", daemon=True)
                self._thread.start()
        return True

    def release(self, key: str, worker: str) -> None:
        with self._cond:
            self._until.pop((key, worker), None)
            self._lost.discard((key, worker))
            if not self._until:
                self._cond.notify()  # the keeper winds down if no job follows soon

    def held(self, key: str, worker: str) -> bool:
        """Whether ``worker`` still holds ``key``, with at least half a lease left."""
        item = (key, worker)
        if item in self._lost:
            return False
        until = self._until.get(item)
        if until is None or until - self._clock() >= self.lease / 2:
            return until is not None
        return self._renew(item)

    def _renew(self, item: tuple[str, str]) -> bool:
        stamp = self._clock()
        if self.journal.heartbeat(item[0], item[1], lease=self.lease):
            with self._cond:
                if item in self._until:
                    self._until[item] = stamp + self.lease
                else:  # held() called before hold() stored it
                    self._until.setdefault(item, stamp + self.lease)
            return True
        with self._cond:
            self._lost.add(item)
        log.warning("job %s: worker %s lost its lease to another worker", item[0], item[1])
        return False

    def _keep(self) -> None:
        while True:
            with self._cond:
                self._cond.wait(self.lease / 4)
                if not self._until:  # idle: wait a little for the next job, then end
                    self._cond.wait(min(1.0, self.lease / 4))
                if not self._until:
                    self._thread = None
                    return
                due = [
                    item
                    for item, until in self._until.items()
                    if item not in self._lost and until - self._clock() < self.lease * 0.75
                ]
            for item in due:
                try:
                    self._renew(item)
                except Exception:  # the journal is unreachable: try again next round
                    log.warning("could not renew the lease of job %s", item[0], exc_info=True)


_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _fenced(operation: Operation[Any], held: Callable[[], bool]) -> Operation[Any]:
    """``operation``, stopped with :class:`_LeaseLost` before any write (idempotent or
    not) once ``held`` says the job's lease is no longer this worker's."""
    try:
        request = next(operation)
        while True:
            if request.method not in _READS and not held():
                raise _LeaseLost("another worker took the job before this write was sent")
            try:
                response = yield request
            except DixisError as exc:
                request = operation.throw(exc)
            else:
                request = operation.send(response)
    except StopIteration as stop:
        return stop.value
    finally:
        operation.close()


@dataclass(frozen=True)
class _Attempt:
    """A claimed job made ready to run: its connection, its operation, what to watch."""

    connection: Connection
    operation: Operation[Any]
    watch: _WriteWatch | None


@dataclass(frozen=True)
class Connection:
    """One configured integration: its kind, name, adapter and the driver that runs it."""

    kind: str
    name: str
    adapter: Any
    driver: Driver


@dataclass(frozen=True)
class PlannedStep:
    """A step of a plan and the provider that carries it out (``explicit``: named in
    the plan, so a router does not move it)."""

    step: str
    provider: str
    explicit: bool = False


Router = Callable[[Event, str, Sequence[str]], str | None]
"""Chooses a provider of a kind for an event (``None``: the default). Must be
deterministic for one order, so that follow-ups (a cancellation) find the same provider."""


def order_id_of(event: Event) -> str | None:
    """The order an event is about, if any."""
    order = getattr(event, "order", None)
    if order is not None:
        return str(order.id)
    order_id = getattr(event, "order_id", None)
    return str(order_id) if order_id is not None else None


def spread_by_order(kinds: Sequence[str] = ("shipping",), *, exclude: Sequence[str] = ()) -> Router:
    """A router spreading orders over every configured provider of ``kinds`` but
    ``exclude`` (by a stable hash of the order id): e.g. parcels across all carriers."""
    import hashlib

    def route(event: Event, kind: str, candidates: Sequence[str]) -> str | None:
        order_id = order_id_of(event)
        candidates = [c for c in candidates if c not in exclude]
        if kind not in kinds or order_id is None or not candidates:
            return None
        digest = hashlib.sha256(order_id.encode()).digest()
        return sorted(candidates)[int.from_bytes(digest[:4], "big") % len(candidates)]

    return route


@dataclass(frozen=True)
class JobPolicy:
    """How often and when a failed job is tried again.

    Attributes:
        max_attempts: attempts for errors worth retrying, before the job is dead.
        max_rate_limited: attempts in all while the vendor keeps throttling.
        backoff_initial: seconds before the second attempt, doubled each time.
        backoff_max: the longest wait between attempts.
        lease: seconds a claimed job stays with its worker before another may take it.
    """

    max_attempts: int = 8
    max_rate_limited: int = 100
    backoff_initial: float = 2.0
    backoff_max: float = 600.0
    lease: float = 300.0

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts (jittered)."""
        base = min(self.backoff_max, self.backoff_initial * 2.0 ** max(0, attempts - 1))
        return base * (0.5 + random.random() / 2)


@dataclass(frozen=True)
class Outcome:
    """What executing one job came to."""

    key: str
    step: str
    provider: str
    state: JobState
    external_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    retry_at: datetime | None = None
    kind: str = ""
    duration: float | None = None


@dataclass
class DrainSummary:
    """What a drain did: outcomes by state, and what is left."""

    executed: int = 0
    done: int = 0
    failed: int = 0
    dead: int = 0
    lost: int = 0
    """Jobs another worker took over while this drain held them (:data:`LEASE_LOST`)."""
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        """Count one outcome."""
        self.executed += 1
        if outcome.state is JobState.DONE:
            self.done += 1
        elif outcome.state is JobState.DEAD:
            self.dead += 1
        elif outcome.error_code == LEASE_LOST:
            self.lost += 1
        else:
            self.failed += 1
        self.outcomes.append(outcome)


class CallRecorder:
    """A driver ``on_call`` hook that keeps every vendor call in the journal.

    Calls made while a job executes carry the job's key; nothing secret is kept
    (:class:`~dixis_integrations.http.CallRecord` holds a redacted URL and no bodies).
    """

    def __init__(self, journal: Journal, *, listeners: Sequence[Callable[[CallRow], None]] = ()):
        self.journal = journal
        self.listeners = list(listeners)

    def __call__(self, record: CallRecord) -> None:
        row = CallRow(
            at=record.started_at,
            tenant=record.tenant,
            vendor=record.vendor,
            operation=record.operation,
            method=record.method,
            url=record.url,
            status_code=record.status_code,
            attempts=record.attempts,
            elapsed=record.elapsed,
            idempotency_key=record.idempotency_key,
            request_id=record.request_id,
            error_code=record.error_code,
            job_key=current_job.get(),
        )
        try:
            self.journal.record_call(row)
        except Exception:  # the audit log must never break the call it records
            log.exception("could not record a vendor call")
        for listener in self.listeners:
            listener(row)


_PERMANENT_PAYLOAD = (pydantic.ValidationError, json.JSONDecodeError)


class Engine:
    """Plans events into journal jobs and executes them through the connections.

    Args:
        journal: where jobs live.
        connections: the configured integrations (one per kind and name).
        plan: steps per event type: ``{"order.created": ["invoice", "shipment:acs"]}``;
            a step without ``:provider`` goes to the default provider of its kind.
            Event types left out use :data:`~.steps.DEFAULT_PLAN_STEPS`.
        defaults: the default provider per kind (else the first connection of it).
        steps: the step definitions (built-ins plus the host's own).
        settings: what the built-in steps need (the sender address...).
        policy: retries and leases.
        listeners: called with every :class:`Outcome` (metrics, progress bars).
        router: picks the provider per event for steps the plan does not pin
            (see :func:`spread_by_order`).
    """

    def __init__(
        self,
        journal: Journal,
        connections: Iterable[Connection] = (),
        *,
        plan: Mapping[str, Sequence[str]] | None = None,
        defaults: Mapping[str, str] | None = None,
        steps: StepBook | None = None,
        settings: StepSettings | None = None,
        policy: JobPolicy | None = None,
        listeners: Sequence[Callable[[Outcome], None]] = (),
        router: Router | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.journal = journal
        self.connections: dict[tuple[str, str], Connection] = {}
        for c in connections:
            self.connections[(c.kind, c.name)] = c
        self.plan_config: dict[str, tuple[str, ...]] = {
            **DEFAULT_PLAN_STEPS,
            **{k: tuple(v) for k, v in (plan or {}).items()},
        }
        self.defaults = dict(defaults or {})
        self.steps = steps or StepBook(builtin_steps())
        self.settings = settings or StepSettings()
        self.policy = policy or JobPolicy()
        self.listeners = list(listeners)
        self.router = router
        self._clock = clock
        self._sleep = sleep
        self._leases = _Leases(journal, self.policy.lease, clock)

    # -- planning ----------------------------------------------------------------------
    def default_provider(self, kind: str) -> str | None:
        """The provider a step of ``kind`` goes to when the plan does not name one."""
        if kind in self.defaults:
            return self.defaults[kind]
        names = [name for (k, name) in self.connections if k == kind]
        return names[0] if names else None

    def planned_steps(self, event_type: str) -> tuple[list[PlannedStep], list[str]]:
        """The steps an event of this type gets, and the ones skipped (with why)."""
        planned: list[PlannedStep] = []
        skipped: list[str] = []
        for entry in self.plan_config.get(event_type, ()):
            step_name, _, provider = entry.partition(":")
            if step_name not in self.steps:
                skipped.append(f"{entry}: no such step")
                continue
            kind = self.steps.get(step_name).kind
            chosen = provider or self.default_provider(kind)
            if chosen is None:
                skipped.append(f"{step_name}: no {kind} integration configured")
                continue
            if (kind, chosen) not in self.connections:
                skipped.append(f"{step_name}: {kind} integration {chosen!r} is not configured")
                continue
            planned.append(PlannedStep(step_name, chosen, explicit=bool(provider)))
        return planned, skipped

    def plan(self, event: Event) -> list[JobSpec]:
        """The jobs an event becomes (nothing is recorded: this is the dry run)."""
        planned, _ = self.planned_steps(event.type)
        if self.router is not None:
            planned = [self._routed(event, p) for p in planned]
        planned = [p for p in planned if self._capable(p)]
        by_step = {p.step: p.provider for p in planned}
        payload = event.model_dump_json()
        specs: list[JobSpec] = []
        for p in planned:
            definition = self.steps.get(p.step)
            deps: list[str] = []
            for dep in definition.after:
                dep_kind = self.steps.get(dep.step).kind if dep.step in self.steps else ""
                if dep.event_id is None:
                    event_id = event.event_id
                    provider = by_step.get(dep.step) or self._dep_provider(
                        dep_kind, definition.kind, p.provider
                    )
                else:
                    event_id = dep.event_id(event)
                    provider = self._dep_provider(dep_kind, definition.kind, p.provider)
                if provider is None:
                    continue
                if dep.recorded:  # e.g. a refund waits for the order's payments in flight
                    deps += [
                        j.key
                        for j in self.journal.jobs(
                            tenant=event.tenant,
                            step=dep.step,
                            provider=provider,
                            event_prefix=event_id,
                        )
                    ]
                    continue
                deps.append(job_key(event.tenant, event_id, dep.step, provider))
            specs.append(
                JobSpec(
                    tenant=event.tenant,
                    event_id=event.event_id,
                    event_type=event.type,
                    step=p.step,
                    kind=definition.kind,
                    provider=p.provider,
                    payload=payload,
                    depends_on=tuple(deps),
                    lane=definition.lane(event, p.provider, self.settings),
                )
            )
        return specs

    def _capable(self, p: PlannedStep) -> bool:
        definition = self.steps.get(p.step)
        if definition.requires is None:
            return True
        adapter = self.connections[(definition.kind, p.provider)].adapter
        return definition.requires in getattr(adapter, "capabilities", frozenset())

    def _routed(self, event: Event, p: PlannedStep) -> PlannedStep:
        if p.explicit or self.router is None:
            return p
        kind = self.steps.get(p.step).kind
        names = [name for (k, name) in self.connections if k == kind]
        chosen = self.router(event, kind, names)
        if chosen is None or chosen not in names:
            return p
        return PlannedStep(p.step, chosen)

    def _dep_provider(self, dep_kind: str, kind: str, provider: str) -> str | None:
        return provider if dep_kind == kind else self.default_provider(dep_kind)

    def submit(self, event: Event) -> list[str]:
        """Plan the event and record its jobs (again is harmless); the job keys."""
        return self.journal.enqueue(self.plan(event))

    # -- execution ---------------------------------------------------------------------
    def execute(self, job: Job, worker: str) -> Outcome:
        """Run one claimed job and record its outcome in the journal."""
        token = current_job.set(job.key)
        started = time.monotonic()
        attempt: _Attempt | None = None
        try:
            attempt = self._prepare(job, worker)
            result = attempt.connection.driver.run(attempt.operation)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit: the lease will expire
            outcome = self._record_failure(job, worker, exc, attempt, time.monotonic() - started)
        else:
            outcome = self._record_done(job, worker, result, time.monotonic() - started)
        finally:
            self._leases.release(job.key, worker)
            current_job.reset(token)
        return self._announce(job, outcome, started)

    def _prepare(self, job: Job, worker: str | None = None) -> _Attempt:
        """Make a claimed job ready to run: its connection and its operation (not yet
        started); the writes of a step that cannot be repeated are watched.

        With ``worker``, the job's lease is held for it from here until
        ``self._leases.release`` (the caller's ``finally``), and every write of the
        operation is fenced by it. Reads the jobs it waited on from the journal. Raises
        what executing would raise when the job cannot run (not configured, a payload that
        does not parse, a lost attempt that cannot be repeated, a lease already lost).
        """
        if worker is not None:
            remaining = 0.0
            if job.lease_until is not None:
                remaining = job.lease_until.timestamp() - self._clock()
            if not self._leases.hold(job.key, worker, remaining):
                raise _LeaseLost("another worker took the job before it started here")
        connection = self.connections.get((job.kind, job.provider))
        if connection is None:
            raise _Unconfigured(f"{job.kind} integration {job.provider!r} is not configured")
        if job.step not in self.steps:
            raise _Unconfigured(f"no step called {job.step!r}")
        definition = self.steps.get(job.step)
        repeatable = definition.can_repeat(connection.adapter)
        if job.interrupted and not repeatable:
            raise _InDoubt("the worker running the previous attempt was lost (lease expired)")
        event = parse_event(job.payload)
        deps: dict[str, Job] = {}
        for key in job.depends_on:
            dep = self.journal.get(key)
            if dep is not None:
                deps[dep.step] = dep
        ctx = StepContext(job, event, connection.adapter, self.settings, deps)
        operation = definition.handler(ctx)
        watch = None if repeatable else _WriteWatch()
        if watch is not None:
            operation = _watched(operation, watch)
        if worker is not None:
            leases, key = self._leases, job.key
            operation = _fenced(operation, lambda: leases.held(key, worker))
        return _Attempt(connection, operation, watch)

    def _record_done(self, job: Job, worker: str, result: Any, duration: float) -> Outcome:
        external_id = external_id_of(result)
        self.journal.complete(
            job.key, worker, external_id=external_id, result=result_data(result), duration=duration
        )
        return Outcome(job.key, job.step, job.provider, JobState.DONE, external_id)

    def _record_failure(
        self,
        job: Job,
        worker: str,
        exc: Exception,
        attempt: _Attempt | None,
        duration: float,
    ) -> Outcome:
        if isinstance(exc, _LeaseLost):
            log.warning("job %s (%s/%s): %s", job.key, job.step, job.provider, exc)
            return Outcome(
                job.key, job.step, job.provider, JobState.RUNNING, None, LEASE_LOST, str(exc)
            )
        now = self._clock()
        if isinstance(exc, _InDoubt) or (
            attempt is not None and attempt.watch is not None and attempt.watch.in_doubt
        ):
            code, message, retry_at = IN_DOUBT, self._in_doubt_message(job, exc), None
        else:
            code, message, retry_at = self._classify(job, exc, now)
        if retry_at is None:
            self.journal.kill(job.key, worker, error_code=code, message=message)
            log.warning("job %s (%s/%s) is dead: %s", job.key, job.step, job.provider, message)
            return Outcome(job.key, job.step, job.provider, JobState.DEAD, None, code, message)
        self.journal.fail(
            job.key, worker, error_code=code, message=message, retry_at=retry_at, duration=duration
        )
        return Outcome(
            job.key, job.step, job.provider, JobState.FAILED, None, code, message, retry_at
        )

    def _announce(self, job: Job, outcome: Outcome, started: float) -> Outcome:
        outcome = replace(outcome, kind=job.kind, duration=time.monotonic() - started)
        for listener in self.listeners:
            listener(outcome)
        return outcome

    def _in_doubt_message(self, job: Job, exc: Exception) -> str:
        what = self.steps.get(job.step).description or job.step
        cause = _short(str(exc) if isinstance(exc, _InDoubt) else f"{type(exc).__name__}: {exc}")
        return (
            f"in doubt: the attempt to {what} at {job.provider} may have reached it ({cause}), "
            f"and {job.provider} can neither take an idempotency key nor be asked by our "
            "reference, so it is not repeated. Check at "
            f"{job.provider} for event {job.event_id}: if nothing is there, replay this job "
            f"(dixis-integrations jobs replay {job.key}); if it is there, leave it dead."
        )

    def _classify(self, job: Job, exc: Exception, now: float) -> tuple[str, str, datetime | None]:
        """(code, message, retry time or ``None`` for dead) of a failed attempt."""
        policy = self.policy
        backoff = datetime.fromtimestamp(now + policy.backoff(job.attempts), UTC)
        if isinstance(exc, _Unconfigured):
            return "configuration", str(exc), None
        if isinstance(exc, _PERMANENT_PAYLOAD):
            return "invalid_payload", _short(f"the event does not parse: {exc}"), None
        if isinstance(exc, RateLimited):
            if job.attempts >= policy.max_rate_limited:
                return exc.code, f"still throttled after {job.attempts} attempts: {exc}", None
            when = exc.retry_at or backoff
            return exc.code, str(exc), max(when, datetime.fromtimestamp(now, UTC))
        if isinstance(exc, Conflict) and job.attempts < min(3, policy.max_attempts):
            # a duplicate from a race, or a stale version: the next attempt reads again
            return exc.code, _short(str(exc)), backoff
        if isinstance(exc, DixisError):
            retry = exc.retryable or (
                isinstance(exc, AuthError) and not isinstance(exc, ReauthorizationRequired)
            )
            if not retry:
                return exc.code, _short(str(exc)), None
            if job.attempts >= policy.max_attempts:
                return exc.code, _short(f"gave up after {job.attempts} attempts: {exc}"), None
            return exc.code, _short(str(exc)), backoff
        log.exception("job %s (%s/%s) raised", job.key, job.step, job.provider)
        text = _short(f"{type(exc).__name__}: {exc}")
        if job.attempts >= policy.max_attempts:
            return "internal", f"gave up after {job.attempts} attempts: {text}", None
        return "internal", text, backoff

    # -- draining ----------------------------------------------------------------------
    def run_once(self, worker: str, *, limit: int = 10) -> list[Outcome]:
        """Claim up to ``limit`` due jobs and execute them; their outcomes."""
        jobs = self.journal.claim(worker, lease=self.policy.lease, limit=limit)
        # held from the claim: the last of them keeps its lease while the first ones run
        for job in jobs:
            self._leases.hold(job.key, worker, self.policy.lease)
        try:
            return [self.execute(job, worker) for job in jobs]
        finally:
            for job in jobs:
                self._leases.release(job.key, worker)

    def drain(
        self,
        *,
        worker: str = "inline",
        wait: bool = True,
        max_wait: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> DrainSummary:
        """Execute due jobs until none is left.

        With ``wait`` it also sleeps until jobs rescheduled for later (rate limits,
        backoff, expired leases) are due, giving up after ``max_wait`` seconds in all.
        """
        summary = DrainSummary()
        started = self._clock()
        while should_stop is None or not should_stop():
            outcomes = self.run_once(worker)
            for o in outcomes:
                summary.add(o)
            if outcomes:
                continue
            if not wait:
                break
            due = self.journal.next_due()
            if due is None:
                break
            delay = max(0.0, due.timestamp() - self._clock())
            if max_wait is not None and self._clock() + delay - started > max_wait:
                break
            self._sleep(min(max(delay, 0.01), 1.0))
        return summary

    # -- dead jobs -----------------------------------------------------------------------
    def dead_jobs(self, *, tenant: str | None = None) -> list[Job]:
        """Every dead job, oldest first."""
        return self.journal.jobs(state=JobState.DEAD, tenant=tenant)

    def in_doubt_jobs(self, *, tenant: str | None = None) -> list[Job]:
        """The dead jobs parked in doubt (``error_code`` :data:`IN_DOUBT`), oldest first:
        each is checked at its vendor, then replayed or left dead."""
        return [j for j in self.dead_jobs(tenant=tenant) if j.error_code == IN_DOUBT]

    def replay(self, key: str) -> list[str]:
        """Put a dead job (and the jobs it took down) back to pending."""
        return self.journal.replay(key)

    def resolve(self, key: str, external_id: str, result: Any = None) -> list[str]:
        """Mark a dead job done by a person's word: its effect exists at the vendor as
        ``external_id`` (an in-doubt voucher found at the carrier, say). The jobs it took
        down go back to pending. ``result`` is the step's result (a model or a dict);
        omitted, the step's ``on_resolve`` rebuilds it from the id. The keys changed
        (empty when the job is not dead).

        Raises:
            InvalidInput: the job does not exist, or ``external_id`` is empty.
        """
        job = self.journal.get(key)
        if job is None:
            raise InvalidInput(
                f"no job {key!r} to resolve", errors=[FieldError(("key",), "no such job")]
            )
        if not external_id.strip():
            raise InvalidInput(
                "a resolved job needs the id its effect has at the vendor",
                errors=[FieldError(("external_id",), "must not be empty")],
            )
        if result is None and job.step in self.steps:
            rebuild = self.steps.get(job.step).on_resolve
            if rebuild is not None:
                result = rebuild(parse_event(job.payload), job.provider, external_id)
        data = result_data(result) if isinstance(result, BaseModel) else result
        return self.journal.resolve(key, external_id=external_id, result=data)

    def close(self) -> None:
        """Close the drivers and the journal."""
        for c in self.connections.values():
            c.driver.close()
        self.journal.close()


class _Unconfigured(Exception):
    """The job names a provider or step this engine does not have."""


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_delay(outcome: Outcome, now: datetime | None = None) -> float | None:
    """Seconds until a failed outcome is due again (``None`` when it is not failed)."""
    if outcome.retry_at is None:
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (outcome.retry_at - now).total_seconds())
