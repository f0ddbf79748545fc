"""Xero Accounting API adapter: contacts, items, invoices, payments, credit notes, webhooks.

Every operation is a sans-I/O generator run by a driver. Writes carry an
``Idempotency-Key`` derived from (tenant, operation, our reference) and are preceded by a
look-up by our reference, so a replay creates nothing twice. Our prices are VAT-inclusive:
invoices go as ``LineAmountTypes=Inclusive`` with each line's ``TaxAmount`` set to the VAT
we computed, so Xero's totals equal ours to the cent; any difference is reported on the
result (``PostedInvoice.total_mismatch``), never hidden.

Stripe fees: a payment is recorded gross against the invoice (into the clearing account
``payment_account_code``, e.g. a "Stripe" bank account) and the processor's fee becomes a
separate *spend money* bank transaction from that same account to ``fee_account_code``.
The invoice is then fully paid and the clearing account's balance equals the payout.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from dixis_integrations.accounting._common import (
    POSTED_FIELDS,
    check_customer,
    created_item,
    local_date,
    money,
    signature_matches,
    trusted,
)
from dixis_integrations.accounting._wire import (
    MalformedBody,
    dumps,
    dumps_marked,
    number,
    plain,
    quoted,
    response_json,
    take_json,
)
from dixis_integrations.accounting.tax import (
    InvoiceLine,
    LeanLine,
    LineKind,
    TaxCodeMap,
    TenantTaxCode,
    check_order,
    check_tenant_codes,
    lean_lines,
    tax_plan,
)
from dixis_integrations.auth.oauth import OAuth2Config
from dixis_integrations.errors import (
    AuthError,
    ConfigurationError,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    NotSupported,
    PermissionDenied,
    ProviderError,
    RateLimited,
    TransientError,
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http.driver import Operation
from dixis_integrations.http.endpoint import (
    Endpoint,
    Limits,
    Window,
    default_classify,
    idempotency_key,
    parse_retry_after,
    request_id_of,
)
from dixis_integrations.http.redact import register_secret
from dixis_integrations.models.accounting import (
    BatchItemResult,
    BatchItemStatus,
    LedgerChange,
    LedgerChangePage,
    LedgerRecord,
    PostedInvoice,
)
from dixis_integrations.models.customer import Customer
from dixis_integrations.models.money import Money
from dixis_integrations.models.order import Order, Payment, Refund
from dixis_integrations.models.product import Product
from dixis_integrations.models.tax import VatCategory
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.webhooks import WebhookRequest

__all__ = [
    "XERO_LIMITS",
    "Xero",
    "XeroConfig",
    "build_contact",
    "build_invoice",
    "classify",
    "parse_invoice",
    "parse_tax_rates",
    "parse_webhook",
    "verify_webhook",
    "webhook_status",
]

VENDOR = "xero"
_SHIPPING_LINE: Final = LineKind.SHIPPING  # read once: an enum member lookup costs a call
BATCH_SIZE = 50
_MAX_ITEM_CODE = 30
_MAX_ITEM_NAME = 50
_MAX_CONTACT_NUMBER = 50
_REQUEST_ID_HEADERS = ("xero-correlation-id",)
_UNIQUE_NUMBER = re.compile(r"#\s*must be unique", re.IGNORECASE)  # "Invoice # must be unique."
_CONTACT_NAME_TAKEN = re.compile(r"already assigned to another contact", re.IGNORECASE)
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")

XERO_LIMITS = Limits(
    windows=(Window(60, 60.0, "minute"), Window(5000, 86400.0, "day")),
    concurrency=5,
    app_windows=(Window(10000, 60.0, "app-minute"),),
)
"""Xero's documented limits: per tenant 60/min, 5000/day, 5 concurrent; 10,000/min per app."""


