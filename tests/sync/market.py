"""A tiny vendor for the orchestration tests: one emulator with an idempotency-key store,
and small adapters over it, one per area (written against the Protocols, like a plugin).

The emulator counts effects in its own state, so tests check exactly-once where it
matters: at the vendor. ``lose_answers`` makes it apply a write and then drop the answer
(the worst case for a client: the effect landed, the caller does not know).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from dixis_integrations.errors import NotFound
from dixis_integrations.http import Driver, Endpoint, Operation, RetryPolicy, completed
from dixis_integrations.models.accounting import LedgerRecord, PostedInvoice
from dixis_integrations.models.crm import CRMContact, UpsertResult, UpsertStatus
from dixis_integrations.models.email import EmailMessage, SendResult, Subscriber
from dixis_integrations.models.inventory import StockAdjustment, StockLevel
from dixis_integrations.models.money import Money
from dixis_integrations.models.order import Order, Payment, Refund
from dixis_integrations.models.shipping import Shipment, ShipmentRequest
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.sandbox.kit import Emulator, FaultPlan, json_response, read_json, route
from dixis_integrations.sync.engine import Connection

__all__ = ["MarketEmulator", "connections", "fast_retry"]


class MarketEmulator(Emulator):
    """Ledger, stock, carrier, CRM and mailer in one in-memory vendor."""

    name = "market"

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        lose_answers: float = 0.0,
        seed: int = 0,
        stock: dict[str, Decimal] | None = None,
    ) -> None:
        super().__init__(faults=faults)
        self.record_requests = False
        self.lose_answers = lose_answers
        self._rng = random.Random(seed)
        self._keys: dict[str, httpx.Response] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.invoice_writes: Counter[str] = Counter()
        self.payments: dict[str, str] = {}
        self.stock: dict[str, Decimal] = dict(stock or {})
        self.adjustments: dict[str, Decimal] = {}
        self.vouchers: dict[str, str] = {}
        self.voucher_writes: Counter[str] = Counter()
        self.cancelled: set[str] = set()
        self.contacts: dict[str, dict[str, Any]] = {}
        self.contact_writes: Counter[str] = Counter()
        self.messages: dict[str, str] = {}
        self._lock = threading.Lock()

    # the answer is computed (the effect lands), then maybe lost on the way back
    def handle(self, request: httpx.Request) -> httpx.Response:
        response = super().handle(request)
        if request.method != "GET" and self.lose_answers:
            with self._lock:
                lose = self._rng.random() < self.lose_answers
            if lose:
                raise httpx.ReadTimeout("answer lost (injected)", request=request)
        return response

    def _replayed(self, request: httpx.Request) -> httpx.Response | None:
        key = request.headers.get("Idempotency-Key")
        return self._keys.get(key) if key else None

    def _remember(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        key = request.headers.get("Idempotency-Key")
        if key:
            self._keys[key] = response
        return response

    @route("GET", r"/health")
    def health(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"ok": True})

    @route("POST", r"/invoices")
    def create_invoice(self, request: httpx.Request) -> httpx.Response:
        if (old := self._replayed(request)) is not None:
            return old
        body = read_json(request)
        ref = body["reference"]
        self.invoice_writes[ref] += 1
        inv = {"id": f"INV-{len(self.invoices) + 1}", "reference": ref, "total": body["total"]}
        self.invoices[inv["id"]] = inv
        return self._remember(request, json_response(201, inv))

    @route("GET", r"/invoices")
    def find_invoice(self, request: httpx.Request) -> httpx.Response:
        ref = request.url.params.get("reference")
        found = [i for i in self.invoices.values() if i["reference"] == ref]
        return json_response(200, {"items": found})

    @route("POST", r"/invoices/(?P<ref>[^/]+)/void")
    def void_invoice(self, request: httpx.Request, ref: str) -> httpx.Response:
        found = [i for i in self.invoices.values() if i["reference"] == ref]
        if not found:
            return json_response(404, {"error": "no invoice"})
        found[0]["voided"] = True
        return json_response(200, found[0])

    @route("POST", r"/payments")
    def create_payment(self, request: httpx.Request) -> httpx.Response:
        if (old := self._replayed(request)) is not None:
            return old
        body = read_json(request)
        pid = f"PAY-{len(self.payments) + 1}"
        self.payments[body["reference"]] = pid
        return self._remember(request, json_response(201, {"id": pid}))

    @route("POST", r"/stock/adjustments")
    def adjust(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        sku, ref = body["sku"], body["reference"]
        if ref not in self.adjustments:  # the same reference applies once
            delta = Decimal(body["delta"])
            self.adjustments[ref] = delta
            self.stock[sku] = self.stock.get(sku, Decimal(0)) + delta
        return json_response(200, {"sku": sku, "on_hand": str(self.stock.get(sku, 0))})

    @route("GET", r"/vouchers")
    def find_voucher(self, request: httpx.Request) -> httpx.Response:
        ref = request.url.params.get("reference")
        if ref in self.vouchers:
            return json_response(200, {"reference": ref, "number": self.vouchers[ref]})
        return json_response(404, {"error": "no voucher"})

    @route("POST", r"/vouchers")
    def create_voucher(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        ref = body["reference"]
        self.voucher_writes[ref] += 1
        number = f"V{len(self.vouchers) + 1:08d}"
        self.vouchers.setdefault(ref, number)
        return json_response(201, {"reference": ref, "number": self.vouchers[ref]})

    @route("DELETE", r"/vouchers/(?P<ref>[^/]+)")
    def cancel_voucher(self, request: httpx.Request, ref: str) -> httpx.Response:
        self.cancelled.add(ref)
        return json_response(200, {"reference": ref, "number": self.vouchers.get(ref, "")})

    @route("PUT", r"/contacts/(?P<email>[^/]+)")
    def put_contact(self, request: httpx.Request, email: str) -> httpx.Response:
        created = email not in self.contacts
        self.contacts[email] = read_json(request)
        self.contact_writes[email] += 1
        return json_response(201 if created else 200, {"id": f"CT-{email}"})

    @route("POST", r"/messages")
    def send(self, request: httpx.Request) -> httpx.Response:
        if (old := self._replayed(request)) is not None:
            return old
        body = read_json(request)
        mid = f"M-{len(self.messages) + 1}"
        self.messages[request.headers["Idempotency-Key"]] = body["to"]
        return self._remember(request, json_response(202, {"id": mid}))


def _endpoint(base_url: str, vendor: str) -> Endpoint:
    return Endpoint(vendor=vendor, base_url=base_url, idempotency_header="Idempotency-Key")


def _health(endpoint: Endpoint, name: str) -> Operation[HealthStatus]:
    yield endpoint.request("GET", "/health", operation=f"{name}.health")
    return HealthStatus(name=name, ok=True)


class Ledger:
    name = "ledger"
    capabilities = frozenset({Capability.INVOICES, Capability.PAYMENTS})

    def __init__(self, base_url: str) -> None:
        self.endpoint = _endpoint(base_url, self.name)

    def check(self) -> Operation[HealthStatus]:
        return _health(self.endpoint, self.name)

    def post_invoice(self, order: Order) -> Operation[PostedInvoice]:
        total = order.totals().gross
        resp = yield self.endpoint.request(
            "POST",
            "/invoices",
            operation="ledger.create_invoice",
            json={"reference": order.id, "total": str(total.amount)},
            idempotency_key=f"inv-{order.id}",
        )
        body = resp.json()
        return PostedInvoice(
            provider=self.name,
            external_id=body["id"],
            reference=order.id,
            status="open",
            total=total,
            vendor_total=Money.of(body["total"]),
        )

    def find_invoice(self, reference: str) -> Operation[PostedInvoice | None]:
        resp = yield self.endpoint.request(
            "GET", "/invoices", operation="ledger.find_invoice", params={"reference": reference}
        )
        items = resp.json()["items"]
        if not items:
            return None
        total = Money.of(items[0]["total"])
        return PostedInvoice(
            provider=self.name,
            external_id=items[0]["id"],
            reference=reference,
            status="open",
            total=total,
            vendor_total=total,
            created=False,
        )

    def record_payment(self, payment: Payment) -> Operation[LedgerRecord]:
        resp = yield self.endpoint.request(
            "POST",
            "/payments",
            operation="ledger.create_payment",
            json={"reference": payment.id, "amount": str(payment.amount.amount)},
            idempotency_key=f"pay-{payment.id}",
        )
        return LedgerRecord(
            provider=self.name, kind="payment", external_id=resp.json()["id"], reference=payment.id
        )

    def record_refund(self, refund: Refund) -> Operation[LedgerRecord]:
        return completed(
            LedgerRecord(provider=self.name, kind="credit", external_id="CN", reference=refund.id)
        )

    def void_invoice(self, reference: str) -> Operation[PostedInvoice]:
        resp = yield self.endpoint.request(
            "POST", f"/invoices/{reference}/void", operation="ledger.void_invoice", idempotent=True
        )
        body = resp.json()
        total = Money.of(body["total"])
        return PostedInvoice(
            provider=self.name,
            external_id=body["id"],
            reference=reference,
            status="voided",
            total=total,
            vendor_total=total,
        )


class Stock:
    name = "stock"
    capabilities = frozenset({Capability.ADJUSTMENTS})

    def __init__(self, base_url: str) -> None:
        self.endpoint = _endpoint(base_url, self.name)

    def check(self) -> Operation[HealthStatus]:
        return _health(self.endpoint, self.name)

    def adjust(self, adjustment: StockAdjustment) -> Operation[StockLevel]:
        resp = yield self.endpoint.request(
            "POST",
            "/stock/adjustments",
            operation="stock.adjust",
            json={
                "sku": adjustment.sku,
                "delta": str(adjustment.delta),
                "reference": adjustment.reference,
            },
            idempotent=True,  # the vendor applies one reference once
        )
        body = resp.json()
        return StockLevel(
            sku=body["sku"], on_hand=Decimal(body["on_hand"]), as_of=datetime.now(UTC)
        )


class Carrier:
    """A carrier without idempotency keys: it looks up by our reference first."""

    name = "carrier"
    capabilities = frozenset({Capability.LABELS, Capability.CANCELLATION})

    def __init__(self, base_url: str) -> None:
        self.endpoint = _endpoint(base_url, self.name)

    def check(self) -> Operation[HealthStatus]:
        return _health(self.endpoint, self.name)

    def validate(self, request: ShipmentRequest) -> None:
        return None

    def find_shipment(self, reference: str) -> Operation[Shipment | None]:
        try:
            resp = yield self.endpoint.request(
                "GET",
                "/vouchers",
                operation="carrier.find_voucher",
                params={"reference": reference},
            )
        except NotFound:
            return None
        return _shipment(self.name, resp.json())

    def create_shipment(self, request: ShipmentRequest) -> Operation[Shipment]:
        try:
            resp = yield self.endpoint.request(
                "GET",
                "/vouchers",
                operation="carrier.find_voucher",
                params={"reference": request.reference},
            )
        except NotFound:
            resp = yield self.endpoint.request(
                "POST",
                "/vouchers",
                operation="carrier.create_voucher",
                json={"reference": request.reference, "to": request.recipient.city},
            )
        return _shipment(self.name, resp.json())

    def cancel(self, shipment: Shipment) -> Operation[Shipment]:
        resp = yield self.endpoint.request(
            "DELETE", f"/vouchers/{shipment.reference}", operation="carrier.cancel"
        )
        return _shipment(self.name, resp.json())


def _shipment(name: str, body: dict[str, Any]) -> Shipment:
    return Shipment(
        carrier=name,
        reference=body["reference"],
        tracking_number=body["number"],
        created_at=datetime.now(UTC),
    )


class CRM:
    name = "crm"
    capabilities = frozenset({Capability.CUSTOM_FIELDS})

    def __init__(self, base_url: str) -> None:
        self.endpoint = _endpoint(base_url, self.name)

    def check(self) -> Operation[HealthStatus]:
        return _health(self.endpoint, self.name)

    def upsert_contact(self, contact: CRMContact) -> Operation[UpsertResult]:
        resp = yield self.endpoint.request(
            "PUT",
            f"/contacts/{contact.email}",
            operation="crm.upsert_contact",
            json={"reference": contact.reference, "name": contact.first_name},
        )
        status = UpsertStatus.CREATED if resp.status_code == 201 else UpsertStatus.UPDATED
        return UpsertResult(
            reference=contact.reference, status=status, external_id=resp.json()["id"]
        )

    def upsert_contacts(self, contacts: Sequence[CRMContact]) -> Operation[list[UpsertResult]]:
        raise NotImplementedError


class Mailer:
    name = "mailer"
    capabilities = frozenset({Capability.TRANSACTIONAL})

    def __init__(self, base_url: str) -> None:
        self.endpoint = _endpoint(base_url, self.name)

    def check(self) -> Operation[HealthStatus]:
        return _health(self.endpoint, self.name)

    def send(self, message: EmailMessage) -> Operation[SendResult]:
        resp = yield self.endpoint.request(
            "POST",
            "/messages",
            operation="mailer.send",
            json={"to": message.to, "template": message.template_id},
            idempotency_key=message.idempotency_key,
        )
        return SendResult(provider=self.name, message_id=resp.json()["id"], accepted=True)

    def upsert_subscriber(self, subscriber: Subscriber) -> Operation[UpsertResult]:
        return completed(UpsertResult(reference=subscriber.email, status=UpsertStatus.UNCHANGED))


def fast_retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=3, backoff_initial=0.001, backoff_max=0.002, jitter=False)


def connections(
    base_url: str,
    *,
    transport: httpx.BaseTransport | None = None,
    on_call: Any = None,
    kinds: Sequence[str] = ("accounting", "inventory", "shipping", "crm", "email"),
) -> list[Connection]:
    """One connection per area to the market vendor (in-process when given a transport)."""
    adapters = {
        "accounting": Ledger(base_url),
        "inventory": Stock(base_url),
        "shipping": Carrier(base_url),
        "crm": CRM(base_url),
        "email": Mailer(base_url),
    }
    out = []
    for kind in kinds:
        client = httpx.Client(transport=transport, timeout=5.0)
        driver = Driver(client, retry=fast_retry(), on_call=on_call, sleep=lambda s: None)
        out.append(Connection(kind, adapters[kind].name, adapters[kind], driver))
    return out
