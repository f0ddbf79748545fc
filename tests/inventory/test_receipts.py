"""Deliveries against purchase orders: Cin7's receipt webhook to the ledger, once, and the
source's own on-order stock counted before a purchase order is raised."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from dixis_integrations.errors import InvalidInput, WebhookError
from dixis_integrations.inventory.cin7 import (
    WEBHOOK_HEADER,
    Cin7Config,
    Cin7Core,
    build_webhook,
    parse_receipt_webhook,
    parse_received_stock,
)
from dixis_integrations.inventory.ledger import StockLedger
from dixis_integrations.inventory.purchasing import Replenisher, SQLitePurchaseOrders
from dixis_integrations.inventory.realtime import StockSync
from dixis_integrations.models.events import StockLow
from dixis_integrations.models.inventory import PurchaseOrderStatus, StockLevel, StockReceipt
from dixis_integrations.models.money import Money
from dixis_integrations.models.product import Product, Supplier
from dixis_integrations.models.tax import VatCategory
from dixis_integrations.sandbox.cin7 import Cin7Sandbox

from .conftest import Runner

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
PRODUCT = Product(
    sku="OIL-5L",
    name="Olive oil 5 l",
    vat_category=VatCategory.REDUCED,
    price=Money.of("45.00"),
    reorder_point=Decimal(10),
    reorder_quantity=Decimal(20),
    supplier=Supplier(id="farm-7", name="Kritsa coop", pack_size=Decimal(6)),
)
SECRET = SecretStr("s3cret")


# -- pure ------------------------------------------------------------------------------
def test_the_receipt_subscription_body_names_the_purchase_event() -> None:
    assert build_webhook("https://h/x", "s", "dixis receipts", "Purchase/StockReceivedAuthorised")[
        "Type"
    ] == ("Purchase/StockReceivedAuthorised")


def test_a_receipt_webhook_gives_its_task_id_when_the_secret_matches() -> None:
    body = json.dumps({"TaskID": "t-1", "OrderNumber": "PO-00001"}).encode()
    assert parse_receipt_webhook({WEBHOOK_HEADER: "s3cret"}, body, SECRET) == "t-1"
    with pytest.raises(WebhookError) as bad:
        parse_receipt_webhook({WEBHOOK_HEADER: "nope"}, body, SECRET)
    assert bad.value.code == "bad_signature"
    with pytest.raises(WebhookError) as malformed:
        parse_receipt_webhook({WEBHOOK_HEADER: "s3cret"}, b"{}", SECRET)
    assert malformed.value.code == "malformed"


def test_received_stock_lines_become_receipts_keyed_by_our_reference() -> None:
    purchase = {"ID": "t-1", "OrderNumber": "PO-00001", "Note": "PO-ABC"}
    stock = {
        "TaskID": "t-1",
        "Status": "AUTHORISED",
        "Lines": [
            {
                "SKU": "OIL-5L",
                "Quantity": 12,
                "Location": "Main Warehouse",
                "Date": "2026-11-20T09:00:00Z",
            },
            {
                "SKU": "OIL-5L",
                "Quantity": 12,
                "Location": "Main Warehouse",
                "Date": "2026-11-20T09:05:00Z",
            },
            {
                "SKU": "FETA-1",
                "Quantity": 3.5,
                "Location": "Athens Market",
                "Date": "2026-11-20T09:00:00Z",
            },
        ],
    }
    receipts = parse_received_stock(purchase, stock, default_location="Main Warehouse")
    assert receipts == [
        StockReceipt(
            event_id="cin7:receipt:t-1:OIL-5L:default",
            source="cin7",
            reference="PO-ABC",
            sku="OIL-5L",
            location="default",
            quantity=Decimal(24),
            received_at=T0 + timedelta(hours=1, minutes=5),
        ),
        StockReceipt(
            event_id="cin7:receipt:t-1:FETA-1:Athens Market",
            source="cin7",
            reference="PO-ABC",
            sku="FETA-1",
            location="Athens Market",
            quantity=Decimal("3.5"),
            received_at=T0 + timedelta(hours=1),
        ),
    ]
    draft = {**stock, "Status": "DRAFT"}
    assert parse_received_stock(purchase, draft, default_location="Main Warehouse") == []


def test_a_reading_taken_after_the_delivery_already_counts_it() -> None:
    ledger = StockLedger()
    ledger.observe(StockLevel(sku="OIL-5L", on_hand=Decimal(4), as_of=T0))
    ledger.expect("PO-1", "OIL-5L", Decimal(24))
    ledger.observe(StockLevel(sku="OIL-5L", on_hand=Decimal(28), as_of=T0 + timedelta(hours=2)))
    level = ledger.receive("PO-1", "OIL-5L", Decimal(24), at=T0 + timedelta(hours=1)).level
    assert (level.on_hand, level.incoming) == (Decimal(28), Decimal(0))


# -- end to end on the Cin7 sandbox ----------------------------------------------------------
class _Inbox:
    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.deliveries.append((dict(request.headers), request.read()))
        return httpx.Response(200)


def _setup(run: Runner) -> tuple[Cin7Sandbox, Cin7Core, _Inbox, str]:
    inbox = _Inbox()
    box = Cin7Sandbox(webhook_client=httpx.Client(transport=httpx.MockTransport(inbox)))
    box.bind("http://cin7.test")
    box.add_product("OIL-5L", stock=4)
    vendor_id = box.add_supplier("Kritsa coop")
    creds = box.credentials()
    source = Cin7Core(
        Cin7Config(
            account_id=creds["account_id"],
            base_url=creds["base_url"],
            application_key=SecretStr(creds["application_key"]),
            webhook_secret=SecretStr(creds["webhook_secret"]),
        )
    )
    run(box.transport(), source.subscribe("https://hub.example/stock"))
    run(box.transport(), source.subscribe_receipts("https://hub.example/receipts"))
    return box, source, inbox, vendor_id


def _low_ledger() -> tuple[StockLedger, StockLow]:
    ledger = StockLedger({"OIL-5L": Decimal(10)})
    ledger.observe(StockLevel(sku="OIL-5L", on_hand=Decimal(30), as_of=T0))
    [event] = ledger.observe(
        StockLevel(sku="OIL-5L", on_hand=Decimal(4), as_of=T0 + timedelta(minutes=1))
    ).events
    return ledger, event


@pytest.mark.parametrize("receipt_first", [True, False])
def test_a_cin7_delivery_reaches_on_hand_exactly_once(receipt_first: bool, run: Runner) -> None:
    box, source, inbox, vendor_id = _setup(run)
    ledger, event = _low_ledger()
    store = SQLitePurchaseOrders()
    replenisher = Replenisher(
        ledger, {"OIL-5L": PRODUCT}, store, source=source, vendor_supplier_ids={"farm-7": vendor_id}
    )
    order = run(box.transport(), replenisher.handle(event))
    assert ledger.level("OIL-5L").incoming == Decimal(24)
    sync = StockSync(ledger, replenisher=replenisher)

    inbox.deliveries.clear()  # the order's own on-order change
    box.receive_purchase(order.external_id)
    (stock_headers, stock_body), (receipt_headers, receipt_body) = inbox.deliveries
    updates = source.parse_webhook(stock_headers, stock_body, received_at=datetime.now(UTC))
    task_id = source.parse_receipt_webhook(receipt_headers, receipt_body)
    receipts = run(box.transport(), source.receipts(task_id))
    assert [(r.reference, r.sku, r.quantity) for r in receipts] == [
        (order.reference, "OIL-5L", Decimal(24))
    ]
    if receipt_first:
        assert sync.apply_receipts(receipts).applied == 1
        sync.apply_updates(updates)
    else:
        sync.apply_updates(updates)
        assert sync.apply_receipts(receipts).applied == 1
    again = sync.apply_receipts(receipts)  # a redelivered receipt webhook
    assert again.duplicates == 1
    level = ledger.level("OIL-5L")
    assert (level.on_hand, level.incoming) == (Decimal(28), Decimal(0))
    assert [o.status for o in store.orders()] == [PurchaseOrderStatus.RECEIVED]


def test_an_order_already_placed_in_cin7_is_not_placed_again(run: Runner) -> None:
    box, source, _, vendor_id = _setup(run)
    ledger, event = _low_ledger()
    # A person ordered 24 in Cin7 itself: the ledger does not know, Cin7's OnOrder does.
    [key] = [k for k in box.stock if k[1] == box.locations[0]]
    box.stock[key]["OnOrder"] = Decimal(24)
    replenisher = Replenisher(
        ledger,
        {"OIL-5L": PRODUCT},
        SQLitePurchaseOrders(),
        source=source,
        vendor_supplier_ids={"farm-7": vendor_id},
    )
    assert run(box.transport(), replenisher.handle(event)) is None  # type: ignore[arg-type]
    assert box.purchases == {}


def test_an_empty_task_id_is_refused_before_anything_is_sent(run: Runner) -> None:
    box, source, _, _ = _setup(run)
    before = len(box.requests)
    with pytest.raises(InvalidInput):
        run(box.transport(), source.receipts(" "))
    assert len(box.requests) == before


def test_a_receipt_for_an_unknown_sku_is_a_typed_error() -> None:
    sync = StockSync(StockLedger())
    receipt = StockReceipt(
        event_id="e",
        source="file",
        reference="PO-1",
        sku="NOPE",
        quantity=Decimal(1),
        received_at=T0,
    )
    with pytest.raises(InvalidInput):
        sync.apply_receipts([receipt])
