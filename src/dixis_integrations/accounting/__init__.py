"""Accounting: Greek VAT mapping, ledger adapters (QuickBooks Online, Xero), reconciliation.

Importing this package is light: the adapters are loaded on first attribute access
(``dixis_integrations.accounting.Xero``) or through the entry-point registry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dixis_integrations.accounting.reconcile import (
    ChangeSource,
    CheckpointStore,
    MemoryCheckpoints,
    reconcile,
)
from dixis_integrations.accounting.tax import (
    InvoiceLine,
    LineKind,
    TaxCodeMap,
    TenantTaxCode,
    check_order,
    check_tenant_codes,
    codes_from_config,
    invoice_lines,
)

if TYPE_CHECKING:
    from dixis_integrations.accounting.quickbooks import QuickBooks, QuickBooksConfig
    from dixis_integrations.accounting.xero import Xero, XeroConfig

__all__ = [
    "ChangeSource",
    "CheckpointStore",
    "InvoiceLine",
    "LineKind",
    "MemoryCheckpoints",
    "QuickBooks",
    "QuickBooksConfig",
    "TaxCodeMap",
    "TenantTaxCode",
    "Xero",
    "XeroConfig",
    "check_order",
    "check_tenant_codes",
    "codes_from_config",
    "invoice_lines",
    "reconcile",
]

_LAZY = {
    "QuickBooks": "dixis_integrations.accounting.quickbooks",
    "QuickBooksConfig": "dixis_integrations.accounting.quickbooks",
    "Xero": "dixis_integrations.accounting.xero",
    "XeroConfig": "dixis_integrations.accounting.xero",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
