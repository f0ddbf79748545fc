"""The built-in steps: what each job does with its adapter, written once as an operation.

A step maps an event (and the results of the jobs it waits on) to one adapter operation.
Each relies on the adapter's own idempotency (the vendor's key, or a lookup by our
reference), so running a step again after a crash finds the first effect instead of
making a second one. Hosts add their own with :meth:`StepBook.add`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from dixis_integrations.crm.aggregates import CustomerAggregate
from dixis_integrations.errors import DixisError, FieldError, InvalidInput, NotFound
from dixis_integrations.http.driver import Operation
from dixis_integrations.models.address import Address
from dixis_integrations.models.crm import CRMContact
from dixis_integrations.models.email import Subscriber
from dixis_integrations.models.events import (
    DEFAULT_TENANT,
    CustomerCreated,
    Event,
    OrderCancelled,
    OrderCreated,
    OrderPaid,
    OrderRefunded,
    parse_event,
)
from dixis_integrations.models.inventory import StockAdjustment, StockLevel
from dixis_integrations.models.order import Order, PaymentMethod
from dixis_integrations.models.shipping import (
    CashOnDelivery,
    LabelFormat,
    Parcel,
    Shipment,
    ShipmentRequest,
    ShippingOptions,
)
from dixis_integrations.protocols import Capability
from dixis_integrations.sync import flows
from dixis_integrations.sync.flows import MessageTemplate, Replenishment
from dixis_integrations.sync.history import OrderHistory, lifecycle_segment
from dixis_integrations.sync.journal import Job

__all__ = [
    "DEFAULT_PLAN_STEPS",
    "Dependency",
    "StepBook",
    "StepContext",
    "StepDefinition",
    "StepSettings",
    "builtin_steps",
    "can_find_shipments",
    "can_repeat_shipments",
    "contact_from_order",
    "external_id_of",
    "result_data",
    "shipment_request",
]


@dataclass(frozen=True)
class StepSettings:
    """What the built-in steps need beyond the event.

    Attributes:
        sender: the address parcels leave from (required by the shipment step).
        parcel_weight_kg: the weight of one parcel when the order does not say.
        label_format: the label the ``label`` step asks for.
        order_email_template: the template name of the order journey's first email
            (its content is ``messages[name]`` or the built-in one).
        email_templates: the provider's own template id of that email, per provider
            (some take numbers only): provider name -> template id. A provider without one
            gets the rendered content.
        messages: message templates by name (subject, text, HTML with ``$field``
            placeholders), over :data:`~.flows.DEFAULT_MESSAGES`.
        provider_templates: provider name -> template name -> the provider's id, for
            the other journey messages (``review_request``...).
        history: where a customer's orders are read for the CRM figures
            (:mod:`.history`); ``None``: only the orders of the events at hand count.
        segment_of: the contact's segment from its aggregate.
        replenishment: what the ``reorder`` step needs (products, ledger, store).
    """

    sender: Address | None = None
    parcel_weight_kg: Decimal = Decimal("2")
    label_format: LabelFormat = LabelFormat.PDF_A4
    order_email_template: str = "order_confirmation"
    email_templates: Mapping[str, str] = field(default_factory=dict)
    messages: Mapping[str, MessageTemplate] = field(default_factory=dict)
    provider_templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    history: OrderHistory | None = None
    segment_of: Callable[[CustomerAggregate], str | None] = lifecycle_segment
    replenishment: Replenishment | None = None


@dataclass(frozen=True)
class StepContext:
    """What a step sees: its job, the event, the adapter, the jobs it waited on."""

    job: Job
    event: Event
    adapter: Any
    settings: StepSettings
    deps: Mapping[str, Job] = field(default_factory=dict)

    def dep_event(self, step: str) -> Event:
        """The event of the job this one waited on for ``step``."""
        return parse_event(self.deps[step].payload)


StepHandler = Callable[[StepContext], Operation[Any]]


@dataclass(frozen=True)
class Dependency:
    """A job this step waits on: ``step`` of the same event, or of ``event_id(event)``.

    ``recorded``: wait instead on every ``step`` job already journalled for an event whose
    id starts with ``event_id(event)`` (none recorded: nothing to wait on).
    """

    step: str
    event_id: Callable[[Event], str] | None = None
    recorded: bool = False


@dataclass(frozen=True)
class StepDefinition:
    """One kind of job: its name, adapter kind, the events it handles, how, and after what.

    ``requires``: a capability the adapter must declare, or the step is left out of the
    plan for that adapter (no voucher cancellation at a carrier that cannot cancel).
    ``serial``: jobs of this step run one at a time per provider (stock adjustments at a
    vendor that reads, then writes the sum, would otherwise lose updates). With
    ``lane_key`` as well, one at a time per provider *and* key (one customer's contact
    jobs, say), so jobs of different keys still run side by side; a key of ``None`` falls
    back to the provider's lane.
    ``on_resolve``: builds the step's result from ``(event, provider, external_id)`` when a
    person resolves a dead job by saying the effect exists at the vendor under that id
    (:meth:`~dixis_integrations.sync.engine.Engine.resolve`), so the jobs waiting on it
    can run (the shipment step rebuilds the shipment for its label).
    ``repeatable``: whether an attempt that may have reached the vendor can be made again
    with this adapter without a second effect (the vendor takes our idempotency key, or
    the step looks the first effect up by our reference); ``None``: always. When it says
    no, an attempt lost after sending a write (a timeout, a 5xx, a dropped connection, a
    worker that died holding the job) is never repeated: the job is parked dead with
    ``error_code="in_doubt"`` for a person to check at the vendor and replay.
    """

    name: str
    kind: str
    event_types: frozenset[str]
    handler: StepHandler
    after: tuple[Dependency, ...] = ()
    description: str = ""
    requires: Capability | None = None
    serial: bool = False
    repeatable: Callable[[Any], bool] | None = None
    lane_key: Callable[[Event, StepSettings], str | None] | None = None
    on_resolve: Callable[[Event, str, str], Any] | None = None

    def lane(self, event: Event, provider: str, settings: StepSettings) -> str | None:
        """The lane a job of this step for ``event`` at ``provider`` runs in (``None``:
        no lane, it runs beside any other job)."""
        if not self.serial:
            return None
        lane = f"{self.kind}:{provider}"
        key = self.lane_key(event, settings) if self.lane_key is not None else None
        return lane if key is None else f"{lane}:{key}"

    def can_repeat(self, adapter: Any) -> bool:
        """Whether an attempt of this step that may have reached ``adapter``'s vendor
        can safely be made again (see ``repeatable``)."""
        return self.repeatable is None or self.repeatable(adapter)


class StepBook:
    """The steps an engine knows, by name; built-ins plus the host's own."""

    def __init__(self, steps: Iterable[StepDefinition] = ()) -> None:
        self._steps: dict[str, StepDefinition] = {}
        for s in steps:
            self.add(s)

    def add(self, step: StepDefinition) -> None:
        """Add (or replace) a step."""
        self._steps[step.name] = step

    def get(self, name: str) -> StepDefinition:
        """The step called ``name``.

        Raises:
            KeyError: no such step.
        """
        return self._steps[name]

    def __contains__(self, name: object) -> bool:
        return name in self._steps

    def names(self) -> list[str]:
        """Every step name."""
        return sorted(self._steps)


