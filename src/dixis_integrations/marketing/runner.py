"""The journey runner: sends due journey steps through an ``EmailProvider``, each once.

Every send is claimed in a :class:`SentLog` under its idempotency key before it goes out
(SQLite by default, PostgreSQL for many machines), so a redelivered event, a second
worker or a rerun never sends it twice; the key is also given to the provider. Consent
is read at send time, so an unsubscribe between planning and sending stops the send,
and nothing marketing goes out in quiet hours.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from dixis_integrations.errors import ConfigurationError, DixisError, FieldError, InvalidInput
from dixis_integrations.http.driver import Operation
from dixis_integrations.marketing.planner import DueSend, QuietHours
from dixis_integrations.models.customer import MarketingConsent
from dixis_integrations.models.email import EmailMessage, SendResult
from dixis_integrations.protocols import EmailProvider

__all__ = [
    "AsyncJourneyRunner",
    "Delivery",
    "DeliveryStatus",
    "Directory",
    "JourneyRunner",
    "PostgresSentLog",
    "Recipient",
    "SQLiteSentLog",
    "SentLog",
    "SentRecord",
    "default_message",
    "directory_from",
]


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a send goes to, as the host knows them at send time (consent included)."""

    customer_id: str
    email: str
    consent: MarketingConsent
    first_name: str | None = None
    language: str = "el"


class Directory(Protocol):
    """The host's customers: the current email and consent of one customer, or ``None``
    when the customer is gone (erased)."""

    def recipient(self, customer_id: str) -> Recipient | None:
        """The customer as of now."""
        ...


class DeliveryStatus(StrEnum):
    """What the runner did with one due send."""

    SENT = "sent"
    ALREADY_SENT = "already_sent"
    IN_PROGRESS = "in_progress"
    SKIPPED_NO_CONSENT = "skipped_no_consent"
    SKIPPED_UNKNOWN_CUSTOMER = "skipped_unknown_customer"
    DEFERRED_QUIET_HOURS = "deferred_quiet_hours"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one due send."""

    send: DueSend
    status: DeliveryStatus
    message_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One row of the sent log."""

    key: str
    state: str
    attempts: int
    message_id: str | None
    reason: str | None


_FINAL = frozenset({"sent", "skipped"})


class SentLog(Protocol):
    """Where sends are claimed and recorded; shared by every worker that runs journeys."""

    def claim(self, send: DueSend, now: datetime, lease: timedelta) -> bool:
        """Take the send: ``True`` if it was never tried, failed before, or a claim on it
        is older than ``lease`` (a worker died mid-send); ``False`` otherwise."""
        ...

    def finish(
        self, key: str, state: str, now: datetime, *, message_id: str | None, reason: str | None
    ) -> None:
        """Record the final state (``sent``, ``skipped``) or ``failed`` (claimable again)."""
        ...

    def get(self, key: str) -> SentRecord | None:
        """The record of one key."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS journey_sends (
    key TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    journey_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    claimed_at TEXT NOT NULL,
    finished_at TEXT,
    message_id TEXT,
    reason TEXT
)
"""


def _stamp(moment: datetime) -> str:
    # fixed width, so that text comparison is time order
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


_CLAIM = """
INSERT INTO journey_sends
    (key, customer_id, journey_id, step_id, occurrence, state, attempts, claimed_at)
VALUES ({p}, {p}, {p}, {p}, {p}, 'sending', 1, {p})
ON CONFLICT (key) DO UPDATE SET
    state = 'sending', attempts = journey_sends.attempts + 1,
    claimed_at = excluded.claimed_at
WHERE journey_sends.state = 'failed'
   OR (journey_sends.state = 'sending' AND journey_sends.claimed_at < {p})
"""
_FINISH = (
    "UPDATE journey_sends SET state = {p}, finished_at = {p}, message_id = {p}, reason = {p}"
    " WHERE key = {p}"
)
_GET = "SELECT key, state, attempts, message_id, reason FROM journey_sends WHERE key = {p}"


class _SQLSentLog:
    """The statements both sent logs share; subclasses run them."""

    _p = "?"

    def _run(self, sql: str, params: tuple[Any, ...]) -> int:
        raise NotImplementedError

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        raise NotImplementedError

    def claim(self, send: DueSend, now: datetime, lease: timedelta) -> bool:
        """See :meth:`SentLog.claim`."""
        params = (
            send.key,
            send.customer_id,
            send.journey_id,
            send.step_id,
            send.occurrence,
            _stamp(now),
            _stamp(now - lease),
        )
        return self._run(_CLAIM.format(p=self._p), params) == 1

    def finish(
        self, key: str, state: str, now: datetime, *, message_id: str | None, reason: str | None
    ) -> None:
        """See :meth:`SentLog.finish`."""
        if state not in (*_FINAL, "failed"):
            raise ValueError(f"unknown send state {state!r}")
        self._run(_FINISH.format(p=self._p), (state, _stamp(now), message_id, reason, key))

    def get(self, key: str) -> SentRecord | None:
        """See :meth:`SentLog.get`."""
        row = self._one(_GET.format(p=self._p), (key,))
        return SentRecord(*row) if row else None


