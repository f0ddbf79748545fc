"""A customer's order history, for the CRM figures the contact steps send.

The CRM steps send each contact the figures :mod:`dixis_integrations.crm.aggregates`
computes over all of the customer's orders (cancelled and refunded ones excluded), not
only the order at hand. Where those orders come from is an :class:`OrderHistory`:

* :class:`JournalOrderHistory` (what :class:`~dixis_integrations.hub.Integrations` uses):
  the orders are the ``order.created`` events already recorded in the journal, looked up
  by their event id; the list of a customer's orders, refunds and cancellations is kept
  in the journal's checkpoint table (one row per customer and CRM integration), so it
  works on SQLite and PostgreSQL alike and survives restarts.
* :class:`MemoryOrderHistory`: one process, and tests.
* anything of the host's with the same methods (its own order database).

The CRM steps run one at a time per integration (a serial lane), so a customer's row is
never written by two workers at once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from dixis_integrations.crm.aggregates import CustomerAggregate, aggregate_customer
from dixis_integrations.models.crm import CRMContact
from dixis_integrations.models.customer import AcquisitionSource, Customer
from dixis_integrations.models.events import DEFAULT_TENANT, OrderCreated, parse_event
from dixis_integrations.models.order import Order, OrderStatus, Refund
from dixis_integrations.sync.journal import CheckpointStore, Journal

__all__ = [
    "CustomerHistory",
    "JournalOrderHistory",
    "MemoryOrderHistory",
    "OrderHistory",
    "contact_from_history",
    "lifecycle_segment",
]


@dataclass
class CustomerHistory:
    """What is known of one customer: their orders (cancelled ones with that status),
    and the refunds of those orders."""

    orders: list[Order] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)


@runtime_checkable
class OrderHistory(Protocol):
    """Where the CRM steps read (and note) a customer's orders.

    ``scope`` separates the CRM integrations (each keeps its own record, written only by
    its own serial lane). Every ``note_*`` is idempotent: the same order, refund or
    cancellation noted twice counts once.
    """

    def order(self, tenant: str, order_id: str) -> Order | None:
        """One order by our id (``None``: not known)."""
        ...

    def note_order(self, tenant: str, scope: str, order: Order) -> None:
        """Note an order of ``order.customer``."""
        ...

    def note_refund(self, tenant: str, scope: str, customer_id: str, refund: Refund) -> None:
        """Note a refund of one of the customer's orders."""
        ...

    def note_cancelled(self, tenant: str, scope: str, customer_id: str, order_id: str) -> None:
        """Note that one of the customer's orders was cancelled."""
        ...

    def customer(self, tenant: str, scope: str, customer_id: str) -> CustomerHistory:
        """Everything noted of one customer."""
        ...


def _order_event_id(tenant: str, order_id: str) -> str:
    key = f"order.created:{order_id}"
    return key if tenant == DEFAULT_TENANT else f"{tenant}/{key}"


class _Record:
    """The ids noted for one customer, as stored (JSON)."""

    def __init__(self, text: str | None = None) -> None:
        data = json.loads(text) if text else {}
        self.orders: list[str] = list(data.get("orders", []))
        self.cancelled: list[str] = list(data.get("cancelled", []))
        self.refunds: list[dict[str, object]] = list(data.get("refunds", []))

    def dump(self) -> str:
        return json.dumps(
            {"orders": self.orders, "cancelled": self.cancelled, "refunds": self.refunds},
            separators=(",", ":"),
        )

    def add_order(self, order_id: str) -> bool:
        if order_id in self.orders:
            return False
        self.orders.append(order_id)
        return True

    def add_cancelled(self, order_id: str) -> bool:
        if order_id in self.cancelled:
            return False
        self.cancelled.append(order_id)
        return True

    def add_refund(self, refund: Refund) -> bool:
        if any(r.get("id") == refund.id for r in self.refunds):
            return False
        self.refunds.append(refund.model_dump(mode="json"))
        return True

    def history(self, load: Callable[[str], Order | None]) -> CustomerHistory:
        out = CustomerHistory()
        for order_id in self.orders:
            order = load(order_id)
            if order is None:
                continue
            if order_id in self.cancelled:
                order = order.model_copy(update={"status": OrderStatus.CANCELLED})
            out.orders.append(order)
        out.refunds = [Refund.model_validate(r) for r in self.refunds]
        return out


