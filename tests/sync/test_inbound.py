"""Vendor webhooks in, engine events out: each sandbox's own signed deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.models.factories import make_order

from dixis_integrations.errors import WebhookError
from dixis_integrations.http.driver import Operation
from dixis_integrations.hub import Integrations
from dixis_integrations.inventory.ledger import StockLedger
from dixis_integrations.models.crm import CRMContact
from dixis_integrations.models.customer import ConsentStatus, MarketingConsent
from dixis_integrations.models.email import Subscriber
from dixis_integrations.models.events import (
    ConsentWithdrawn,
    ContactChanged,
    LedgerChanged,
    OrderCreated,
    OrderPaid,
    ShipmentStatusChanged,
    StockChanged,
    StockLow,
)
from dixis_integrations.models.money import Money
from dixis_integrations.models.order import Payment
from dixis_integrations.models.shipping import DeliveryType, ShippingOptions, TrackingStatus
from dixis_integrations.sync.inbound import Inbox
from dixis_integrations.sync.marketday import SENDER
from dixis_integrations.sync.steps import StepContext, StepDefinition, shipment_request
from dixis_integrations.webhooks import MemoryDeliveryStore, SQLiteDeliveryStore, WebhookRequest

HOOK = "http://127.0.0.1:9/hooks"  # nothing listens: the sandbox keeps what it sent


def last_delivery(emulator: object, url: str = HOOK) -> WebhookRequest:
    sent = emulator.webhook_deliveries[-1]  # type: ignore[attr-defined]
    return WebhookRequest(body=sent.body, headers=sent.headers, url=url)


@pytest.fixture
def hub(request: pytest.FixtureRequest) -> Iterator[Integrations]:
    only = request.param if hasattr(request, "param") else None
    with Integrations.sandbox(only=only) as h:
        yield h


def submitted(hub: Integrations, event_type: str) -> list[str]:
    return sorted({j.event_id for j in hub.journal.jobs() if j.event_type == event_type})


@pytest.mark.parametrize("hub", [["quickbooks"]], indirect=True)
def test_an_invoice_paid_in_the_ledger_becomes_a_ledger_changed_event(
    hub: Integrations,
) -> None:
    order = make_order(id="o-100")
    hub.dispatch(OrderCreated(order=order))
    qbo = hub.emulators["quickbooks"]
    payment = Payment(
        id="pay-1", order_id=order.id, amount=order.total, method="card", paid_at=order.created_at
    )
    hub.dispatch(OrderPaid(order_id=order.id, payment=payment))
    qbo.deliver_events(HOOK)
    inbox = Inbox(hub.engine)
    received = inbox.receive("quickbooks", last_delivery(qbo))
    ledger = [e for e in received.events if isinstance(e, LedgerChanged)]
    invoices = [e for e in ledger if e.record == "invoice"]
    assert invoices, received
    assert invoices[-1].status == "paid"
    assert invoices[-1].reference
    assert all(e.provider == "quickbooks" for e in ledger)


@pytest.mark.parametrize("hub", [["quickbooks"]], indirect=True)
def test_a_bad_signature_is_a_webhook_error_and_nothing_is_submitted(
    hub: Integrations,
) -> None:
    hub.dispatch(OrderCreated(order=make_order(id="o-101")))
    qbo = hub.emulators["quickbooks"]
    qbo.deliver_events(HOOK)
    good = last_delivery(qbo)
    forged = WebhookRequest(body=good.body + b" ", headers=good.headers, url=HOOK)
    before = len(hub.journal.jobs())
    inbox = Inbox(hub.engine)
    with pytest.raises(WebhookError):
        inbox.receive("quickbooks", forged)
    assert len(hub.journal.jobs()) == before
    assert inbox.store.last_seen("quickbooks") is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("hub", [["quickbooks"]], indirect=True)
def test_a_redelivery_is_recognised_and_submits_nothing_more(
    hub: Integrations, tmp_path: Path
) -> None:
    hub.dispatch(OrderCreated(order=make_order(id="o-102")))
    qbo = hub.emulators["quickbooks"]
    qbo.deliver_events(HOOK)
    delivery = last_delivery(qbo)
    store = SQLiteDeliveryStore(tmp_path / "hooks.db")
    first = Inbox(hub.engine, store=store).receive("quickbooks", delivery)
    # another process, the same store: the vendor's retry of the same delivery
    again = Inbox(hub.engine, store=SQLiteDeliveryStore(tmp_path / "hooks.db")).receive(
        "quickbooks", delivery
    )
    assert first.facts
    assert first.duplicates == 0
    assert first.events
    assert again.duplicates == again.facts
    assert not again.events
    assert not again.job_keys


def to_a_locker(ctx: StepContext) -> Operation[Any]:
    """A host's own shipment step: parcels to a BOX NOW locker."""
    assert isinstance(ctx.event, OrderCreated)
    request = shipment_request(ctx.event.order, ctx.settings)
    locker = ShippingOptions(delivery_type=DeliveryType.LOCKER, pickup_point_id="4")
    return ctx.adapter.create_shipment(request.model_copy(update={"options": locker}))  # type: ignore[no-any-return]


