"""In-doubt writes: a write that may have reached a vendor which cannot tell is never repeated.

A vendor without idempotency keys or a lookup by our reference gets at most one attempt
that may have landed: a read timeout, a reset after sending, a 5xx or a worker lost while
running parks the job dead as ``in_doubt``; errors proving nothing was sent retry as
always. A vendor that can tell (here: idempotency keys) keeps retrying, with one effect.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dixis_integrations.errors import InvalidInput, ProviderTimeout, RateLimited, TransientError
from dixis_integrations.http import Driver, Endpoint, Operation, RetryPolicy
from dixis_integrations.models.events import OrderCreated
from dixis_integrations.protocols import Capability
from dixis_integrations.shipping.acs import ACS
from dixis_integrations.shipping.boxnow import BoxNow
from dixis_integrations.shipping.courier_center import CourierCenter
from dixis_integrations.shipping.elta import ELTA
from dixis_integrations.shipping.geniki import Geniki
from dixis_integrations.shipping.speedex import Speedex
from dixis_integrations.sync.engine import (
    IN_DOUBT,
    Connection,
    Engine,
    JobPolicy,
    may_have_reached_vendor,
)
from dixis_integrations.sync.journal import JobState, PostgresJournal, SQLiteJournal
from dixis_integrations.sync.marketday import market_day
from dixis_integrations.sync.steps import (
    Dependency,
    StepBook,
    StepContext,
    StepDefinition,
    builtin_steps,
)

from .conftest import Clock

AnyJournal = SQLiteJournal | PostgresJournal
BASE = "http://vendor.test"


class Vendor:
    """Takes writes; each POST follows the next scripted fault (``ok`` when none left)."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.effects: Counter[str] = Counter()
        self.keys: set[str] = set()
        self.reads = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.reads += 1
            fault = self.script.pop(0) if self.script and self.script[0] == "read503" else "ok"
            if fault == "read503":
                return httpx.Response(503, json={"error": "busy"})
            return httpx.Response(200, json={"ok": True})
        fault = self.script.pop(0) if self.script else "ok"
        if fault == "connect":
            raise httpx.ConnectError("refused", request=request)
        if fault == "429":
            return httpx.Response(429, json={"error": "slow down"})
        if fault == "400":
            return httpx.Response(400, json={"error": "bad"})
        if fault == "503_before":
            return httpx.Response(503, json={"error": "down"})
        ref = request.url.params["ref"]
        key = request.headers.get("Idempotency-Key")
        if key is None or key not in self.keys:
            self.effects[ref] += 1  # the vendor acted on it
        if key is not None:
            self.keys.add(key)
        if fault == "503":
            return httpx.Response(503, json={"error": "failed after acting"})
        if fault == "read_timeout":
            raise httpx.ReadTimeout("no answer", request=request)
        if fault == "reset":
            raise httpx.RemoteProtocolError("peer closed the connection", request=request)
        return httpx.Response(201, json={"id": f"V-{ref}"})


class Blind:
    """A vendor with neither idempotency keys nor a lookup by our reference."""

    name = "blind"
    capabilities: frozenset[Capability] = frozenset()

    def __init__(self) -> None:
        self.endpoint = Endpoint(vendor=self.name, base_url=BASE)

    def send(self, ref: str, key: str, *, read_first: bool = False) -> Operation[str]:
        if read_first:
            yield self.endpoint.request("GET", "/session", operation="session")
        resp = yield self.endpoint.request(
            "POST", "/parcels", operation="create", params={"ref": ref}
        )
        return str(resp.json()["id"])


class Keyed(Blind):
    """The same vendor, taking our idempotency key."""

    name = "keyed"
    capabilities = frozenset({Capability.IDEMPOTENCY_KEYS})

    def __init__(self) -> None:
        self.endpoint = Endpoint(
            vendor=self.name, base_url=BASE, idempotency_header="Idempotency-Key"
        )

    def send(self, ref: str, key: str, *, read_first: bool = False) -> Operation[str]:
        if read_first:
            yield self.endpoint.request("GET", "/session", operation="session")
        resp = yield self.endpoint.request(
            "POST", "/parcels", operation="create", params={"ref": ref}, idempotency_key=key
        )
        return str(resp.json()["id"])


