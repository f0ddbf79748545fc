"""Accounting results: what a ledger holds for our customers, orders, payments and refunds.

Every result keeps our reference next to the vendor's id, so any record can be found
again from either side. Webhook and reconciliation results are vendor-neutral too.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from dixis_integrations.models._types import WireStrEnum
from dixis_integrations.models.money import Money

__all__ = [
    "BatchItemResult",
    "BatchItemStatus",
    "LedgerChange",
    "LedgerChangePage",
    "LedgerRecord",
    "PostedInvoice",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class LedgerRecord(BaseModel):
    """A record at the vendor (contact, item, payment, credit note) and our reference."""

    model_config = _FROZEN
    provider: str
    kind: str
    external_id: str
    reference: str
    created: bool = True


class PostedInvoice(BaseModel):
    """An invoice at the vendor for one of our orders.

    ``total`` is what we computed, ``vendor_total`` what the vendor computed; when they
    differ by a cent or more ``total_mismatch`` holds the difference (vendor - ours).
    ``tax``/``vendor_tax`` are the same pair for the VAT, when known.
    """

    model_config = _FROZEN
    provider: str
    external_id: str
    reference: str
    number: str | None = None
    status: str
    total: Money
    vendor_total: Money
    created: bool = True
    tax: Money | None = None
    vendor_tax: Money | None = None

    @property
    def total_mismatch(self) -> Money | None:
        """The vendor's total minus ours, or ``None`` when they agree to the cent."""
        diff = self.vendor_total - self.total
        return None if diff.is_zero else diff

    @property
    def tax_mismatch(self) -> Money | None:
        """The vendor's VAT minus ours, or ``None`` when they agree (or one is unknown)."""
        if self.tax is None or self.vendor_tax is None:
            return None
        diff = self.vendor_tax - self.tax
        return None if diff.is_zero else diff


class BatchItemStatus(WireStrEnum):
    """The outcome of one item of a bulk push."""

    CREATED = "created"
    ALREADY_EXISTED = "already_existed"
    REJECTED = "rejected"


class BatchItemResult(BaseModel):
    """One item of a bulk push, in input order.

    ``invoice`` is set for created (and, when it could be read, already existing)
    invoices, so a total mismatch is visible per item.
    """

    model_config = _FROZEN
    reference: str
    status: BatchItemStatus
    external_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    invoice: PostedInvoice | None = None


class LedgerChange(BaseModel):
    """One record that changed at the vendor (from a webhook or a reconciliation pass).

    ``kind`` is ours (``invoice``, ``customer``, ``payment``, ``credit_note``,
    ``refund_receipt``, ``item`` or the vendor's own entity name in lower case when we
    have no name for it).
    """

    model_config = _FROZEN
    provider: str
    tenant: str
    kind: str
    external_id: str
    operation: str
    changed_at: datetime | None = None
    event_id: str | None = None
    deleted: bool = False


class LedgerChangePage(BaseModel):
    """Changes since a checkpoint; store ``checkpoint`` to resume after it."""

    model_config = _FROZEN
    changes: tuple[LedgerChange, ...]
    checkpoint: str
