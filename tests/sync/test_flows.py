"""The steps after an order: CRM aggregates, journey content per provider, reorders,
deliveries and consent, through the engine on the sandboxes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from tests.models.factories import make_customer, make_order

from dixis_integrations.http.driver import Driver
from dixis_integrations.hub import Integrations
from dixis_integrations.inventory.ledger import StockLedger
from dixis_integrations.inventory.purchasing import SQLitePurchaseOrders
from dixis_integrations.marketing.smtp import SMTP, SMTPConfig
from dixis_integrations.models.customer import AcquisitionSource
from dixis_integrations.models.events import (
    ConsentWithdrawn,
    CustomerCreated,
    OrderCancelled,
    OrderCreated,
    OrderRefunded,
    ShipmentStatusChanged,
    StockLow,
)
from dixis_integrations.models.inventory import PurchaseOrder, StockLevel
from dixis_integrations.models.money import Money
from dixis_integrations.models.order import OrderStatus, Refund
from dixis_integrations.models.product import Product, Supplier
from dixis_integrations.models.shipping import TrackingStatus
from dixis_integrations.models.tax import VatCategory
from dixis_integrations.sync.engine import Connection, Engine
from dixis_integrations.sync.flows import MessageTemplate, Replenishment
from dixis_integrations.sync.history import (
    CustomerHistory,
    JournalOrderHistory,
    MemoryOrderHistory,
    contact_from_history,
)
from dixis_integrations.sync.journal import JobSpec, JobState, SQLiteJournal
from dixis_integrations.sync.steps import DEFAULT_PLAN_STEPS, StepSettings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def hubspot_contact(hub: Integrations) -> dict[str, Any]:
    (contact,) = hub.emulators["hubspot"].contacts.values()
    return dict(contact["properties"])


# -- CRM aggregates -------------------------------------------------------------------


def test_contacts_carry_the_aggregates_of_every_order_refunds_and_cancellations_excluded() -> None:
    customer = make_customer(acquisition=AcquisitionSource(channel="referral"))
    orders = [make_order(id=f"o{i}", customer=customer, created_at=day(i)) for i in range(3)]
    with Integrations.sandbox(only=["hubspot"]) as hub:
        for order in orders:
            hub.dispatch(OrderCreated(order=order))
        after_three = hubspot_contact(hub)
        assert after_three["dixis_total_orders"] == "3"
        assert after_three["dixis_total_spent"] == str((orders[0].total * 3).amount)
        assert after_three["dixis_last_order_date"] == day(2).date().isoformat()
        assert after_three["dixis_segment"] == "returning"
        refund = Refund(id="r1", order_id="o2", amount=orders[2].total, created_at=day(5))
        hub.dispatch(OrderRefunded(order_id="o2", refund=refund))
        after_refund = hubspot_contact(hub)
        assert after_refund["dixis_total_orders"] == "2"
        assert after_refund["dixis_last_order_date"] == day(1).date().isoformat()
        hub.dispatch(OrderCancelled(order_id="o1"))
        after_cancel = hubspot_contact(hub)
        assert after_cancel["dixis_total_orders"] == "1"
        assert after_cancel["dixis_total_spent"] == str(orders[0].total.amount)
        assert after_cancel["dixis_segment"] == "new"
        states = {(j.step, j.state) for j in hub.journal.jobs()}
        assert ("crm_contact_update", JobState.DONE) in states
        assert all(j.state is JobState.DONE for j in hub.journal.jobs())


def test_contact_from_history_excludes_cancelled_and_fully_refunded_and_keeps_first_source() -> (
    None
):
    first = make_customer(acquisition=AcquisitionSource(channel="paid_search"))
    now = make_customer(acquisition=AcquisitionSource(channel="email"))
    a = make_order(id="a", customer=first, created_at=day(0))
    b = make_order(id="b", customer=now, created_at=day(3))
    c = make_order(id="c", customer=now, created_at=day(4), status=OrderStatus.CANCELLED)
    partial = Refund(id="r", order_id="b", amount=Money.of("2.40"))
    contact = contact_from_history(now, CustomerHistory([a, b, c], [partial]))
    assert contact.total_orders == 2
    assert contact.total_spent == a.total + b.total - Money.of("2.40")
    assert contact.last_order_date == day(3).date()
    assert contact.acquisition is not None
    assert contact.acquisition.channel == "paid_search"
    assert contact.segment == "returning"


def test_the_journal_history_survives_a_new_engine_and_counts_each_order_once(
    tmp_path: Any,
) -> None:
    journal = SQLiteJournal(tmp_path / "j.db")
    history = JournalOrderHistory(journal)
    order = make_order(id="o9", created_at=day(0))
    payload = OrderCreated(order=order).model_dump_json()
    journal.enqueue(
        [
            JobSpec(
                "default", "order.created:o9", "order.created", "crm_contact", "crm", "x", payload
            )
        ]
    )
    history.note_order("default", "x", order)
    history.note_order("default", "x", order)
    again = JournalOrderHistory(SQLiteJournal(tmp_path / "j.db"))
    found = again.customer("default", "x", order.customer.id)
    assert [o.id for o in found.orders] == ["o9"]
    assert again.customer("default", "other", order.customer.id).orders == []


# -- journey content per provider ----------------------------------------------------


def test_brevo_gets_a_full_message_without_a_mapped_template_and_the_id_with_one() -> None:
    order = make_order(id="o-31")
    with Integrations.sandbox(only=["brevo"]) as hub:
        hub.engine.settings = replace(hub.engine.settings, email_templates={})
        hub.dispatch(OrderCreated(order=order))
        (sent,) = hub.emulators["brevo"].emails
        assert "templateId" not in sent
        assert sent["subject"] == "Η παραγγελία σας o-31"
        assert order.customer.first_name in sent["htmlContent"]
        assert "o-31" in sent["textContent"]
        assert "$" not in sent["textContent"]
        hub.engine.settings = replace(hub.engine.settings, email_templates={"brevo": "8"})
        hub.dispatch(OrderCreated(order=make_order(id="o-32")))
        mapped = hub.emulators["brevo"].emails[-1]
        assert mapped["templateId"] == 8
        assert mapped["params"]["order"] == "o-32"
        assert all(j.state is JobState.DONE for j in hub.journal.jobs())


def test_mailchimp_has_no_single_sends_so_the_member_is_tagged_with_the_journey() -> None:
    from dixis_integrations.models.customer import ConsentStatus, MarketingConsent
    from dixis_integrations.models.email import Subscriber

    order = make_order(id="o-41")
    with Integrations.sandbox(only=["mailchimp"]) as hub:
        granted = MarketingConsent(status=ConsentStatus.GRANTED, source="checkout")
        hub.email().upsert_subscriber(Subscriber(email=order.customer.email, consent=granted))
        hub.dispatch(OrderCreated(order=order))
        (job,) = [j for j in hub.journal.jobs() if j.step == "journey"]
        assert job.state is JobState.DONE
        member = hub.emulators["mailchimp"].member(order.customer.email)
        assert "journey:order" in [t["name"] for t in member["tags"]]
        stranger = make_order(id="o-42", customer=make_customer(id="c-2", email="x@example.gr"))
        hub.dispatch(OrderCreated(order=stranger))
        (other,) = [j for j in hub.journal.jobs() if j.event_id.endswith("o-42")]
        assert other.state is JobState.DONE
        assert other.result is not None
        assert other.result["accepted"] is False


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[_Mailbox, int]]:
    box = _Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def test_smtp_gets_the_rendered_text_and_html(mailbox: tuple[_Mailbox, int], tmp_path: Any) -> None:
    box, port = mailbox
    smtp = SMTP(SMTPConfig(host="127.0.0.1", port=port, sender="orders@dixis.gr", security="none"))
    journal = SQLiteJournal(tmp_path / "j.db")
    own = MessageTemplate(
        subject="Παραγγελία $order",
        text="Γεια σας $first_name, σύνολο $total €",
        html="<p>Γεια σας $first_name</p>",
    )
    engine = Engine(
        journal,
        [Connection("email", "smtp", smtp, Driver(httpx.Client()))],
        settings=StepSettings(messages={"order_confirmation": own}),
    )
    customer = make_customer(first_name="<Άννα>")
    engine.submit(OrderCreated(order=make_order(id="o-51", customer=customer)))
    summary = engine.drain(wait=False)
    assert summary.done == 1
    (message,) = box.messages
    assert message["Subject"] == "Παραγγελία o-51"
    parts = {
        p.get_content_type(): p.get_content()
        for p in message.walk()
        if p.get_content_maintype() == "text"
    }
    assert "Γεια σας <Άννα>, σύνολο" in parts["text/plain"]
    assert "&lt;Άννα&gt;" in parts["text/html"]


# -- stock.low, deliveries, consent ---------------------------------------------------

SUPPLIER = Supplier(id="farm-7", name="Kritsa coop", email="orders@kritsa.example")
PRODUCT = Product(
    sku="OIL-5L",
    name="Olive oil 5 l",
    vat_category=VatCategory.REDUCED,
    price=Money.of("45.00"),
    reorder_point=Decimal(10),
    reorder_quantity=Decimal(20),
    supplier=SUPPLIER,
)


class _Suppliers:
    def __init__(self) -> None:
        self.told: list[str] = []

    def notify(self, order: PurchaseOrder, supplier: Supplier) -> None:
        self.told.append(f"{supplier.id}:{order.reference}")


def test_stock_low_raises_one_purchase_order_at_the_inventory_system_and_tells_the_supplier() -> (
    None
):
    assert DEFAULT_PLAN_STEPS["stock.low"] == ("reorder",)
    with Integrations.sandbox(only=["cin7"]) as hub:
        cin7 = hub.emulators["cin7"]
        cin7.add_product("OIL-5L", stock=4)
        vendor_id = cin7.add_supplier("Kritsa coop")
        ledger = StockLedger({"OIL-5L": Decimal(10)})
        ledger.observe(StockLevel(sku="OIL-5L", on_hand=Decimal(30), as_of=T0))
        (event,) = ledger.observe(
            StockLevel(sku="OIL-5L", on_hand=Decimal(4), as_of=T0 + timedelta(minutes=1))
        ).events
        assert isinstance(event, StockLow)
        suppliers = _Suppliers()
        setup = Replenishment(
            products={"OIL-5L": PRODUCT},
            ledger=ledger,
            store=SQLitePurchaseOrders(),
            notifier=suppliers,
            vendor_supplier_ids={"farm-7": vendor_id},
        )
        hub.engine.settings = replace(hub.engine.settings, replenishment=setup)
        hub.dispatch(event)
        hub.dispatch(event)  # delivered twice: one order
        (job,) = hub.journal.jobs()
        assert job.state is JobState.DONE
        assert len(cin7.purchases) == 1
        assert len(suppliers.told) == 1


def test_stock_low_without_a_replenishment_set_up_is_dead_naming_it() -> None:
    with Integrations.sandbox(only=["cin7"]) as hub:
        event = StockLow(
            sku="OIL-5L", location="default", available=Decimal(1), reorder_point=Decimal(5)
        )
        hub.dispatch(event)
        (job,) = hub.journal.jobs()
        assert job.state is JobState.DEAD
        assert "replenishment" in (job.error_message or "")


def test_only_a_delivery_of_a_known_order_sends_the_review_and_updates_the_crm() -> None:
    order = make_order(id="o-61", created_at=day(0))
    with Integrations.sandbox(only=["hubspot", "brevo"]) as hub:
        hub.dispatch(OrderCreated(order=order))
        base = {"carrier": "acs", "tracking_number": "7400001", "order_id": order.id}
        hub.dispatch(ShipmentStatusChanged(status=TrackingStatus.IN_TRANSIT, at=day(1), **base))
        hub.dispatch(ShipmentStatusChanged(status=TrackingStatus.DELIVERED, at=day(2), **base))
        unknown = {**base, "order_id": "not-ours", "tracking_number": "9"}
        hub.dispatch(ShipmentStatusChanged(status=TrackingStatus.DELIVERED, at=day(2), **unknown))
        reviews = [m for m in hub.emulators["brevo"].emails if "step:review" in m.get("tags", [])]
        assert len(reviews) == 1
        assert reviews[0]["to"] == [{"email": order.customer.email}]
        done = [j for j in hub.journal.jobs() if j.step == "crm_delivered" and j.external_id]
        assert len(done) == 1
        assert all(j.state is JobState.DONE for j in hub.journal.jobs())


def test_consent_withdrawn_at_one_provider_unsubscribes_at_the_other() -> None:
    from dixis_integrations.models.customer import ConsentStatus, MarketingConsent

    customer = make_customer(
        consent=MarketingConsent(status=ConsentStatus.GRANTED, source="checkout")
    )
    with Integrations.sandbox(only=["brevo"]) as hub:
        hub.dispatch(CustomerCreated(customer=customer))
        hub.dispatch(ConsentWithdrawn(provider="mailchimp", email=customer.email, at=day(1)))
        hub.dispatch(ConsentWithdrawn(provider="brevo", email=customer.email, at=day(2)))
        jobs = [j for j in hub.journal.jobs() if j.step == "unsubscribe"]
        assert [j.state for j in jobs] == [JobState.DONE, JobState.DONE]
        assert jobs[0].result is not None
        assert jobs[1].result is None  # reported by brevo itself: nothing to do there
        contact = hub.emulators["brevo"].contacts[customer.email]
        assert contact["emailBlacklisted"] is True


def test_memory_history_notes_each_fact_once() -> None:
    history = MemoryOrderHistory()
    order = make_order(id="m1")
    history.note_order("t", "crm", order)
    history.note_order("t", "crm", order)
    refund = Refund(id="r", order_id="m1", amount=Money.of("1.00"))
    history.note_refund("t", "crm", order.customer.id, refund)
    history.note_refund("t", "crm", order.customer.id, refund)
    history.note_cancelled("t", "crm", order.customer.id, "m1")
    found = history.customer("t", "crm", order.customer.id)
    assert len(found.orders) == 1
    assert found.orders[0].status is OrderStatus.CANCELLED
    assert len(found.refunds) == 1
    assert history.order("t", "m1") == order