class XeroConfig(BaseModel):
    """How to reach one Xero organisation.

    Attributes:
        tenant_id: the organisation's ``xero-tenant-id``; when ``None`` the first
            ``ORGANISATION`` connection (or the one named ``tenant_name``) is used.
        tax_codes: our VAT category -> the organisation's ``TaxType`` (see ``/TaxRates``).
        verify_tax_codes: check ``tax_codes`` against ``/TaxRates`` before the first write.
        sales_account_code / shipping_account_code: revenue accounts for lines.
        payment_account_code: the bank (or clearing) account payments go into.
        fee_account_code: expense account for processor fees; ``None`` skips fees.
        webhook_key: the key Xero signs webhooks with.
        timezone: where invoice dates are taken (an order at 01:00 Athens time is
            dated that day, not the day before in UTC).

    Tokens (Xero identity): access tokens last 30 minutes; each refresh returns a new
    refresh token, the old one stays usable for a 30-minute grace period; an unused
    refresh token dies after 60 days. ``offline_access`` is needed for refresh tokens.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "https://api.xero.com/api.xro/2.0"
    connections_url: str = "https://api.xero.com/connections"
    tenant_id: str | None = None
    tenant_name: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    authorize_url: str = "https://login.xero.com/identity/connect/authorize"
    token_url: str = "https://identity.xero.com/connect/token"  # noqa: S105 - a URL
    scopes: tuple[str, ...] = (
        "offline_access",
        "accounting.transactions",
        "accounting.contacts",
        "accounting.settings",
    )
    tax_codes: dict[VatCategory, str] = Field(default_factory=dict)
    verify_tax_codes: bool = True
    sales_account_code: str = "200"
    shipping_account_code: str | None = None
    payment_account_code: str = "090"
    fee_account_code: str | None = None
    fee_contact_name: str = "Stripe"
    invoice_status: Literal["AUTHORISED", "DRAFT", "SUBMITTED"] = "AUTHORISED"
    use_item_codes: bool = True
    due_days: int = Field(default=0, ge=0)
    timezone: str = "Europe/Athens"
    webhook_key: SecretStr | None = None

    def oauth(self) -> OAuth2Config:
        """The OAuth2 settings for :class:`~dixis_integrations.auth.TokenManager`.

        Raises:
            ConfigurationError: when ``client_id`` is not set.
        """
        if not self.client_id:
            raise ConfigurationError("client_id is required for OAuth2", key="xero.client_id")
        return OAuth2Config(
            provider=VENDOR,
            client_id=self.client_id,
            client_secret=self.client_secret,
            authorize_url=self.authorize_url,
            token_url=self.token_url,
            scopes=self.scopes,
            refresh_margin_seconds=120,
        )


# -- pure request builders -------------------------------------------------------------
def _quote(value: str, loc: tuple[str | int, ...]) -> str:
    if '"' in value or "\\" in value:
        raise InvalidInput(
            "reference cannot be looked up",
            errors=[FieldError(loc, "must not contain quotes or backslashes")],
            vendor=VENDOR,
        )
    return f'"{value}"'


def build_contact(customer: Customer, name: str) -> dict[str, Any]:
    """The ``Contact`` for a customer; ``ContactNumber`` carries our reference."""
    contact: dict[str, Any] = {
        "ContactNumber": customer.id,
        "Name": name,
        "EmailAddress": customer.email,
        "IsCustomer": True,
    }
    if customer.first_name:
        contact["FirstName"] = customer.first_name
    if customer.last_name:
        contact["LastName"] = customer.last_name
    if customer.vat_number:
        contact["TaxNumber"] = customer.vat_number
    if customer.phone:
        contact["Phones"] = [{"PhoneType": "MOBILE", "PhoneNumber": customer.phone}]
    address = customer.billing_address
    if address is not None:
        contact["Addresses"] = [
            {
                "AddressType": "POBOX",
                "AddressLine1": " ".join(p for p in (address.street, address.number) if p),
                "City": address.city,
                "PostalCode": address.postcode,
                "Country": address.country,
            }
        ]
    return contact


def _check_sku(sku: str, loc: tuple[str | int, ...]) -> FieldError | None:
    if len(sku) > _MAX_ITEM_CODE:
        return FieldError(loc, f"{len(sku)} characters; Xero item codes take at most 30")
    return None


def build_item(
    sku: str, name: str, price: Money, *, account_code: str, tax_type: str
) -> dict[str, Any]:
    """An ``Item`` keyed by our SKU (``Code``), sold at a VAT-inclusive price."""
    return {
        "Code": sku,
        "Name": name[:_MAX_ITEM_NAME],
        "IsSold": True,
        "IsPurchased": False,
        "SalesDetails": {
            "UnitPrice": price.amount,
            "AccountCode": account_code,
            "TaxType": tax_type,
        },
    }


def build_line(
    line: InvoiceLine, *, tax_type: str, account_code: str, item_codes: bool
) -> dict[str, Any]:
    """One ``LineItem`` (``LineAmountTypes=Inclusive``), its VAT fixed to ours."""
    item: dict[str, Any] = {
        "Description": line.description,
        "Quantity": number(line.quantity),
        "UnitAmount": number(line.unit_amount),
        "LineAmount": number(line.gross_amount),
        "TaxType": tax_type,
        "TaxAmount": number(line.vat_amount),
        "AccountCode": account_code,
    }
    if line.discount_amount:
        item["DiscountAmount"] = number(line.discount_amount)
    if item_codes and line.sku is not None:
        item["ItemCode"] = line.sku
    return item


def _loc(line: InvoiceLine) -> tuple[str | int, ...]:
    if line.source_index is not None:
        return ("lines", line.source_index, "vat_category")
    return ("shipping_vat_category",)


def build_invoice(
    order: Order,
    lines: Sequence[InvoiceLine],
    config: XeroConfig,
    codes: TaxCodeMap,
    *,
    tenant: str,
    contact: dict[str, Any],
) -> dict[str, Any]:
    """The ``Invoice`` (ACCREC) for an order; ``InvoiceNumber`` is our order id.

    Each line as :func:`build_line` writes it (inlined here: this runs per invoice).
    """
    issued = local_date(order.created_at, config.timezone)
    sales = config.sales_account_code
    shipping_account = config.shipping_account_code or sales
    item_codes = config.use_item_codes
    mapped = codes.codes
    items = []
    for line in lines:
        tax_type = mapped.get(line.category)
        if tax_type is None:  # refused, naming the line
            tax_type = codes.code_for(line.category, tenant=tenant, vendor=VENDOR, loc=_loc(line))
        item: dict[str, Any] = {
            "Description": line.description,
            "Quantity": number(line.quantity),
            "UnitAmount": number(line.unit_amount),
            "LineAmount": number(line.gross_amount),
            "TaxType": tax_type,
            "TaxAmount": number(line.vat_amount),
            "AccountCode": shipping_account if line.kind is _SHIPPING_LINE else sales,
        }
        if line.discount_amount:
            item["DiscountAmount"] = number(line.discount_amount)
        if item_codes and line.sku is not None:
            item["ItemCode"] = line.sku
        items.append(item)
    day = issued.isoformat()
    return {
        "Type": "ACCREC",
        "Contact": contact,
        "Date": day,
        "DueDate": (issued + timedelta(days=config.due_days)).isoformat()
        if config.due_days
        else day,
        "LineAmountTypes": "Inclusive",
        "InvoiceNumber": order.id,
        "Reference": order.number or order.id,
        "CurrencyCode": order.currency,
        "Status": config.invoice_status,
        "LineItems": items,
    }


def build_payment(
    payment: Payment, invoice_id: str, account_code: str, day: date
) -> dict[str, Any]:
    """A ``Payment`` of the gross amount against an invoice; ``Reference`` is our id."""
    return {
        "Invoice": {"InvoiceID": invoice_id},
        "Account": {"Code": account_code},
        "Date": day.isoformat(),
        "Amount": payment.amount.amount,
        "Reference": payment.id,
    }


def build_fee_transaction(payment: Payment, config: XeroConfig, day: date) -> dict[str, Any]:
    """The processor fee of a payment as a *spend money* transaction (no VAT)."""
    assert payment.fee is not None
    assert config.fee_account_code is not None
    payout = f", payout {payment.payout_id}" if payment.payout_id else ""
    return {
        "Type": "SPEND",
        "Contact": {"Name": config.fee_contact_name},
        "BankAccount": {"Code": config.payment_account_code},
        "Date": day.isoformat(),
        "Reference": f"fee {payment.id}",
        "CurrencyCode": payment.fee.currency,
        "LineAmountTypes": "NoTax",
        "LineItems": [
            {
                "Description": f"Processing fee for payment {payment.id}{payout}",
                "Quantity": Decimal(1),
                "UnitAmount": payment.fee.amount,
                "AccountCode": config.fee_account_code,
            }
        ],
    }


def build_credit_note(
    refund: Refund, invoice: dict[str, Any], account_code: str, day: date
) -> dict[str, Any]:
    """A credit note for a refund, split across the invoice's tax types by their amounts.

    Xero computes the VAT of each credit line (``LineAmountTypes=Inclusive``).
    """
    weights: dict[str, int] = {}
    for item in invoice.get("LineItems") or ():
        amount = Decimal(str(item.get("LineAmount") or 0))
        tax_type = str(item.get("TaxType") or "NONE")
        weights[tax_type] = weights.get(tax_type, 0) + int(amount * 100)
    positive = {k: v for k, v in weights.items() if v > 0} or {"NONE": 1}
    shares = refund.amount.allocate(list(positive.values()))
    reason = f": {refund.reason}" if refund.reason else ""
    lines = [
        {
            "Description": f"Refund {refund.id} of order {refund.order_id}{reason}",
            "Quantity": Decimal(1),
            "UnitAmount": share.amount,
            "TaxType": tax_type,
            "AccountCode": account_code,
        }
        for tax_type, share in zip(positive, shares, strict=True)
        if not share.is_zero
    ]
    return {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": (invoice.get("Contact") or {}).get("ContactID")},
        "Date": day.isoformat(),
        "Status": "AUTHORISED",
        "LineAmountTypes": "Inclusive",
        "CreditNoteNumber": refund.id,
        "Reference": refund.order_id,
        "CurrencyCode": refund.amount.currency,
        "LineItems": lines,
    }


# -- pure response parsers ---------------------------------------------------------------
def _money(value: Any, currency: str, ours: Money | None = None) -> Money:
    amount = value if isinstance(value, Decimal) else Decimal(str(value if value else 0))
    if ours is not None and ours.currency == currency and ours.amount == amount:
        return ours  # the common case: the vendor agrees with us, to the cent
    return Money(amount=amount, currency=currency)


def parse_invoice(
    data: dict[str, Any],
    *,
    total: Money | None = None,
    tax: Money | None = None,
    created: bool = True,
) -> PostedInvoice:
    """A Xero ``Invoice`` as a :class:`PostedInvoice`; ``total``/``tax`` are ours."""
    get = data.get
    currency = str(get("CurrencyCode") or (total.currency if total else "EUR"))
    vendor_total = _money(get("Total"), currency, total)
    vendor_tax = _money(get("TotalTax"), currency, tax)
    number = get("InvoiceNumber")
    # Built from values already valid (ours, or amounts compared with ours): no second
    # validation of the result, once per invoice on the bulk path.
    return trusted(
        PostedInvoice,
        {
            "provider": VENDOR,
            "external_id": str(data["InvoiceID"]),
            "reference": str(number or ""),
            "number": None if number is None else str(number),
            "status": str(get("Status") or ""),
            "total": total if total is not None else vendor_total,
            "vendor_total": vendor_total,
            "created": created,
            "tax": tax if tax is not None else vendor_tax,
            "vendor_tax": vendor_tax,
        },
        POSTED_FIELDS,
    )


def parse_tax_rates(body: dict[str, Any]) -> list[TenantTaxCode]:
    """``/TaxRates`` as tax codes with their effective rate."""
    out = []
    for rate in body.get("TaxRates") or ():
        out.append(
            TenantTaxCode(
                code=str(rate.get("TaxType")),
                rate=Decimal(str(rate.get("EffectiveRate", rate.get("DisplayTaxRate", 0)))),
                name=str(rate.get("Name") or ""),
                active=rate.get("Status", "ACTIVE") == "ACTIVE",
            )
        )
    return out


def parse_ms_date(value: str | None) -> datetime | None:
    """Xero's ``/Date(1573755038314+0000)/`` (or ISO text) as an aware UTC datetime."""
    if not value:
        return None
    match = _MS_DATE.fullmatch(value.strip())
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _messages(element: dict[str, Any]) -> list[str]:
    return [
        str(v.get("Message") or "")
        for v in (element.get("ValidationErrors") or ())
        if isinstance(v, dict)
    ]


