"""StockSync: webhooks and order events into the ledger, low stock into purchase orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.models.factories import make_line, make_order

from dixis_integrations.inventory.ledger import StockLedger
from dixis_integrations.inventory.purchasing import Replenisher, SQLitePurchaseOrders
from dixis_integrations.inventory.realtime import StockSync
from dixis_integrations.models.events import OrderCancelled, OrderCreated
from dixis_integrations.models.inventory import StockLevel, StockUpdate
from dixis_integrations.models.money import Money
from dixis_integrations.models.product import Product, Supplier
from dixis_integrations.models.tax import VatCategory

from .conftest import Runner

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
PRODUCT = Product(
    sku="OIL-1L",
    name="Olive oil 1 l",
    vat_category=VatCategory.REDUCED,
    price=Money.of("12.40"),
    reorder_point=Decimal(5),
    reorder_quantity=Decimal(12),
    supplier=Supplier(id="farm-1", name="Farm", pack_size=Decimal(6)),
)


def _sync() -> StockSync:
    ledger = StockLedger({"OIL-1L": Decimal(5)})
    ledger.observe(StockLevel(sku="OIL-1L", on_hand=Decimal(10), as_of=T0))
    replenisher = Replenisher(ledger, {"OIL-1L": PRODUCT}, SQLitePurchaseOrders())
    return StockSync(ledger, replenisher=replenisher)


def test_an_order_commits_once_and_its_cancellation_releases_once() -> None:
    sync = _sync()
    created = OrderCreated(order=make_order(id="o1", lines=[make_line(quantity=3)]))
    assert sync.apply_event(created).applied == 1
    assert sync.apply_event(created).duplicates == 1
    cancelled = OrderCancelled(order_id="o1")
    assert sync.apply_event(cancelled).applied == 1
    assert sync.apply_event(cancelled).applied == 0
    assert sync.ledger.level("OIL-1L").committed == Decimal(0)


def test_webhooks_out_of_order_and_twice_leave_the_newest_level() -> None:
    sync = _sync()
    newer = StockUpdate(
        event_id="e2",
        source="zoho",
        level=StockLevel(sku="OIL-1L", on_hand=Decimal(4), as_of=T0 + timedelta(2)),
    )
    older = StockUpdate(
        event_id="e1",
        source="zoho",
        level=StockLevel(sku="OIL-1L", on_hand=Decimal(9), as_of=T0 + timedelta(1)),
    )
    outcome = sync.apply_updates([newer, older, newer])
    assert (outcome.applied, outcome.stale, outcome.duplicates) == (1, 1, 1)
    assert sync.ledger.level("OIL-1L").on_hand == Decimal(4)
    assert [e.available for e in outcome.low] == [Decimal(4)]


def test_low_stock_becomes_one_purchase_order(run: Runner) -> None:
    sync = _sync()
    low = sync.apply_event(
        OrderCreated(order=make_order(id="o1", lines=[make_line(quantity=6)]))
    ).low
    orders = run(None, sync.replenish(low + low))
    assert [o.lines[0].quantity for o in orders] == [Decimal(12), Decimal(12)]
    assert orders[0] == orders[1]
    assert sync.ledger.level("OIL-1L").incoming == Decimal(12)
