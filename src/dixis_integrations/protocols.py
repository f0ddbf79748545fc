"""The contracts every adapter keeps, built-in or third-party.

Each Protocol method returns an :data:`~dixis_integrations.http.Operation`: a generator
that a :class:`~dixis_integrations.http.Driver` (threads) or
:class:`~dixis_integrations.http.AsyncDriver` (asyncio) runs, so one adapter serves both.
An adapter declares its ``name`` and ``capabilities``; an operation outside them raises
:class:`~dixis_integrations.errors.NotSupported` when run, never a silent no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from dixis_integrations.http.driver import Operation
from dixis_integrations.models.accounting import BatchItemResult, LedgerRecord, PostedInvoice
from dixis_integrations.models.address import Address
from dixis_integrations.models.crm import (
    ContactChangePage,
    CRMContact,
    ErasureResult,
    Lead,
    UpsertResult,
)
from dixis_integrations.models.customer import Customer
from dixis_integrations.models.email import EmailMessage, SendResult, Subscriber
from dixis_integrations.models.inventory import (
    PurchaseOrder,
    StockAdjustment,
    StockLevel,
    StockPage,
)
from dixis_integrations.models.order import Order, Payment, Refund
from dixis_integrations.models.product import Product
from dixis_integrations.models.shipping import (
    Label,
    LabelFormat,
    Manifest,
    PickupPoint,
    Quote,
    Shipment,
    ShipmentRequest,
    Tracking,
)

__all__ = [
    "KINDS",
    "AccountingProvider",
    "Adapter",
    "CRMProvider",
    "Capability",
    "EmailProvider",
    "HealthStatus",
    "InventorySource",
    "ShippingCarrier",
    "protocol_for",
]


class Capability(StrEnum):
    """What an adapter can do; operations outside its set raise ``NotSupported``."""

    # shipping
    RATES = "rates"
    LABELS = "labels"
    TRACKING = "tracking"
    CANCELLATION = "cancellation"
    PICKUP_LIST = "pickup_list"
    LOCKERS = "lockers"
    COD = "cod"
    COLD_CHAIN = "cold_chain"
    SATURDAY = "saturday"
    SAME_DAY = "same_day"
    INSURANCE = "insurance"
    ADDRESS_VALIDATION = "address_validation"
    # common
    BATCH = "batch"
    WEBHOOKS = "webhooks"
    IDEMPOTENCY_KEYS = "idempotency_keys"
    INCREMENTAL = "incremental"
    # accounting
    INVOICES = "invoices"
    PAYMENTS = "payments"
    CREDIT_NOTES = "credit_notes"
    # inventory
    STOCK_LEVELS = "stock_levels"
    ADJUSTMENTS = "adjustments"
    COMPARE_AND_SET = "compare_and_set"
    PURCHASE_ORDERS = "purchase_orders"
    # crm and email
    LEADS = "leads"
    ERASURE = "erasure"
    CUSTOM_FIELDS = "custom_fields"
    TRANSACTIONAL = "transactional"
    DOUBLE_OPT_IN = "double_opt_in"


@dataclass(frozen=True)
class HealthStatus:
    """One integration's health, as ``check()`` reports it."""

    name: str
    ok: bool
    detail: str = ""
    token_expires_at: datetime | None = None
    quota_remaining: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Adapter(Protocol):
    """What every adapter has: a name, its capabilities and a health check."""

    name: str
    capabilities: frozenset[Capability]

    def check(self) -> Operation[HealthStatus]:
        """Credentials valid and tenant reachable: one cheap call."""
        ...


@runtime_checkable
class AccountingProvider(Adapter, Protocol):
    """A ledger: QuickBooks Online, Xero, or a plugin."""

    def upsert_customer(self, customer: Customer) -> Operation[LedgerRecord]:
        """Find the customer by our reference, or create them; never a duplicate."""
        ...

    def upsert_products(self, products: Sequence[Product]) -> Operation[list[LedgerRecord]]:
        """Find or create the items, by SKU."""
        ...

    def post_invoice(self, order: Order) -> Operation[PostedInvoice]:
        """Post an order as an invoice (or return the one already posted for it)."""
        ...

    def post_invoices(self, orders: Sequence[Order]) -> Operation[list[BatchItemResult]]:
        """Bulk :meth:`post_invoice`, one result per order in input order."""
        ...

    def find_invoice(self, reference: str) -> Operation[PostedInvoice | None]:
        """The invoice for our order reference, if there is one."""
        ...

    def void_invoice(self, reference: str) -> Operation[PostedInvoice]:
        """Void the invoice of a cancelled order."""
        ...

    def record_payment(self, payment: Payment) -> Operation[LedgerRecord]:
        """Record a payment against the order's invoice."""
        ...

    def record_refund(self, refund: Refund) -> Operation[LedgerRecord]:
        """Record a refund against the order's invoice: a credit note allocated to it for
        what is still open, and money paid back out (a refund receipt, or a refund payment
        on the credit note) for what was already paid; idempotent by the refund's id."""
        ...