def _send(ctx: StepContext) -> Operation[str]:
    event = ctx.event
    assert isinstance(event, OrderCreated)
    return ctx.adapter.send(  # type: ignore[no-any-return]
        event.order.id, ctx.job.key, read_first=getattr(ctx.adapter, "read_first", False)
    )


def _after(ctx: StepContext) -> Operation[str]:
    yield ctx.adapter.endpoint.request("GET", "/after", operation="after")
    return "after"


def _keyed(adapter: Any) -> bool:
    return Capability.IDEMPOTENCY_KEYS in adapter.capabilities


STEPS = StepBook(
    [
        StepDefinition(
            "send",
            "shipping",
            frozenset({"order.created"}),
            _send,
            (),
            "send the parcel",
            repeatable=_keyed,
        ),
        StepDefinition(
            "after", "shipping", frozenset({"order.created"}), _after, (Dependency("send"),)
        ),
    ]
)


def make_engine(journal: AnyJournal, clock: Clock, vendor: Vendor, adapter: Blind) -> Engine:
    client = httpx.Client(transport=httpx.MockTransport(vendor.handler))
    # one attempt per call: every retry decision is the engine's
    driver = Driver(client, retry=RetryPolicy(max_attempts=1), sleep=lambda s: None)
    return Engine(
        journal,
        [Connection("shipping", adapter.name, adapter, driver)],
        plan={"order.created": ["send", "after"]},
        steps=STEPS,
        policy=JobPolicy(backoff_initial=1.0, backoff_max=2.0, lease=30.0),
        clock=clock,
        sleep=clock.advance,
    )


def an_order() -> OrderCreated:
    return next(
        e
        for e in market_day(orders=2, seed=4, follow_ups=False).events
        if isinstance(e, OrderCreated)
    )


@pytest.fixture
def vendor() -> Vendor:
    return Vendor()


ADAPTERS: dict[str, Callable[[], Blind]] = {"blind": Blind, "keyed": Keyed}
MAY_HAVE_LANDED = ["503", "read_timeout", "reset"]
NOT_SENT = ["connect", "429", "503_before"]


@pytest.mark.parametrize("fault", MAY_HAVE_LANDED)
def test_a_write_that_may_have_landed_is_parked_at_a_vendor_that_cannot_tell(
    journal: AnyJournal, clock: Clock, vendor: Vendor, fault: str
) -> None:
    engine = make_engine(journal, clock, vendor, Blind())
    event = an_order()
    engine.submit(event)
    vendor.script = [fault]
    summary = engine.drain()
    send = next(o for o in summary.outcomes if o.step == "send")
    assert send.state is JobState.DEAD
    assert send.error_code == IN_DOUBT
    assert send.error is not None
    assert "replay" in send.error
    assert "blind" in send.error
    assert vendor.effects[event.order.id] == 1  # never a second one
    jobs = {j.step: j for j in journal.jobs()}
    assert jobs["send"].error_code == IN_DOUBT
    assert jobs["after"].state is JobState.DEAD  # its dependants die as for any dead job
    assert jobs["after"].error_code == "dependency_dead"
    assert [j.key for j in engine.in_doubt_jobs()] == [send.key]
    # the operator checked and found it there: nothing else runs
    assert engine.drain().executed == 0
    assert vendor.effects[event.order.id] == 1