@pytest.mark.parametrize("hub", [["boxnow", "hubspot", "brevo"]], indirect=True)
def test_a_parcel_delivered_by_webhook_starts_the_review_and_updates_the_crm(
    hub: Integrations,
) -> None:
    order = make_order(id="o-200", shipping_address=SENDER)
    hub.engine.plan_config["order.created"] = ("shipment:boxnow", "crm_contact")
    hub.engine.steps.add(
        StepDefinition("shipment", "shipping", frozenset({"order.created"}), to_a_locker)
    )
    hub.dispatch(OrderCreated(order=order))
    shipment = next(j for j in hub.journal.jobs() if j.step == "shipment")
    assert shipment.external_id
    box = hub.emulators["boxnow"]
    box.subscribe(HOOK)
    box.advance(10 * 86_400)
    inbox = Inbox(hub.engine)
    statuses = []
    for sent in list(box.webhook_deliveries):
        received = inbox.receive("boxnow", WebhookRequest(body=sent.body, headers=sent.headers))
        for e in received.events:
            assert isinstance(e, ShipmentStatusChanged)
            assert e.order_id == order.id
            statuses.append(e.status)
    assert TrackingStatus.DELIVERED in statuses
    hub.engine.drain(wait=False)
    reviews = [j for j in hub.journal.jobs() if j.step == "review_request"]
    assert reviews
    assert all(j.state.value == "done" for j in reviews)
    sent_emails = hub.emulators["brevo"].emails
    review_mails = [m for m in sent_emails if "journey:post_delivery_review" in m.get("tags", [])]
    assert len(review_mails) == 1  # only the delivery sends it, once
    assert "παραδόθηκε" in review_mails[0]["textContent"]
    assert order.customer.first_name in review_mails[0]["htmlContent"]
    crm = [j for j in hub.journal.jobs() if j.step == "crm_delivered" and j.external_id]
    assert len(crm) == 1


@pytest.mark.parametrize("hub", [["zoho"]], indirect=True)
def test_a_stock_webhook_under_the_reorder_point_submits_stock_low(hub: Integrations) -> None:
    zoho = hub.emulators["zoho"]
    sku = "FETA-400"
    zoho.seed_stock({sku: 3})
    body, headers = zoho.signed_webhook(zoho._by_sku[sku])
    inbox = Inbox(hub.engine, reorder_points={sku: Decimal("1000000")})
    received = inbox.receive("zoho", WebhookRequest(body=body, headers=headers))
    changed = [e for e in received.events if isinstance(e, StockChanged)]
    low = [e for e in received.events if isinstance(e, StockLow)]
    assert changed
    assert low
    assert low[0].sku == sku
    assert low[0].reorder_point == Decimal("1000000")
    assert submitted(hub, "stock.low") == [low[0].event_id]
    relaxed = Inbox(hub.engine, reorder_points={sku: Decimal("-1")}).receive(
        "zoho", WebhookRequest(body=body, headers=headers)
    )
    assert not [e for e in relaxed.events if isinstance(e, StockLow)]


