"""Per-customer order aggregates, computed once by the library so every CRM gets the same
numbers: orders counted, total spent (``Money``, exact ``Decimal``) and the last order date.

Pure functions over our own orders: cancelled and fully refunded orders are left out,
refunds are subtracted from the orders they belong to, and nothing touches the network.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, tzinfo

from pydantic import BaseModel, ConfigDict, Field

from dixis_integrations.errors import FieldError, InvalidInput
from dixis_integrations.models.money import Money
from dixis_integrations.models.order import Order, OrderStatus, Refund

__all__ = ["EXCLUDED_STATUSES", "CustomerAggregate", "aggregate_customer", "aggregate_orders"]

EXCLUDED_STATUSES: frozenset[OrderStatus] = frozenset({OrderStatus.CANCELLED, OrderStatus.REFUNDED})
"""Orders in these states count for nothing: not in ``total_orders``, not in the money."""


class CustomerAggregate(BaseModel):
    """What one customer bought: the figures a CRM contact carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: str
    total_orders: int = Field(ge=0)
    total_spent: Money
    last_order_date: date | None = None


def _refunded_by_order(refunds: Iterable[Refund]) -> dict[str, Money]:
    out: dict[str, Money] = {}
    for refund in refunds:
        previous = out.get(refund.order_id)
        out[refund.order_id] = refund.amount if previous is None else previous + refund.amount
    return out


def aggregate_orders(
    orders: Iterable[Order],
    refunds: Iterable[Refund] = (),
    *,
    currency: str = "EUR",
    tz: tzinfo = UTC,
) -> dict[str, CustomerAggregate]:
    """Aggregate orders per customer id.

    An order counts unless its status is in :data:`EXCLUDED_STATUSES` or its refunds
    cover its whole total (then it is a refunded order in all but name). A partly
    refunded order counts once, for its total minus its refunds. ``last_order_date`` is
    the date (in ``tz``) of the latest counted order.

    Args:
        orders: any iterable of orders (several customers mixed).
        refunds: refunds of those orders, matched by ``order_id``.
        currency: the currency every counted order and refund must be in.
        tz: the time zone whose calendar dates ``last_order_date`` uses.

    Returns:
        One :class:`CustomerAggregate` per customer with at least one order seen, keyed
        by customer id, in first-seen order. Customers whose orders were all excluded
        are present with zero orders and zero spent.

    Raises:
        InvalidInput: an order or refund is in another currency (the path names it).
    """
    refunded = _refunded_by_order(refunds)
    for order_id, amount in refunded.items():
        if amount.currency != currency:
            raise InvalidInput(
                "refunds must be in the aggregate currency",
                errors=(FieldError(("refunds", order_id, "currency"), f"expected {currency}"),),
            )
    zero = Money.zero(currency)
    counts: dict[str, int] = {}
    spent: dict[str, Money] = {}
    latest: dict[str, date | None] = {}
    for order in orders:
        cid = order.customer.id
        counts.setdefault(cid, 0)
        spent.setdefault(cid, zero)
        latest.setdefault(cid, None)
        if order.status in EXCLUDED_STATUSES:
            continue
        if order.currency != currency:
            raise InvalidInput(
                "orders must be in the aggregate currency",
                errors=(FieldError(("orders", order.id, "currency"), f"expected {currency}"),),
            )
        net = order.total - refunded.get(order.id, zero)
        if not net.is_positive:
            continue  # refunded in full
        counts[cid] += 1
        spent[cid] = spent[cid] + net
        day = order.created_at.astimezone(tz).date()
        seen = latest[cid]
        if seen is None or day > seen:
            latest[cid] = day
    return {
        cid: CustomerAggregate(
            customer_id=cid,
            total_orders=counts[cid],
            total_spent=spent[cid].quantize(),
            last_order_date=latest[cid],
        )
        for cid in counts
    }


def aggregate_customer(
    customer_id: str,
    orders: Iterable[Order],
    refunds: Iterable[Refund] = (),
    *,
    currency: str = "EUR",
    tz: tzinfo = UTC,
) -> CustomerAggregate:
    """The aggregate of one customer (zero orders when none of ``orders`` is theirs)."""
    mine = [o for o in orders if o.customer.id == customer_id]
    found = aggregate_orders(mine, refunds, currency=currency, tz=tz).get(customer_id)
    if found is not None:
        return found
    return CustomerAggregate(
        customer_id=customer_id, total_orders=0, total_spent=Money.zero(currency)
    )