@pytest.mark.parametrize("fault", MAY_HAVE_LANDED)
def test_a_vendor_taking_idempotency_keys_keeps_retrying_with_one_effect(
    journal: AnyJournal, clock: Clock, vendor: Vendor, fault: str
) -> None:
    engine = make_engine(journal, clock, vendor, Keyed())
    event = an_order()
    engine.submit(event)
    vendor.script = [fault]
    summary = engine.drain()
    assert [o.state for o in summary.outcomes] == [JobState.FAILED, JobState.DONE, JobState.DONE]
    assert summary.outcomes[0].error_code != IN_DOUBT
    assert vendor.effects[event.order.id] == 1


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@pytest.mark.parametrize("fault", NOT_SENT)
def test_errors_proving_nothing_was_sent_retry_at_any_vendor(
    journal: AnyJournal, clock: Clock, vendor: Vendor, fault: str, adapter: str
) -> None:
    engine = make_engine(journal, clock, vendor, ADAPTERS[adapter]())
    event = an_order()
    engine.submit(event)
    vendor.script = [fault] if fault != "503_before" else []
    if fault == "503_before":
        vendor.script = ["read503"]  # a 5xx on a read before the write: nothing written
        engine.connections[("shipping", adapter)].adapter.read_first = True  # type: ignore[attr-defined]
    summary = engine.drain()
    assert [o.state for o in summary.outcomes] == [JobState.FAILED, JobState.DONE, JobState.DONE]
    assert vendor.effects[event.order.id] == 1


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_a_refusal_is_dead_for_its_own_reason_not_in_doubt(
    journal: AnyJournal, clock: Clock, vendor: Vendor, adapter: str
) -> None:
    engine = make_engine(journal, clock, vendor, ADAPTERS[adapter]())
    engine.submit(an_order())
    vendor.script = ["400"]
    send = engine.drain().outcomes[0]
    assert send.state is JobState.DEAD
    assert send.error_code == "validation_rejected"


def _lose_an_attempt(engine: Engine, journal: AnyJournal, clock: Clock, *, sent: bool) -> None:
    """A worker claims the job, (maybe) sends the write, and dies before recording it."""
    (job,) = journal.claim("doomed", lease=engine.policy.lease)
    assert job.step == "send"
    assert not job.interrupted
    if sent:
        attempt = engine._prepare(job)
        attempt.connection.driver.run(attempt.operation)
    clock.advance(engine.policy.lease + 1)  # the lease expires: the worker is gone


@pytest.mark.parametrize("sent", [True, False])
def test_an_attempt_lost_with_its_worker_is_parked_then_replayed_by_hand(
    journal: AnyJournal, clock: Clock, vendor: Vendor, sent: bool
) -> None:
    engine = make_engine(journal, clock, vendor, Blind())
    event = an_order()
    engine.submit(event)
    _lose_an_attempt(engine, journal, clock, sent=sent)
    summary = engine.drain()
    send = next(o for o in summary.outcomes if o.step == "send")
    assert send.state is JobState.DEAD
    assert send.error_code == IN_DOUBT
    assert "lost" in (send.error or "")
    parked = journal.get(send.key)
    assert parked is not None
    assert parked.interrupted  # the journal knows the attempt before was lost
    assert vendor.effects[event.order.id] == (1 if sent else 0)
    # the operator checks at the vendor; replay re-runs it (and the dependants it took down)
    assert len(engine.replay(send.key)) == 2
    revived = journal.get(send.key)
    assert revived is not None
    assert revived.state is JobState.PENDING
    assert not revived.interrupted
    summary = engine.drain()
    assert [o.state for o in summary.outcomes] == [JobState.DONE, JobState.DONE]
    assert vendor.effects[event.order.id] == (2 if sent else 1)


def test_the_journal_tells_a_lost_attempt_from_a_failed_one(
    journal: AnyJournal, clock: Clock
) -> None:
    engine = make_engine(journal, clock, Vendor(), Blind())
    engine.submit(an_order())
    (job,) = journal.claim("a", lease=30.0, limit=1)
    assert not job.interrupted  # first claim
    clock.advance(10)
    assert journal.claim("b", lease=30.0) == []  # still leased
    clock.advance(21)
    (job,) = journal.claim("b", lease=30.0)
    assert job.interrupted  # a's lease expired while running
    assert job.attempts == 2
    assert journal.fail(job.key, "b", error_code="x", message="x", retry_at=_at(clock))
    clock.advance(1)
    (job,) = journal.claim("c", lease=30.0)
    assert not job.interrupted  # b failed and said so: not lost
    assert journal.heartbeat(job.key, "c", lease=30.0)
    clock.advance(20)
    assert journal.heartbeat(job.key, "c", lease=30.0)
    clock.advance(20)
    assert journal.claim("d", lease=30.0) == []  # the heartbeat kept it


