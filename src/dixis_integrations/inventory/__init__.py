"""Inventory: stock as separate quantities per SKU and location, kept right by webhooks
and reconciliation; low stock, the reorder policy and purchase orders.

The vendor adapters live in their own modules (``inventory.zoho``, ``inventory.cin7``) and
are imported only when named; this package re-exports the vendor-neutral pieces and the
file source.
"""

from dixis_integrations.inventory.files import (
    FileSourceConfig,
    FileStockSource,
    RowError,
    parse_record,
)
from dixis_integrations.inventory.ledger import Applied, Outcome, StockLedger
from dixis_integrations.inventory.purchasing import (
    PurchaseOrderStore,
    Replenisher,
    SmtpNotifier,
    SQLitePurchaseOrders,
    SupplierNotifier,
    WebhookNotifier,
    order_reference,
)
from dixis_integrations.inventory.realtime import StockSync, SyncOutcome
from dixis_integrations.inventory.reconcile import (
    CheckpointStore,
    MemoryCheckpoints,
    ReconcileReport,
    checkpoint_name,
    reconcile,
    reconcile_levels,
)
from dixis_integrations.inventory.reorder import (
    ReorderRule,
    plan_purchase_order,
    reorder_quantity,
    rule_for,
)
from dixis_integrations.inventory.store import LedgerStore, SQLiteLedgerStore

__all__ = [
    "Applied",
    "CheckpointStore",
    "FileSourceConfig",
    "FileStockSource",
    "LedgerStore",
    "MemoryCheckpoints",
    "Outcome",
    "PurchaseOrderStore",
    "ReconcileReport",
    "ReorderRule",
    "Replenisher",
    "RowError",
    "SQLiteLedgerStore",
    "SQLitePurchaseOrders",
    "SmtpNotifier",
    "StockLedger",
    "StockSync",
    "SupplierNotifier",
    "SyncOutcome",
    "WebhookNotifier",
    "checkpoint_name",
    "order_reference",
    "parse_record",
    "plan_purchase_order",
    "reconcile",
    "reconcile_levels",
    "reorder_quantity",
    "rule_for",
]