@pytest.mark.parametrize("hub", [["hubspot"]], indirect=True)
def test_a_crm_webhook_becomes_a_contact_changed_event(hub: Integrations) -> None:
    hs = hub.emulators["hubspot"]
    url = "https://market.example/hooks/hubspot"
    note = hs.contact_event(
        "contact.propertyChange", "101", propertyName="email", propertyValue="new@example.gr"
    )
    body, headers = hs.signed_webhook(url, [note])
    inbox = Inbox(hub.engine, options={"hubspot": {"client_secret": hs.client_secret}})
    received = inbox.receive("hubspot", WebhookRequest(body=body, headers=headers, url=url))
    (event,) = received.events
    assert isinstance(event, ContactChanged)
    assert event.external_id == "101"
    assert event.provider == "hubspot"
    with pytest.raises(WebhookError):
        inbox.receive("hubspot", WebhookRequest(body=body, headers=headers, url=url + "/elsewhere"))


@pytest.mark.parametrize("hub", [["mailchimp", "brevo"]], indirect=True)
def test_an_unsubscribe_withdraws_consent_at_the_other_email_provider(
    hub: Integrations,
) -> None:
    mc = hub.emulators["mailchimp"]
    url = f"{HOOK}?secret=s3cret"
    customer = make_order().customer
    granted = MarketingConsent(status=ConsentStatus.GRANTED, source="checkout")
    hub.email("mailchimp").upsert_subscriber(Subscriber(email=customer.email, consent=granted))
    hub.email("mailchimp").register_webhook(url)
    mc.unsubscribe_click(customer.email)
    inbox = Inbox(hub.engine, options={"mailchimp": {"secret": "s3cret"}})
    with pytest.raises(WebhookError):
        inbox.receive("mailchimp", last_delivery(mc, f"{HOOK}?secret=guess"))
    received = inbox.receive("mailchimp", last_delivery(mc, url))
    (event,) = received.events
    assert isinstance(event, ConsentWithdrawn)
    assert event.email == customer.email
    assert event.provider == "mailchimp"
    hub.engine.drain(wait=False)
    jobs = [j for j in hub.journal.jobs() if j.step == "unsubscribe"]
    assert [(j.provider, j.state.value) for j in jobs] == [("brevo", "done")]
    contact = hub.emulators["brevo"].contacts.get(customer.email)
    assert contact is None or contact.get("emailBlacklisted") is True


