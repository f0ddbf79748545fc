"""The engine: planning, dependencies, outcomes, retries and dead jobs, on the market vendor."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from dixis_integrations.errors import Conflict, RateLimited, ValidationRejected
from dixis_integrations.http import Driver, Operation
from dixis_integrations.models.events import OrderCreated, OrderPaid
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.sync.engine import CallRecorder, Connection, Engine, JobPolicy
from dixis_integrations.sync.journal import JobState, SQLiteJournal
from dixis_integrations.sync.marketday import SENDER, market_day
from dixis_integrations.sync.steps import StepBook, StepDefinition, StepSettings, builtin_steps

from .market import MarketEmulator, connections

BASE = "http://market.test"


@pytest.fixture
def emulator() -> MarketEmulator:
    return MarketEmulator()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SQLiteJournal]:
    j = SQLiteJournal(tmp_path / "j.db")
    yield j
    j.close()


def make_engine(
    journal: SQLiteJournal,
    emulator: MarketEmulator,
    *,
    kinds: tuple[str, ...] = ("accounting", "inventory", "shipping", "crm", "email"),
    policy: JobPolicy | None = None,
    **kw: object,
) -> Engine:
    conns = connections(
        BASE, transport=emulator.transport(), on_call=CallRecorder(journal), kinds=kinds
    )
    return Engine(
        journal,
        conns,
        settings=StepSettings(sender=SENDER),
        policy=policy or JobPolicy(backoff_initial=0.001, backoff_max=0.01),
        sleep=lambda s: None,
        **kw,  # type: ignore[arg-type]
    )


def first_order() -> OrderCreated:
    day = market_day(orders=3, seed=1, follow_ups=False)
    event = next(e for e in day.events if isinstance(e, OrderCreated))
    return event


def test_order_created_default_plan_has_the_five_steps(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    engine = make_engine(journal, emulator)
    specs = engine.plan(first_order())
    assert [(s.step, s.kind, s.provider) for s in specs] == [
        ("invoice", "accounting", "ledger"),
        ("inventory", "inventory", "stock"),
        ("shipment", "shipping", "carrier"),
        ("crm_contact", "crm", "crm"),
        ("journey", "email", "mailer"),
    ]
    assert journal.jobs() == []  # planning records nothing


def test_steps_whose_area_is_not_configured_are_skipped_with_the_reason(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    engine = make_engine(journal, emulator, kinds=("accounting", "crm"))
    planned, skipped = engine.planned_steps("order.created")
    assert [p.step for p in planned] == ["invoice", "crm_contact"]
    assert "inventory: no inventory integration configured" in skipped
    assert "shipment: no shipping integration configured" in skipped


def test_host_chooses_steps_and_providers_per_event_type(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    engine = make_engine(journal, emulator, plan={"order.created": ["shipment:carrier"]})
    assert [s.step for s in engine.plan(first_order())] == ["shipment"]
    _, skipped = make_engine(
        journal, emulator, plan={"order.created": ["shipment:acs"]}
    ).planned_steps("order.created")
    assert skipped == ["shipment: shipping integration 'acs' is not configured"]


def test_an_order_goes_through_every_step_once(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    engine = make_engine(journal, emulator)
    event = first_order()
    order = event.order
    keys = engine.submit(event)
    assert engine.submit(event) == keys  # at-least-once delivery: same jobs
    summary = engine.drain()
    assert summary.done == 5
    assert summary.dead == 0
    assert emulator.invoice_writes[order.id] == 1
    assert list(emulator.vouchers) == [order.id]
    assert emulator.contact_writes[order.customer.email] == 1
    assert len(emulator.messages) == 1
    for line in order.lines:
        assert emulator.stock[line.sku] == -line.quantity
    jobs = {j.step: j for j in journal.jobs()}
    assert jobs["invoice"].external_id == "INV-1"
    assert jobs["shipment"].external_id == emulator.vouchers[order.id]
    assert jobs["invoice"].result is not None
    assert jobs["invoice"].result["reference"] == order.id
    # resubmitting a finished event does nothing at the vendor
    engine.submit(event)
    assert engine.drain().executed == 0
    assert emulator.invoice_writes[order.id] == 1


def test_payment_waits_for_the_invoice_of_its_order(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    engine = make_engine(journal, emulator, kinds=("accounting",))
    day = market_day(orders=5, seed=3)
    created = next(e for e in day.events if isinstance(e, OrderCreated))
    paid = next(
        e for e in day.events if isinstance(e, OrderPaid) and e.order_id == created.order.id
    )
    engine.submit(paid)  # the payment arrives first
    assert engine.drain().executed == 0
    assert journal.jobs(state=JobState.PENDING)[0].step == "payment"
    engine.submit(created)
    summary = engine.drain()
    assert [o.step for o in summary.outcomes] == ["invoice", "payment"]
    assert emulator.payments == {paid.payment.id: "PAY-1"}


def test_rate_limited_reschedules_at_retry_at_without_blocking(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    emulator.faults = FaultPlan(script=deque([Fault.RATE_LIMIT] * 3), retry_after=120)
    engine = make_engine(journal, emulator, kinds=("accounting",))
    engine.submit(first_order())
    before = datetime.now(UTC)
    summary = engine.drain(wait=False)
    assert summary.failed == 1
    (outcome,) = summary.outcomes
    assert outcome.error_code == "rate_limited"
    assert outcome.retry_at is not None
    assert outcome.retry_at >= before + timedelta(seconds=119)
    (job,) = journal.jobs()
    assert job.state is JobState.FAILED
    assert job.next_attempt_at == outcome.retry_at


def test_transient_errors_are_retried_until_done(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    emulator.faults = FaultPlan(rate=0.5, kinds=(Fault.SERVER_ERROR, Fault.RESET), seed=4)
    engine = make_engine(journal, emulator)
    for e in market_day(orders=10, seed=5, follow_ups=False).events:
        engine.submit(e)
    engine.drain()
    counts = journal.counts()
    assert counts[JobState.DEAD] == 0
    assert counts[JobState.DONE] == len(journal.jobs())
    assert all(n == 1 for n in emulator.invoice_writes.values())


def test_a_lost_answer_after_the_write_landed_duplicates_nothing(
    journal: SQLiteJournal,
) -> None:
    emulator = MarketEmulator(lose_answers=0.4, seed=9)
    engine = make_engine(journal, emulator)
    day = market_day(orders=15, seed=6, follow_ups=False)
    for e in day.events:
        engine.submit(e)
    engine.drain()
    assert journal.counts()[JobState.DONE] == len(journal.jobs())
    assert emulator.voucher_writes.total() >= 15  # some answers were lost...
    assert len(emulator.vouchers) == 15  # ...and each order still has one voucher
    assert all(n == 1 for n in emulator.invoice_writes.values())
    assert len(emulator.messages) == 15


def _always(exc: Exception) -> StepDefinition:
    def handler(ctx: object) -> Operation[None]:
        raise exc
        yield  # pragma: no cover

    return StepDefinition("boom", "accounting", frozenset({"order.created"}), handler)


def test_a_permanent_error_makes_the_job_dead_with_the_reason(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    book = StepBook([*builtin_steps(), _always(ValidationRejected("bad VAT", vendor="ledger"))])
    engine = make_engine(
        journal, emulator, kinds=("accounting",), steps=book, plan={"order.created": ["boom"]}
    )
    engine.submit(first_order())
    summary = engine.drain()
    assert summary.dead == 1
    (dead,) = engine.dead_jobs()
    assert dead.error_code == "validation_rejected"
    assert dead.error_message == "[ledger] bad VAT"
    assert dead.attempts == 1


def test_retryable_errors_go_dead_after_max_attempts_and_replay_runs_them_again(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    book = StepBook([*builtin_steps(), _always(RuntimeError("bug"))])
    engine = make_engine(
        journal,
        emulator,
        kinds=("accounting",),
        steps=book,
        plan={"order.created": ["boom"]},
        policy=JobPolicy(max_attempts=3, backoff_initial=0.0, backoff_max=0.0),
    )
    engine.submit(first_order())
    engine.drain()
    (dead,) = engine.dead_jobs()
    assert dead.attempts == 3
    assert dead.error_code == "internal"
    assert "RuntimeError: bug" in (dead.error_message or "")
    book.add(StepDefinition("boom", "accounting", frozenset({"order.created"}), lambda c: _ok()))
    assert engine.replay(dead.key) == [dead.key]
    assert engine.drain().done == 1
    assert engine.dead_jobs() == []


def _ok() -> Operation[str]:
    return "fixed"
    yield  # pragma: no cover


def test_rate_limited_forever_goes_dead(journal: SQLiteJournal, emulator: MarketEmulator) -> None:
    retry_at = datetime.now(UTC) - timedelta(seconds=1)
    book = StepBook([*builtin_steps(), _always(RateLimited("slow", retry_at=retry_at))])
    engine = make_engine(
        journal,
        emulator,
        kinds=("accounting",),
        steps=book,
        plan={"order.created": ["boom"]},
        policy=JobPolicy(max_rate_limited=4),
    )
    engine.submit(first_order())
    summary = engine.drain()
    assert summary.failed == 3
    assert summary.dead == 1


def test_every_vendor_call_is_in_the_audit_log_with_its_job(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    engine = make_engine(journal, emulator, kinds=("accounting", "shipping"))
    engine.submit(first_order())
    engine.drain()
    writes = journal.calls(writes_only=True)
    ops = sorted(c.operation for c in writes)
    assert ops == ["carrier.create_voucher", "ledger.create_invoice"]
    jobs = {j.key for j in journal.jobs()}
    assert all(c.job_key in jobs for c in writes)
    invoice_call = next(c for c in writes if c.operation == "ledger.create_invoice")
    assert invoice_call.idempotency_key is not None
    assert invoice_call.status_code == 201


def test_shipment_without_a_sender_is_dead_naming_the_setting(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    conns = connections(BASE, transport=emulator.transport(), kinds=("shipping",))
    engine = Engine(journal, conns, sleep=lambda s: None)
    engine.submit(first_order())
    engine.drain()
    (dead,) = engine.dead_jobs()
    assert dead.error_code == "invalid_input"
    assert "shipping.sender" in (dead.error_message or "")
    assert emulator.vouchers == {}


def test_a_job_for_a_provider_no_longer_configured_is_dead(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    make_engine(journal, emulator).submit(first_order())
    engine = make_engine(journal, emulator, kinds=("crm",))
    engine.drain()
    dead = {j.step: j.error_code for j in engine.dead_jobs()}
    assert dead == {
        "invoice": "configuration",
        "inventory": "configuration",
        "shipment": "configuration",
        "journey": "configuration",
    }


def test_drain_waits_for_a_rescheduled_job_then_finishes(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    emulator.faults = FaultPlan(script=deque([Fault.RATE_LIMIT] * 3), retry_after=0.05)
    engine = Engine(
        journal,
        connections(BASE, transport=emulator.transport(), kinds=("accounting",)),
        policy=JobPolicy(backoff_initial=0.01),
    )
    engine.submit(first_order())
    summary = engine.drain(max_wait=30)
    assert summary.done == 1
    assert summary.failed >= 1


def test_driver_errors_for_unknown_transport_still_leave_a_record(
    journal: SQLiteJournal,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    conns = [
        Connection(
            c.kind,
            c.name,
            c.adapter,
            Driver(
                httpx.Client(transport=httpx.MockTransport(refuse)),
                sleep=lambda s: None,
                on_call=CallRecorder(journal),
            ),
        )
        for c in connections(BASE, kinds=("accounting",))
    ]
    engine = Engine(journal, conns, policy=JobPolicy(max_attempts=2, backoff_initial=0.0))
    engine.submit(first_order())
    engine.drain(max_wait=5)
    (dead,) = engine.dead_jobs()
    assert dead.error_code == "transient"
    assert all(c.error_code == "transient" for c in journal.calls())
    assert Decimal(len(journal.calls())) == 2


def test_a_conflict_is_tried_again_a_few_times_then_dead(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    book = StepBook([*builtin_steps(), _always(Conflict("Duplicate Name", vendor="ledger"))])
    engine = make_engine(
        journal, emulator, kinds=("accounting",), steps=book, plan={"order.created": ["boom"]}
    )
    engine.submit(first_order())
    summary = engine.drain()
    assert [o.state for o in summary.outcomes] == [
        JobState.FAILED,
        JobState.FAILED,
        JobState.DEAD,
    ]
    assert engine.dead_jobs()[0].error_code == "conflict"


def test_contact_jobs_run_one_at_a_time_per_customer_not_per_crm(
    journal: SQLiteJournal, emulator: MarketEmulator
) -> None:
    from dixis_integrations.models.events import OrderCancelled
    from dixis_integrations.sync.history import JournalOrderHistory

    day = market_day(orders=40, seed=3, follow_ups=False)
    created = [e for e in day.events if isinstance(e, OrderCreated)]
    by_customer: dict[str, list[OrderCreated]] = {}
    for e in created:
        by_customer.setdefault(e.order.customer.id, []).append(e)
    repeat = next(orders for orders in by_customer.values() if len(orders) > 1)
    other = next(orders[0] for c, orders in by_customer.items() if c != repeat[0].order.customer.id)
    conns = connections(BASE, transport=emulator.transport(), kinds=("inventory", "crm"))
    engine = Engine(
        journal, conns, settings=StepSettings(sender=SENDER, history=JournalOrderHistory(journal))
    )

    def lanes(event: OrderCreated | OrderCancelled) -> dict[str, str | None]:
        return {s.step: s.lane for s in engine.plan(event)}

    first, second = lanes(repeat[0]), lanes(repeat[1])
    assert first["crm_contact"] == second["crm_contact"]  # one customer: one lane
    assert first["crm_contact"] == f"crm:crm:customer:{repeat[0].order.customer.id}"
    assert lanes(other)["crm_contact"] != first["crm_contact"]  # others run beside it
    assert first["inventory"] == "inventory:stock"  # stock stays one lane per vendor
    # a cancellation names only the order: its customer is found in the history
    engine.submit(repeat[0])
    cancel = OrderCancelled(order_id=repeat[0].order.id)
    assert lanes(cancel)["crm_contact_update"] == first["crm_contact"]