# -- helpers --------------------------------------------------------------------------


def _order_event_id(tenant: str, order_id: str) -> str:
    key = f"order.created:{order_id}"
    return key if tenant == DEFAULT_TENANT else f"{tenant}/{key}"


def _of_order(event: Event) -> str:
    order_id = getattr(event, "order_id", None)
    if not isinstance(order_id, str):  # pragma: no cover - definitions pair with events
        raise TypeError(f"{type(event).__name__} has no order_id")
    return _order_event_id(event.tenant, order_id)


def customer_lane(event: Event, settings: StepSettings) -> str | None:
    """The customer an event is about, as a lane key: contact jobs of one customer run
    one at a time (their figures are read, then written), other customers' side by side.
    Events that name only the order find its customer in the history."""
    if isinstance(event, OrderCreated):
        return f"customer:{event.order.customer.id}"
    if isinstance(event, CustomerCreated):
        return f"customer:{event.customer.id}"
    order_id = getattr(event, "order_id", None)
    history = settings.history
    if isinstance(order_id, str) and history is not None:
        order = history.order(event.tenant, order_id)
        if order is not None:
            return f"customer:{order.customer.id}"
    return None


def _payments_of_order(event: Event) -> str:
    """The event id prefix of the order's ``order.paid`` events."""
    order_id = getattr(event, "order_id", None)
    if not isinstance(order_id, str):  # pragma: no cover - definitions pair with events
        raise TypeError(f"{type(event).__name__} has no order_id")
    key = f"order.paid:{order_id}:"
    return key if event.tenant == DEFAULT_TENANT else f"{event.tenant}/{key}"


