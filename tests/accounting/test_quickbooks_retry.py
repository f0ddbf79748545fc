"""Retried QuickBooks writes: a write whose answer is lost after QuickBooks applied it is
sent again byte for byte under the same ``requestid`` and gets the original answer back,
for invoices, payments, voids and refunds, in process, sync and async.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from tests.accounting.conftest import Runner, StaticBearer
from tests.models.factories import make_order
from tests.sync.market import MarketEmulator, connections

from dixis_integrations.accounting.quickbooks import QuickBooks, QuickBooksConfig
from dixis_integrations.models import Money, Payment, PaymentMethod, Refund, VatCategory
from dixis_integrations.models.events import OrderCreated, OrderPaid, OrderRefunded
from dixis_integrations.sandbox.quickbooks import QuickBooksSandbox
from dixis_integrations.sync.engine import Engine
from dixis_integrations.sync.journal import SQLiteJournal

PAID_AT = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)
CODES = {VatCategory.STANDARD: "1", VatCategory.REDUCED: "2", VatCategory.SUPER_REDUCED: "3"}


@pytest.fixture
def sandbox() -> QuickBooksSandbox:
    return QuickBooksSandbox()


def _adapter(sandbox: QuickBooksSandbox) -> QuickBooks:
    creds = sandbox.credentials()
    return QuickBooks(
        QuickBooksConfig(
            base_url=creds["base_url"],
            realm_id=creds["realm_id"],
            tax_codes=CODES,
            webhook_verifier_token=creds["webhook_verifier_token"],
        ),
        tenant="farm-a",
        auth=StaticBearer(creds["access_token"]),
    )


def _losing(
    sandbox: QuickBooksSandbox, mode: str, lose: Callable[[httpx.Request], bool]
) -> tuple[Runner, list[httpx.Request]]:
    """A runner whose transport drops the answer of the first write matching ``lose``
    AFTER the sandbox applied it (the client sees a read timeout)."""
    writes: list[httpx.Request] = []
    lost: list[bool] = []

    def transport(request: httpx.Request) -> httpx.Response:
        response = sandbox.handle(request)
        if request.method == "POST" and "requestid" in request.url.params:
            writes.append(request)
            if not lost and lose(request):
                lost.append(True)
                raise httpx.ReadTimeout("answer lost", request=request)
        return response

    return Runner(mode, httpx.MockTransport(transport)), writes


def _path(suffix: str) -> Callable[[httpx.Request], bool]:
    return lambda request: request.url.path.endswith(suffix)


def _same_write_twice(writes: list[httpx.Request], suffix: str) -> None:
    sent = [w for w in writes if w.url.path.endswith(suffix)]
    assert len(sent) == 2
    assert sent[0].url.params["requestid"] == sent[1].url.params["requestid"]
    assert sent[0].content == sent[1].content
    assert sent[0].url.query == sent[1].url.query


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_lost_invoice_answer_is_replayed_not_refused(
    sandbox: QuickBooksSandbox, mode: str
) -> None:
    run, writes = _losing(sandbox, mode, _path("/invoice"))
    posted = run(_adapter(sandbox).post_invoice(make_order()))
    assert posted.created is True
    _same_write_twice(writes, "/invoice")
    assert (sandbox.replayed, sandbox.replayed_other_request) == (1, 0)
    assert len(sandbox.companies[sandbox.realm_id].table("Invoice")) == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_lost_payment_answer_is_replayed_not_refused(
    sandbox: QuickBooksSandbox, mode: str
) -> None:
    qbo = _adapter(sandbox)
    order = make_order()
    Runner(mode, sandbox.transport())(qbo.post_invoice(order))
    run, writes = _losing(sandbox, mode, _path("/payment"))
    payment = Payment(
        id="pay_1",
        order_id=order.id,
        amount=Money.of("5.00"),
        method=PaymentMethod.CARD,
        paid_at=PAID_AT,
    )
    assert run(qbo.record_payment(payment)).created is True
    _same_write_twice(writes, "/payment")
    assert len(sandbox.companies[sandbox.realm_id].table("Payment")) == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_lost_void_answer_is_replayed_not_refused(sandbox: QuickBooksSandbox, mode: str) -> None:
    qbo = _adapter(sandbox)
    order = make_order()
    posted = Runner(mode, sandbox.transport())(qbo.post_invoice(order))
    run, writes = _losing(sandbox, mode, lambda r: r.url.params.get("operation") == "void")
    voided = run(qbo.void_invoice(order.id))
    assert voided.status == "VOIDED"
    _same_write_twice(writes, "/invoice")
    invoice = sandbox.companies[sandbox.realm_id].table("Invoice")[posted.external_id]
    assert invoice["SyncToken"] == "1"  # voided once, not twice


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_lost_refund_answer_is_replayed_not_refused(
    sandbox: QuickBooksSandbox, mode: str
) -> None:
    qbo = _adapter(sandbox)
    order = make_order()
    Runner(mode, sandbox.transport())(qbo.post_invoice(order))
    run, writes = _losing(sandbox, mode, _path("/creditmemo"))
    refund = Refund(id="ref_1", order_id=order.id, amount=Money.of("2.00"), created_at=PAID_AT)
    assert run(qbo.record_refund(refund)).created is True
    _same_write_twice(writes, "/creditmemo")
    assert len(sandbox.companies[sandbox.realm_id].table("CreditMemo")) == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_restarted_worker_builds_the_same_write_under_the_same_requestid(mode: str) -> None:
    order = make_order()
    writes: list[httpx.Request] = []
    for _ in range(2):  # two processes' worth: a fresh sandbox and a fresh adapter each
        sandbox = QuickBooksSandbox()
        Runner(mode, sandbox.transport())(_adapter(sandbox).post_invoice(order))
        writes += [r for r in sandbox.requests if r.url.path.endswith("/invoice")]
    assert len(writes) == 2
    assert writes[0].url.params["requestid"] == writes[1].url.params["requestid"]
    assert writes[0].content == writes[1].content


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_void_rerun_after_the_void_applied_is_a_new_request_not_a_reused_id(
    sandbox: QuickBooksSandbox, mode: str
) -> None:
    qbo = _adapter(sandbox)
    order = make_order()
    posted = Runner(mode, sandbox.transport())(qbo.post_invoice(order))
    Runner(mode, sandbox.transport())(qbo.void_invoice(order.id))
    again = Runner(mode, sandbox.transport())(_adapter(sandbox).void_invoice(order.id))
    assert again.status == "VOIDED"
    voids = [r for r in sandbox.requests if r.url.params.get("operation") == "void"]
    assert len({r.url.params["requestid"] for r in voids}) == 2  # SyncToken 0, then 1
    assert sandbox.replayed_other_request == 0
    table = sandbox.companies[sandbox.realm_id].table("Invoice")
    assert table[posted.external_id]["TotalAmt"] == 0


# -- the refund waits for the payment --------------------------------------------------------
def _engine(journal: SQLiteJournal) -> Engine:
    emulator = MarketEmulator()
    conns = connections("http://market.test", transport=emulator.transport(), kinds=("accounting",))
    return Engine(journal, conns, sleep=lambda s: None)


def _paid_and_refunded(order_id: str) -> tuple[OrderPaid, OrderRefunded]:
    paid = OrderPaid(
        order_id=order_id,
        payment=Payment(
            id="pay_1",
            order_id=order_id,
            amount=Money.of("5.00"),
            method=PaymentMethod.CARD,
            paid_at=PAID_AT,
        ),
    )
    refunded = OrderRefunded(
        order_id=order_id,
        refund=Refund(id="ref_1", order_id=order_id, amount=Money.of("2.00"), created_at=PAID_AT),
    )
    return paid, refunded


def test_a_refund_waits_for_the_orders_payment_still_in_flight(tmp_path: Path) -> None:
    journal = SQLiteJournal(tmp_path / "j.db")
    try:
        engine = _engine(journal)
        order = make_order()
        paid, refunded = _paid_and_refunded(order.id)
        (invoice,) = engine.submit(OrderCreated(order=order))
        (payment,) = engine.submit(paid)
        (refund,) = engine.submit(refunded)
        assert set(journal.get(refund).depends_on) == {invoice, payment}  # type: ignore[union-attr]
    finally:
        journal.close()


def test_a_refund_of_an_order_without_payment_waits_only_for_the_invoice(
    tmp_path: Path,
) -> None:
    journal = SQLiteJournal(tmp_path / "j.db")
    try:
        engine = _engine(journal)
        order = make_order()
        _, refunded = _paid_and_refunded(order.id)
        (invoice,) = engine.submit(OrderCreated(order=order))
        (refund,) = engine.submit(refunded)
        assert journal.get(refund).depends_on == (invoice,)  # type: ignore[union-attr]
    finally:
        journal.close()
