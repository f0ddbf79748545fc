"""Domain events: what happened, once, with a stable id that makes handling idempotent.

``event_id`` defaults to a key derived from the event type and its identifying content
(``order.created:<order id>``), so the same fact reported twice has the same id.
:func:`parse_event` reads any event back from a dict or a JSON (Lines) record.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from dixis_integrations.models._types import (
    ExactDecimal,
    NonEmptyStr,
    Reference,
    UtcDatetime,
    utcnow,
)
from dixis_integrations.models.customer import Customer
from dixis_integrations.models.order import Order, Payment, Refund
from dixis_integrations.models.product import Sku
from dixis_integrations.models.shipping import TrackingStatus

__all__ = [
    "DEFAULT_TENANT",
    "AnyEvent",
    "ConsentWithdrawn",
    "ContactChanged",
    "CustomerCreated",
    "Event",
    "EventType",
    "LedgerChanged",
    "OrderCancelled",
    "OrderCreated",
    "OrderPaid",
    "OrderRefunded",
    "ShipmentStatusChanged",
    "StockChanged",
    "StockLow",
    "parse_event",
]

DEFAULT_TENANT: Final = "default"

EventType = Literal[
    "order.created",
    "order.paid",
    "order.cancelled",
    "order.refunded",
    "customer.created",
    "stock.low",
    "shipment.status_changed",
    "stock.changed",
    "ledger.changed",
    "contact.changed",
    "consent.withdrawn",
]
"""The discriminator values of the built-in events."""


def _stamp(value: datetime) -> str:
    return value.isoformat()


class Event(BaseModel):
    """The base of every event: ``type`` (the discriminator), ``event_id``,
    ``occurred_at`` (aware UTC, default now) and ``tenant`` (default ``"default"``).

    When ``event_id`` is not given it is ``"<type>:<identity>"``, prefixed with
    ``"<tenant>/"`` for a tenant other than the default; each subclass says which of its
    fields identify it (see :meth:`identity`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    # "" (the default, never a valid explicit value) means "derive it".
    event_id: Annotated[NonEmptyStr, Field(max_length=512)] = ""
    occurred_at: UtcDatetime = Field(default_factory=utcnow)
    tenant: Reference = DEFAULT_TENANT

    def identity(self) -> tuple[str, ...]:
        """The parts of the content that identify this fact.

        Every concrete event overrides this. A subclass that does not must be given an
        explicit ``event_id``.

        Raises:
            NotImplementedError: on a subclass that does not define its identity.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must override identity() or be given an event_id"
        )

    def derived_event_id(self) -> str:
        """The id this event gets from its type and identity (whatever ``event_id`` is)."""
        key = f"{self.type}:{':'.join(self.identity())}"
        return key if self.tenant == DEFAULT_TENANT else f"{self.tenant}/{key}"

    @model_validator(mode="after")
    def _derive_event_id(self) -> Self:
        if not self.event_id:
            # Frozen model: set the derived value once, during validation.
            object.__setattr__(self, "event_id", self.derived_event_id())
        return self


class OrderCreated(Event):
    """An order was placed. Identity: the order id."""

    type: Literal["order.created"] = "order.created"
    order: Order

    def identity(self) -> tuple[str, ...]:
        """``(order.id,)``."""
        return (self.order.id,)


class OrderPaid(Event):
    """A payment was received for an order. Identity: order id and payment id."""

    type: Literal["order.paid"] = "order.paid"
    order_id: Reference
    payment: Payment

    def identity(self) -> tuple[str, ...]:
        """``(order_id, payment.id)``."""
        return (self.order_id, self.payment.id)


class OrderCancelled(Event):
    """An order was cancelled. Identity: the order id (an order is cancelled once)."""

    type: Literal["order.cancelled"] = "order.cancelled"
    order_id: Reference
    reason: NonEmptyStr | None = None

    def identity(self) -> tuple[str, ...]:
        """``(order_id,)``."""
        return (self.order_id,)


class OrderRefunded(Event):
    """Money was given back. Identity: order id and refund id."""

    type: Literal["order.refunded"] = "order.refunded"
    order_id: Reference
    refund: Refund

    def identity(self) -> tuple[str, ...]:
        """``(order_id, refund.id)``."""
        return (self.order_id, self.refund.id)


class CustomerCreated(Event):
    """A customer account was created. Identity: the customer id."""

    type: Literal["customer.created"] = "customer.created"
    customer: Customer

    def identity(self) -> tuple[str, ...]:
        """``(customer.id,)``."""
        return (self.customer.id,)


class StockLow(Event):
    """Stock of a SKU at a location fell to or below its reorder point.

    Identity: sku, location, available and ``occurred_at``: the same level reported
    again later is a new fact. Pass the source's timestamp as ``occurred_at`` so that
    a replayed report keeps its id.
    """

    type: Literal["stock.low"] = "stock.low"
    sku: Sku
    location: Reference
    available: ExactDecimal
    reorder_point: Annotated[ExactDecimal, Field(ge=0)]

    def identity(self) -> tuple[str, ...]:
        """``(sku, location, available, occurred_at)``."""
        return (self.sku, self.location, _decimal(self.available), _stamp(self.occurred_at))


class ShipmentStatusChanged(Event):
    """A parcel's normalised tracking status changed at ``at`` (aware UTC).

    ``raw_code`` keeps the carrier's own status code; ``order_id`` is our order of the
    parcel when known (the webhook path fills it in from the journal). Identity:
    carrier, tracking number, status and ``at``.
    """

    type: Literal["shipment.status_changed"] = "shipment.status_changed"
    carrier: NonEmptyStr
    tracking_number: NonEmptyStr
    status: TrackingStatus
    previous: TrackingStatus | None = None
    raw_code: NonEmptyStr | None = None
    at: UtcDatetime
    order_id: Reference | None = None

    def identity(self) -> tuple[str, ...]:
        """``(carrier, tracking_number, status, at)``."""
        return (self.carrier, self.tracking_number, self.status.value, _stamp(self.at))


class StockChanged(Event):
    """An inventory system reported a SKU's level at a location (from its webhook).

    ``source`` is the integration that reported it. Identity: source, sku, location,
    on hand, committed and ``as_of``.
    """

    type: Literal["stock.changed"] = "stock.changed"
    source: NonEmptyStr
    sku: Sku
    location: Reference
    on_hand: ExactDecimal
    committed: ExactDecimal = Decimal(0)
    as_of: UtcDatetime

    @property
    def available(self) -> Decimal:
        """On hand less what is committed."""
        return self.on_hand - self.committed

    def identity(self) -> tuple[str, ...]:
        """``(source, sku, location, on_hand, committed, as_of)``."""
        return (
            self.source,
            self.sku,
            self.location,
            _decimal(self.on_hand),
            _decimal(self.committed),
            _stamp(self.as_of),
        )


class LedgerChanged(Event):
    """A record changed in an accounting ledger, as re-read after the ledger's webhook.

    ``record`` is ``invoice``, ``payment``, ``credit_note``, ``customer`` or ``item``;
    ``reference`` is ours as stored in the ledger (the order id of an invoice);
    ``status`` is an invoice's status in lower case (``paid`` once nothing is owed,
    ``voided``...), ``None`` for other records. Identity: provider, record, external id,
    status, deleted and ``changed_at``.
    """

    type: Literal["ledger.changed"] = "ledger.changed"
    provider: NonEmptyStr
    record: NonEmptyStr
    external_id: NonEmptyStr
    reference: str | None = None
    status: str | None = None
    deleted: bool = False
    changed_at: UtcDatetime

    def identity(self) -> tuple[str, ...]:
        """``(provider, record, external_id, status, deleted, changed_at)``."""
        return (
            self.provider,
            self.record,
            self.external_id,
            self.status or "",
            "deleted" if self.deleted else "",
            _stamp(self.changed_at),
        )


class ContactChanged(Event):
    """A CRM reported a change to one of its records (a contact, person or lead).

    ``change`` is ``created``, ``updated``, ``deleted``, ``merged``, ``privacy_deleted``
    or ``other``; ``object_type`` is the CRM's own record type. Identity: provider,
    object type, external id, change, property and ``at``.
    """

    type: Literal["contact.changed"] = "contact.changed"
    provider: NonEmptyStr
    change: NonEmptyStr
    object_type: NonEmptyStr
    external_id: NonEmptyStr
    property_name: str | None = None
    property_value: str | None = None
    at: UtcDatetime

    def identity(self) -> tuple[str, ...]:
        """``(provider, object_type, external_id, change, property_name, at)``."""
        return (
            self.provider,
            self.object_type,
            self.external_id,
            self.change,
            self.property_name or "",
            _stamp(self.at),
        )


class ConsentWithdrawn(Event):
    """A person withdrew marketing consent at an email provider (unsubscribed there).

    Identity: provider, email and ``at``.
    """

    type: Literal["consent.withdrawn"] = "consent.withdrawn"
    provider: NonEmptyStr
    email: NonEmptyStr
    reason: str | None = None
    at: UtcDatetime

    def identity(self) -> tuple[str, ...]:
        """``(provider, email, at)``."""
        return (self.provider, self.email.lower(), _stamp(self.at))


def _decimal(value: Decimal) -> str:
    # 5, 5.0 and 5.000 are the same level: normalise so the id does not depend on scale.
    return format(value.normalize(), "f") if value else "0"


AnyEvent = Annotated[
    OrderCreated
    | OrderPaid
    | OrderCancelled
    | OrderRefunded
    | CustomerCreated
    | StockLow
    | ShipmentStatusChanged
    | StockChanged
    | LedgerChanged
    | ContactChanged
    | ConsentWithdrawn,
    Field(discriminator="type"),
]
"""Any built-in event, discriminated by ``type``."""

_ANY_EVENT: Final[TypeAdapter[AnyEvent]] = TypeAdapter(AnyEvent)


def parse_event(data: dict[str, Any] | str | bytes) -> AnyEvent:
    """Read one event from a dict or from one JSON document (one JSON Lines record).

    Args:
        data: a mapping as produced by ``model_dump()``, or JSON text/bytes as produced
            by ``model_dump_json()``.

    Returns:
        The event, as its concrete class (chosen by ``type``).

    Raises:
        pydantic.ValidationError: if ``type`` is unknown or a field is invalid; ``loc``
            starts with the event type, then the field path
            (``("order.created", "order", "lines", 0, "quantity")``).
    """
    if isinstance(data, str | bytes):
        return _ANY_EVENT.validate_json(data)
    return _ANY_EVENT.validate_python(data)