def _at(clock: Clock) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(clock.now, UTC)


def test_an_attempt_lost_at_a_vendor_that_can_tell_is_repeated_once(
    journal: AnyJournal, clock: Clock, vendor: Vendor
) -> None:
    engine = make_engine(journal, clock, vendor, Keyed())
    event = an_order()
    engine.submit(event)
    _lose_an_attempt(engine, journal, clock, sent=True)
    summary = engine.drain()
    assert [o.state for o in summary.outcomes] == [JobState.DONE, JobState.DONE]
    assert vendor.effects[event.order.id] == 1


def test_a_write_answered_before_a_later_failure_is_in_doubt(
    journal: AnyJournal, clock: Clock, vendor: Vendor
) -> None:
    def then_fail(ctx: StepContext) -> Operation[str]:
        yield from _send(ctx)
        raise ValueError("the answer did not parse")

    steps = StepBook(
        [
            StepDefinition(
                "send", "shipping", frozenset({"order.created"}), then_fail, repeatable=_keyed
            )
        ]
    )
    engine = make_engine(journal, clock, vendor, Blind())
    engine.steps = steps
    engine.plan_config["order.created"] = ("send",)
    event = an_order()
    engine.submit(event)
    (outcome,) = engine.drain().outcomes
    assert outcome.error_code == IN_DOUBT
    assert "ValueError" in (outcome.error or "")
    assert vendor.effects[event.order.id] == 1


def test_the_built_in_shipment_step_parks_only_at_carriers_that_cannot_tell() -> None:
    shipment = next(s for s in builtin_steps() if s.name == "shipment")
    cannot = [ACS, CourierCenter, Geniki, Speedex]
    can = [ELTA, BoxNow]
    assert [c.__name__ for c in cannot if shipment.can_repeat(c)] == []
    assert [c.__name__ for c in can if not shipment.can_repeat(c)] == []
    others = [s for s in builtin_steps() if s.name != "shipment"]
    assert all(s.can_repeat(object()) for s in others if s.repeatable is None)


@pytest.mark.parametrize(
    ("exc", "landed"),
    [
        (InvalidInput("no sender"), False),
        (RateLimited("429", status_code=429), False),
        (RateLimited("503 with Retry-After", status_code=503), True),
        (TransientError("HTTP 503", status_code=503), True),
        (TransientError("transport failure (ReadError)"), True),
        (ProviderTimeout("deadline passed before sending"), False),
        (ValueError("a bug after the call"), True),
    ],
)
def test_which_errors_may_have_reached_the_vendor(exc: Exception, landed: bool) -> None:
    assert may_have_reached_vendor(exc) is landed


def test_a_read_timeout_may_have_reached_the_vendor() -> None:
    exc = ProviderTimeout("no answer in time (ReadTimeout)")
    exc.__cause__ = httpx.ReadTimeout("t")
    assert may_have_reached_vendor(exc)