@pytest.mark.parametrize("hub", [["quickbooks"]], indirect=True)
def test_a_fact_whose_handling_failed_is_handled_again_on_the_next_delivery(
    hub: Integrations, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.dispatch(OrderCreated(order=make_order(id="o-103")))
    qbo = hub.emulators["quickbooks"]
    qbo.deliver_events(HOOK)
    delivery = last_delivery(qbo)
    inbox = Inbox(hub.engine)
    real_submit = hub.engine.submit

    def broken(event: object) -> list[str]:
        raise RuntimeError("the journal is away")

    monkeypatch.setattr(hub.engine, "submit", broken)
    with pytest.raises(RuntimeError):
        inbox.receive("quickbooks", delivery)
    monkeypatch.setattr(hub.engine, "submit", real_submit)
    retried = inbox.receive("quickbooks", delivery)
    assert retried.duplicates == 0
    assert retried.events
    assert inbox.receive("quickbooks", delivery).duplicates == retried.facts


@pytest.mark.parametrize("hub", [["quickbooks"]], indirect=True)
def test_a_fact_held_by_a_process_that_died_is_handled_after_its_lease(
    hub: Integrations,
) -> None:
    now = [1_800_000_000.0]
    store = MemoryDeliveryStore(clock=lambda: now[0])
    hub.dispatch(OrderCreated(order=make_order(id="o-104")))
    qbo = hub.emulators["quickbooks"]
    qbo.deliver_events(HOOK)
    delivery = last_delivery(qbo)
    inbox = Inbox(hub.engine, store=store, lease=300, clock=lambda: now[0])
    first = inbox.receive("quickbooks", delivery)
    for event_id in list(store._until):  # as if the process died before the TTL claim
        store._until[event_id] = now[0] + 300
    assert inbox.receive("quickbooks", delivery).duplicates == first.facts
    now[0] += 301
    assert inbox.receive("quickbooks", delivery).duplicates == 0


@pytest.mark.parametrize("hub", [["xero"]], indirect=True)
def test_xero_changes_are_re_read_into_ledger_changed_events(hub: Integrations) -> None:
    hub.dispatch(OrderCreated(order=make_order(id="o-110")))
    xero = hub.emulators["xero"]
    xero.deliver_events(HOOK)
    seen: list[LedgerChanged] = []

    def note(ctx: StepContext) -> Operation[None]:  # a host's own step on ledger changes
        assert isinstance(ctx.event, LedgerChanged)
        seen.append(ctx.event)
        return None
        yield

    hub.engine.steps.add(
        StepDefinition("note_ledger", "accounting", frozenset({"ledger.changed"}), note)
    )
    hub.engine.plan_config["ledger.changed"] = ("note_ledger",)
    received = Inbox(hub.engine).receive("xero", last_delivery(xero))
    changes = [e for e in received.events if isinstance(e, LedgerChanged)]
    (invoice,) = [e for e in changes if e.record == "invoice"]
    assert invoice.status is not None
    assert invoice.provider == "xero"
    assert submitted(hub, "ledger.changed") == sorted(e.event_id for e in changes)
    hub.engine.drain(wait=False)
    assert sorted(e.event_id for e in seen) == sorted(e.event_id for e in changes)


@pytest.mark.parametrize("hub", [["cin7"]], indirect=True)
def test_a_cin7_stock_webhook_is_a_level_and_stock_low(hub: Integrations) -> None:
    cin7 = hub.emulators["cin7"]
    cin7.add_product("HONEY-1K", stock=40)
    hub.inventory("cin7").subscribe(HOOK)
    cin7.set_stock("HONEY-1K", 3)
    inbox = Inbox(hub.engine, reorder_points=lambda sku, location: Decimal(5))
    received = inbox.receive("cin7", last_delivery(cin7))
    (changed,) = [e for e in received.events if isinstance(e, StockChanged)]
    (low,) = [e for e in received.events if isinstance(e, StockLow)]
    assert changed.on_hand == Decimal(3)
    assert low.available == Decimal(3)
    forged = last_delivery(cin7)
    headers = {
        k: ("wrong" if k.lower().startswith("x-dixis") else v) for k, v in forged.headers.items()
    }
    with pytest.raises(WebhookError):
        inbox.receive("cin7", WebhookRequest(body=forged.body, headers=headers))


@pytest.mark.parametrize("hub", [["pipedrive", "salesforce"]], indirect=True)
def test_pipedrive_and_salesforce_changes_become_contact_changed_events(
    hub: Integrations,
) -> None:
    pd = hub.emulators["pipedrive"]
    sf = hub.emulators["salesforce"]
    options = {
        "pipedrive": {"username": "dixis", "password": "hook-pass"},
        "salesforce": {"organization_id": sf.organization_id},
    }
    inbox = Inbox(hub.engine, options=options)
    body, headers = pd.webhook("change", 7, user="dixis", password="hook-pass")
    (person,) = inbox.receive("pipedrive", WebhookRequest(body=body, headers=headers)).events
    assert isinstance(person, ContactChanged)
    assert person.external_id == "7"
    assert person.object_type == "person"
    bad_body, bad_headers = pd.webhook("change", 7, user="dixis", password="guess")
    with pytest.raises(WebhookError):
        inbox.receive("pipedrive", WebhookRequest(body=bad_body, headers=bad_headers))
    hub.crm("salesforce").upsert_contact(
        CRMContact(
            reference="C-9",
            email="eleni@example.gr",
            last_name="Νικολάου",
            total_spent=Money.of("0"),
        )
    )
    (record_id,) = sf.records["Contact"]
    message = sf.outbound_message("Contact", record_id)
    (contact,) = inbox.receive("salesforce", WebhookRequest(body=message)).events
    assert isinstance(contact, ContactChanged)
    assert contact.external_id == record_id
    other = Inbox(hub.engine, options={"salesforce": {"organization_id": "00Dother"}})
    with pytest.raises(WebhookError):
        other.receive("salesforce", WebhookRequest(body=message))


@pytest.mark.parametrize("hub", [["brevo"]], indirect=True)
def test_a_brevo_unsubscribe_is_consent_withdrawn(hub: Integrations) -> None:
    brevo = hub.emulators["brevo"]
    customer = make_order().customer
    granted = MarketingConsent(status=ConsentStatus.GRANTED, source="checkout")
    hub.email("brevo").upsert_subscriber(Subscriber(email=customer.email, consent=granted))
    url = f"{HOOK}?secret=s3cret"
    hub.email("brevo").register_webhook(url)
    brevo.unsubscribe_click(customer.email)
    inbox = Inbox(hub.engine, options={"brevo": {"secret": "s3cret"}})
    (event,) = inbox.receive("brevo", last_delivery(brevo, url)).events
    assert isinstance(event, ConsentWithdrawn)
    assert event.email == customer.email
    assert inbox.store.last_seen("brevo") is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize("hub", [["zoho"]], indirect=True)
def test_with_a_ledger_the_level_is_observed_there_and_its_crossing_is_the_stock_low(
    hub: Integrations,
) -> None:
    zoho = hub.emulators["zoho"]
    sku = "MELI-1K"
    zoho.seed_stock({sku: 3})
    body, headers = zoho.signed_webhook(zoho._by_sku[sku])
    ledger = StockLedger({sku: Decimal(10)})
    received = Inbox(hub.engine, ledger=ledger).receive(
        "zoho", WebhookRequest(body=body, headers=headers)
    )
    (low,) = [e for e in received.events if isinstance(e, StockLow)]
    (changed,) = [e for e in received.events if isinstance(e, StockChanged)]
    assert low.reorder_point == Decimal(10)
    assert ledger.level(sku, changed.location).on_hand == Decimal(3)
    # the same reading through another inbox (its own store): the ledger knows it already
    again = Inbox(hub.engine, ledger=ledger).receive(
        "zoho", WebhookRequest(body=body, headers=headers)
    )
    assert not [e for e in again.events if isinstance(e, StockLow)]


def test_every_built_in_adapter_that_receives_webhooks_reads_its_own() -> None:
    from dixis_integrations.registry import Registry
    from dixis_integrations.webhook_readers import READERS, read_webhook
    from dixis_integrations.webhooks import WebhookRequest

    receiving = {
        "quickbooks",
        "xero",
        "boxnow",
        "zoho",
        "cin7",
        "hubspot",
        "pipedrive",
        "salesforce",
        "brevo",
        "mailchimp",
    }
    registry = Registry()
    by_name = {i.name: i.kind for i in registry.list()}
    for name in receiving:
        adapter_cls = registry.load(by_name[name], name)
        assert callable(getattr(adapter_cls, "read_webhook", None)), name
    assert READERS == {}  # the vendors' wire names live in their adapters

    class Plain:  # a host's adapter without the method: a reader given by name
        name = "plain"

    request = WebhookRequest(method="POST", url="https://shop.test/hooks", headers={}, body=b"x")
    assert read_webhook(Plain(), request, readers={"plain": lambda a, r, o: [r.body]}) == [b"x"]

    class Broken:
        name = "broken"

        def read_webhook(self, request: WebhookRequest, options: object) -> list[object]:
            raise ValueError("not JSON")

    with pytest.raises(WebhookError) as info:
        read_webhook(Broken(), request)
    assert info.value.code == "malformed"
