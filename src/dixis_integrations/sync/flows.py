"""The steps that follow an order and the events vendors report back.

* Messages: a journey step sends a whole message (subject, text and HTML rendered from a
  :class:`MessageTemplate` with the customer's fields), plus the provider's own template
  id when one is mapped for that provider; a provider without single sends (an audience
  tool) tags the member with the journey instead, which starts its own automation.
* CRM: contacts carry the aggregates of the customer's whole history
  (:mod:`.history`), updated again on a refund, a cancellation and a delivery.
* ``stock.low``: one purchase order per shortfall and the supplier told
  (:class:`~dixis_integrations.inventory.purchasing.Replenisher`).
* ``shipment.status_changed``: on delivery, the post-delivery review message and a CRM
  update.
* ``consent.withdrawn``: the person unsubscribed at the other email provider too.

Handlers are generator operations like every step; a step with nothing to do (a
parcel that is only in transit) returns ``None`` without calling the vendor.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from string import Template
from typing import TYPE_CHECKING, Any, Final

from dixis_integrations.crm.aggregates import CustomerAggregate
from dixis_integrations.errors import ConfigurationError, NotFound
from dixis_integrations.http.driver import Operation
from dixis_integrations.inventory.ledger import StockLedger
from dixis_integrations.inventory.purchasing import (
    PurchaseOrderStore,
    Replenisher,
    SupplierNotifier,
)
from dixis_integrations.marketing.journeys import POST_DELIVERY_REVIEW
from dixis_integrations.models.crm import CRMContact
from dixis_integrations.models.customer import ConsentStatus, Customer, MarketingConsent
from dixis_integrations.models.email import EmailMessage, SendResult, Subscriber
from dixis_integrations.models.events import (
    ConsentWithdrawn,
    CustomerCreated,
    OrderCancelled,
    OrderCreated,
    OrderRefunded,
    ShipmentStatusChanged,
    StockLow,
)
from dixis_integrations.models.order import Order
from dixis_integrations.models.product import Product
from dixis_integrations.models.shipping import TrackingStatus
from dixis_integrations.protocols import Capability
from dixis_integrations.sync.history import (
    MemoryOrderHistory,
    OrderHistory,
    contact_from_history,
)

if TYPE_CHECKING:
    from dixis_integrations.sync.steps import StepContext

__all__ = [
    "DEFAULT_MESSAGES",
    "MessageTemplate",
    "Replenishment",
    "crm_contact",
    "crm_contact_update",
    "crm_delivered",
    "journey_message",
    "order_confirmation",
    "order_params",
    "render",
    "reorder",
    "review_request",
    "send_message",
    "unsubscribe",
]


@dataclass(frozen=True)
class MessageTemplate:
    """The content of one message: ``$name`` placeholders filled from the parameters
    (``$first_name``, ``$order``, ``$total``...); HTML gets the values escaped."""

    subject: str
    text: str
    html: str | None = None


DEFAULT_MESSAGES: Final[Mapping[str, MessageTemplate]] = {
    "order_confirmation": MessageTemplate(
        subject="Η παραγγελία σας $order",
        text=(
            "Γεια σας $first_name,\n\n"
            "λάβαμε την παραγγελία σας $order, συνολικά $total €.\n"
            "Θα σας ενημερώσουμε μόλις φύγει από την αποθήκη.\n"
        ),
        html=(
            "<p>Γεια σας $first_name,</p>"
            "<p>λάβαμε την παραγγελία σας <strong>$order</strong>, συνολικά $total €.</p>"
            "<p>Θα σας ενημερώσουμε μόλις φύγει από την αποθήκη.</p>"
        ),
    ),
    "review_request": MessageTemplate(
        subject=POST_DELIVERY_REVIEW.steps[0].subject,
        text=(
            "Γεια σας $first_name,\n\n"
            "η παραγγελία σας $order παραδόθηκε. Πώς σας φάνηκε;\n"
            "Η γνώμη σας βοηθά τους παραγωγούς μας.\n"
        ),
        html=(
            "<p>Γεια σας $first_name,</p>"
            "<p>η παραγγελία σας <strong>$order</strong> παραδόθηκε. Πώς σας φάνηκε;</p>"
            "<p>Η γνώμη σας βοηθά τους παραγωγούς μας.</p>"
        ),
    ),
}
"""The built-in messages, by template name (a host's own ones override them)."""


@dataclass(frozen=True)
class Replenishment:
    """What the ``reorder`` step needs: the products (reorder point, quantity, supplier),
    our stock ledger (incoming orders counted), the purchase order store, and how
    suppliers are told (see :mod:`dixis_integrations.inventory.purchasing`)."""

    products: Mapping[str, Product]
    ledger: StockLedger
    store: PurchaseOrderStore
    notifier: SupplierNotifier | None = None
    vendor_supplier_ids: Mapping[str, str] = field(default_factory=dict)


def render(template: MessageTemplate, params: Mapping[str, str]) -> tuple[str, str, str | None]:
    """(subject, text, html) of a template with ``params`` filled in."""
    escaped = {k: html.escape(v) for k, v in params.items()}
    subject = Template(template.subject).safe_substitute(params)
    text = Template(template.text).safe_substitute(params)
    body = Template(template.html).safe_substitute(escaped) if template.html else None
    return subject, text, body


def order_params(order: Order) -> dict[str, str]:
    """The customer's and the order's fields a message can use."""
    c = order.customer
    return {
        "order": order.number or order.id,
        "first_name": c.first_name or "",
        "last_name": c.last_name or "",
        "email": c.email,
        "total": str(order.totals().gross.amount),
    }


def journey_message(
    ctx: StepContext,
    *,
    to: str,
    template: str,
    params: Mapping[str, str],
    subject: str | None = None,
    provider_template: str | None = None,
    tags: tuple[str, ...] = (),
    transactional: bool = True,
) -> EmailMessage:
    """The message of a journey step for ``ctx``'s provider.

    The content comes from the settings' templates (over :data:`DEFAULT_MESSAGES`);
    ``subject`` is used when there is no template of that name. When the provider has
    its own template mapped (``provider_template``, or the settings'
    ``provider_templates[provider][template]``) its id goes too, with the parameters,
    and the provider renders it; otherwise the rendered text and HTML are sent.

    Raises:
        ConfigurationError: neither a template of that name nor a provider template.
    """
    settings = ctx.settings
    mapped = provider_template or settings.provider_templates.get(ctx.job.provider, {}).get(
        template
    )
    content = {**DEFAULT_MESSAGES, **settings.messages}.get(template)
    if mapped is not None:
        rendered_subject = (
            render(content, params)[0]
            if content
            else Template(subject or template).safe_substitute(params)
        )
        return EmailMessage(
            to=to,
            subject=rendered_subject,
            template_id=mapped,
            params=dict(params),
            idempotency_key=ctx.job.key,
            tags=tags,
            transactional=transactional,
        )
    if content is None:
        raise ConfigurationError(
            f"no message template {template!r} and no {ctx.job.provider} template mapped",
            key=f"messages.{template}",
        )
    rendered_subject, text, body = render(content, params)
    return EmailMessage(
        to=to,
        subject=rendered_subject,
        text=text,
        html=body,
        params=dict(params),
        idempotency_key=ctx.job.key,
        tags=tags,
        transactional=transactional,
    )


def send_message(ctx: StepContext, message: EmailMessage, journey: str) -> Operation[Any]:
    """Send through the step's provider; a provider without single sends that can tag
    its members gets the member tagged ``journey:<journey>`` instead (its automation
    starts on the tag). Someone not in that audience is reported, not an error."""
    adapter = ctx.adapter
    capabilities: frozenset[Capability] = getattr(adapter, "capabilities", frozenset())
    tag = getattr(adapter, "tag", None)
    if Capability.TRANSACTIONAL not in capabilities and callable(tag):
        try:
            yield from tag(message.to, [f"journey:{journey}"])
        except NotFound:
            return SendResult(
                provider=ctx.job.provider,
                message_id=None,
                accepted=False,
                reason="not in the audience: the journey was not started",
            )
        return SendResult(provider=ctx.job.provider, message_id=None, accepted=True)
    return (yield from adapter.send(message))


def _order_of(ctx: StepContext) -> Order:
    event = ctx.event
    if isinstance(event, OrderCreated):
        return event.order
    raise TypeError(f"step {ctx.job.step} needs an order.created event")  # pragma: no cover


def order_confirmation(ctx: StepContext) -> Operation[Any]:
    """The order journey's first message (``order_email_template``)."""
    order = _order_of(ctx)
    settings = ctx.settings
    message = journey_message(
        ctx,
        to=order.customer.email,
        template=settings.order_email_template,
        params=order_params(order),
        subject=f"Η παραγγελία σας {order.number or order.id}",
        provider_template=settings.email_templates.get(ctx.job.provider),
        tags=("order",),
    )
    return (yield from send_message(ctx, message, "order"))


# -- CRM -------------------------------------------------------------------------------


def _history(ctx: StepContext) -> OrderHistory:
    history: OrderHistory | None = ctx.settings.history
    return history if history is not None else MemoryOrderHistory()


def _contact(
    ctx: StepContext, history: OrderHistory, customer: Customer, currency: str
) -> CRMContact:
    found = history.customer(ctx.event.tenant, ctx.job.provider, customer.id)
    segment_of: Callable[[CustomerAggregate], str | None] = ctx.settings.segment_of
    return contact_from_history(customer, found, currency=currency, segment_of=segment_of)


def crm_contact(ctx: StepContext) -> Operation[Any]:
    """Upsert the customer with the aggregates of their whole history (this order
    noted in it first); a new customer with zero orders."""
    event = ctx.event
    history = _history(ctx)
    if isinstance(event, CustomerCreated):
        customer = event.customer
        currency = "EUR"
    else:
        order = _order_of(ctx)
        history.note_order(event.tenant, ctx.job.provider, order)
        customer, currency = order.customer, order.currency
    contact = _contact(ctx, history, customer, currency)
    return (yield from ctx.adapter.upsert_contact(contact))


def crm_contact_update(ctx: StepContext) -> Operation[Any]:
    """After a refund or a cancellation: note it, and upsert the contact's new figures
    (the customer is the one of the order's ``crm_contact`` job, waited on)."""
    event = ctx.event
    created = ctx.dep_event("crm_contact")
    if not isinstance(created, OrderCreated):  # pragma: no cover - the definition pairs them
        raise TypeError("crm_contact_update waits on an order.created job")
    order = created.order
    history = _history(ctx)
    tenant, scope = event.tenant, ctx.job.provider
    history.note_order(tenant, scope, order)
    if isinstance(event, OrderRefunded):
        history.note_refund(tenant, scope, order.customer.id, event.refund)
    elif isinstance(event, OrderCancelled):
        history.note_cancelled(tenant, scope, order.customer.id, order.id)
    contact = _contact(ctx, history, order.customer, order.currency)
    return (yield from ctx.adapter.upsert_contact(contact))


# -- shipment.status_changed -------------------------------------------------------------


def _delivered_order(ctx: StepContext) -> Order | None:
    event = ctx.event
    if not isinstance(event, ShipmentStatusChanged):  # pragma: no cover
        raise TypeError(f"step {ctx.job.step} needs a shipment.status_changed event")
    history: OrderHistory | None = ctx.settings.history
    if event.status is not TrackingStatus.DELIVERED or event.order_id is None or history is None:
        return None
    return history.order(event.tenant, event.order_id)


def review_request(ctx: StepContext) -> Operation[Any]:
    """On delivery: the post-delivery review journey's message (``review_request``).

    Nothing for other statuses, or when the order of the parcel is not known.
    """
    order = _delivered_order(ctx)
    if order is None:
        return None
    step = POST_DELIVERY_REVIEW.steps[0]
    message = journey_message(
        ctx,
        to=order.customer.email,
        template=step.template,
        params=order_params(order),
        subject=step.subject,
        tags=(f"journey:{POST_DELIVERY_REVIEW.id}", f"step:{step.id}"),
        transactional=POST_DELIVERY_REVIEW.transactional,
    )
    return (yield from send_message(ctx, message, POST_DELIVERY_REVIEW.id))


def crm_delivered(ctx: StepContext) -> Operation[Any]:
    """On delivery: the contact upserted again (its figures from the history)."""
    order = _delivered_order(ctx)
    if order is None:
        return None
    history = _history(ctx)
    history.note_order(ctx.event.tenant, ctx.job.provider, order)
    contact = _contact(ctx, history, order.customer, order.currency)
    return (yield from ctx.adapter.upsert_contact(contact))


# -- stock.low and consent.withdrawn ----------------------------------------------------


def reorder(ctx: StepContext) -> Operation[Any]:
    """One purchase order for the shortfall, created at the inventory system when it
    holds purchase orders, and the supplier told; ``None`` when the stock position
    already covers it or the product has no reorder rule.

    Raises:
        ConfigurationError: no :class:`Replenishment` in the settings.
    """
    event = ctx.event
    if not isinstance(event, StockLow):  # pragma: no cover
        raise TypeError("reorder needs stock.low")
    setup: Replenishment | None = ctx.settings.replenishment
    if setup is None:
        raise ConfigurationError(
            "reordering needs the products, a stock ledger and a purchase order store",
            key="replenishment",
        )
    replenisher = Replenisher(
        setup.ledger,
        setup.products,
        setup.store,
        source=ctx.adapter,
        notifier=setup.notifier,
        vendor_supplier_ids=setup.vendor_supplier_ids,
    )
    return (yield from replenisher.handle(event))


def unsubscribe(ctx: StepContext) -> Operation[Any]:
    """Consent withdrawn at one email provider: withdrawn at this one too (nothing to do
    at the provider that reported it)."""
    event = ctx.event
    if not isinstance(event, ConsentWithdrawn):  # pragma: no cover
        raise TypeError("unsubscribe needs consent.withdrawn")
    if event.provider == ctx.job.provider:
        return None
    subscriber = Subscriber(
        email=event.email,
        consent=MarketingConsent(
            status=ConsentStatus.WITHDRAWN,
            source=f"unsubscribed at {event.provider}",
            timestamp=event.at,
        ),
    )
    return (yield from ctx.adapter.upsert_subscriber(subscriber))