def _order(ctx: StepContext) -> Order:
    event = ctx.event
    if isinstance(event, OrderCreated):
        return event.order
    raise TypeError(f"step {ctx.job.step} needs an order.created event")  # pragma: no cover


def external_id_of(result: Any) -> str | None:
    """The vendor's id of a step result (invoice id, tracking number, contact id...)."""
    if isinstance(result, list):
        ids = [external_id_of(r) for r in result]
        return ",".join(i for i in ids if i) or None
    for attr in ("external_id", "tracking_number", "message_id", "crm_id", "id"):
        value = getattr(result, attr, None)
        if isinstance(value, str) and value:
            return value
    if isinstance(result, StockLevel):
        return f"{result.sku}@{result.location}"
    return None


def result_data(result: Any) -> dict[str, Any] | None:
    """A step result as JSON-ready data for the journal (bytes are left out)."""
    if result is None:
        return None
    if isinstance(result, BaseModel):
        data = result.model_dump(mode="json", exclude=_bytes_fields(result))
        return dict(data)
    if isinstance(result, list):
        return {"items": [result_data(r) for r in result]}
    return {"value": str(result)}


def _bytes_fields(model: BaseModel) -> set[str]:
    return {k for k, v in model.__dict__.items() if isinstance(v, bytes)}


# -- order.created --------------------------------------------------------------------


def _invoice(ctx: StepContext) -> Operation[Any]:
    order = _order(ctx)
    if ctx.job.attempts > 1:
        # an earlier attempt may have landed before the crash that lost its answer
        found = yield from ctx.adapter.find_invoice(order.id)
        if found is not None:
            return found
    return (yield from ctx.adapter.post_invoice(order))


def can_find_shipments(adapter: Any) -> bool:
    """Whether a carrier can be asked for the shipment of our reference
    (``find_shipment(reference) -> Operation[Shipment | None]``, optional)."""
    return callable(getattr(adapter, "find_shipment", None))


def can_repeat_shipments(adapter: Any) -> bool:
    """Whether a lost voucher creation can be tried again at this carrier without risking
    a second voucher: it takes idempotency keys, or finds a shipment by our reference."""
    capabilities: frozenset[Capability] = getattr(adapter, "capabilities", frozenset())
    return Capability.IDEMPOTENCY_KEYS in capabilities or can_find_shipments(adapter)


def _inventory_commit(ctx: StepContext) -> Operation[list[StockLevel]]:
    order = _order(ctx)
    levels: list[StockLevel] = []
    for line in order.lines:
        adjustment = StockAdjustment(
            sku=line.sku,
            delta=-line.quantity,
            reason=f"order {order.id}",
            reference=f"{order.id}:{line.sku}",
        )
        level = yield from ctx.adapter.adjust(adjustment)
        levels.append(level)
    return levels


def shipment_request(order: Order, settings: StepSettings) -> ShipmentRequest:
    """The shipment of an order, from the configured sender to the order's address.

    Raises:
        InvalidInput: no sender configured, or no address to ship to.
    """
    errors: list[FieldError] = []
    recipient = order.shipping_address or order.customer.shipping_address
    if settings.sender is None:
        errors.append(FieldError(("shipping", "sender"), "no sender address configured"))
    if recipient is None:
        errors.append(FieldError(("order", "shipping_address"), "the order has no address"))
    if errors or settings.sender is None or recipient is None:
        raise InvalidInput(f"cannot ship order {order.id}", errors=errors)
    cod = None
    if order.payment_method is PaymentMethod.COD:
        cod = CashOnDelivery(amount=order.cod_amount or order.totals().gross)
    return ShipmentRequest(
        reference=order.id,
        sender=settings.sender,
        recipient=recipient,
        parcels=(Parcel(weight_kg=settings.parcel_weight_kg),),
        options=ShippingOptions(cod=cod),
        declared_value=order.totals().gross,
    )


def _shipment(ctx: StepContext) -> Operation[Any]:
    request = shipment_request(_order(ctx), ctx.settings)
    ctx.adapter.validate(request)
    if ctx.job.attempts > 1 and can_find_shipments(ctx.adapter):
        # a carrier without idempotency keys: look up by our reference before creating
        found = yield from ctx.adapter.find_shipment(request.reference)
        if found is not None:
            return found
    return (yield from ctx.adapter.create_shipment(request))


