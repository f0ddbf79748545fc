"""A day of stock traffic: 500 SKUs, 10,000 order and restock events delivered with
duplicates, local reordering and 10% of the webhooks dropped. After reconciliation every
level equals the truth, each crossing of a reorder point produced exactly one StockLow, and
each shortfall exactly one purchase order.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from dixis_integrations.http import Driver
from dixis_integrations.inventory.files import FileStockSource
from dixis_integrations.inventory.ledger import Applied, Outcome, StockLedger
from dixis_integrations.inventory.purchasing import Replenisher, SQLitePurchaseOrders
from dixis_integrations.inventory.reconcile import reconcile
from dixis_integrations.models.events import StockLow
from dixis_integrations.models.inventory import StockLevel, StockUpdate
from dixis_integrations.models.money import Money
from dixis_integrations.models.product import Product, Supplier
from dixis_integrations.models.tax import VatCategory

T0 = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
SKUS = 500
EVENTS = 10_000


@dataclass(frozen=True)
class _Commit:
    order_id: str
    sku: str
    quantity: Decimal


@dataclass(frozen=True)
class _Cancel:
    order_id: str


def _world(rng: random.Random) -> tuple[dict[str, Product], dict[str, Decimal]]:
    products: dict[str, Product] = {}
    opening: dict[str, Decimal] = {}
    for i in range(SKUS):
        sku = f"SKU-{i:03}"
        supplier = Supplier(
            id=f"farm-{i % 37}", name=f"Farm {i % 37}", pack_size=Decimal(rng.choice([1, 6, 12]))
        )
        products[sku] = Product(
            sku=sku,
            name=sku,
            vat_category=VatCategory.REDUCED,
            price=Money.of("2.00"),
            reorder_point=Decimal(rng.randint(5, 15)),
            reorder_quantity=Decimal(rng.randint(10, 30)),
            supplier=supplier,
        )
        opening[sku] = Decimal(rng.randint(20, 60))
    return products, opening


def _shuffle_locally(items: list[Any], rng: random.Random, window: int = 12) -> list[Any]:
    keyed = [(i + rng.uniform(0, window), item) for i, item in enumerate(items)]
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0])]


def test_after_reconciliation_levels_stock_lows_and_orders_are_exactly_right(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261120)
    products, opening = _world(rng)
    points = {sku: p.reorder_point for sku, p in products.items() if p.reorder_point is not None}
    on_hand = dict(opening)
    committed: dict[str, Decimal] = defaultdict(Decimal)
    open_orders: dict[str, _Commit] = {}

    # -- what really happens, in order --------------------------------------------------
    deliveries: list[Any] = []
    dropped = 0
    for n in range(EVENTS):
        at = T0 + timedelta(seconds=n)
        roll = rng.random()
        sku = f"SKU-{rng.randrange(SKUS):03}"
        if roll < 0.45 and on_hand[sku] - committed[sku] >= 1:
            qty = Decimal(rng.randint(1, min(5, int(on_hand[sku] - committed[sku]))))
            commit = _Commit(f"o{n}", sku, qty)
            open_orders[commit.order_id] = commit
            committed[sku] += qty
            deliveries.append(commit)
        elif roll < 0.55 and open_orders:
            order = open_orders.pop(rng.choice(sorted(open_orders)))
            committed[order.sku] -= order.quantity
            deliveries.append(_Cancel(order.order_id))
        else:
            if roll < 0.8 or on_hand[sku] - committed[sku] < 1:
                on_hand[sku] += Decimal(rng.randint(5, 30))  # a farmer restocks
            else:
                on_hand[sku] -= Decimal(rng.randint(1, int(on_hand[sku] - committed[sku])))
            update = StockUpdate(
                event_id=f"evt-{n}",
                source="farm-export",
                level=StockLevel(sku=sku, on_hand=on_hand[sku], as_of=at),
            )
            if rng.random() < 0.10:
                dropped += 1
                continue  # the webhook never arrives
            deliveries.append(update)
    # duplicates, then local reordering
    doubled = [d for d in deliveries for _ in range(2 if rng.random() < 0.1 else 1)]
    arriving = _shuffle_locally(doubled, rng)
    assert dropped > 300
    assert len(doubled) > len(deliveries)

    # -- what the ledger makes of it ----------------------------------------------------
    ledger = StockLedger(points)
    for sku, qty in opening.items():
        ledger.observe(StockLevel(sku=sku, on_hand=qty, as_of=T0 - timedelta(seconds=1)))
    store = SQLitePurchaseOrders()
    replenisher = Replenisher(ledger, products, store)
    driver = Driver(httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(599))))
    applied_available: dict[str, list[Decimal]] = defaultdict(list)
    lows: list[StockLow] = []
    expected_orders: Counter[str] = Counter()
    incoming: dict[str, Decimal] = defaultdict(Decimal)

    def record(result: Applied | None) -> None:
        if result is None or result.outcome is not Outcome.APPLIED:
            return
        applied_available[result.level.sku].append(result.level.available)
        handle(result.events)

    def handle(events: tuple[StockLow, ...] | list[StockLow]) -> None:
        for event in events:
            lows.append(event)
            # the independent expectation: order only when the position is short
            if event.available + incoming[event.sku] <= event.reorder_point:
                expected_orders[event.sku] += 1
            order = driver.run(replenisher.handle(event))
            if rng.random() < 0.2:  # the StockLow itself is delivered twice
                assert driver.run(replenisher.handle(event)) == order
            if order is not None:
                incoming[event.sku] += order.lines[0].quantity

    for item in arriving:
        if isinstance(item, StockUpdate):
            record(ledger.observe(item.level, event_id=item.event_id))
        elif isinstance(item, _Commit):
            record(ledger.commit(item.order_id, "0", item.sku, item.quantity, at=T0))
        else:
            for result in ledger.cancel(item.order_id):
                record(result)

    # -- the nightly reconciliation against the source's full export ----------------------
    export = tmp_path / "stock.csv"
    export.write_text("sku,on_hand\n" + "".join(f"{s},{q}\n" for s, q in on_hand.items()))
    end = T0 + timedelta(seconds=EVENTS + 1)
    source = FileStockSource.from_path(export, as_of=end, page_size=100)
    report = driver.run(reconcile(source, ledger))
    for fix in report.corrections:
        applied_available[fix.sku].append(ledger.level(fix.sku).available)
    handle(report.events)
    assert report.complete
    assert report.corrected > 0  # the dropped webhooks left drift behind

    # every level equals the truth
    for sku in products:
        level = ledger.level(sku)
        assert (level.on_hand, level.committed) == (on_hand[sku], committed[sku]), sku
    # each crossing (as the ledger saw the levels) produced exactly one StockLow
    crossings: Counter[str] = Counter()
    for sku, values in applied_available.items():
        low = opening[sku] <= points[sku]
        for value in values:
            if value <= points[sku] and not low:
                crossings[sku] += 1
            low = value <= points[sku]
    assert Counter(e.sku for e in lows) == crossings
    assert len({e.event_id for e in lows}) == len(lows)
    # every SKU that is short now is flagged
    for sku in products:
        assert ledger.is_low(sku) == (on_hand[sku] - committed[sku] <= points[sku]), sku
    # each shortfall exactly one purchase order
    orders = list(store.orders())
    assert Counter(o.lines[0].sku for o in orders) == expected_orders
    assert len({o.reference for o in orders}) == len(orders)
    assert sum(expected_orders.values()) > 50
