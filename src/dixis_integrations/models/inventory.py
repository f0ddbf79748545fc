"""Stock as separate quantities per SKU and location, adjustments and purchase orders.

A level is never one number: on hand, committed to orders, available and incoming are
kept apart so that no system confuses "in the barn" with "free to sell".
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dixis_integrations.models._types import WireStrEnum

__all__ = [
    "Correction",
    "PurchaseOrder",
    "PurchaseOrderLine",
    "PurchaseOrderStatus",
    "StockAdjustment",
    "StockLevel",
    "StockPage",
    "StockReceipt",
    "StockUpdate",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class StockLevel(BaseModel):
    """The stock of one SKU at one location at one instant.

    ``version`` is the source's own version or timestamp marker, used to refuse an older
    reading overwriting a newer one and for compare-and-set writes.
    """

    model_config = _FROZEN
    sku: str = Field(min_length=1)
    location: str = "default"
    on_hand: Decimal
    committed: Decimal = Decimal(0)
    incoming: Decimal = Decimal(0)
    as_of: AwareDatetime
    version: str | None = None

    @property
    def available(self) -> Decimal:
        """On hand less what is committed to orders."""
        return self.on_hand - self.committed


class StockAdjustment(BaseModel):
    """A change in on-hand stock (a delta), with its reason and our reference."""

    model_config = _FROZEN
    sku: str = Field(min_length=1)
    location: str = "default"
    delta: Decimal
    reason: str
    reference: str


class StockPage(BaseModel):
    """One page of levels from a source; ``next_cursor`` is ``None`` on the last page."""

    model_config = _FROZEN
    levels: tuple[StockLevel, ...]
    next_cursor: str | None = None


class PurchaseOrderStatus(WireStrEnum):
    """Where a purchase order stands."""

    DRAFT = "draft"
    ISSUED = "issued"
    RECEIVED = "received"
    CANCELLED = "cancelled"


class PurchaseOrderLine(BaseModel):
    """One SKU ordered from a supplier."""

    model_config = _FROZEN
    sku: str
    quantity: Decimal = Field(gt=0)


class PurchaseOrder(BaseModel):
    """A reorder to a supplier; ``external_id`` once the inventory system holds it."""

    model_config = _FROZEN
    reference: str
    supplier_id: str
    lines: tuple[PurchaseOrderLine, ...] = Field(min_length=1)
    status: PurchaseOrderStatus = PurchaseOrderStatus.ISSUED
    location: str = "default"
    created_at: AwareDatetime
    external_id: str | None = None


class StockUpdate(BaseModel):
    """A level a source pushed (a webhook), with the id that makes its delivery idempotent.

    ``event_id`` is the vendor's delivery or event id where it sends one, else a key
    derived from the level's SKU, location and ``as_of``: the same report twice has the
    same id.
    """

    model_config = _FROZEN
    event_id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    level: StockLevel


class Correction(BaseModel):
    """One difference a reconciliation pass found and fixed: ours was ``ours``, the
    source (the owner of the quantity) said ``theirs``. ``field`` is ``"on_hand"`` (fixed),
    ``"stale"`` (the source's reading is older than ours: kept ours) or ``"missing"`` (we
    hold a level the source no longer lists).
    """

    model_config = _FROZEN
    sku: str
    location: str
    field: str
    ours: Decimal | None
    theirs: Decimal | None
    source: str


class StockReceipt(BaseModel):
    """Goods received against one of our purchase orders (one SKU of it).

    ``reference`` is our purchase order number (``PurchaseOrder.reference``); ``event_id``
    makes the delivery of the receipt idempotent; ``received_at`` is when the goods were
    booked in (a reading of on hand taken after it already counts them).
    """

    model_config = _FROZEN
    event_id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    reference: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    location: str = "default"
    quantity: Decimal = Field(gt=0)
    received_at: AwareDatetime