@pytest.fixture
def old_sqlite(tmp_path: Any) -> str:
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE dixis_jobs (key TEXT PRIMARY KEY, tenant TEXT NOT NULL, "
        "event_id TEXT NOT NULL, event_type TEXT NOT NULL, step TEXT NOT NULL, "
        "kind TEXT NOT NULL, provider TEXT NOT NULL, state TEXT NOT NULL, "
        "payload TEXT NOT NULL, depends_on TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
        "external_id TEXT, result TEXT, error_code TEXT, error_message TEXT, "
        "next_attempt_at DOUBLE PRECISION, lease_until DOUBLE PRECISION, worker TEXT, "
        "created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL, "
        "started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION, duration DOUBLE PRECISION)"
    )
    conn.execute(
        "INSERT INTO dixis_jobs VALUES ('k', 'default', 'e', 'order.created', 'send', "
        "'shipping', 'blind', 'running', '{}', '[]', 1, NULL, NULL, NULL, NULL, NULL, 1.0, "
        "'gone', 0.5, 0.5, 0.5, NULL, NULL)"
    )
    conn.commit()
    conn.close()
    return str(path)


def test_a_journal_from_before_the_lost_attempt_column_is_migrated(old_sqlite: str) -> None:
    journal = SQLiteJournal(old_sqlite)
    try:
        (job,) = journal.claim("w", lease=30.0)
        assert job.key == "k"
        assert job.interrupted  # it was running with an expired lease
    finally:
        journal.close()
    SQLiteJournal(old_sqlite).close()  # opening again is harmless


@pytest.mark.services
def test_a_postgres_journal_from_before_the_lost_attempt_column_is_migrated() -> None:
    import psycopg

    from .conftest import postgres_schema_dsn

    dsn = postgres_schema_dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE dixis_jobs (key TEXT PRIMARY KEY, tenant TEXT NOT NULL, "
            "event_id TEXT NOT NULL, event_type TEXT NOT NULL, step TEXT NOT NULL, "
            "kind TEXT NOT NULL, provider TEXT NOT NULL, state TEXT NOT NULL, "
            "payload TEXT NOT NULL, depends_on TEXT NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, external_id TEXT, result TEXT, "
            "error_code TEXT, error_message TEXT, next_attempt_at DOUBLE PRECISION, "
            "lease_until DOUBLE PRECISION, worker TEXT, created_at DOUBLE PRECISION NOT NULL, "
            "updated_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION, "
            "finished_at DOUBLE PRECISION, duration DOUBLE PRECISION)"
        )
        conn.execute(
            "INSERT INTO dixis_jobs VALUES ('k', 'default', 'e', 'order.created', 'send', "
            "'shipping', 'blind', 'running', '{}', '[]', 1, NULL, NULL, NULL, NULL, NULL, 1.0, "
            "'gone', 0.5, 0.5, 0.5, NULL, NULL)"
        )
    journal = PostgresJournal(dsn)
    try:
        (job,) = journal.claim("w", lease=30.0)
        assert job.key == "k"
        assert job.interrupted
    finally:
        journal.close()
    PostgresJournal(dsn).close()  # opening again is harmless


def test_replay_all_dead_leaves_the_jobs_in_doubt_to_a_person(
    tmp_path: Any, clock: Clock, vendor: Vendor, capsys: pytest.CaptureFixture[str]
) -> None:
    from dixis_integrations.cli import main

    journal = SQLiteJournal(tmp_path / "j.db", clock=clock)
    engine = make_engine(journal, clock, vendor, Blind())
    event = an_order()
    engine.submit(event)
    vendor.script = ["503"]
    engine.drain()
    other = next(
        e
        for e in market_day(orders=3, seed=9, follow_ups=False).events
        if isinstance(e, OrderCreated) and e.order.id != event.order.id
    )
    engine.submit(other)
    vendor.script = ["400"]  # refused: dead for its own reason, safe to replay
    engine.drain()
    dead = {j.key: j.error_code for j in journal.jobs(state=JobState.DEAD)}
    assert sorted(dead.values()) == sorted(
        [IN_DOUBT, "dependency_dead", "validation_rejected", "dependency_dead"]
    )
    journal.close()
    config = tmp_path / "dixis.toml"
    config.write_text(f'[journal]\nurl = "sqlite:///{tmp_path / "j.db"}"\n', encoding="utf-8")
    assert main(["jobs", "--config", str(config), "replay", "--all-dead"]) == 0
    assert "1 job(s) in doubt left dead" in capsys.readouterr().err
    journal = SQLiteJournal(tmp_path / "j.db", clock=clock)
    try:
        left = {j.error_code for j in journal.jobs(state=JobState.DEAD)}
        assert left == {IN_DOUBT, "dependency_dead"}  # the parked job and its dependant
        assert len(journal.jobs(state=JobState.PENDING)) == 2  # the refused order's jobs
        (parked,) = [k for k, code in dead.items() if code == IN_DOUBT]
        assert main(["jobs", "--config", str(config), "replay", parked]) == 0  # by KEY
        assert journal.jobs(state=JobState.DEAD) == []
    finally:
        journal.close()