class JournalOrderHistory:
    """The order history kept in the journal (see the module's text).

    Orders are read back from their recorded ``order.created`` job; a customer's list of
    order ids, cancellations and refunds is a checkpoint named
    ``history:<scope>:<customer id>``.
    """

    def __init__(self, journal: Journal, checkpoints: CheckpointStore | None = None) -> None:
        """``checkpoints``: where the per-customer lists go (default: the journal).

        Raises:
            TypeError: the journal keeps no checkpoints and none are given.
        """
        if checkpoints is None:
            if not isinstance(journal, CheckpointStore):
                raise TypeError("the journal keeps no checkpoints: pass checkpoints=")
            checkpoints = journal
        self.journal = journal
        self.checkpoints = checkpoints

    def order(self, tenant: str, order_id: str) -> Order | None:
        """The order of the recorded ``order.created`` event (``None``: never recorded)."""
        jobs = self.journal.jobs(tenant=tenant, event_id=_order_event_id(tenant, order_id), limit=1)
        if not jobs:
            return None
        event = parse_event(jobs[0].payload)
        return event.order if isinstance(event, OrderCreated) else None

    def _name(self, scope: str, customer_id: str) -> str:
        return f"history:{scope}:{customer_id}"

    def _update(
        self, tenant: str, scope: str, customer_id: str, change: Callable[[_Record], bool]
    ) -> None:
        name = self._name(scope, customer_id)
        record = _Record(self.checkpoints.get_checkpoint(name, tenant))
        if change(record):
            self.checkpoints.set_checkpoint(name, record.dump(), tenant)

    def note_order(self, tenant: str, scope: str, order: Order) -> None:
        """Add the order's id to its customer's list."""
        self._update(tenant, scope, order.customer.id, lambda r: r.add_order(order.id))

    def note_refund(self, tenant: str, scope: str, customer_id: str, refund: Refund) -> None:
        """Add the refund to the customer's list."""
        self._update(tenant, scope, customer_id, lambda r: r.add_refund(refund))

    def note_cancelled(self, tenant: str, scope: str, customer_id: str, order_id: str) -> None:
        """Mark the order cancelled in the customer's list."""
        self._update(tenant, scope, customer_id, lambda r: r.add_cancelled(order_id))

    def customer(self, tenant: str, scope: str, customer_id: str) -> CustomerHistory:
        """The customer's orders (read back from the journal) and refunds."""
        record = _Record(self.checkpoints.get_checkpoint(self._name(scope, customer_id), tenant))
        return record.history(lambda order_id: self.order(tenant, order_id))


class MemoryOrderHistory:
    """An order history in memory: for one process, and tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._orders: dict[tuple[str, str], Order] = {}
        self._records: dict[tuple[str, str, str], _Record] = {}

    def _record(self, tenant: str, scope: str, customer_id: str) -> _Record:
        return self._records.setdefault((tenant, scope, customer_id), _Record())

    def add(self, order: Order, *, tenant: str = DEFAULT_TENANT) -> None:
        """Make an order known (as a host's order database would)."""
        with self._lock:
            self._orders[(tenant, order.id)] = order

    def order(self, tenant: str, order_id: str) -> Order | None:
        """One order by our id."""
        with self._lock:
            return self._orders.get((tenant, order_id))

    def note_order(self, tenant: str, scope: str, order: Order) -> None:
        """Note (and remember) an order."""
        with self._lock:
            self._orders.setdefault((tenant, order.id), order)
            self._record(tenant, scope, order.customer.id).add_order(order.id)

    def note_refund(self, tenant: str, scope: str, customer_id: str, refund: Refund) -> None:
        """Note a refund."""
        with self._lock:
            self._record(tenant, scope, customer_id).add_refund(refund)

    def note_cancelled(self, tenant: str, scope: str, customer_id: str, order_id: str) -> None:
        """Note a cancellation."""
        with self._lock:
            self._record(tenant, scope, customer_id).add_cancelled(order_id)

    def customer(self, tenant: str, scope: str, customer_id: str) -> CustomerHistory:
        """Everything noted of one customer."""
        with self._lock:
            record = self._record(tenant, scope, customer_id)
            orders = dict(self._orders)
        return record.history(lambda order_id: orders.get((tenant, order_id)))


def lifecycle_segment(aggregate: CustomerAggregate) -> str | None:
    """The default segment of a contact, from its aggregate alone: ``new`` (one counted
    order), ``returning`` (two to four), ``loyal`` (five or more); ``None`` without a
    counted order. Hosts with RFM segments pass their own function instead."""
    if aggregate.total_orders >= 5:
        return "loyal"
    if aggregate.total_orders >= 2:
        return "returning"
    if aggregate.total_orders == 1:
        return "new"
    return None


def _acquisition(history: CustomerHistory, customer: Customer) -> AcquisitionSource | None:
    """Where the customer came from: as recorded on their earliest order, else now."""
    dated = sorted(history.orders, key=lambda o: o.created_at)
    for order in dated:
        if order.customer.acquisition is not None:
            return order.customer.acquisition
    return customer.acquisition


def contact_from_history(
    customer: Customer,
    history: CustomerHistory,
    *,
    currency: str = "EUR",
    segment_of: Callable[[CustomerAggregate], str | None] = lifecycle_segment,
) -> CRMContact:
    """The customer as a CRM contact, with the figures of
    :func:`~dixis_integrations.crm.aggregates.aggregate_customer` over ``history``
    (cancelled and refunded orders excluded, partial refunds subtracted), the segment
    ``segment_of`` gives, and the acquisition source of their first order."""
    orders = [o for o in history.orders if o.customer.id == customer.id]
    if orders and any(o.currency != currency for o in orders):
        currency = orders[-1].currency
        orders = [o for o in orders if o.currency == currency]
    refunds = [r for r in history.refunds if r.amount.currency == currency]
    aggregate = aggregate_customer(customer.id, orders, refunds, currency=currency)
    return CRMContact(
        reference=customer.id,
        email=customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name,
        phone=customer.phone,
        total_orders=aggregate.total_orders,
        total_spent=aggregate.total_spent,
        last_order_date=aggregate.last_order_date,
        segment=segment_of(aggregate),
        acquisition=_acquisition(CustomerHistory(orders, refunds), customer),
        consent=customer.consent,
    )
