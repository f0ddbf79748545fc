"""The journey runner on a fake clock: once per step, consent at send time, exits, quiet hours."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr
from tests.marketing._drive import Runner, run

from _services import require_postgres
from dixis_integrations.errors import InvalidInput, TransientError
from dixis_integrations.http import AsyncDriver, Driver, Operation, completed
from dixis_integrations.marketing.brevo import Brevo, BrevoConfig
from dixis_integrations.marketing.journeys import BUILT_IN, WELCOME
from dixis_integrations.marketing.planner import Activity, ActivityKind, plan
from dixis_integrations.marketing.runner import (
    AsyncJourneyRunner,
    DeliveryStatus,
    JourneyRunner,
    PostgresSentLog,
    Recipient,
    SentLog,
    SentRecord,
    SQLiteSentLog,
    directory_from,
)
from dixis_integrations.models.crm import ErasureResult, UpsertResult, UpsertStatus
from dixis_integrations.models.customer import ConsentStatus, MarketingConsent
from dixis_integrations.models.email import EmailMessage, SendResult, Subscriber
from dixis_integrations.protocols import Capability, EmailProvider, HealthStatus
from dixis_integrations.sandbox.brevo import BrevoSandbox

__all__ = ["run"]

ATHENS = ZoneInfo("Europe/Athens")
DAY0 = datetime(2026, 3, 3, 10, 0, tzinfo=ATHENS)
GRANTED = MarketingConsent(status=ConsentStatus.GRANTED, source="signup", timestamp=DAY0)


class Outbox:
    """An in-memory EmailProvider: records what it was asked to send."""

    name = "outbox"
    capabilities = frozenset({Capability.TRANSACTIONAL})

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.fail_next = 0

    def check(self) -> Operation[HealthStatus]:
        return completed(HealthStatus(self.name, True))

    def upsert_subscriber(self, subscriber: Subscriber) -> Operation[UpsertResult]:
        return completed(UpsertResult(reference=subscriber.email, status=UpsertStatus.CREATED))

    def send(self, message: EmailMessage) -> Operation[SendResult]:
        if self.fail_next:
            self.fail_next -= 1
            raise TransientError("smtp relay down", vendor=self.name)
        self.sent.append(message)
        yield from ()
        return SendResult(provider=self.name, message_id=f"m{len(self.sent)}", accepted=True)

    def erase(self, email: str) -> Operation[ErasureResult]:
        return completed(ErasureResult(provider=self.name, email=email, erased=True))


def created(cid: str = "c1", at: datetime = DAY0) -> Activity:
    return Activity(f"created:{cid}", cid, ActivityKind.CUSTOMER_CREATED, at)


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def people() -> dict[str, Recipient]:
    return {"c1": Recipient("c1", "eleni@example.gr", GRANTED, first_name="Ελένη")}


def runner_for(outbox: Outbox, people: dict[str, Recipient], **kwargs: Any) -> JourneyRunner:
    provider: EmailProvider = outbox
    return JourneyRunner(
        provider, Driver(sleep=lambda _s: None).run, directory_from(people), **kwargs
    )


def test_outbox_is_an_email_provider(outbox: Outbox) -> None:
    assert isinstance(outbox, EmailProvider)


def test_customer_who_orders_on_day_2_gets_no_day_3_or_day_7_mail(
    outbox: Outbox, people: dict[str, Recipient]
) -> None:
    runner = runner_for(outbox, people)
    history = [created()]
    clock = DAY0
    while clock <= DAY0 + timedelta(days=10):
        if clock == DAY0 + timedelta(days=2):
            history.append(Activity("o1", "c1", ActivityKind.ORDER_PLACED, clock, reference="o1"))
        runner.deliver(plan(BUILT_IN, history, clock), clock)
        clock += timedelta(hours=1)
    assert [m.template_id for m in outbox.sent] == ["welcome"]


def test_without_an_order_the_whole_series_goes_once_each(
    outbox: Outbox, people: dict[str, Recipient]
) -> None:
    runner = runner_for(outbox, people, recommend=lambda cid: ["HONEY-1", "FETA-2"])
    clock = DAY0
    while clock <= DAY0 + timedelta(days=10):
        runner.deliver(plan([WELCOME], [created()], clock), clock)
        clock += timedelta(hours=1)
    assert [m.template_id for m in outbox.sent] == [
        "welcome",
        "welcome_recommendations",
        "welcome_offer",
    ]
    assert outbox.sent[1].params["recommendations"] == "HONEY-1,FETA-2"
    assert outbox.sent[0].params["first_name"] == "Ελένη"
    assert len({m.idempotency_key for m in outbox.sent}) == 3


def test_a_redelivered_event_never_sends_twice(
    outbox: Outbox, people: dict[str, Recipient]
) -> None:
    runner = runner_for(outbox, people)
    first = runner.deliver(plan([WELCOME], [created()], DAY0), DAY0)
    again = plan([WELCOME], [created(), created()], DAY0 + timedelta(minutes=5))
    second = runner.deliver(again, DAY0 + timedelta(minutes=5))
    assert [d.status for d in first] == [DeliveryStatus.SENT]
    assert [d.status for d in second] == [DeliveryStatus.ALREADY_SENT]
    assert second[0].message_id == "m1"
    assert len(outbox.sent) == 1


def test_an_unsubscribe_between_planning_and_sending_stops_the_send(
    outbox: Outbox, people: dict[str, Recipient]
) -> None:
    runner = runner_for(outbox, people)
    due = plan([WELCOME], [created()], DAY0)
    assert len(due) == 1
    withdrawn = GRANTED.model_copy(update={"status": ConsentStatus.WITHDRAWN})
    people["c1"] = Recipient("c1", "eleni@example.gr", withdrawn)
    (delivery,) = runner.deliver(due, DAY0)
    assert delivery.status is DeliveryStatus.SKIPPED_NO_CONSENT
    assert outbox.sent == []
    record = runner.log.get(due[0].key)
    assert record is not None
    assert record.state == "skipped"


def test_unknown_consent_and_erased_customers_get_nothing(outbox: Outbox) -> None:
    people = {"c1": Recipient("c1", "a@b.gr", MarketingConsent())}
    runner = runner_for(outbox, people)
    sends = plan([WELCOME], [created("c1"), created("c2")], DAY0)
    statuses = [d.status for d in runner.deliver(sends, DAY0)]
    assert statuses == [DeliveryStatus.SKIPPED_NO_CONSENT, DeliveryStatus.SKIPPED_UNKNOWN_CUSTOMER]
    assert outbox.sent == []


def test_a_failed_send_is_retried_later_with_the_same_key(
    outbox: Outbox, people: dict[str, Recipient]
) -> None:
    runner = runner_for(outbox, people)
    due = plan([WELCOME], [created()], DAY0)
    outbox.fail_next = 1
    (failed,) = runner.deliver(due, DAY0)
    assert failed.status is DeliveryStatus.FAILED
    (sent,) = runner.deliver(due, DAY0 + timedelta(minutes=1))
    assert sent.status is DeliveryStatus.SENT
    record = runner.log.get(due[0].key)
    assert record is not None
    assert (record.state, record.attempts) == ("sent", 2)
    assert outbox.sent[0].idempotency_key == due[0].key


def test_nothing_marketing_goes_out_in_quiet_hours(
    outbox: Outbox, people: dict[str, Recipient]
) -> None:
    runner = runner_for(outbox, people)
    due = plan([WELCOME], [created()], DAY0)
    night = datetime(2026, 3, 3, 22, 0, tzinfo=ATHENS)
    assert [d.status for d in runner.deliver(due, night)] == [DeliveryStatus.DEFERRED_QUIET_HOURS]
    assert outbox.sent == []


def test_two_workers_sharing_a_log_send_once(
    outbox: Outbox, people: dict[str, Recipient], tmp_path: Path
) -> None:
    path = str(tmp_path / "sent.db")
    a = runner_for(outbox, people, log=SQLiteSentLog(path))
    b = runner_for(outbox, people, log=SQLiteSentLog(path))
    due = plan([WELCOME], [created()], DAY0)
    a.deliver(due, DAY0)
    assert [d.status for d in b.deliver(due, DAY0)] == [DeliveryStatus.ALREADY_SENT]
    assert len(outbox.sent) == 1


def test_a_stale_claim_is_taken_over_after_the_lease(
    outbox: Outbox, people: dict[str, Recipient]
) -> None:
    log = SQLiteSentLog()
    due = plan([WELCOME], [created()], DAY0)
    assert log.claim(due[0], DAY0, timedelta(minutes=10))  # a worker died after this
    runner = runner_for(outbox, people, log=log)
    assert [d.status for d in runner.deliver(due, DAY0)] == [DeliveryStatus.IN_PROGRESS]
    later = DAY0 + timedelta(minutes=11)
    assert [d.status for d in runner.deliver(due, later)] == [DeliveryStatus.SENT]


def test_naive_now_is_refused(outbox: Outbox, people: dict[str, Recipient]) -> None:
    with pytest.raises(InvalidInput):
        runner_for(outbox, people).deliver([], datetime(2026, 3, 3))


def test_async_runner_sends_once_too(outbox: Outbox, people: dict[str, Recipient]) -> None:
    async def run(operation: Operation[SendResult]) -> SendResult:
        try:
            next(operation)
        except StopIteration as stop:
            result: SendResult = stop.value
            return result
        raise AssertionError("the outbox makes no HTTP call")

    runner = AsyncJourneyRunner(outbox, run, directory_from(people))
    due = plan([WELCOME], [created()], DAY0)

    async def main() -> list[DeliveryStatus]:
        first = await runner.deliver(due, DAY0)
        second = await runner.deliver(due, DAY0 + timedelta(hours=1))
        return [d.status for d in (*first, *second)]

    assert asyncio.run(main()) == [DeliveryStatus.SENT, DeliveryStatus.ALREADY_SENT]
    assert len(outbox.sent) == 1
    assert outbox.sent[0].to == "eleni@example.gr"
    assert due[0].send_at == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)


# -- through a real provider: the Brevo sandbox, sync and async --------------------------------


def test_runner_sends_through_brevo_once_with_the_step_key(
    run: Runner, people: dict[str, Recipient]
) -> None:
    box = BrevoSandbox()
    box.bind("http://brevo.test")
    c = box.credentials()
    brevo = Brevo(
        BrevoConfig(
            api_key=SecretStr(c["api_key"]),
            base_url=c["base_url"],
            list_ids=(2,),
            sender_email="hello@dixis.gr",
        )
    )
    templates = {"welcome": "8", "welcome_recommendations": "8", "welcome_offer": "8"}
    runner = JourneyRunner(
        brevo, lambda op: run(box, op), directory_from(people), templates=templates
    )
    due = plan([WELCOME], [created()], DAY0)
    assert [d.status for d in runner.deliver(due, DAY0)] == [DeliveryStatus.SENT]
    assert [d.status for d in runner.deliver(due, DAY0)] == [DeliveryStatus.ALREADY_SENT]
    assert len(box.emails) == 1
    assert box.emails[0]["templateId"] == 8
    assert box.emails[0]["headers"] == {"idempotencyKey": due[0].key}
    assert box.emails[0]["to"] == [{"email": "eleni@example.gr"}]


# -- the sent log, on SQLite and on PostgreSQL -----------------------------------------------


def _postgres_log() -> PostgresSentLog:
    import psycopg

    dsn = require_postgres()
    schema = f"dixis_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    return PostgresSentLog(f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def sent_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SentLog]:
    log: SQLiteSentLog | PostgresSentLog
    log = _postgres_log() if request.param == "postgres" else SQLiteSentLog(str(tmp_path / "s.db"))
    yield log
    log.close()


def test_sent_log_claims_once_retries_failures_and_takes_over_stale_claims(
    sent_log: SentLog,
) -> None:
    (send,) = plan([WELCOME], [created()], DAY0)
    lease = timedelta(minutes=10)
    assert sent_log.claim(send, DAY0, lease)
    assert not sent_log.claim(send, DAY0 + timedelta(minutes=1), lease)  # in progress
    sent_log.finish(send.key, "failed", DAY0, message_id=None, reason="transient")
    assert sent_log.claim(send, DAY0 + timedelta(minutes=2), lease)  # a failure is retried
    assert not sent_log.claim(send, DAY0 + timedelta(minutes=11), lease)  # claim still fresh
    assert sent_log.claim(send, DAY0 + timedelta(minutes=12, seconds=1), lease)  # stale
    sent_log.finish(send.key, "sent", DAY0, message_id="m1", reason=None)
    assert not sent_log.claim(send, DAY0 + timedelta(days=1), lease)  # sent is final
    record = sent_log.get(send.key)
    assert record == SentRecord(send.key, "sent", 3, "m1", None)
    assert sent_log.get("unknown") is None
    with pytest.raises(ValueError, match="unknown send state"):
        sent_log.finish(send.key, "lost", DAY0, message_id=None, reason=None)


def test_only_one_of_many_threads_claims_a_send(sent_log: SentLog) -> None:
    (send,) = plan([WELCOME], [created()], DAY0)
    won: list[bool] = []
    lock = threading.Lock()

    def claim() -> None:
        ok = sent_log.claim(send, DAY0, timedelta(minutes=10))
        with lock:
            won.append(ok)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False] * 7 + [True]


def test_async_runner_sends_through_brevo_with_the_async_driver(
    people: dict[str, Recipient],
) -> None:
    box = BrevoSandbox()
    box.bind("http://brevo.test")
    c = box.credentials()
    brevo = Brevo(
        BrevoConfig(
            api_key=SecretStr(c["api_key"]),
            base_url=c["base_url"],
            list_ids=c["list_ids"],
            sender_email=c["sender_email"],
        )
    )

    async def main() -> list[DeliveryStatus]:
        async with httpx.AsyncClient(transport=box.transport()) as client:
            driver = AsyncDriver(client)
            runner = AsyncJourneyRunner(
                brevo, driver.run, directory_from(people), templates={"welcome": "8"}
            )
            due = plan([WELCOME], [created()], DAY0)
            first = await runner.deliver(due, DAY0)
            again = await runner.deliver(due, DAY0 + timedelta(hours=1))
            return [d.status for d in (*first, *again)]

    assert asyncio.run(main()) == [DeliveryStatus.SENT, DeliveryStatus.ALREADY_SENT]
    assert len(box.emails) == 1


def test_a_failing_directory_releases_the_claim(
    outbox: Outbox, people: dict[str, Recipient]
) -> None:
    class Broken:
        def recipient(self, customer_id: str) -> Recipient | None:
            raise RuntimeError("customer database down")

    runner = JourneyRunner(outbox, Driver().run, Broken())
    due = plan([WELCOME], [created()], DAY0)
    with pytest.raises(RuntimeError):
        runner.deliver(due, DAY0)
    record = runner.log.get(due[0].key)
    assert record is not None
    assert (record.state, record.reason) == ("failed", "RuntimeError")
    fixed = JourneyRunner(outbox, Driver().run, directory_from(people), runner.log)
    assert [d.status for d in fixed.deliver(due, DAY0)] == [DeliveryStatus.SENT]