class SQLiteSentLog(_SQLSentLog):
    """The default sent log: one SQLite file (or ``":memory:"``), safe across threads and
    processes (claims are single statements under SQLite's write lock)."""

    def __init__(self, path: str = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _run(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
        return row


class PostgresSentLog(_SQLSentLog):
    """The sent log on PostgreSQL (extra ``[postgres]``), for workers on many machines.

    One connection per thread, each statement its own transaction.
    """

    _p = "%s"

    def __init__(self, dsn: str) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigurationError(
                "PostgreSQL needs the [postgres] extra "
                "(pip install 'dixis-integrations[postgres]')",
                key="sent_log",
            ) from exc
        self._dsn = dsn
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        with self._conn().cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(7395528012)")
            try:
                cur.execute(_SCHEMA)
            finally:
                cur.execute("SELECT pg_advisory_unlock(7395528012)")

    def __repr__(self) -> str:
        return "PostgresSentLog(<dsn>)"

    def _conn(self) -> Any:
        import psycopg

        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self._dsn, autocommit=True)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this log opened."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _run(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._conn().cursor() as cur:
            cur.execute(sql, params)
            return int(cur.rowcount)

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._conn().cursor() as cur:
            cur.execute(sql, params)
            row: tuple[Any, ...] | None = cur.fetchone()
        return row


def default_message(
    send: DueSend, recipient: Recipient, recommendations: Sequence[str] = ()
) -> EmailMessage:
    """The message of a due send: the step's template, the person's name, and the
    recommended SKUs (``recommendations`` comma-joined, and ``recommendation_1``...)."""
    params = {
        "first_name": recipient.first_name or "",
        "journey": send.journey_id,
        "step": send.step_id,
    }
    if recommendations:
        params["recommendations"] = ",".join(recommendations)
        for i, sku in enumerate(recommendations, 1):
            params[f"recommendation_{i}"] = sku
    return EmailMessage(
        to=recipient.email,
        subject=send.subject,
        template_id=send.template,
        params=params,
        idempotency_key=send.key,
        tags=(f"journey:{send.journey_id}", f"step:{send.step_id}"),
        transactional=send.transactional,
    )


Recommender = Callable[[str], Sequence[str]]
Renderer = Callable[[DueSend, Recipient, Sequence[str]], EmailMessage]


class _Core:
    def __init__(
        self,
        provider: EmailProvider,
        directory: Directory,
        log: SentLog | None,
        *,
        quiet_hours: QuietHours | None,
        recommend: Recommender | None,
        render: Renderer,
        lease: timedelta,
        templates: Mapping[str, str] | None,
    ) -> None:
        self.provider = provider
        self.templates = dict(templates or {})
        self.directory = directory
        self.log: SentLog = log if log is not None else SQLiteSentLog()
        self.quiet_hours = quiet_hours
        self.recommend = recommend
        self.render = render
        self.lease = lease

    def prepare(self, send: DueSend, now: datetime) -> Delivery | EmailMessage:
        """A final delivery (nothing to send), or the message to send under a claim."""
        if not send.transactional and self.quiet_hours and self.quiet_hours.contains(now):
            return Delivery(send, DeliveryStatus.DEFERRED_QUIET_HOURS)
        record = self.log.get(send.key)
        if record is not None and record.state in _FINAL:
            return Delivery(send, DeliveryStatus.ALREADY_SENT, record.message_id)
        if not self.log.claim(send, now, self.lease):
            record = self.log.get(send.key)
            if record is not None and record.state in _FINAL:
                return Delivery(send, DeliveryStatus.ALREADY_SENT, record.message_id)
            return Delivery(send, DeliveryStatus.IN_PROGRESS)
        try:
            return self._after_claim(send, now)
        except Exception as exc:
            # the claim must not hold a send that never went out
            self.log.finish(send.key, "failed", now, message_id=None, reason=type(exc).__name__)
            raise

    def _after_claim(self, send: DueSend, now: datetime) -> Delivery | EmailMessage:
        # Consent is read after the claim, as close to the send as possible.
        recipient = self.directory.recipient(send.customer_id)
        if recipient is None:
            return self.skip(send, now, DeliveryStatus.SKIPPED_UNKNOWN_CUSTOMER, "unknown")
        if not send.transactional and not recipient.consent.allows_marketing():
            reason = f"consent {recipient.consent.status.value}"
            return self.skip(send, now, DeliveryStatus.SKIPPED_NO_CONSENT, reason)
        picks = self.recommend(send.customer_id) if send.recommendations and self.recommend else ()
        message = self.render(send, recipient, picks)
        template = self.templates.get(message.template_id or "")
        if template is not None:
            message = message.model_copy(update={"template_id": template})
        return message

    def skip(self, send: DueSend, now: datetime, status: DeliveryStatus, why: str) -> Delivery:
        self.log.finish(send.key, "skipped", now, message_id=None, reason=status.value)
        return Delivery(send, status, reason=why)

    def sent(self, send: DueSend, result: SendResult, now: datetime) -> Delivery:
        if not result.accepted and not result.duplicate:
            self.log.finish(send.key, "failed", now, message_id=None, reason=result.reason)
            return Delivery(send, DeliveryStatus.FAILED, reason=result.reason)
        self.log.finish(send.key, "sent", now, message_id=result.message_id, reason=None)
        return Delivery(send, DeliveryStatus.SENT, result.message_id)

    def failed(self, send: DueSend, exc: DixisError, now: datetime) -> Delivery:
        self.log.finish(send.key, "failed", now, message_id=None, reason=exc.code)
        return Delivery(send, DeliveryStatus.FAILED, reason=str(exc))


def _check_now(now: datetime) -> None:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise InvalidInput("now must be aware", errors=[FieldError(("now",), "naive datetime")])


class JourneyRunner:
    """Sends due journey steps with a :class:`~dixis_integrations.http.Driver`.

    Args:
        provider: the email provider.
        run: runs one provider operation (``driver.run``).
        directory: the host's customers, read at send time.
        log: the sent log (an in-memory SQLite one by default; pass a file-backed
            :class:`SQLiteSentLog` to share it between processes).
        quiet_hours: marketing sends at ``now`` inside them are deferred.
        recommend: SKUs for steps that carry recommendations.
        render: builds the message (:func:`default_message` by default).
        lease: how long a claim holds before another worker may take the send over.
        templates: our template names -> the provider's template ids (Brevo's numbers).
    """

    def __init__(
        self,
        provider: EmailProvider,
        run: Callable[[Operation[SendResult]], SendResult],
        directory: Directory,
        log: SentLog | None = None,
        *,
        quiet_hours: QuietHours | None = QuietHours(),  # noqa: B008 - frozen value
        recommend: Recommender | None = None,
        render: Renderer = default_message,
        lease: timedelta = timedelta(minutes=10),
        templates: Mapping[str, str] | None = None,
    ) -> None:
        self._core = _Core(
            provider,
            directory,
            log,
            quiet_hours=quiet_hours,
            recommend=recommend,
            render=render,
            lease=lease,
            templates=templates,
        )
        self._run = run

    @property
    def log(self) -> SentLog:
        """The sent log in use."""
        return self._core.log

    def deliver(self, sends: Iterable[DueSend], now: datetime) -> list[Delivery]:
        """Send each due send at most once; one delivery per send, in input order."""
        _check_now(now)
        out: list[Delivery] = []
        core = self._core
        for send in sends:
            prepared = core.prepare(send, now)
            if isinstance(prepared, Delivery):
                out.append(prepared)
                continue
            try:
                result = self._run(core.provider.send(prepared))
            except DixisError as exc:
                out.append(core.failed(send, exc, now))
            else:
                out.append(core.sent(send, result, now))
        return out


class AsyncJourneyRunner:
    """:class:`JourneyRunner` with an :class:`~dixis_integrations.http.AsyncDriver`:
    ``run`` is ``driver.run`` (a coroutine function); the same arguments otherwise."""

    def __init__(
        self,
        provider: EmailProvider,
        run: Callable[[Operation[SendResult]], Awaitable[SendResult]],
        directory: Directory,
        log: SentLog | None = None,
        *,
        quiet_hours: QuietHours | None = QuietHours(),  # noqa: B008 - frozen value
        recommend: Recommender | None = None,
        render: Renderer = default_message,
        lease: timedelta = timedelta(minutes=10),
        templates: Mapping[str, str] | None = None,
    ) -> None:
        self._core = _Core(
            provider,
            directory,
            log,
            quiet_hours=quiet_hours,
            recommend=recommend,
            render=render,
            lease=lease,
            templates=templates,
        )
        self._run = run

    @property
    def log(self) -> SentLog:
        """The sent log in use."""
        return self._core.log

    async def deliver(self, sends: Iterable[DueSend], now: datetime) -> list[Delivery]:
        """Send each due send at most once; one delivery per send, in input order."""
        _check_now(now)
        out: list[Delivery] = []
        core = self._core
        for send in sends:
            prepared = core.prepare(send, now)
            if isinstance(prepared, Delivery):
                out.append(prepared)
                continue
            try:
                result = await self._run(core.provider.send(prepared))
            except DixisError as exc:
                out.append(core.failed(send, exc, now))
            else:
                out.append(core.sent(send, result, now))
        return out


def directory_from(recipients: Mapping[str, Recipient]) -> Directory:
    """A directory over a plain mapping (for scripts and tests)."""

    class _Mapped:
        def recipient(self, customer_id: str) -> Recipient | None:
            return recipients.get(customer_id)

    return _Mapped()