def shipment_found(event: Event, provider: str, tracking_number: str) -> Shipment:
    """The shipment of an order's in-doubt job, found at the carrier by a person under
    ``tracking_number``."""
    order = event.order if isinstance(event, OrderCreated) else None
    reference = order.id if order is not None else str(getattr(event, "order_id", ""))
    return Shipment(
        carrier=provider,
        reference=reference,
        tracking_number=tracking_number,
        created_at=datetime.now(UTC),
    )


def _label(ctx: StepContext) -> Operation[Any]:
    shipment = Shipment.model_validate(ctx.deps["shipment"].result)
    return ctx.adapter.label(shipment, ctx.settings.label_format)  # type: ignore[no-any-return]


def contact_from_order(order: Order) -> CRMContact:
    """The customer of an order as a CRM contact, with this order as the latest."""
    c = order.customer
    return CRMContact(
        reference=c.id,
        email=c.email,
        first_name=c.first_name,
        last_name=c.last_name,
        phone=c.phone,
        total_orders=1,
        total_spent=order.totals().gross,
        last_order_date=order.created_at.date(),
        acquisition=c.acquisition,
        consent=c.consent,
    )


_crm_contact = flows.crm_contact
_journey = flows.order_confirmation


def _subscriber(ctx: StepContext) -> Operation[Any]:
    event = ctx.event
    if not isinstance(event, CustomerCreated):  # pragma: no cover
        raise TypeError("subscriber needs customer.created")
    c = event.customer
    sub = Subscriber(
        email=c.email, first_name=c.first_name, last_name=c.last_name, consent=c.consent
    )
    return ctx.adapter.upsert_subscriber(sub)  # type: ignore[no-any-return]


# -- follow-ups -----------------------------------------------------------------------


def _payment(ctx: StepContext) -> Operation[Any]:
    event = ctx.event
    if not isinstance(event, OrderPaid):  # pragma: no cover
        raise TypeError("payment needs order.paid")
    return ctx.adapter.record_payment(event.payment)  # type: ignore[no-any-return]


def _refund(ctx: StepContext) -> Operation[Any]:
    event = ctx.event
    if not isinstance(event, OrderRefunded):  # pragma: no cover
        raise TypeError("refund needs order.refunded")
    return ctx.adapter.record_refund(event.refund)  # type: ignore[no-any-return]


def _void(ctx: StepContext) -> Operation[Any]:
    event = ctx.event
    if not isinstance(event, OrderCancelled):  # pragma: no cover
        raise TypeError("void_invoice needs order.cancelled")
    return ctx.adapter.void_invoice(event.order_id)  # type: ignore[no-any-return]


def _cancel_shipment(ctx: StepContext) -> Operation[Any]:
    shipment = Shipment.model_validate(ctx.deps["shipment"].result)
    if ctx.job.attempts <= 1 and not ctx.job.interrupted:
        return ctx.adapter.cancel(shipment)  # type: ignore[no-any-return]
    return _cancel_again(ctx.adapter, shipment)


def _cancel_again(adapter: Any, shipment: Shipment) -> Operation[Shipment]:
    """A cancellation tried before, whose answer may have been lost (a worker killed after
    the carrier answered): carriers answer "not found" for a voucher already cancelled.
    The voucher is ours (its shipment job is done), so a carrier that no longer finds it
    has it cancelled: done, not dead."""
    try:
        cancelled: Shipment = yield from adapter.cancel(shipment)
    except DixisError as exc:
        if not (isinstance(exc, NotFound) or "not found" in str(exc).lower()):
            raise
        return shipment.model_copy(update={"cancellable": False})
    return cancelled


def _inventory_release(ctx: StepContext) -> Operation[list[StockLevel]]:
    created = ctx.dep_event("inventory")
    if not isinstance(created, OrderCreated):  # pragma: no cover
        raise TypeError("inventory_release waits on an order.created job")
    order = created.order
    levels: list[StockLevel] = []
    for line in order.lines:
        adjustment = StockAdjustment(
            sku=line.sku,
            delta=line.quantity,
            reason=f"order {order.id} cancelled",
            reference=f"{order.id}:{line.sku}:release",
        )
        level = yield from ctx.adapter.adjust(adjustment)
        levels.append(level)
    return levels


