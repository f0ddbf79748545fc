"""Purchase orders from low stock: one per shortfall, local or at the vendor, suppliers told."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from dixis_integrations.errors import ConfigurationError, TransientError
from dixis_integrations.inventory.cin7 import Cin7Config, Cin7Core
from dixis_integrations.inventory.ledger import StockLedger
from dixis_integrations.inventory.purchasing import (
    Replenisher,
    SmtpNotifier,
    SQLitePurchaseOrders,
    WebhookNotifier,
    order_reference,
)
from dixis_integrations.models.events import StockLow
from dixis_integrations.models.inventory import PurchaseOrder, PurchaseOrderLine, StockLevel
from dixis_integrations.models.money import Money
from dixis_integrations.models.product import Product, Supplier
from dixis_integrations.models.tax import VatCategory
from dixis_integrations.sandbox.cin7 import Cin7Sandbox
from dixis_integrations.sandbox.serve import serve

from .conftest import Runner

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SUPPLIER = Supplier(
    id="farm-7", name="Kritsa coop", email="orders@kritsa.example", pack_size=Decimal(6)
)
PRODUCT = Product(
    sku="OIL-5L",
    name="Olive oil 5 l",
    vat_category=VatCategory.REDUCED,
    price=Money.of("45.00"),
    reorder_point=Decimal(10),
    reorder_quantity=Decimal(20),
    supplier=SUPPLIER,
)
ORDER = PurchaseOrder(
    reference="PO-1",
    supplier_id="farm-7",
    created_at=T0,
    lines=(PurchaseOrderLine(sku="OIL-5L", quantity=Decimal(24)),),
)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, _Inbox]]:
    inbox = _Inbox()
    with socket.socket() as probe:  # a free port: the controller cannot start on port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def test_the_supplier_gets_an_email_through_a_real_smtp_server(
    smtp: tuple[Controller, _Inbox],
) -> None:
    controller, inbox = smtp
    notifier = SmtpNotifier("127.0.0.1", controller.port, sender="stock@dixis.example")
    notifier.notify(ORDER, SUPPLIER)
    [raw] = inbox.messages
    mail = message_from_bytes(raw)
    assert mail["To"] == "orders@kritsa.example"
    assert mail["Subject"] == "Purchase order PO-1"
    assert mail["Message-ID"] == "<PO-1@dixis.example>"
    assert "OIL-5L: 24" in mail.get_payload()


def test_an_unreachable_smtp_server_is_a_transient_error() -> None:
    notifier = SmtpNotifier("127.0.0.1", 1, sender="stock@dixis.example", timeout=2)
    with pytest.raises(TransientError):
        notifier.notify(ORDER, SUPPLIER)


def test_a_supplier_without_an_address_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        SmtpNotifier("h", sender="s@d.example").message(
            ORDER, SUPPLIER.model_copy(update={"email": None})
        )
    with pytest.raises(ConfigurationError):
        WebhookNotifier().request(ORDER, SUPPLIER)


def test_the_webhook_notifier_posts_signed_json_with_an_idempotency_key() -> None:
    received: list[httpx.Request] = []

    def supplier_api(request: httpx.Request) -> httpx.Response:
        request.read()
        received.append(request)
        return httpx.Response(202)

    with serve(supplier_api) as api:
        supplier = SUPPLIER.model_copy(update={"webhook_url": api.base_url + "/po"})
        WebhookNotifier(secret=SecretStr("k")).notify(ORDER, supplier)
    [request] = received
    assert request.headers["idempotency-key"] == "PO-1"
    expected = hmac.new(b"k", request.content, hashlib.sha256).hexdigest()
    assert request.headers["x-dixis-signature"] == "sha256=" + expected
    assert json.loads(request.content)["lines"] == [{"sku": "OIL-5L", "quantity": "24"}]


def _ledger(on_hand: int) -> StockLedger:
    ledger = StockLedger({"OIL-5L": Decimal(10)})
    ledger.observe(StockLevel(sku="OIL-5L", on_hand=Decimal(on_hand), as_of=T0))
    return ledger


def _low(ledger: StockLedger, on_hand: int, minute: int) -> StockLow:
    level = StockLevel(sku="OIL-5L", on_hand=Decimal(on_hand), as_of=T0.replace(minute=minute))
    [event] = ledger.observe(level).events
    return event


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def notify(self, order: PurchaseOrder, supplier: Supplier) -> None:
        self.sent.append(order.reference)


def test_one_shortfall_makes_one_local_order_however_often_it_is_handled(run: Runner) -> None:
    ledger = _ledger(30)
    store, notifier = SQLitePurchaseOrders(), _Recorder()
    replenisher = Replenisher(ledger, {"OIL-5L": PRODUCT}, store, notifier=notifier)
    event = _low(ledger, 4, 1)
    first = run(None, replenisher.handle(event))
    again = run(None, replenisher.handle(event))
    assert first == again
    assert first.reference == order_reference(event.event_id)
    assert first.lines[0].quantity == Decimal(24)
    assert [o.reference for o in store.orders()] == [first.reference]
    assert notifier.sent == [first.reference]
    assert ledger.level("OIL-5L").incoming == Decimal(24)


def test_a_new_crossing_covered_by_incoming_makes_no_second_order(run: Runner) -> None:
    ledger = _ledger(30)
    replenisher = Replenisher(ledger, {"OIL-5L": PRODUCT}, SQLitePurchaseOrders())
    assert run(None, replenisher.handle(_low(ledger, 4, 1))) is not None
    ledger.observe(StockLevel(sku="OIL-5L", on_hand=Decimal(11), as_of=T0.replace(minute=2)))
    second = _low(ledger, 9, 3)  # a second crossing, but 24 are on their way
    assert run(None, replenisher.handle(second)) is None
    assert len(list(replenisher.store.orders())) == 1


def test_orders_are_created_in_a_source_that_holds_purchase_orders(run: Runner) -> None:
    box = Cin7Sandbox()
    box.bind("http://cin7.test")
    box.add_product("OIL-5L", stock=4)
    vendor_id = box.add_supplier("Kritsa coop")
    creds = box.credentials()
    source = Cin7Core(
        Cin7Config(
            account_id=creds["account_id"],
            base_url=creds["base_url"],
            application_key=SecretStr(creds["application_key"]),
        )
    )
    ledger = _ledger(30)
    replenisher = Replenisher(
        ledger,
        {"OIL-5L": PRODUCT},
        SQLitePurchaseOrders(),
        source=source,
        vendor_supplier_ids={"farm-7": vendor_id},
    )
    event = _low(ledger, 4, 1)
    order = run(box.transport(), replenisher.handle(event))
    assert order.external_id in box.purchases
    assert order.supplier_id == "farm-7"
    assert box.purchases[order.external_id]["SupplierID"] == vendor_id
    run(box.transport(), replenisher.handle(event))
    assert len(box.purchases) == 1


def test_a_product_without_a_reorder_rule_orders_nothing(run: Runner) -> None:
    ledger = _ledger(30)
    bare = PRODUCT.model_copy(update={"reorder_point": None})
    replenisher = Replenisher(ledger, {"OIL-5L": bare}, SQLitePurchaseOrders())
    assert run(None, replenisher.handle(_low(ledger, 4, 1))) is None
