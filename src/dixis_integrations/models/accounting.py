"""Accounting results: what a ledger holds for our customers, orders, payments and refunds.

Every result keeps our reference next to the vendor's id, so any record can be found
again from either side.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from dixis_integrations.models.money import Money

__all__ = [
    "BatchItemResult",
    "BatchItemStatus",
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

    @property
    def total_mismatch(self) -> Money | None:
        """The vendor's total minus ours, or ``None`` when they agree to the cent."""
        diff = self.vendor_total - self.total
        return None if diff.is_zero else diff


class BatchItemStatus(StrEnum):
    """The outcome of one item of a bulk push."""

    CREATED = "created"
    ALREADY_EXISTED = "already_existed"
    REJECTED = "rejected"


class BatchItemResult(BaseModel):
    """One item of a bulk push, in input order."""

    model_config = _FROZEN
    reference: str
    status: BatchItemStatus
    external_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