def test_a_job_found_at_the_vendor_is_resolved_by_hand_and_its_dependants_run(
    tmp_path: Any, clock: Clock, vendor: Vendor, capsys: pytest.CaptureFixture[str]
) -> None:
    from dixis_integrations.cli import main

    journal = SQLiteJournal(tmp_path / "j.db", clock=clock)
    engine = make_engine(journal, clock, vendor, Blind())
    event = an_order()
    engine.submit(event)
    vendor.script = ["503"]  # the vendor acted, then failed: the parcel exists
    engine.drain()
    (parked,) = engine.in_doubt_jobs()
    assert vendor.effects[event.order.id] == 1
    journal.close()
    config = tmp_path / "dixis.toml"
    config.write_text(f'[journal]\nurl = "sqlite:///{tmp_path / "j.db"}"\n', encoding="utf-8")
    jobs = ["jobs", "--config", str(config)]
    assert main([*jobs, "resolve", parked.key, "--external-id", " "]) == 2
    assert main([*jobs, "resolve", parked.key, "--external-id", "V-1", "--result", "{"]) == 2
    assert main([*jobs, "resolve", "no-such-key", "--external-id", "V-1"]) == 2
    capsys.readouterr()
    assert main([*jobs, "resolve", parked.key, "--external-id", f"V-{event.order.id}"]) == 0
    assert "1 job(s) waiting on it back to pending" in capsys.readouterr().out
    assert main([*jobs, "resolve", parked.key, "--external-id", "V-2"]) == 1  # not dead now
    journal = SQLiteJournal(tmp_path / "j.db", clock=clock)
    engine = make_engine(journal, clock, vendor, Blind())
    try:
        done = journal.get(parked.key)
        assert done is not None
        assert done.state is JobState.DONE
        assert done.external_id == f"V-{event.order.id}"
        engine.drain()
        assert {j.step: j.state for j in journal.jobs()} == {
            "send": JobState.DONE,
            "after": JobState.DONE,
        }
        assert vendor.effects[event.order.id] == 1  # never sent twice
    finally:
        journal.close()


def test_the_shipment_step_rebuilds_the_shipment_a_person_found(tmp_path: Any) -> None:
    from dixis_integrations.models.shipping import Shipment
    from dixis_integrations.sync.journal import JobSpec

    journal = SQLiteJournal(tmp_path / "j.db")
    try:
        event = an_order()
        spec = JobSpec(
            tenant=event.tenant,
            event_id=event.event_id,
            event_type=event.type,
            step="shipment",
            kind="shipping",
            provider="acs",
            payload=event.model_dump_json(),
        )
        journal.enqueue([spec])
        (job,) = journal.claim("w", lease=30)
        journal.kill(job.key, "w", error_code=IN_DOUBT, message="check ACS")
        engine = Engine(journal)
        with pytest.raises(InvalidInput):
            engine.resolve("missing", "7401234567")
        assert engine.resolve(job.key, "7401234567") == [job.key]
        resolved = journal.get(job.key)
        assert resolved is not None
        assert resolved.result is not None
        shipment = Shipment.model_validate(resolved.result)
        assert (shipment.carrier, shipment.reference, shipment.tracking_number) == (
            "acs",
            event.order.id,
            "7401234567",
        )
    finally:
        journal.close()