@runtime_checkable
class ShippingCarrier(Adapter, Protocol):
    """A carrier: ACS, Speedex, Geniki, BOX NOW, Courier Center, ELTA, or a plugin."""

    def validate(self, request: ShipmentRequest) -> None:
        """Refuse what this carrier cannot take, before anything is sent.

        Raises:
            InvalidInput: naming each field that is wrong for this carrier.
        """
        ...

    def quote(self, request: ShipmentRequest) -> Operation[list[Quote]]:
        """Prices for the services that can carry this request."""
        ...

    def create_shipment(self, request: ShipmentRequest) -> Operation[Shipment]:
        """Create the voucher."""
        ...

    def label(self, shipment: Shipment, fmt: LabelFormat) -> Operation[Label]:
        """The printable label of a shipment."""
        ...

    def cancel(self, shipment: Shipment) -> Operation[Shipment]:
        """Cancel a shipment while the carrier still allows it."""
        ...

    def track(self, tracking_number: str) -> Operation[Tracking]:
        """The normalised tracking history of one shipment."""
        ...

    def finalise(self, shipments: Sequence[Shipment]) -> Operation[Manifest]:
        """Hand the day's shipments over (pickup list, close jobs, manifest)."""
        ...

    def pickup_points(self, near: Address | None = None) -> Operation[list[PickupPoint]]:
        """Lockers, shops and branches, nearest first when ``near`` is given."""
        ...


@runtime_checkable
class InventorySource(Adapter, Protocol):
    """A stock system: Zoho Inventory, Cin7 Core, a file export, or a plugin."""

    def stock_page(self, cursor: str | None = None) -> Operation[StockPage]:
        """One page of stock levels; pass ``next_cursor`` back for the next page."""
        ...

    def stock_level(self, sku: str, location: str = "default") -> Operation[StockLevel]:
        """The current level of one SKU at one location."""
        ...

    def adjust(self, adjustment: StockAdjustment) -> Operation[StockLevel]:
        """Apply a delta to on-hand stock."""
        ...

    def set_level(
        self, level: StockLevel, *, expected_version: str | None = None
    ) -> Operation[StockLevel]:
        """Write an absolute level, compare-and-set on ``expected_version`` where supported.

        Raises:
            Conflict: the source changed since ``expected_version``.
        """
        ...

    def create_purchase_order(self, order: PurchaseOrder) -> Operation[PurchaseOrder]:
        """Create a purchase order; returns it with ``external_id`` set."""
        ...


@runtime_checkable
class CRMProvider(Adapter, Protocol):
    """A CRM: HubSpot, Salesforce, Pipedrive, or a plugin."""

    def upsert_contact(self, contact: CRMContact) -> Operation[UpsertResult]:
        """Create or update one contact, matched by email."""
        ...

    def upsert_contacts(self, contacts: Sequence[CRMContact]) -> Operation[list[UpsertResult]]:
        """Bulk upsert, one result per contact in input order."""
        ...

    def create_lead(self, lead: Lead) -> Operation[Lead]:
        """Create a lead; returns it with ``crm_id`` set."""
        ...

    def convert_lead(self, lead: Lead) -> Operation[Lead]:
        """Convert a lead (``crm_id`` set) to a customer; returns it as ``CONVERTED``."""
        ...

    def erase(self, email: str) -> Operation[ErasureResult]:
        """GDPR: delete the person from this CRM."""
        ...

    def changes(self, cursor: str | None = None) -> Operation[ContactChangePage]:
        """Contacts changed or deleted since ``cursor``."""
        ...


@runtime_checkable
class EmailProvider(Adapter, Protocol):
    """An email or marketing platform: Mailchimp, Brevo, SMTP, or a plugin."""

    def upsert_subscriber(self, subscriber: Subscriber) -> Operation[UpsertResult]:
        """Add or update a person on the marketing audience, honouring consent."""
        ...

    def send(self, message: EmailMessage) -> Operation[SendResult]:
        """Send one message (at most once per ``idempotency_key``)."""
        ...

    def erase(self, email: str) -> Operation[ErasureResult]:
        """GDPR: delete the person from this provider."""
        ...


KINDS: dict[str, Any] = {
    "accounting": AccountingProvider,
    "shipping": ShippingCarrier,
    "inventory": InventorySource,
    "crm": CRMProvider,
    "email": EmailProvider,
}
"""Adapter kind -> Protocol; the kind is also the entry-point group suffix."""


def protocol_for(kind: str) -> Any:
    """The Protocol adapters of ``kind`` must satisfy."""
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown adapter kind {kind!r}; known: {', '.join(KINDS)}") from None