def _field_errors(body: dict[str, Any]) -> list[FieldError]:
    errors = []
    for index, element in enumerate(body.get("Elements") or ()):
        if isinstance(element, dict):
            for message in _messages(element):
                errors.append(FieldError(("Elements", index), message, code="xero_validation"))
    return errors


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """Xero's failures as typed errors: ``ValidationException`` bodies, 429 headers.

    A 429 whose ``X-Rate-Limit-Problem`` is ``day`` raises :class:`RateLimited` with
    ``retry_at`` at once (not retryable), instead of sleeping for hours; minute and
    concurrency limits are retryable after ``Retry-After``.
    """
    status = response.status_code
    rid = request_id_of(response, _REQUEST_ID_HEADERS)
    if status == 429:
        problem = (response.headers.get("x-rate-limit-problem") or "").lower()
        retry_at = parse_retry_after(response.headers.get("retry-after"))
        error = RateLimited(
            f"Xero {problem or 'rate'} limit reached",
            retry_at=retry_at,
            vendor=VENDOR,
            request_id=rid,
            status_code=status,
            vendor_code=problem or None,
            scope=problem or None,
        )
        if problem == "day":
            error.retryable = False
        return error
    if status < 400:
        if response.request.method != "DELETE" and response.content:
            try:
                response_json(response)
            except MalformedBody:
                return TransientError(
                    "Xero answered with a malformed body", vendor=VENDOR, request_id=rid
                )
        return None
    try:
        body = response_json(response)
    except MalformedBody:
        body = None
    if status == 400 and isinstance(body, dict):
        errors = _field_errors(body)
        text = "; ".join(e.message for e in errors) or str(body.get("Message") or "bad request")
        if _CONTACT_NAME_TAKEN.search(text) or _UNIQUE_NUMBER.search(text):
            return Conflict(
                text, vendor=VENDOR, request_id=rid, status_code=status, vendor_code="duplicate"
            )
        return ValidationRejected(
            text,
            errors=errors,
            vendor=VENDOR,
            request_id=rid,
            status_code=status,
            vendor_code=str(body.get("ErrorNumber") or body.get("Type") or "") or None,
        )
    detail = ""
    if isinstance(body, dict):
        detail = str(body.get("Detail") or body.get("Message") or body.get("Title") or "")
    if status == 401:
        return AuthError(
            detail or "Xero refused the token", vendor=VENDOR, request_id=rid, status_code=status
        )
    if status == 403:
        return PermissionDenied(
            detail or "not allowed for this tenant",
            vendor=VENDOR,
            request_id=rid,
            status_code=status,
        )
    if status == 404:
        return NotFound(detail or "not found", vendor=VENDOR, request_id=rid, status_code=status)
    return default_classify(response, endpoint)


# -- webhooks ----------------------------------------------------------------------------
_CATEGORY_KIND = {
    "INVOICE": "invoice",
    "CONTACT": "customer",
    "CREDITNOTE": "credit_note",
    "SUBSCRIPTION": "subscription",
}


def verify_webhook(body: bytes, signature: str | None, key: SecretStr | str) -> bool:
    """Whether ``x-xero-signature`` is right for the raw ``body`` (constant time)."""
    secret = key.get_secret_value() if isinstance(key, SecretStr) else key
    return signature_matches(secret.encode(), body, signature)


def webhook_status(body: bytes, signature: str | None, key: SecretStr | str) -> int:
    """The status to answer a delivery with: 200 when signed correctly, else 401.

    This is also the whole of Xero's *intent to receive* check (signed and unsigned
    probes must get 200 and 401 respectively, with an empty body).
    """
    return 200 if verify_webhook(body, signature, key) else 401


def parse_webhook(body: bytes, signature: str | None, key: SecretStr | str) -> list[LedgerChange]:
    """Verify and parse a Xero webhook delivery into changes (to re-read).

    Raises:
        WebhookError: bad signature or an unreadable body.
    """
    if not verify_webhook(body, signature, key):
        raise WebhookError("x-xero-signature does not match", vendor=VENDOR)
    try:
        data = response_json(httpx.Response(200, content=body))
    except MalformedBody:
        raise WebhookError("webhook body is not JSON", vendor=VENDOR) from None
    changes = []
    for event in data.get("events") or ():
        category = str(event.get("eventCategory") or "")
        changes.append(
            LedgerChange(
                provider=VENDOR,
                tenant=str(event.get("tenantId") or ""),
                kind=_CATEGORY_KIND.get(category, category.lower()),
                external_id=str(event.get("resourceId") or ""),
                operation=str(event.get("eventType") or "").lower(),
                changed_at=parse_ms_date(event.get("eventDateUtc")),
                event_id=f"{event.get('tenantId')}:{event.get('resourceId')}:"
                f"{event.get('eventDateUtc')}",
            )
        )
    return changes


