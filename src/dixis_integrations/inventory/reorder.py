"""The reorder policy: how much to buy, as a pure function of a level and a product.

The stock position is ``available + incoming``: an open purchase order already counts, so
a second order is never raised for the same shortfall. The quantity is the product's
reorder quantity (or the whole shortfall when that is larger), rounded up to the
supplier's pack size, and always enough to lift the position above the reorder point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from dixis_integrations.errors import FieldError, InvalidInput
from dixis_integrations.models.inventory import PurchaseOrder, PurchaseOrderLine, StockLevel
from dixis_integrations.models.product import Product

__all__ = ["ReorderRule", "plan_purchase_order", "reorder_quantity", "rule_for"]


@dataclass(frozen=True, slots=True)
class ReorderRule:
    """When and how much to reorder one SKU, and from whom."""

    reorder_point: Decimal
    reorder_quantity: Decimal
    pack_size: Decimal = Decimal(1)
    supplier_id: str = ""

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        if self.reorder_point < 0:
            errors.append(FieldError(("reorder_point",), "must not be negative", "negative"))
        if self.reorder_quantity <= 0:
            errors.append(FieldError(("reorder_quantity",), "must be positive", "not_positive"))
        if self.pack_size <= 0:
            errors.append(FieldError(("pack_size",), "must be positive", "not_positive"))
        if errors:
            raise InvalidInput("invalid reorder rule", errors=errors)


def rule_for(product: Product) -> ReorderRule | None:
    """The product's rule, or ``None`` when it has no reorder point or quantity.

    Raises:
        InvalidInput: ``supplier`` missing on a product that has a reorder point.
    """
    if product.reorder_point is None or product.reorder_quantity is None:
        return None
    if product.supplier is None:
        raise InvalidInput(
            "cannot reorder without a supplier",
            errors=[FieldError(("supplier",), f"{product.sku} has no supplier", "missing")],
        )
    return ReorderRule(
        reorder_point=product.reorder_point,
        reorder_quantity=product.reorder_quantity,
        pack_size=product.supplier.pack_size,
        supplier_id=product.supplier.id,
    )


def _round_up(quantity: Decimal, pack: Decimal) -> Decimal:
    packs = (quantity / pack).to_integral_value(rounding=ROUND_CEILING)
    return packs * pack


def reorder_quantity(level: StockLevel, rule: ReorderRule) -> Decimal:
    """How much to order now: ``0`` while ``available + incoming`` is above the point."""
    position = level.available + level.incoming
    if position > rule.reorder_point:
        return Decimal(0)
    shortfall = rule.reorder_point - position
    quantity = _round_up(max(rule.reorder_quantity, shortfall), rule.pack_size)
    if position + quantity <= rule.reorder_point:
        # Exactly at the point is still low: one more pack, or the next event reorders.
        quantity += rule.pack_size
    return quantity


def plan_purchase_order(
    level: StockLevel, rule: ReorderRule, *, reference: str, at: datetime
) -> PurchaseOrder | None:
    """The purchase order the level calls for, or ``None`` when none is needed."""
    quantity = reorder_quantity(level, rule)
    if quantity <= 0:
        return None
    return PurchaseOrder(
        reference=reference,
        supplier_id=rule.supplier_id,
        lines=(PurchaseOrderLine(sku=level.sku, quantity=quantity),),
        location=level.location,
        created_at=at,
    )