_CREATED = frozenset({"order.created"})


def builtin_steps() -> list[StepDefinition]:
    """Every built-in step."""
    of_order = _of_order
    return [
        StepDefinition("invoice", "accounting", _CREATED, _invoice, (), "post the invoice"),
        StepDefinition(
            "inventory",
            "inventory",
            _CREATED,
            _inventory_commit,
            (),
            "commit the stock",
            serial=True,
        ),
        StepDefinition(
            "shipment",
            "shipping",
            _CREATED,
            _shipment,
            (),
            "create the voucher",
            repeatable=can_repeat_shipments,
            on_resolve=shipment_found,
        ),
        StepDefinition(
            "label",
            "shipping",
            _CREATED,
            _label,
            (Dependency("shipment"),),
            "fetch the label",
            Capability.LABELS,
        ),
        StepDefinition(
            "crm_contact",
            "crm",
            frozenset({"order.created", "customer.created"}),
            _crm_contact,
            (),
            "upsert the CRM contact with the customer's aggregates",
            serial=True,
            lane_key=customer_lane,
        ),
        StepDefinition(
            "crm_contact_update",
            "crm",
            frozenset({"order.refunded", "order.cancelled"}),
            flows.crm_contact_update,
            (Dependency("crm_contact", of_order),),
            "upsert the contact's figures after a refund or cancellation",
            serial=True,
            lane_key=customer_lane,
        ),
        StepDefinition(
            "crm_delivered",
            "crm",
            frozenset({"shipment.status_changed"}),
            flows.crm_delivered,
            (),
            "upsert the contact when its parcel is delivered",
            serial=True,
            lane_key=customer_lane,
        ),
        StepDefinition(
            "review_request",
            "email",
            frozenset({"shipment.status_changed"}),
            flows.review_request,
            (),
            "start the post-delivery review journey on delivery",
        ),
        StepDefinition(
            "reorder",
            "inventory",
            frozenset({"stock.low"}),
            flows.reorder,
            (),
            "raise the purchase order and tell the supplier",
        ),
        StepDefinition(
            "unsubscribe",
            "email",
            frozenset({"consent.withdrawn"}),
            flows.unsubscribe,
            (),
            "withdraw the consent at this email provider too",
        ),
        StepDefinition("journey", "email", _CREATED, _journey, (), "start the order journey"),
        StepDefinition(
            "subscriber",
            "email",
            frozenset({"customer.created"}),
            _subscriber,
            (),
            "add to the audience",
        ),
        StepDefinition(
            "payment",
            "accounting",
            frozenset({"order.paid"}),
            _payment,
            (Dependency("invoice", of_order),),
            "record the payment against the invoice",
        ),
        StepDefinition(
            "refund",
            "accounting",
            frozenset({"order.refunded"}),
            _refund,
            (Dependency("invoice", of_order), Dependency("payment", _payments_of_order, True)),
            "record the credit note",
        ),
        StepDefinition(
            "void_invoice",
            "accounting",
            frozenset({"order.cancelled"}),
            _void,
            (Dependency("invoice", of_order),),
            "void the invoice",
        ),
        StepDefinition(
            "cancel_shipment",
            "shipping",
            frozenset({"order.cancelled"}),
            _cancel_shipment,
            (Dependency("shipment", of_order),),
            "cancel the voucher",
            Capability.CANCELLATION,
        ),
        StepDefinition(
            "inventory_release",
            "inventory",
            frozenset({"order.cancelled"}),
            _inventory_release,
            (Dependency("inventory", of_order),),
            "give the stock back",
            serial=True,
        ),
    ]


DEFAULT_PLAN_STEPS: dict[str, tuple[str, ...]] = {
    "order.created": ("invoice", "inventory", "shipment", "crm_contact", "journey"),
    "order.paid": ("payment",),
    "order.refunded": ("refund", "crm_contact_update"),
    "order.cancelled": (
        "void_invoice",
        "cancel_shipment",
        "inventory_release",
        "crm_contact_update",
    ),
    "customer.created": ("crm_contact", "subscriber"),
    "stock.low": ("reorder",),
    "shipment.status_changed": ("review_request", "crm_delivered"),
    "stock.changed": (),
    "ledger.changed": (),
    "contact.changed": (),
    "consent.withdrawn": ("unsubscribe",),
}
"""Steps per event type when the host does not choose (each runs if its kind is set up)."""