# -- the adapter ------------------------------------------------------------------------
class Xero:
    """The Xero Accounting API as an :class:`~dixis_integrations.protocols.AccountingProvider`.

    ``tenant`` is our name for the organisation (budgets and keys are per tenant);
    ``config.tenant_id`` is Xero's. No call is made here: the first operation that needs
    it resolves the tenant (``/connections``) and checks the tax codes (``/TaxRates``).
    """

    name = VENDOR
    needs_oauth = True  # calls carry OAuth2 tokens only
    capabilities = frozenset(
        {
            Capability.INVOICES,
            Capability.PAYMENTS,
            Capability.CREDIT_NOTES,
            Capability.BATCH,
            Capability.WEBHOOKS,
            Capability.IDEMPOTENCY_KEYS,
            Capability.INCREMENTAL,
        }
    )

    def __init__(
        self,
        config: XeroConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.config = config
        self.tenant = tenant
        self.codes = TaxCodeMap(codes=dict(config.tax_codes))
        for secret in (config.client_secret, config.webhook_key):
            if secret is not None:
                register_secret(secret.get_secret_value())
        self._limits = XERO_LIMITS.scaled(time_scale)
        self._base = Endpoint(
            vendor=VENDOR,
            base_url=config.base_url,
            tenant=tenant,
            auth=auth,
            limits=self._limits,
            classify=classify,
            headers={"Accept": "application/json"},
            idempotency_header="Idempotency-Key",
            request_id_headers=_REQUEST_ID_HEADERS,
        )
        self._api: Endpoint | None = None
        if config.tenant_id:
            self._api = self._for_tenant(config.tenant_id)
        self._codes_checked = not config.verify_tax_codes
        self._known_items: set[str] | None = None
        self._plan = tax_plan(self.codes)
        self._texts: tuple[XeroConfig, str, str, str, dict[str, str]] | None = None

    def __repr__(self) -> str:
        return f"Xero(tenant={self.tenant!r}, base_url={self.config.base_url!r})"

    def _for_tenant(self, tenant_id: str) -> Endpoint:
        headers = {**self._base.headers, "xero-tenant-id": tenant_id}
        return replace(self._base, headers=headers)

    def _key(self, operation: str, reference: str) -> str:
        return idempotency_key(self.tenant, f"xero.{operation}", reference)

    # -- set-up ------------------------------------------------------------------------
    def connect(self) -> Operation[str]:
        """Resolve the Xero tenant id and check the tax codes; returns the tenant id.

        Raises:
            ConfigurationError: no matching connection, or a tax code missing, inactive
                or at another rate at the tenant.
        """
        if self._api is None:
            request = self._base.request(
                "GET", self.config.connections_url, operation="xero.connections"
            )
            response = yield request
            tenant_id = _pick_connection(response_json(response), self.config.tenant_name)
            self._api = self._for_tenant(tenant_id)
        if not self._codes_checked:
            response = yield self._api.request("GET", "/TaxRates", operation="xero.tax_rates")
            check_tenant_codes(
                self.codes,
                parse_tax_rates(response_json(response)),
                tenant=self.tenant,
                vendor=VENDOR,
            )
            self._codes_checked = True
        return str(self._api.headers["xero-tenant-id"])

    def _ready(self) -> Operation[Endpoint]:
        if self._api is None or not self._codes_checked:
            yield from self.connect()
        assert self._api is not None
        return self._api

    def check(self) -> Operation[HealthStatus]:
        """One cheap call (``/Organisation``); the minute and day budgets left."""
        api = yield from self._ready()
        try:
            response = yield api.request("GET", "/Organisation", operation="xero.organisation")
        except ProviderError as exc:
            return HealthStatus(name=VENDOR, ok=False, detail=str(exc))
        remaining = response.headers.get("x-daylimit-remaining")
        orgs = response_json(response).get("Organisations") or [{}]
        return HealthStatus(
            name=VENDOR,
            ok=True,
            detail=str(orgs[0].get("Name") or ""),
            quota_remaining=int(remaining) if remaining and remaining.isdigit() else None,
        )

    # -- contacts and items ------------------------------------------------------------
    def upsert_customer(self, customer: Customer) -> Operation[LedgerRecord]:
        """Find the contact by ``ContactNumber`` (our customer id) or create it.

        A name already taken by another contact (Xero names are unique) is retried once
        as ``"<name> (<our id>)"``.
        """
        name = check_customer(customer, vendor=VENDOR, max_reference=_MAX_CONTACT_NUMBER)
        where = f"ContactNumber=={_quote(customer.id, ('customer', 'id'))}"
        api = yield from self._ready()
        response = yield api.request(
            "GET", "/Contacts", params={"where": where}, operation="xero.find_contact"
        )
        found = response_json(response).get("Contacts") or []
        if found:
            return _contact_record(found[0], customer.id, created=False)
        for attempt, shown in enumerate((name, f"{name} ({customer.id})")):
            body = {"Contacts": [build_contact(customer, shown)]}
            try:
                response = yield api.request(
                    "PUT",
                    "/Contacts",
                    content=dumps(body),
                    headers={"Content-Type": "application/json"},
                    operation="xero.create_contact",
                    idempotency_key=self._key(f"create_contact.{attempt}", customer.id),
                )
            except Conflict:
                if attempt:
                    raise
                continue
            return _contact_record(response_json(response)["Contacts"][0], customer.id)
        raise AssertionError("unreachable")  # pragma: no cover

    def upsert_products(self, products: Sequence[Product]) -> Operation[list[LedgerRecord]]:
        """Find or create items by SKU (``Code``); one read and at most one write."""
        errors = [
            e
            for i, p in enumerate(products)
            if (e := _check_sku(p.sku, ("products", i, "sku"))) is not None
        ]
        for i, p in enumerate(products):
            if p.vat_category not in self.codes.codes:
                self.codes.code_for(
                    p.vat_category,
                    tenant=self.tenant,
                    vendor=VENDOR,
                    loc=("products", i, "vat_category"),
                )
        if errors:
            raise InvalidInput("products cannot be sent", errors=errors, vendor=VENDOR)
        wanted = [(p.sku, p.name, p.price, p.vat_category) for p in products]
        ids = yield from self._ensure_items(wanted)
        return [
            LedgerRecord(
                provider=VENDOR,
                kind="item",
                external_id=ids[sku][0],
                reference=sku,
                created=ids[sku][1],
            )
            for sku, *_ in wanted
        ]

    def _ensure_items(
        self, wanted: Iterable[tuple[str, str, Money, VatCategory]]
    ) -> Operation[dict[str, tuple[str, bool]]]:
        api = yield from self._ready()
        response = yield api.request("GET", "/Items", operation="xero.items")
        existing = {
            str(i["Code"]): str(i.get("ItemID") or "")
            for i in response_json(response).get("Items") or ()
        }
        self._known_items = set(existing)
        out: dict[str, tuple[str, bool]] = {c: (i, False) for c, i in existing.items()}
        missing: dict[str, dict[str, Any]] = {}
        for sku, name, price, category in wanted:
            if sku not in existing and sku not in missing:
                missing[sku] = build_item(
                    sku,
                    name,
                    price,
                    account_code=self.config.sales_account_code,
                    tax_type=self.codes.code_for(category, tenant=self.tenant, vendor=VENDOR),
                )
        if missing:
            # POST (update or create by Code): another worker creating the same item
            # meanwhile is harmless, and the key is bound to this exact payload.
            content = dumps({"Items": list(missing.values())})
            digest = hashlib.sha256(content).hexdigest()
            response = yield api.request(
                "POST",
                "/Items",
                content=content,
                headers={"Content-Type": "application/json"},
                operation="xero.create_items",
                idempotency_key=self._key("create_items", f"{','.join(sorted(missing))}#{digest}"),
            )
            for item in response_json(response).get("Items") or ():
                out[str(item["Code"])] = (str(item.get("ItemID") or ""), True)
            self._known_items.update(missing)
        return out

    def _items_for(self, orders: Iterable[Order]) -> Operation[None]:
        if not self.config.use_item_codes:
            return
        wanted: dict[str, tuple[str, str, Money, VatCategory]] = {}
        for order in orders:
            for line in order.lines:
                if line.sku not in wanted:
                    wanted[line.sku] = (line.sku, line.name, line.unit_price, line.vat_category)
        if self._known_items is not None and set(wanted) <= self._known_items:
            return
        yield from self._ensure_items(wanted.values())

    def prepare(self, orders: Sequence[Order]) -> Operation[None]:
        """Resolve the tenant, check the tax codes and create missing items of ``orders``:
        a warm-up before a bulk push.
        """
        yield from self._ready()
        yield from self._items_for(orders)

    # -- invoices --------------------------------------------------------------------
    def _prepare(self, order: Order) -> tuple[dict[str, Any], Money, Money]:
        """The order's invoice body and our gross and VAT totals, every check done.

        Raises:
            InvalidInput: every problem with the order, before anything is sent.
        """
        lean = self._lean(order)
        if lean is not None:
            return lean
        # The careful path: every problem reported at once (or an order the lean path
        # does not cover, drafted line by line).
        draft = check_order(order, self.codes, tenant=self.tenant, vendor=VENDOR)
        errors = [
            e
            for i, line in enumerate(order.lines)
            if len(line.sku) > _MAX_ITEM_CODE
            and (e := _check_sku(line.sku, ("lines", i, "sku"))) is not None
        ]
        if errors:
            raise InvalidInput("order cannot be posted", errors=errors, vendor=VENDOR)
        name = check_customer(order.customer, vendor=VENDOR, max_reference=_MAX_CONTACT_NUMBER)
        body = build_invoice(
            order,
            draft.lines,
            self.config,
            self.codes,
            tenant=self.tenant,
            contact={"ContactNumber": order.customer.id, "Name": name},
        )
        return body, draft.gross, draft.vat

    def _lean_order(self, order: Order) -> tuple[list[LeanLine], Decimal, Decimal, str] | None:
        """:func:`lean_lines`' tuples, gross and VAT of the order, and its contact's name:
        what both lean writers start from. ``None`` when the careful path is needed."""
        lean = lean_lines(order, self._plan)
        if lean is None:
            return None
        customer = order.customer
        name = (customer.full_name or customer.company or "").strip()
        if not name or len(customer.id) > _MAX_CONTACT_NUMBER:
            return None
        return lean[0], lean[1], lean[2], name

    def _lean(self, order: Order) -> tuple[dict[str, Any], Money, Money] | None:
        """:meth:`_prepare`'s common case in one pass: the lines from :func:`lean_lines`
        straight into the body :func:`build_invoice` writes (a test holds the two
        equal). ``None`` when anything needs the careful path, which reports it.
        """
        lean = self._lean_order(order)
        if lean is None:
            return None
        lines, gross, vat, name = lean
        customer = order.customer
        config = self.config
        sales = config.sales_account_code
        shipping_account = config.shipping_account_code or sales
        item_codes = config.use_item_codes
        items = []
        for kind, description, sku, quantity, unit, discount, line_gross, line_vat, code in lines:
            item: dict[str, Any] = {
                "Description": description,
                "Quantity": number(quantity),
                "UnitAmount": number(unit),
                "LineAmount": number(line_gross),
                "TaxType": code,
                "TaxAmount": number(line_vat),
                "AccountCode": shipping_account if kind is _SHIPPING_LINE else sales,
            }
            if discount:
                item["DiscountAmount"] = number(discount)
            if sku is not None:
                if len(sku) > _MAX_ITEM_CODE:
                    return None
                if item_codes:
                    item["ItemCode"] = sku
            items.append(item)
        issued = local_date(order.created_at, config.timezone)
        day = issued.isoformat()
        currency = order.currency
        body = {
            "Type": "ACCREC",
            "Contact": {"ContactNumber": customer.id, "Name": name},
            "Date": day,
            "DueDate": (issued + timedelta(days=config.due_days)).isoformat()
            if config.due_days
            else day,
            "LineAmountTypes": "Inclusive",
            "InvoiceNumber": order.id,
            "Reference": order.number or order.id,
            "CurrencyCode": currency,
            "Status": config.invoice_status,
            "LineItems": items,
        }
        return body, money(gross, currency), money(vat, currency)

    def _constant_texts(self) -> tuple[XeroConfig, str, str, str, dict[str, str]]:
        """The configuration's values as JSON strings, written once per configuration:
        (config, sales account, shipping account, status, tax code -> JSON string)."""
        texts = self._texts
        config = self.config
        if texts is None or texts[0] is not config:
            sales = config.sales_account_code
            texts = self._texts = (
                config,
                quoted(sales),
                quoted(config.shipping_account_code or sales),
                quoted(config.invoice_status),
                {code: quoted(code) for code, _, _ in self._plan.values()},
            )
        return texts

    def _lean_text(
        self, order: Order, contact: str | None = None
    ) -> tuple[str, Money, Money] | None:
        """:meth:`_lean`'s body written straight as JSON text, the very text
        :func:`dumps_marked` writes for it (a test holds the two equal): the bulk path,
        with no dictionary per invoice or line and no second pass over the text.

        ``contact``, JSON text, replaces the contact written by name. ``None`` when
        anything needs the careful path, as for :meth:`_lean`.
        """
        lean = self._lean_order(order)
        if lean is None:
            return None
        lines, gross, vat, name = lean
        customer = order.customer
        config, sales, shipping_account, status, codes = self._constant_texts()
        item_codes = config.use_item_codes
        items = []
        for kind, description, sku, quantity, unit, discount, line_gross, line_vat, code in lines:
            item = (
                f'{{"Description":{quoted(description)},"Quantity":{plain(quantity)},'
                f'"UnitAmount":{plain(unit)},"LineAmount":{plain(line_gross)},'
                f'"TaxType":{codes[code]},"TaxAmount":{plain(line_vat)},"AccountCode":'
                f"{shipping_account if kind is _SHIPPING_LINE else sales}"
            )
            if discount:
                item += f',"DiscountAmount":{plain(discount)}'
            if sku is not None:
                if len(sku) > _MAX_ITEM_CODE:
                    return None
                if item_codes:
                    item += f',"ItemCode":{quoted(sku)}'
            items.append(item + "}")
        issued = local_date(order.created_at, config.timezone)
        day = issued.isoformat()
        due = (issued + timedelta(days=config.due_days)).isoformat() if config.due_days else day
        currency = order.currency
        if contact is None:
            contact = f'{{"ContactNumber":{quoted(customer.id)},"Name":{quoted(name)}}}'
        text = (
            f'{{"Type":"ACCREC","Contact":{contact},"Date":"{day}","DueDate":"{due}",'
            f'"LineAmountTypes":"Inclusive","InvoiceNumber":{quoted(order.id)},'
            f'"Reference":{quoted(order.number or order.id)},"CurrencyCode":{quoted(currency)},'
            f'"Status":{status},"LineItems":[{",".join(items)}]}}'
        )
        return text, money(gross, currency), money(vat, currency)

    def _find(self, api: Endpoint, reference: str) -> Operation[dict[str, Any] | None]:
        response = yield api.request(
            "GET",
            "/Invoices",
            params={"InvoiceNumbers": reference, "page": "1"},
            operation="xero.find_invoice",
        )
        found = [
            inv
            for inv in response_json(response).get("Invoices") or ()
            if inv.get("InvoiceNumber") == reference
        ]
        found.sort(key=lambda inv: inv.get("Status") in ("DELETED", "VOIDED"))
        return found[0] if found else None

    def post_invoice(self, order: Order) -> Operation[PostedInvoice]:
        """Post the order (or return the invoice already posted for it).

        Raises:
            InvalidInput: before any call, for lines that do not add up, an unmapped
                VAT category, a customer without a name, an over-long SKU.
        """
        body, total, tax = self._prepare(order)
        api = yield from self._ready()
        existing = yield from self._find(api, order.id)
        if existing is not None:
            return parse_invoice(existing, total=total, tax=tax, created=False)
        yield from self._items_for([order])
        try:
            response = yield self._put_invoices(
                api, self._invoices_content([body]), self._key("create_invoice", order.id)
            )
        except Conflict as exc:
            if not _CONTACT_NAME_TAKEN.search(exc.message):
                raise
            contact = yield from self.upsert_customer(order.customer)
            body = {**body, "Contact": {"ContactID": contact.external_id}}
            response = yield self._put_invoices(
                api, self._invoices_content([body]), self._key("create_invoice.contact", order.id)
            )
        data = response_json(response)["Invoices"][0]
        if data.get("HasErrors"):
            raise _item_error(data)
        return parse_invoice(data, total=total, tax=tax)

    @staticmethod
    def _invoices_content(invoices: list[dict[str, Any]]) -> bytes:
        # Every amount of build_invoice's bodies is a number() mark: the fast writer.
        return dumps_marked({"Invoices": invoices})

    def _put_invoices(self, api: Endpoint, content: bytes, key: str) -> httpx.Request:
        return api.request(
            "PUT",
            "/Invoices",
            params={"summarizeErrors": "false", "unitdp": "4"},
            content=content,
            headers={"Content-Type": "application/json"},
            operation="xero.create_invoices",
            idempotency_key=key,
        )

    def post_invoices(self, orders: Sequence[Order]) -> Operation[list[BatchItemResult]]:
        """Push many orders, 50 per ``PUT /Invoices?summarizeErrors=false``.

        One result per order, in input order: created, already existed (its
        ``InvoiceNumber`` was taken: read back in one call per 50), or rejected with
        Xero's reason (or ours, for input refused before sending; nothing is sent for
        those). Each call's ``Idempotency-Key`` covers its chunk's references. Invoices
        refused because their customer's name belongs to another contact are sent again
        with the customer's own contact (found or created as in :meth:`upsert_customer`).
        """
        results: list[BatchItemResult | None] = [None] * len(orders)
        ready: list[tuple[int, Order]] = []
        for index, order in enumerate(orders):
            if not self._plainly_valid(order):
                try:  # the careful check: every problem reported at once
                    self._prepare(order)
                except InvalidInput as exc:
                    results[index] = _rejected(order.id, exc)
                    continue
            ready.append((index, order))
        if ready:
            api = yield from self._ready()
            yield from self._items_for(o for _, o in ready)
            duplicates: dict[str, tuple[int, Money, Money]] = {}
            renamed = yield from self._push(api, ready, "create_invoices", results, duplicates)
            if renamed:
                # A contact name already taken by another contact: find or create the
                # customer (a suffixed name if need be), then send those invoices again
                # with the ContactID.
                ids: dict[str, str] = {}
                for _, order in renamed:
                    if order.customer.id not in ids:
                        record = yield from self.upsert_customer(order.customer)
                        ids[order.customer.id] = record.external_id
                yield from self._push(
                    api, renamed, "create_invoices.contact", results, duplicates, contacts=ids
                )
            yield from self._read_back(api, duplicates, results)
        return [r for r in results if r is not None]

    def _plainly_valid(self, order: Order) -> bool:
        """Whether ``order`` passes every check of :meth:`_prepare`, as far as can be told
        without drafting it (a stated total needs the draft). Orders it is unsure of go
        through :meth:`_prepare` first, which reports every problem.
        """
        if order.stated_total is not None:
            return False
        codes = self.codes.codes
        for line in order.lines:
            if line.vat_category not in codes or len(line.sku) > _MAX_ITEM_CODE:
                return False
        if order.shipping_fee.amount and order.shipping_vat_category not in codes:
            return False
        customer = order.customer
        name = customer.full_name or customer.company or ""
        return bool(name.strip()) and len(customer.id) <= _MAX_CONTACT_NUMBER

    def _push(
        self,
        api: Endpoint,
        ready: list[tuple[int, Order]],
        operation: str,
        results: list[BatchItemResult | None],
        duplicates: dict[str, tuple[int, Money, Money]],
        *,
        contacts: dict[str, str] | None = None,
    ) -> Operation[list[tuple[int, Order]]]:
        """PUT ``ready`` in chunks of 50; fill ``results``, collect duplicates, and return
        the invoices refused only because their contact's name is taken. ``contacts``
        (our customer id -> ``ContactID``) replaces the contacts written by name.

        Each chunk's bodies are built just before its call and dropped once encoded, so
        a large push never holds every invoice body at once.
        """
        renamed: list[tuple[int, Order]] = []
        for start in range(0, len(ready), BATCH_SIZE):
            chunk: list[tuple[int, Order, Money, Money]] = []
            texts: list[str] = []
            for index, order in ready[start : start + BATCH_SIZE]:
                contact = None
                if contacts is not None:
                    contact = f'{{"ContactID":{quoted(contacts[order.customer.id])}}}'
                written = self._lean_text(order, contact)
                if written is None:  # the careful path, as in post_invoice
                    try:
                        body, total, tax = self._prepare(order)
                    except InvalidInput as exc:  # checked before the first call; kept safe
                        results[index] = _rejected(order.id, exc)
                        continue
                    if contacts is not None:
                        body["Contact"] = {"ContactID": contacts[order.customer.id]}
                    text = dumps_marked(body).decode()
                else:
                    text, total, tax = written
                texts.append(text)
                chunk.append((index, order, total, tax))
            if not chunk:
                continue
            refs = ",".join(order.id for _, order, _, _ in chunk)
            request = self._put_invoices(
                api, self._chunk_content(texts), self._key(operation, refs)
            )
            texts = []
            response = yield request
            answered = take_json(response).get("Invoices") or []
            for position, (index, order, total, tax) in enumerate(chunk):
                data = answered[position] if position < len(answered) else {}
                if not data.get("HasErrors") and data.get("InvoiceID"):
                    invoice = parse_invoice(data, total=total, tax=tax)
                    results[index] = created_item(order.id, invoice)
                    continue
                messages = _messages(data) or ["no answer for this invoice"]
                if any(_UNIQUE_NUMBER.search(m) for m in messages):
                    duplicates[order.id] = (index, total, tax)
                    continue
                if contacts is None and any(_CONTACT_NAME_TAKEN.search(m) for m in messages):
                    renamed.append((index, order))
                    continue
                results[index] = BatchItemResult(
                    reference=order.id,
                    status=BatchItemStatus.REJECTED,
                    error_code="validation_rejected",
                    reason="; ".join(messages),
                )
        return renamed

    @staticmethod
    def _chunk_content(texts: list[str]) -> bytes:
        """The ``PUT /Invoices`` body of invoices written as JSON text: the same bytes
        :func:`dumps_marked` writes for their bodies."""
        text = '{"Invoices":[' + ",".join(texts) + "]}"
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate: refused as dumps_marked refuses it
            return dumps_marked(text)

    def _read_back(
        self,
        api: Endpoint,
        duplicates: dict[str, tuple[int, Money, Money]],
        results: list[BatchItemResult | None],
    ) -> Operation[None]:
        refs = list(duplicates)
        for start in range(0, len(refs), BATCH_SIZE):
            part = refs[start : start + BATCH_SIZE]
            response = yield api.request(
                "GET",
                "/Invoices",
                params={"InvoiceNumbers": ",".join(part), "page": "1"},
                operation="xero.find_invoices",
            )
            by_number = {
                str(inv.get("InvoiceNumber")): inv
                for inv in take_json(response).get("Invoices") or ()
                if inv.get("Status") not in ("DELETED", "VOIDED")
            }
            for ref in part:
                index, total, tax = duplicates[ref]
                data = by_number.get(ref)
                invoice = parse_invoice(data, total=total, tax=tax, created=False) if data else None
                results[index] = BatchItemResult(
                    reference=ref,
                    status=BatchItemStatus.ALREADY_EXISTED,
                    external_id=invoice.external_id if invoice else None,
                    invoice=invoice,
                )

    def find_invoice(self, reference: str) -> Operation[PostedInvoice | None]:
        """The invoice whose ``InvoiceNumber`` is our order reference, if any."""
        api = yield from self._ready()
        data = yield from self._find(api, reference)
        return None if data is None else parse_invoice(data, created=False)

    def void_invoice(self, reference: str) -> Operation[PostedInvoice]:
        """Void the order's invoice (a draft is deleted instead); lines are kept.

        Raises:
            NotFound: no invoice for ``reference``.
        """
        api = yield from self._ready()
        data = yield from self._find(api, reference)
        if data is None:
            raise NotFound(f"no invoice for {reference!r}", vendor=VENDOR)
        if data.get("Status") in ("VOIDED", "DELETED"):
            return parse_invoice(data, created=False)
        status = "DELETED" if data.get("Status") in ("DRAFT", "SUBMITTED") else "VOIDED"
        invoice_id = str(data["InvoiceID"])
        # No LineItems in the body: Xero keeps the lines as they are.
        response = yield api.request(
            "POST",
            f"/Invoices/{invoice_id}",
            content=dumps({"Invoices": [{"InvoiceID": invoice_id, "Status": status}]}),
            headers={"Content-Type": "application/json"},
            operation="xero.void_invoice",
            idempotency_key=self._key("void_invoice", reference),
        )
        return parse_invoice(response_json(response)["Invoices"][0], created=False)

    def update_invoice_lines(
        self, reference: str, replace_lines: dict[str, dict[str, Any]]
    ) -> Operation[PostedInvoice]:
        """Change some lines of an invoice, keeping every other line.

        ``replace_lines`` maps ``LineItemID`` to the fields to change. Every existing line
        is sent back with its ``LineItemID`` (Xero deletes lines left out of an update).
        """
        api = yield from self._ready()
        data = yield from self._find(api, reference)
        if data is None:
            raise NotFound(f"no invoice for {reference!r}", vendor=VENDOR)
        lines = merge_lines(data.get("LineItems") or [], replace_lines)
        invoice_id = str(data["InvoiceID"])
        response = yield api.request(
            "POST",
            f"/Invoices/{invoice_id}",
            content=dumps({"Invoices": [{"InvoiceID": invoice_id, "LineItems": lines}]}),
            headers={"Content-Type": "application/json"},
            operation="xero.update_invoice",
            idempotent=True,
        )
        return parse_invoice(response_json(response)["Invoices"][0], created=False)

    # -- payments and refunds ----------------------------------------------------------
    def record_payment(self, payment: Payment) -> Operation[LedgerRecord]:
        """Record the payment against the order's invoice (and its fee, see the module).

        Raises:
            NotFound: the order has no invoice yet.
        """
        where = f"Reference=={_quote(payment.id, ('payment', 'id'))}"
        api = yield from self._ready()
        response = yield api.request(
            "GET", "/Payments", params={"where": where}, operation="xero.find_payment"
        )
        found = response_json(response).get("Payments") or []
        if found:
            return _record("payment", found[0]["PaymentID"], payment.id, created=False)
        invoice = yield from self._find(api, payment.order_id)
        if invoice is None:
            raise NotFound(f"no invoice for order {payment.order_id!r}", vendor=VENDOR)
        day = local_date(payment.paid_at, self.config.timezone)
        response = yield api.request(
            "PUT",
            "/Payments",
            content=dumps(
                {
                    "Payments": [
                        build_payment(
                            payment,
                            str(invoice["InvoiceID"]),
                            self.config.payment_account_code,
                            day,
                        )
                    ]
                }
            ),
            headers={"Content-Type": "application/json"},
            operation="xero.create_payment",
            idempotency_key=self._key("create_payment", payment.id),
        )
        created = response_json(response)["Payments"][0]
        if created.get("HasValidationErrors") or created.get("ValidationErrors"):
            raise _item_error(created)
        if payment.fee is not None and payment.fee.is_positive and self.config.fee_account_code:
            yield api.request(
                "PUT",
                "/BankTransactions",
                content=dumps(
                    {"BankTransactions": [build_fee_transaction(payment, self.config, day)]}
                ),
                headers={"Content-Type": "application/json"},
                operation="xero.create_fee",
                idempotency_key=self._key("create_fee", payment.id),
            )
        return _record("payment", created["PaymentID"], payment.id)

    def record_refund(self, refund: Refund) -> Operation[LedgerRecord]:
        """A credit note for the refund, allocated to the order's invoice.

        Up to the invoice's amount due is allocated; any rest (the invoice was already
        paid) is paid out of ``payment_account_code`` as a refund on the credit note (a
        ``Payment`` against the ``CreditNote``), so no credit is left on the contact. A
        rerun after a crash finds the credit note by its number and finishes what is
        missing (the allocation, the refund payment) from its ``RemainingCredit``.

        Raises:
            NotFound: the order has no invoice.
        """
        where = f"CreditNoteNumber=={_quote(refund.id, ('refund', 'id'))}"
        api = yield from self._ready()
        response = yield api.request(
            "GET", "/CreditNotes", params={"where": where}, operation="xero.find_credit_note"
        )
        found = [
            n
            for n in response_json(response).get("CreditNotes") or ()
            if n.get("Status") not in ("DELETED", "VOIDED")
        ]
        currency = refund.amount.currency
        if found:
            note = found[0]
            remaining = _money(note.get("RemainingCredit"), currency)
            if not remaining.is_positive:
                return _record("credit_note", note["CreditNoteID"], refund.id, created=False)
        invoice = yield from self._find(api, refund.order_id)
        if invoice is None:
            raise NotFound(f"no invoice for order {refund.order_id!r}", vendor=VENDOR)
        day = local_date(refund.created_at, self.config.timezone)
        created = not found
        if found:
            # Created by an earlier run that stopped before allocating or paying out.
            allocated = bool(note.get("Allocations"))
        else:
            response = yield api.request(
                "PUT",
                "/CreditNotes",
                content=dumps(
                    {
                        "CreditNotes": [
                            build_credit_note(refund, invoice, self.config.sales_account_code, day)
                        ]
                    }
                ),
                headers={"Content-Type": "application/json"},
                operation="xero.create_credit_note",
                idempotency_key=self._key("create_credit_note", refund.id),
            )
            note = response_json(response)["CreditNotes"][0]
            if note.get("HasErrors"):
                raise _item_error(note)
            remaining = _money(note.get("RemainingCredit", note.get("Total")), currency)
            allocated = False
        note_id = str(note["CreditNoteID"])
        due = _money(invoice.get("AmountDue"), currency)
        allocate = Money.zero(currency)
        if not allocated and due.is_positive:
            allocate = min(due, remaining)
            yield api.request(
                "PUT",
                f"/CreditNotes/{note_id}/Allocations",
                content=dumps(
                    {
                        "Allocations": [
                            {
                                "Amount": allocate.amount,
                                "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                                "Date": day.isoformat(),
                            }
                        ]
                    }
                ),
                headers={"Content-Type": "application/json"},
                operation="xero.allocate_credit_note",
                idempotency_key=self._key("allocate_credit_note", refund.id),
            )
        rest = remaining - allocate
        if rest.is_positive:
            yield api.request(
                "PUT",
                "/Payments",
                content=dumps(
                    {
                        "Payments": [
                            {
                                "CreditNote": {"CreditNoteID": note_id},
                                "Account": {"Code": self.config.payment_account_code},
                                "Date": day.isoformat(),
                                "Amount": rest.amount,
                                "Reference": f"refund {refund.id}",
                            }
                        ]
                    }
                ),
                headers={"Content-Type": "application/json"},
                operation="xero.refund_credit_note",
                idempotency_key=self._key("refund_credit_note", refund.id),
            )
        return _record("credit_note", note_id, refund.id, created=created)

    # -- webhooks and reconciliation ---------------------------------------------------
    def read_webhook(
        self, request: WebhookRequest, options: Mapping[str, Any]
    ) -> list[LedgerChange]:
        """Verify and read a delivery as it arrived (``x-xero-signature``); see
        :meth:`parse_webhook`."""
        return self.parse_webhook(request.body, request.header("x-xero-signature"))

    def parse_webhook(self, body: bytes, signature: str | None) -> list[LedgerChange]:
        """Verify (``webhook_key``) and parse one delivery.

        Raises:
            ConfigurationError: no ``webhook_key`` configured.
            WebhookError: bad signature.
        """
        if self.config.webhook_key is None:
            raise ConfigurationError("webhook_key is not set", key="xero.webhook_key")
        return parse_webhook(body, signature, self.config.webhook_key)

    def fetch_invoice(self, invoice_id: str) -> Operation[PostedInvoice]:
        """Re-read one invoice by Xero id (after a webhook)."""
        api = yield from self._ready()
        response = yield api.request("GET", f"/Invoices/{invoice_id}", operation="xero.get_invoice")
        return parse_invoice(response_json(response)["Invoices"][0], created=False)

    def fetch_record(self, change: LedgerChange) -> Operation[PostedInvoice | LedgerRecord | None]:
        """Re-read what a webhook or a reconciliation pass reported changed.

        An invoice comes back as a :class:`PostedInvoice`; a contact, payment, credit
        note or item as a :class:`LedgerRecord` whose ``reference`` is ours as stored at
        Xero (``ContactNumber``, ``Reference``, ``CreditNoteNumber``, ``Code``). A
        deleted record, or one Xero no longer has, is ``None``.

        Raises:
            NotSupported: a kind we do not read back (e.g. ``subscription``).
        """
        if change.deleted:
            return None
        if change.kind == "invoice":
            try:
                return (yield from self.fetch_invoice(change.external_id))
            except NotFound:
                return None
        read = _READ_BACK.get(change.kind)
        if read is None:
            raise NotSupported(f"re-reading a {change.kind}", vendor=VENDOR)
        collection, id_field, reference_field = read
        api = yield from self._ready()
        try:
            response = yield api.request(
                "GET",
                f"/{collection}/{change.external_id}",
                operation=f"xero.get_{change.kind}",
            )
        except NotFound:
            return None
        rows = response_json(response).get(collection) or []
        if not rows:
            return None
        row = rows[0]
        return _record(
            change.kind, row[id_field], str(row.get(reference_field) or ""), created=False
        )

    def changes_since(self, checkpoint: str | None) -> Operation[LedgerChangePage]:
        """Invoices, contacts and credit notes changed since ``checkpoint`` (ISO time).

        Uses ``If-Modified-Since`` with paging; the new checkpoint is the latest
        ``UpdatedDateUTC`` seen (or ``checkpoint`` when nothing changed). Payments have
        no webhook at Xero, so this pass is how they are caught: they are listed too.
        """
        api = yield from self._ready()
        since = checkpoint or "1970-01-01T00:00:00"
        latest = parse_ms_date(since) or datetime(1970, 1, 1, tzinfo=UTC)
        changes: list[LedgerChange] = []
        for path, key, id_field, kind in _CHANGE_SOURCES:
            page = 1
            while True:
                response = yield api.request(
                    "GET",
                    path,
                    params={"page": str(page), "pageSize": "100"},
                    headers={"If-Modified-Since": since},
                    operation=f"xero.changes.{kind}",
                )
                rows = response_json(response).get(key) or []
                for row in rows:
                    when = parse_ms_date(row.get("UpdatedDateUTC"))
                    if when is not None and when > latest:
                        latest = when
                    changes.append(
                        LedgerChange(
                            provider=VENDOR,
                            tenant=self.tenant,
                            kind=kind,
                            external_id=str(row.get(id_field) or ""),
                            operation="update",
                            changed_at=when,
                            deleted=row.get("Status") in ("DELETED", "ARCHIVED"),
                        )
                    )
                if len(rows) < 100:
                    break
                page += 1
        new_checkpoint = latest.replace(tzinfo=None).isoformat(timespec="milliseconds")
        return LedgerChangePage(changes=tuple(changes), checkpoint=new_checkpoint)


_CHANGE_SOURCES = (
    ("/Invoices", "Invoices", "InvoiceID", "invoice"),
    ("/Contacts", "Contacts", "ContactID", "customer"),
    ("/CreditNotes", "CreditNotes", "CreditNoteID", "credit_note"),
    ("/Payments", "Payments", "PaymentID", "payment"),
)


def merge_lines(
    existing: Sequence[dict[str, Any]], changes: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every existing line (with its ``LineItemID``), with ``changes`` applied by id.

    Raises:
        InvalidInput: a change names a ``LineItemID`` the invoice does not have.
    """
    ids = {str(line.get("LineItemID")) for line in existing}
    unknown = [k for k in changes if k not in ids]
    if unknown:
        raise InvalidInput(
            "unknown invoice lines",
            errors=[FieldError(("lines", k), "no such LineItemID") for k in unknown],
            vendor=VENDOR,
        )
    out = []
    for line in existing:
        kept = {k: v for k, v in line.items() if k not in ("ValidationErrors",)}
        kept.update(changes.get(str(line.get("LineItemID")), {}))
        out.append(kept)
    return out


def _pick_connection(body: Any, name: str | None) -> str:
    for connection in body if isinstance(body, list) else ():
        if connection.get("tenantType") not in (None, "ORGANISATION"):
            continue
        if name is None or connection.get("tenantName") == name:
            return str(connection["tenantId"])
    raise ConfigurationError(
        "no Xero organisation is connected" + (f" named {name!r}" if name else ""),
        key="xero.tenant_id",
        vendor=VENDOR,
    )


_READ_BACK: dict[str, tuple[str, str, str]] = {
    # our kind -> (collection, id field, field holding our reference)
    "customer": ("Contacts", "ContactID", "ContactNumber"),
    "payment": ("Payments", "PaymentID", "Reference"),
    "credit_note": ("CreditNotes", "CreditNoteID", "CreditNoteNumber"),
    "item": ("Items", "ItemID", "Code"),
}


def _record(kind: str, external_id: Any, reference: str, *, created: bool = True) -> LedgerRecord:
    return LedgerRecord(
        provider=VENDOR,
        kind=kind,
        external_id=str(external_id),
        reference=reference,
        created=created,
    )


def _contact_record(data: dict[str, Any], reference: str, *, created: bool = True) -> LedgerRecord:
    return _record("customer", data["ContactID"], reference, created=created)


def _rejected(reference: str, error: InvalidInput) -> BatchItemResult:
    return BatchItemResult(
        reference=reference,
        status=BatchItemStatus.REJECTED,
        error_code=error.code,
        reason=str(error),
    )


def _item_error(data: dict[str, Any]) -> ValidationRejected:
    messages = _messages(data)
    return ValidationRejected(
        "; ".join(messages) or "Xero refused the record",
        errors=[FieldError((), m, code="xero_validation") for m in messages],
        vendor=VENDOR,
    )
