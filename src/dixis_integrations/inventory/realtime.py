"""Real-time stock sync: verified webhooks, order events and goods receipts into the
ledger, low stock into purchase orders.

:class:`StockSync` is the one place a host feeds: ``apply_updates`` for a source's
webhooks (already verified by the adapter's ``parse_webhook``), ``apply_event`` for the
marketplace's ``order.created`` / ``order.cancelled``. Every change is applied once and in
order per SKU (see :class:`~dixis_integrations.inventory.ledger.StockLedger`); the
``StockLow`` events it causes are collected and, with a replenisher, turned into orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dixis_integrations.http.driver import Operation
from dixis_integrations.inventory.ledger import Applied, Outcome, StockLedger
from dixis_integrations.inventory.purchasing import Replenisher
from dixis_integrations.models.events import Event, OrderCancelled, OrderCreated, StockLow
from dixis_integrations.models.inventory import (
    PurchaseOrder,
    PurchaseOrderStatus,
    StockReceipt,
    StockUpdate,
)

__all__ = ["StockSync", "SyncOutcome"]


@dataclass
class SyncOutcome:
    """What a batch did: counts by outcome, and the ``StockLow`` events it raised."""

    applied: int = 0
    duplicates: int = 0
    stale: int = 0
    superseded: int = 0
    low: list[StockLow] = field(default_factory=list)

    def add(self, result: Applied | None) -> None:
        """Count one ledger result."""
        if result is None:
            self.superseded += 1
            return
        if result.outcome is Outcome.APPLIED:
            self.applied += 1
        elif result.outcome is Outcome.DUPLICATE:
            self.duplicates += 1
        elif result.outcome is Outcome.STALE:
            self.stale += 1
        else:
            self.superseded += 1
        self.low.extend(result.events)


class StockSync:
    """Feeds the ledger and, given a replenisher, raises purchase orders for low stock.

    Args:
        ledger: the levels.
        replenisher: turns each ``StockLow`` into at most one purchase order.
        location: where order lines commit stock (orders carry no location).
    """

    def __init__(
        self,
        ledger: StockLedger,
        *,
        replenisher: Replenisher | None = None,
        location: str = "default",
    ) -> None:
        self.ledger = ledger
        self.replenisher = replenisher
        self.location = location

    def apply_updates(self, updates: Iterable[StockUpdate]) -> SyncOutcome:
        """Apply verified webhook levels (absolute on hand from the owning source)."""
        outcome = SyncOutcome()
        for update in updates:
            outcome.add(self.ledger.observe(update.level, event_id=update.event_id))
        return outcome

    def apply_receipts(self, receipts: Iterable[StockReceipt]) -> SyncOutcome:
        """Book goods received against our purchase orders (a vendor's receipt webhook,
        read by its adapter, or a host's own goods-in record), each once: incoming becomes
        on hand, and the purchase order is marked received in the replenisher's store.

        Raises:
            InvalidInput: ``unknown_sku`` for a SKU the ledger does not hold.
        """
        outcome = SyncOutcome()
        for receipt in receipts:
            result = self.ledger.receive(
                receipt.reference,
                receipt.sku,
                receipt.quantity,
                location=receipt.location,
                at=receipt.received_at,
            )
            outcome.add(result)
            if result.outcome is Outcome.APPLIED and self.replenisher is not None:
                self.replenisher.store.update(
                    receipt.reference, status=PurchaseOrderStatus.RECEIVED
                )
        return outcome

    def apply_event(self, event: Event) -> SyncOutcome:
        """Commit stock for ``order.created``, release it for ``order.cancelled``; other
        events change nothing. Redelivery and cancellation-before-creation are safe.
        """
        outcome = SyncOutcome()
        if isinstance(event, OrderCreated):
            for result in self.ledger.commit_order(event.order, location=self.location):
                outcome.add(result)
        elif isinstance(event, OrderCancelled):
            for result in self.ledger.cancel(event.order_id, at=event.occurred_at):
                outcome.add(result)
        return outcome

    def replenish(self, low: Iterable[StockLow]) -> Operation[list[PurchaseOrder]]:
        """The purchase orders for these ``StockLow`` events (none without a replenisher)."""
        orders: list[PurchaseOrder] = []
        if self.replenisher is None:
            return orders
        for event in low:
            order = yield from self.replenisher.handle(event)
            if order is not None:
                orders.append(order)
        return orders
