"""Purchase orders from low stock: one per shortfall, created where they belong, and the
supplier told about it.

:class:`Replenisher` turns a ``StockLow`` into at most one purchase order (the reorder policy
counts open orders as incoming). The order is written to a local store first, keyed by the
event that caused it, then created in the inventory system when it holds purchase orders,
counted as incoming in the ledger, and sent to the supplier through a
:class:`SupplierNotifier` (SMTP or an HTTP webhook). Handling the same event again resumes
whatever step is missing and never makes a second order.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import sqlite3
import ssl
import threading
from collections.abc import Iterator, Mapping
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
from pydantic import SecretStr

from dixis_integrations.errors import ConfigurationError, ProviderError, TransientError
from dixis_integrations.http.driver import Operation
from dixis_integrations.inventory.ledger import StockLedger
from dixis_integrations.inventory.reorder import plan_purchase_order, rule_for
from dixis_integrations.models.events import StockLow
from dixis_integrations.models.inventory import PurchaseOrder, PurchaseOrderStatus
from dixis_integrations.models.product import Product, Supplier
from dixis_integrations.protocols import Capability, InventorySource
from dixis_integrations.webhooks import sign_payload

__all__ = [
    "PurchaseOrderStore",
    "Replenisher",
    "SQLitePurchaseOrders",
    "SmtpNotifier",
    "StoredOrder",
    "SupplierNotifier",
    "WebhookNotifier",
    "order_reference",
]


def order_reference(trigger: str) -> str:
    """Our purchase order number for the shortfall ``trigger`` (a ``StockLow`` event id):
    the same event always gives the same number, short enough for every vendor.
    """
    return "PO-" + hashlib.sha256(trigger.encode()).hexdigest()[:12].upper()


# -- the local store --------------------------------------------------------------------
class StoredOrder:
    """A purchase order as the local store holds it, with the steps done so far."""

    __slots__ = ("expected", "notified", "order", "trigger")

    def __init__(self, order: PurchaseOrder, trigger: str, expected: bool, notified: bool):
        self.order = order
        self.trigger = trigger
        self.expected = expected
        self.notified = notified


@runtime_checkable
class PurchaseOrderStore(Protocol):
    """Where purchase orders live when the inventory system holds none, and where every
    order's progress (created at the vendor, counted as incoming, supplier told) is kept.
    """

    def by_trigger(self, trigger: str) -> StoredOrder | None:
        """The order raised for ``trigger``, if any."""
        ...

    def add(self, order: PurchaseOrder, trigger: str) -> StoredOrder:
        """Save a new order for ``trigger``; the existing one if there is one already."""
        ...

    def update(
        self,
        reference: str,
        *,
        external_id: str | None = None,
        expected: bool | None = None,
        notified: bool | None = None,
        status: PurchaseOrderStatus | None = None,
    ) -> None:
        """Record a step done."""
        ...

    def orders(self, sku: str | None = None) -> Iterator[PurchaseOrder]:
        """Every order (of ``sku``), oldest first."""
        ...


class SQLitePurchaseOrders:
    """The default :class:`PurchaseOrderStore`: one SQLite file (``":memory:"`` for tests)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute(
                """CREATE TABLE IF NOT EXISTS dixis_purchase_orders (
                    reference TEXT PRIMARY KEY,
                    trigger TEXT NOT NULL UNIQUE,
                    sku TEXT NOT NULL,
                    body TEXT NOT NULL,
                    expected INTEGER NOT NULL DEFAULT 0,
                    notified INTEGER NOT NULL DEFAULT 0
                )"""
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @staticmethod
    def _row(row: tuple[str, str, int, int]) -> StoredOrder:
        body, trigger, expected, notified = row
        return StoredOrder(
            PurchaseOrder.model_validate_json(body), trigger, bool(expected), bool(notified)
        )

    def by_trigger(self, trigger: str) -> StoredOrder | None:
        """The order raised for ``trigger``, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT body, trigger, expected, notified FROM dixis_purchase_orders "
                "WHERE trigger = ?",
                (trigger,),
            ).fetchone()
        return self._row(row) if row else None

    def add(self, order: PurchaseOrder, trigger: str) -> StoredOrder:
        """Save a new order for ``trigger``; the existing one if there is one already."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO dixis_purchase_orders (reference, trigger, sku, body) "
                "VALUES (?, ?, ?, ?)",
                (order.reference, trigger, order.lines[0].sku, order.model_dump_json()),
            )
        stored = self.by_trigger(trigger)
        assert stored is not None  # just written, or written before
        return stored

    def update(
        self,
        reference: str,
        *,
        external_id: str | None = None,
        expected: bool | None = None,
        notified: bool | None = None,
        status: PurchaseOrderStatus | None = None,
    ) -> None:
        """Record a step done."""
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM dixis_purchase_orders WHERE reference = ?", (reference,)
            ).fetchone()
            if row is None:
                return
            order = PurchaseOrder.model_validate_json(row[0])
            changes: dict[str, Any] = {}
            if external_id is not None:
                changes["external_id"] = external_id
            if status is not None:
                changes["status"] = status
            body = order.model_copy(update=changes).model_dump_json()
            self._db.execute(
                "UPDATE dixis_purchase_orders SET body = ?, "
                "expected = COALESCE(?, expected), notified = COALESCE(?, notified) "
                "WHERE reference = ?",
                (body, expected, notified, reference),
            )

    def orders(self, sku: str | None = None) -> Iterator[PurchaseOrder]:
        """Every order (of ``sku``), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM dixis_purchase_orders WHERE ? IS NULL OR sku = ? ORDER BY rowid",
                (sku, sku),
            ).fetchall()
        for (body,) in rows:
            yield PurchaseOrder.model_validate_json(body)


# -- notifying suppliers ------------------------------------------------------------------
@runtime_checkable
class SupplierNotifier(Protocol):
    """Tells a supplier about a purchase order. Must be safe to call again for the same
    order (a redelivery carries the same message id or idempotency key).
    """

    def notify(self, order: PurchaseOrder, supplier: Supplier) -> None:
        """Send the order to the supplier.

        Raises:
            ConfigurationError: the supplier has no address for this channel.
            ProviderError: the message could not be handed over.
        """
        ...


def _lines_text(order: PurchaseOrder) -> str:
    return "\n".join(f"  {line.sku}: {line.quantity}" for line in order.lines)


def _payload(order: PurchaseOrder) -> dict[str, Any]:
    return {
        "reference": order.reference,
        "supplier_id": order.supplier_id,
        "location": order.location,
        "created_at": order.created_at.isoformat(),
        "lines": [{"sku": line.sku, "quantity": str(line.quantity)} for line in order.lines],
    }


class SmtpNotifier:
    """Purchase orders by email over SMTP (STARTTLS or implicit TLS where configured).

    The ``Message-ID`` is derived from the order reference, so a resent order is the same
    message to the supplier's mail system.
    """

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        sender: str,
        username: str | None = None,
        password: SecretStr | None = None,
        starttls: bool = True,
        implicit_tls: bool = False,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self._password = username, password
        self.starttls, self.implicit_tls = starttls, implicit_tls
        self.timeout = timeout
        self.ssl_context = ssl_context

    def __repr__(self) -> str:
        return f"SmtpNotifier({self.host!r}, {self.port}, sender={self.sender!r})"

    def message(self, order: PurchaseOrder, supplier: Supplier) -> EmailMessage:
        """The email for ``order`` (pure: no connection)."""
        if not supplier.email:
            raise ConfigurationError("has no email address", key=f"supplier.{supplier.id}.email")
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = supplier.email
        msg["Subject"] = f"Purchase order {order.reference}"
        msg["Date"] = format_datetime(order.created_at)
        domain = self.sender.rpartition("@")[2] or "localhost"
        msg["Message-ID"] = f"<{order.reference}@{domain}>"
        msg.set_content(
            f"Dear {supplier.name},\n\nPlease deliver to {order.location}:\n"
            f"{_lines_text(order)}\n\nOur reference: {order.reference}\n"
        )
        return msg

    def notify(self, order: PurchaseOrder, supplier: Supplier) -> None:
        """Send the order email."""
        msg = self.message(order, supplier)
        try:
            smtp_cls = smtplib.SMTP_SSL if self.implicit_tls else smtplib.SMTP
            with smtp_cls(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls and not self.implicit_tls and smtp.has_extn("starttls"):
                    smtp.starttls(context=self.ssl_context)
                if self.username and self._password is not None:
                    smtp.login(self.username, self._password.get_secret_value())
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(
                f"could not hand the order to {self.host}: {type(exc).__name__}", vendor="smtp"
            ) from None


class WebhookNotifier:
    """Purchase orders POSTed as JSON to the supplier's ``webhook_url`` (or ``url``), signed
    with HMAC-SHA256 when a ``secret`` is given, with the order reference as the
    ``Idempotency-Key``.
    """

    signature_header = "X-Dixis-Signature"

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        url: str | None = None,
        secret: SecretStr | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._client = client
        self.url = url
        self._secret = secret
        self.timeout = timeout

    def request(self, order: PurchaseOrder, supplier: Supplier) -> httpx.Request:
        """The request for ``order`` (pure: nothing is sent)."""
        url = self.url or (str(supplier.webhook_url) if supplier.webhook_url else None)
        if url is None:
            raise ConfigurationError(
                "has no webhook URL", key=f"supplier.{supplier.id}.webhook_url"
            )
        body = json.dumps(_payload(order), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": order.reference}
        if self._secret is not None:
            headers[self.signature_header] = "sha256=" + sign_payload(
                self._secret, body, encoding="hex"
            )
        return httpx.Request("POST", url, content=body, headers=headers)

    def notify(self, order: PurchaseOrder, supplier: Supplier) -> None:
        """POST the order."""
        request = self.request(order, supplier)
        client = self._client or httpx.Client(timeout=self.timeout)
        try:
            response = client.send(request)
        except httpx.HTTPError as exc:
            raise TransientError(
                f"could not reach the supplier ({type(exc).__name__})", vendor="webhook"
            ) from None
        finally:
            if self._client is None:
                client.close()
        if response.status_code >= 300:
            raise ProviderError(
                f"supplier webhook answered {response.status_code}",
                vendor="webhook",
                status_code=response.status_code,
                retryable=response.status_code >= 500,
            )


# -- the replenisher --------------------------------------------------------------------
class Replenisher:
    """From ``StockLow`` to purchase order, once per shortfall.

    Args:
        ledger: our levels (incoming counted there, so no second order for a shortfall).
        products: SKU -> product (reorder point, quantity and supplier).
        store: the local store of orders and their progress.
        source: the inventory system; orders are created there when it supports them.
        notifier: how suppliers are told (none: nobody is).
        vendor_supplier_ids: our supplier id -> the inventory system's (Zoho vendor id,
            Cin7 supplier GUID), for orders created there.
        source_incoming: read the source's own incoming (Cin7 ``OnOrder``) before
            ordering, and count the larger of it and ours: an order already placed in the
            inventory system (by a person, or by us) is never ordered a second time.
    """

    def __init__(
        self,
        ledger: StockLedger,
        products: Mapping[str, Product],
        store: PurchaseOrderStore,
        *,
        source: InventorySource | None = None,
        notifier: SupplierNotifier | None = None,
        vendor_supplier_ids: Mapping[str, str] | None = None,
        source_incoming: bool = True,
    ) -> None:
        self.ledger = ledger
        self.products = products
        self.store = store
        self.source = source
        self.notifier = notifier
        self.vendor_supplier_ids = dict(vendor_supplier_ids or {})
        self.source_incoming = source_incoming

    def _at_source(self) -> bool:
        return self.source is not None and Capability.PURCHASE_ORDERS in self.source.capabilities

    def handle(self, event: StockLow) -> Operation[PurchaseOrder | None]:
        """The purchase order for this crossing, made (or finished) once; ``None`` when the
        position (available + incoming) already covers the shortfall or the product has no
        reorder rule. The notifier is called from inside the operation (blocking).
        """
        stored = self.store.by_trigger(event.event_id)
        product = self.products.get(event.sku)
        if stored is None:
            if product is None:
                return None
            rule = rule_for(product)
            if rule is None:
                return None
            level = self.ledger.level(event.sku, event.location)
            if (
                self.source_incoming
                and self._at_source()
                and self.source is not None
                and Capability.STOCK_LEVELS in self.source.capabilities
            ):
                theirs = yield from self.source.stock_level(event.sku, event.location)
                # Our own orders are in both counts when the source holds them: the larger
                # one counts each open order once.
                if theirs.incoming > level.incoming:
                    level = level.model_copy(update={"incoming": theirs.incoming})
            planned = plan_purchase_order(
                level, rule, reference=order_reference(event.event_id), at=event.occurred_at
            )
            if planned is None:
                return None
            stored = self.store.add(planned, event.event_id)
        order = stored.order
        if order.external_id is None and self._at_source():
            assert self.source is not None
            sent = order.model_copy(
                update={
                    "supplier_id": self.vendor_supplier_ids.get(
                        order.supplier_id, order.supplier_id
                    )
                }
            )
            created = yield from self.source.create_purchase_order(sent)
            order = order.model_copy(update={"external_id": created.external_id})
            self.store.update(order.reference, external_id=created.external_id)
        if not stored.expected:
            # The policy orders one SKU per order, so the reference keys its incoming.
            for line in order.lines:
                self.ledger.expect(
                    order.reference, line.sku, line.quantity, location=order.location
                )
            self.store.update(order.reference, expected=True)
        supplier = product.supplier if product is not None else None
        if not stored.notified and self.notifier is not None and supplier is not None:
            self.notifier.notify(order, supplier)
            self.store.update(order.reference, notified=True)
        return order
