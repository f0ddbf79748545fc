"""QuickBooks Online Accounting API (v3) adapter: customers, items, invoices, payments,
credit memos, refund receipts, batch, webhooks and CDC, with ``minorversion`` pinned.

Every operation is a sans-I/O generator run by a driver. Writes carry a ``requestid``
derived from (tenant, operation, our reference), so QBO replays instead of acting twice,
and are preceded by a query by our reference. Updates are sparse and carry the current
``SyncToken``; a stale token (5010) is recovered by re-reading once. ``Fault`` bodies,
also inside HTTP 200 and as XML throttle answers, become typed errors.

Prices are VAT-inclusive (``GlobalTaxCalculation=TaxInclusive``): each line carries its
gross as ``TaxInclusiveAmt`` and its net as ``Amount``, and ``TxnTaxDetail.TotalTax`` is
the VAT we computed, so QBO's totals equal ours; any difference is reported on the
result (``PostedInvoice.total_mismatch``).

Stripe fees: the payment is recorded gross against the invoice, deposited to
``deposit_account_id`` (a Stripe clearing account), and the fee becomes a separate
``Purchase`` (an expense) paid from that account to ``fee_account_id``. The invoice is
fully paid and the clearing account's balance equals the payout.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Final

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
    InvoiceDraft,
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
from dixis_integrations.models.tax import VatCategory, VatTable, vat_from_gross
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.webhooks import WebhookRequest

__all__ = [
    "QBO_BATCH_LIMITS",
    "QBO_LIMITS",
    "IntuitDiscovery",
    "QuickBooks",
    "QuickBooksConfig",
    "build_customer",
    "build_invoice",
    "classify",
    "parse_fault",
    "parse_invoice",
    "parse_webhook",
    "verify_webhook",
]

VENDOR = "quickbooks"
_ITEM_LINE: Final = LineKind.ITEM  # read once: an enum member lookup costs a call
_SHIPPING_LINE: Final = LineKind.SHIPPING  # read once: an enum member lookup costs a call
BATCH_SIZE = 30
MINOR_VERSION = 75
DOC_NUMBER_MAX = 21
_STALE = "5010"
_DUPLICATE_NAME = "6240"
_DUPLICATE_DOC = "6140"
_REQUEST_ID_HEADERS = ("intuit_tid",)
_ZERO = Decimal(0)

QBO_LIMITS = Limits(windows=(Window(460, 60.0, "minute"),), concurrency=6)
"""Plain calls per realm. QBO allows 500 requests/min (batch calls included) and 10 in
progress per realm; ``/batch`` has its own budget below, so plain calls get the rest:
460/min and 6 at once (460 + 40 = 500, 6 + 4 = 10)."""

QBO_BATCH_LIMITS = Limits(windows=(Window(40, 60.0, "batch-minute"),), concurrency=4)
"""``/batch`` calls: 40 per minute per realm, and 4 of the realm's 10 concurrent slots."""


class IntuitDiscovery(BaseModel):
    """The endpoints of Intuit's OpenID discovery document (fetch once, then cache)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    issuer: str = ""
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None = None
    userinfo_endpoint: str | None = None


class QuickBooksConfig(BaseModel):
    """How to reach one QuickBooks Online company (realm).

    Attributes:
        realm_id: the company id (``realmId``).
        minor_version: pinned ``minorversion`` (75: anything lower is ignored by QBO).
        tax_codes: our VAT category -> the company's ``TaxCode`` id.
        income_account_id: the income account of items we create.
        deposit_account_id: where payments go (e.g. a Stripe clearing account).
        fee_account_id: expense account for processor fees; ``None`` skips fees.
        refund_account_id: the bank (or other current asset) account refunds beyond an
            invoice's balance are paid from (``RefundReceipt.DepositToAccountRef``);
            ``None`` uses ``deposit_account_id``.
        webhook_verifier_token: the app's Verifier Token (signs webhooks).

    Tokens: access tokens last 3600 s; the refresh token lasts 100 days on a rolling
    basis and rotates (always keep the latest: a replaced one dies after 24 h); tokens
    issued since Oct 2023 have a 5-year hard maximum. Endpoints come from the discovery
    document (:meth:`QuickBooks.discover`, cached, never fetched in a constructor).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "https://quickbooks.api.intuit.com"
    realm_id: str = Field(min_length=1)
    minor_version: int = Field(default=MINOR_VERSION, ge=MINOR_VERSION)
    discovery_url: str = "https://developer.intuit.com/.well-known/openid_configuration/"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scopes: tuple[str, ...] = ("com.intuit.quickbooks.accounting",)
    tax_codes: dict[VatCategory, str] = Field(default_factory=dict)
    verify_tax_codes: bool = True
    income_account_id: str = "1"
    deposit_account_id: str = "4"
    fee_account_id: str | None = None
    refund_account_id: str | None = None
    shipping_item_name: str = "Shipping"
    discount_item_name: str = "Discount"
    due_days: int = Field(default=0, ge=0)
    timezone: str = "Europe/Athens"
    webhook_verifier_token: SecretStr | None = None

    def oauth(self, discovery: IntuitDiscovery) -> OAuth2Config:
        """OAuth2 settings from the (cached) discovery document.

        Raises:
            ConfigurationError: when ``client_id`` is not set.
        """
        if not self.client_id:
            raise ConfigurationError("client_id is required", key="quickbooks.client_id")
        return OAuth2Config(
            provider=VENDOR,
            client_id=self.client_id,
            client_secret=self.client_secret,
            authorize_url=discovery.authorization_endpoint,
            token_url=discovery.token_endpoint,
            scopes=self.scopes,
            use_pkce=False,
        )


# -- pure builders -------------------------------------------------------------------------
def _ref(value: str, name: str | None = None) -> dict[str, str]:
    return {"value": value, "name": name} if name else {"value": value}


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def select(entity: str, field: str, values: Sequence[str], *, limit: int | None = None) -> str:
    """A QBO query: ``select * from Invoice where DocNumber in ('a', 'b')`` (values quoted)."""
    quoted = [_quote(v) for v in values]
    where = f"{field} = {quoted[0]}" if len(quoted) == 1 else f"{field} in ({', '.join(quoted)})"
    tail = f" maxresults {limit}" if limit else ""
    return f"select * from {entity} where {where}{tail}"  # noqa: S608 - values are quoted


def build_customer(customer: Customer, display_name: str) -> dict[str, Any]:
    """A ``Customer``; ``AcctNum`` carries our reference (``DisplayName`` must be unique)."""
    body: dict[str, Any] = {
        "DisplayName": display_name,
        "AcctNum": customer.id,
        "PrimaryEmailAddr": {"Address": customer.email},
    }
    if customer.first_name:
        body["GivenName"] = customer.first_name
    if customer.last_name:
        body["FamilyName"] = customer.last_name
    if customer.company:
        body["CompanyName"] = customer.company
    if customer.phone:
        body["Mobile"] = {"FreeFormNumber": customer.phone}
    address = customer.billing_address
    if address is not None:
        body["BillAddr"] = {
            "Line1": " ".join(p for p in (address.street, address.number) if p),
            "City": address.city,
            "PostalCode": address.postcode,
            "Country": address.country,
        }
    return body


def build_item(name: str, description: str, price: Money, income_account_id: str) -> dict[str, Any]:
    """A ``Service`` item named by our SKU, at a VAT-inclusive price."""
    return {
        "Name": name,
        "Sku": name,
        "Description": description,
        "Type": "Service",
        "UnitPrice": price.amount,
        "SalesTaxIncluded": True,
        "IncomeAccountRef": _ref(income_account_id),
    }


def build_line(line: InvoiceLine, *, item_id: str, tax_code: str) -> dict[str, Any]:
    """One ``SalesItemLineDetail`` line: gross as ``TaxInclusiveAmt``, net as ``Amount``."""
    detail: dict[str, Any] = {
        "ItemRef": {"value": item_id},
        "Qty": number(line.quantity),
        "UnitPrice": number(line.unit_amount),
        "TaxCodeRef": {"value": tax_code},
        "TaxInclusiveAmt": number(line.gross_amount),
    }
    if line.discount_amount:
        detail["DiscountAmt"] = number(line.discount_amount)
    return {
        "DetailType": "SalesItemLineDetail",
        "Amount": number(line.net_amount),
        "Description": line.description,
        "SalesItemLineDetail": detail,
    }


def _loc(line: InvoiceLine) -> tuple[str | int, ...]:
    if line.source_index is not None:
        return ("lines", line.source_index, "vat_category")
    return ("shipping_vat_category",)


def build_invoice(
    order: Order,
    lines: Sequence[InvoiceLine],
    config: QuickBooksConfig,
    codes: TaxCodeMap,
    *,
    tenant: str,
    customer_id: str,
    item_ids: dict[str, str],
) -> dict[str, Any]:
    """The ``Invoice`` for an order; ``DocNumber`` is our order number (or id).

    Each line as :func:`build_line` writes it (inlined here: this runs per invoice).
    """
    issued = local_date(order.created_at, config.timezone)
    mapped = codes.codes
    out_lines = []
    total_tax = _ZERO
    for line in lines:
        kind = line.kind
        if kind is _ITEM_LINE:
            item = item_ids[line.sku or ""]
        elif kind is _SHIPPING_LINE:
            item = item_ids[config.shipping_item_name]
        else:
            item = item_ids[config.discount_item_name]
        code = mapped.get(line.category)
        if code is None:  # refused, naming the line
            code = codes.code_for(line.category, tenant=tenant, vendor=VENDOR, loc=_loc(line))
        gross = line.gross_amount
        vat = line.vat_amount
        detail: dict[str, Any] = {
            "ItemRef": {"value": item},
            "Qty": number(line.quantity),
            "UnitPrice": number(line.unit_amount),
            "TaxCodeRef": {"value": code},
            "TaxInclusiveAmt": number(gross),
        }
        if line.discount_amount:
            detail["DiscountAmt"] = number(line.discount_amount)
        out_lines.append(
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": number(gross - vat),
                "Description": line.description,
                "SalesItemLineDetail": detail,
            }
        )
        total_tax += vat
    day = issued.isoformat()
    return {
        "CustomerRef": {"value": customer_id},
        "DocNumber": order.id,
        "TxnDate": day,
        "DueDate": (issued + timedelta(days=config.due_days)).isoformat()
        if config.due_days
        else day,
        "CurrencyRef": {"value": order.currency},
        "GlobalTaxCalculation": "TaxInclusive",
        "PrivateNote": f"order {order.id} ({order.number})"
        if order.number
        else f"order {order.id}",
        "Line": out_lines,
        "TxnTaxDetail": {"TotalTax": number(total_tax)},
    }


def build_payment(
    payment: Payment, customer_id: str, invoice_id: str, account_id: str, day: date
) -> dict[str, Any]:
    """A ``Payment`` applied to one invoice; ``PaymentRefNum`` is our payment id."""
    return {
        "CustomerRef": _ref(customer_id),
        "TotalAmt": payment.amount.amount,
        "TxnDate": day.isoformat(),
        "PaymentRefNum": payment.id[:DOC_NUMBER_MAX],
        "PrivateNote": f"payment {payment.id}",
        "DepositToAccountRef": _ref(account_id),
        "Line": [
            {
                "Amount": payment.amount.amount,
                "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}],
            }
        ],
    }


def build_fee_purchase(payment: Payment, config: QuickBooksConfig, day: date) -> dict[str, Any]:
    """The processor fee of a payment as a ``Purchase`` (expense) from the clearing account."""
    assert payment.fee is not None
    assert config.fee_account_id is not None
    payout = f", payout {payment.payout_id}" if payment.payout_id else ""
    return {
        "PaymentType": "Cash",
        "AccountRef": _ref(config.deposit_account_id),
        "TxnDate": day.isoformat(),
        "PrivateNote": f"fee {payment.id}{payout}",
        "GlobalTaxCalculation": "NotApplicable",
        "Line": [
            {
                "DetailType": "AccountBasedExpenseLineDetail",
                "Amount": payment.fee.amount,
                "Description": f"Processing fee for payment {payment.id}{payout}",
                "AccountBasedExpenseLineDetail": {"AccountRef": _ref(config.fee_account_id)},
            }
        ],
    }


def _refund_lines(
    refund: Refund, amount: Money, invoice: dict[str, Any], codes: TaxCodeMap
) -> list[dict[str, Any]]:
    """``amount`` of a refund as lines split across the invoice's tax codes and items by
    their VAT-inclusive amounts; each line's net (``Amount``) uses the rate of the
    category its tax code is mapped from.
    """
    weights: dict[tuple[str, str], int] = {}
    for line in invoice.get("Line") or ():
        detail = line.get("SalesItemLineDetail")
        if not detail:
            continue
        gross = Decimal(str(detail.get("TaxInclusiveAmt", line.get("Amount", 0))))
        key = (str(detail["TaxCodeRef"]["value"]), str(detail["ItemRef"]["value"]))
        weights[key] = weights.get(key, 0) + int(gross * 100)
    positive = {k: v for k, v in weights.items() if v > 0}
    if not positive:
        raise InvalidInput(
            "refund cannot be itemised",
            errors=[FieldError(("order_id",), "the invoice has no taxable lines")],
            vendor=VENDOR,
        )
    shares = amount.allocate(list(positive.values()))
    reason = f": {refund.reason}" if refund.reason else ""
    lines = []
    for (code, item), share in zip(positive, shares, strict=True):
        if share.is_zero:
            continue
        category = codes.category_of(code)
        rate = VatTable.greece().rate(category) if category is not None else Decimal(0)
        lines.append(
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": (share - vat_from_gross(share, rate)).amount,
                "Description": f"Refund {refund.id} of order {refund.order_id}{reason}",
                "SalesItemLineDetail": {
                    "ItemRef": _ref(item),
                    "TaxCodeRef": _ref(code),
                    "TaxInclusiveAmt": share.amount,
                },
            }
        )
    return lines


def build_credit_memo(
    refund: Refund,
    invoice: dict[str, Any],
    day: date,
    codes: TaxCodeMap,
    *,
    amount: Money | None = None,
) -> dict[str, Any]:
    """A ``CreditMemo`` for ``amount`` of a refund (default: all of it), split across
    the invoice's tax codes by amount. Each share is VAT-inclusive.
    """
    return {
        "CustomerRef": invoice["CustomerRef"],
        "DocNumber": refund.id[:DOC_NUMBER_MAX],
        "TxnDate": day.isoformat(),
        "GlobalTaxCalculation": "TaxInclusive",
        "PrivateNote": f"refund {refund.id} of order {refund.order_id}",
        "Line": _refund_lines(refund, amount or refund.amount, invoice, codes),
    }


def build_refund_receipt(
    refund: Refund,
    invoice: dict[str, Any],
    day: date,
    codes: TaxCodeMap,
    *,
    amount: Money,
    account_id: str,
) -> dict[str, Any]:
    """A ``RefundReceipt``: ``amount`` of a refund paid back out of ``account_id``
    (``DepositToAccountRef``, a bank or other current asset account, e.g. the Stripe
    clearing account), split across the invoice's tax codes like a credit memo.
    """
    return {
        "CustomerRef": invoice["CustomerRef"],
        "DocNumber": refund.id[:DOC_NUMBER_MAX],
        "TxnDate": day.isoformat(),
        "GlobalTaxCalculation": "TaxInclusive",
        "PrivateNote": f"refund {refund.id} of order {refund.order_id}",
        "DepositToAccountRef": _ref(account_id),
        "Line": _refund_lines(refund, amount, invoice, codes),
    }


# -- pure parsers and the error classifier ----------------------------------------------
def _money(value: Any, currency: str, ours: Money | None = None) -> Money:
    amount = value if isinstance(value, Decimal) else Decimal(str(value if value else 0))
    if ours is not None and ours.currency == currency and ours.amount == amount:
        return ours  # the common case: the vendor agrees with us, to the cent
    return Money(amount=amount, currency=currency)


def _is_zero(value: Any) -> bool:
    # A vendor amount compared with zero, without building (and validating) a Money.
    if not value:
        return True
    return not (value if isinstance(value, Decimal) else Decimal(str(value)))


def parse_invoice(
    data: dict[str, Any],
    *,
    reference: str | None = None,
    total: Money | None = None,
    tax: Money | None = None,
    created: bool = True,
) -> PostedInvoice:
    """A QBO ``Invoice`` as a :class:`PostedInvoice`; ``total``/``tax`` are ours."""
    get = data.get
    currency = str((get("CurrencyRef") or {}).get("value") or "EUR")
    vendor_total = _money(get("TotalAmt"), currency, total)
    vendor_tax = _money((get("TxnTaxDetail") or {}).get("TotalTax"), currency, tax)
    note = get("PrivateNote")
    voided = (note is not None and "Voided" in str(note)) or (
        vendor_total.is_zero and get("TxnStatus") == "Voided"
    )
    number = get("DocNumber")
    if voided:
        status = "VOIDED"
    else:
        status = "PAID" if _is_zero(get("Balance")) and not vendor_total.is_zero else "OPEN"
    # Built from values already valid (ours, or amounts compared with ours): no second
    # validation of the result, once per invoice on the bulk path.
    return trusted(
        PostedInvoice,
        {
            "provider": VENDOR,
            "external_id": str(data["Id"]),
            "reference": reference or str(number or ""),
            "number": None if number is None else str(number),
            "status": status,
            "total": total if total is not None else vendor_total,
            "vendor_total": vendor_total,
            "created": created,
            "tax": tax if tax is not None else vendor_tax,
            "vendor_tax": vendor_tax,
        },
        POSTED_FIELDS,
    )


def _fault_error(fault: dict[str, Any], *, status: int | None, rid: str | None) -> ProviderError:
    errors = fault.get("Error") or [{}]
    first = errors[0] if isinstance(errors, list) else errors
    code = str(first.get("code") or "")
    kind = str(fault.get("type") or "")
    text = (
        "; ".join(
            f"{e.get('Message') or ''}: {e.get('Detail') or ''}".strip(": ")
            for e in (errors if isinstance(errors, list) else [errors])
        )
        or kind
        or "QuickBooks fault"
    )
    common: dict[str, Any] = {
        "vendor": VENDOR,
        "request_id": rid,
        "status_code": status,
        "vendor_code": code or None,
    }
    numeric = int(code) if code.isdigit() else -1
    if code in (_STALE, _DUPLICATE_NAME, _DUPLICATE_DOC, "600"):
        return Conflict(text, **common)
    if code in ("3001", "003001") or "throttle" in text.lower():
        return RateLimited(
            text, retry_at=datetime.now(UTC) + timedelta(seconds=60), scope="minute", **common
        )
    if kind.upper() == "AUTHENTICATION" or code in ("3200", "003200", "120", "100"):
        return AuthError(text, **common)
    if kind == "AuthorizationFault" or code == "3100":
        return PermissionDenied(text, **common)
    if code == "610":
        return NotFound(text, **common)
    if kind == "SystemFault" or numeric >= 10000:
        return TransientError(text, **common)
    field_errors = [
        FieldError(
            (str(e.get("element") or "body"),),
            str(e.get("Message") or ""),
            code=str(e.get("code") or "qbo"),
        )
        for e in (errors if isinstance(errors, list) else [errors])
    ]
    return ValidationRejected(text, errors=field_errors, **common)


def parse_fault(body: Any) -> dict[str, Any] | None:
    """The ``Fault`` of a JSON body (top level or in ``IntuitResponse``), if any."""
    if not isinstance(body, dict):
        return None
    fault = body.get("Fault") or (body.get("IntuitResponse") or {}).get("Fault")
    return fault if isinstance(fault, dict) else None


def _xml_fault(content: bytes) -> dict[str, Any] | None:
    try:
        root = ET.fromstring(content)  # noqa: S314 - no entities are resolved by ET
    except ET.ParseError:
        return None
    for node in root.iter():
        if node.tag.rsplit("}", 1)[-1] == "Fault":
            errors = []
            for err in node:
                if err.tag.rsplit("}", 1)[-1] != "Error":
                    continue
                fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in err}
                errors.append({**fields, "code": err.get("code") or ""})
            return {"Error": errors, "type": node.get("type") or ""}
    return None


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """QBO failures as typed errors: ``Fault`` bodies (also in HTTP 200), XML throttles.

    Batch answers are not classified as a whole: their per-item faults are read by
    :meth:`QuickBooks.post_invoices`.
    """
    status = response.status_code
    rid = request_id_of(response, _REQUEST_ID_HEADERS)
    content = response.content
    stripped = content.lstrip()[:1]
    if stripped == b"<":
        fault = _xml_fault(content)
        if status == 429 or (fault and "throttl" in str(fault).lower()):
            return RateLimited(
                "QuickBooks throttled the request",
                retry_at=parse_retry_after(response.headers.get("retry-after"))
                or datetime.now(UTC) + timedelta(seconds=60),
                vendor=VENDOR,
                request_id=rid,
                status_code=status,
                vendor_code="003001",
                scope="minute",
            )
        if fault is not None:
            return _fault_error(fault, status=status, rid=rid)
        return (
            default_classify(response, endpoint)
            if status >= 400
            else TransientError(
                "QuickBooks answered with XML where JSON was asked", vendor=VENDOR, request_id=rid
            )
        )
    try:
        body = response_json(response) if content else {}
    except MalformedBody:
        if status >= 400:
            return default_classify(response, endpoint)
        return TransientError(
            "QuickBooks answered with a malformed body", vendor=VENDOR, request_id=rid
        )
    if status == 429:
        return RateLimited(
            "QuickBooks throttled the request",
            retry_at=parse_retry_after(response.headers.get("retry-after"))
            or datetime.now(UTC) + timedelta(seconds=60),
            vendor=VENDOR,
            request_id=rid,
            status_code=status,
            vendor_code="003001",
            scope="minute",
        )
    fault = parse_fault(body)
    if fault is not None:
        return _fault_error(fault, status=status, rid=rid)
    if status >= 400:
        return default_classify(response, endpoint)
    return None


# -- webhooks ------------------------------------------------------------------------------
_ENTITY_KIND = {
    "invoice": "invoice",
    "customer": "customer",
    "payment": "payment",
    "creditmemo": "credit_note",
    "refundreceipt": "refund_receipt",
    "item": "item",
}


def verify_webhook(body: bytes, signature: str | None, verifier_token: SecretStr | str) -> bool:
    """Whether ``intuit-signature`` is right for the raw ``body`` (constant time)."""
    token = (
        verifier_token.get_secret_value()
        if isinstance(verifier_token, SecretStr)
        else verifier_token
    )
    return signature_matches(token.encode(), body, signature)


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def parse_webhook(
    body: bytes, signature: str | None, verifier_token: SecretStr | str
) -> list[LedgerChange]:
    """Verify and parse a QBO webhook: the legacy ``eventNotifications`` payload or the
    CloudEvents array (``type: qbo.invoice.created.v1``).

    Raises:
        WebhookError: bad signature or an unreadable body.
    """
    if not verify_webhook(body, signature, verifier_token):
        raise WebhookError("intuit-signature does not match", vendor=VENDOR)
    try:
        data = response_json(httpx.Response(200, content=body))
    except MalformedBody:
        raise WebhookError("webhook body is not JSON", vendor=VENDOR) from None
    changes: list[LedgerChange] = []
    if isinstance(data, list):  # CloudEvents
        for event in data:
            parts = str(event.get("type") or "").split(".")
            entity = parts[1] if len(parts) > 2 else ""
            operation = parts[2] if len(parts) > 2 else ""
            changes.append(
                LedgerChange(
                    provider=VENDOR,
                    tenant=str(event.get("intuitaccountid") or ""),
                    kind=_ENTITY_KIND.get(entity.lower(), entity.lower()),
                    external_id=str(event.get("intuitentityid") or ""),
                    operation=operation,
                    changed_at=_when(event.get("time")),
                    event_id=str(event.get("id") or "") or None,
                    deleted=operation == "deleted",
                )
            )
        return changes
    for note in data.get("eventNotifications") or ():
        realm = str(note.get("realmId") or "")
        for entity in (note.get("dataChangeEvent") or {}).get("entities") or ():
            name = str(entity.get("name") or "")
            operation = str(entity.get("operation") or "").lower()
            changes.append(
                LedgerChange(
                    provider=VENDOR,
                    tenant=realm,
                    kind=_ENTITY_KIND.get(name.lower(), name.lower()),
                    external_id=str(entity.get("id") or ""),
                    operation=operation,
                    changed_at=_when(entity.get("lastUpdated")),
                    event_id=f"{realm}:{name}:{entity.get('id')}:{entity.get('lastUpdated')}",
                    deleted=operation in ("delete", "merge"),
                )
            )
    return changes


# -- the adapter ---------------------------------------------------------------------------
class QuickBooks:
    """QuickBooks Online as an :class:`~dixis_integrations.protocols.AccountingProvider`.

    ``tenant`` is our name for the company (budgets and keys are per tenant). No call
    is made here: the first write checks the tax codes against the company.
    """

    name = VENDOR
    needs_oauth = True  # calls carry OAuth2 tokens only
    # the company, named only in the redirect after consent
    oauth_redirect_fields: ClassVar[Mapping[str, str]] = {"realmId": "realm_id"}
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
        config: QuickBooksConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.config = config
        self.tenant = tenant
        self.codes = TaxCodeMap(codes=dict(config.tax_codes))
        for secret in (config.client_secret, config.webhook_verifier_token):
            if secret is not None:
                register_secret(secret.get_secret_value())
        base = f"{config.base_url.rstrip('/')}/v3/company/{config.realm_id}"
        common: dict[str, Any] = {
            "vendor": VENDOR,
            "base_url": base,
            "tenant": tenant,
            "auth": auth,
            "classify": classify,
            "headers": {"Accept": "application/json"},
            "request_id_headers": _REQUEST_ID_HEADERS,
        }
        self._api = Endpoint(limits=QBO_LIMITS.scaled(time_scale), **common)
        # Batch calls have their own 40/min budget; the realm's 500/min and 10 concurrent
        # are split between the two budgets (see QBO_LIMITS), so together they never
        # exceed what the realm allows.
        self._batch = Endpoint(
            limits=QBO_BATCH_LIMITS.scaled(time_scale), **{**common, "tenant": f"{tenant}:batch"}
        )
        self._codes_checked = not config.verify_tax_codes
        self._plan = tax_plan(self.codes)
        self._items: dict[str, str] = {}
        self._customers: dict[str, str] = {}
        self._discovery: IntuitDiscovery | None = None

    def __repr__(self) -> str:
        return f"QuickBooks(tenant={self.tenant!r}, realm={self.config.realm_id!r})"

    @property
    def _params(self) -> dict[str, str]:
        return {"minorversion": str(self.config.minor_version)}

    def _key(self, operation: str, reference: str) -> str:
        return idempotency_key(self.tenant, f"quickbooks.{operation}", reference)

    def _write(
        self,
        path: str,
        body: dict[str, Any],
        *,
        operation: str,
        key: str,
        params: dict[str, str] | None = None,
        endpoint: Endpoint | None = None,
    ) -> httpx.Request:
        content = dumps(body)
        key = _with_payload(key, content)
        return (endpoint or self._api).request(
            "POST",
            path,
            params={**self._params, **(params or {}), "requestid": key},
            content=content,
            headers={"Content-Type": "application/json"},
            operation=f"quickbooks.{operation}",
            idempotency_key=key,
        )

    def _query(self, text: str, operation: str) -> httpx.Request:
        return self._api.request(
            "POST",
            "/query",
            params=self._params,
            content=text.encode(),
            headers={"Content-Type": "application/text"},
            operation=f"quickbooks.{operation}",
            idempotent=True,
        )

    # -- set-up --------------------------------------------------------------------------
    def discover(self) -> Operation[IntuitDiscovery]:
        """Intuit's discovery document, fetched on first use and cached on the adapter."""
        if self._discovery is None:
            # A public document on another host: no bearer token goes with it.
            public = replace(self._api, auth=None)
            response = yield public.request(
                "GET", self.config.discovery_url, operation="quickbooks.discovery"
            )
            self._discovery = IntuitDiscovery.model_validate(response_json(response))
        return self._discovery

    def connect(self) -> Operation[None]:
        """Check the tax codes against the company's ``TaxCode``/``TaxRate`` lists.

        Raises:
            ConfigurationError: a code missing, inactive or at another rate.
        """
        if self._codes_checked:
            return
        response = yield self._batch_request(
            [
                {"bId": "codes", "Query": "select * from TaxCode"},
                {"bId": "rates", "Query": "select * from TaxRate"},
            ],
            operation="tax_codes",
            idempotent=True,
        )
        answers = {
            str(item.get("bId")): item
            for item in response_json(response).get("BatchItemResponse") or ()
        }
        for item in answers.values():
            fault = parse_fault(item)
            if fault is not None:
                raise _fault_error(fault, status=200, rid=None)
        codes = (answers.get("codes", {}).get("QueryResponse") or {}).get("TaxCode") or []
        rates = (answers.get("rates", {}).get("QueryResponse") or {}).get("TaxRate") or []
        check_tenant_codes(
            self.codes, parse_tax_codes(codes, rates), tenant=self.tenant, vendor=VENDOR
        )
        self._codes_checked = True

    def check(self) -> Operation[HealthStatus]:
        """One cheap call (``CompanyInfo``)."""
        try:
            response = yield self._api.request(
                "GET",
                f"/companyinfo/{self.config.realm_id}",
                params=self._params,
                operation="quickbooks.company_info",
            )
        except ProviderError as exc:
            return HealthStatus(name=VENDOR, ok=False, detail=str(exc))
        info = response_json(response).get("CompanyInfo") or {}
        return HealthStatus(name=VENDOR, ok=True, detail=str(info.get("CompanyName") or ""))

    def _batch_request(
        self,
        items: list[dict[str, Any]],
        *,
        operation: str,
        key: str | None = None,
        idempotent: bool | None = None,
        content: bytes | None = None,
    ) -> httpx.Request:
        params = dict(self._params)
        # ``content``, when given, is the body already written (``items`` is not read).
        if content is None:
            content = dumps({"BatchItemRequest": items})
        if key is not None:
            key = _with_payload(key, content)
            params["requestid"] = key
        return self._batch.request(
            "POST",
            "/batch",
            params=params,
            content=content,
            headers={"Content-Type": "application/json"},
            operation=f"quickbooks.batch.{operation}",
            idempotency_key=key,
            idempotent=idempotent,
        )

    # -- customers and items -----------------------------------------------------------
    def upsert_customer(self, customer: Customer) -> Operation[LedgerRecord]:
        """Find the customer by ``AcctNum`` (our id) or create them.

        ``AcctNum`` cannot be queried: candidates are read by ``DisplayName`` (ours and
        the suffixed one), then by ``PrimaryEmailAddr`` for a customer renamed in
        QuickBooks, and matched on ``AcctNum``.

        ``DisplayName`` must be unique at QBO: on 6240 the name is retried once as
        ``"<name> (<our id>)"``.
        """
        name = check_customer(customer, vendor=VENDOR)
        names = (name, f"{name} ({customer.id})")
        response = yield self._query(
            select("Customer", "DisplayName", names),
            "find_customer",
        )
        rows = (response_json(response).get("QueryResponse") or {}).get("Customer") or []
        for row in rows:
            if row.get("AcctNum") == customer.id:
                self._customers[customer.id] = str(row["Id"])
                return _record("customer", row["Id"], customer.id, created=False)
        # Renamed in QuickBooks since we created it? QBO cannot query AcctNum, but it
        # can query the e-mail address we stored with it: look there for our reference.
        response = yield self._query(
            select("Customer", "PrimaryEmailAddr", [str(customer.email)]),
            "find_customer_by_email",
        )
        rows = (response_json(response).get("QueryResponse") or {}).get("Customer") or []
        for row in rows:
            if row.get("AcctNum") == customer.id:
                self._customers[customer.id] = str(row["Id"])
                return _record("customer", row["Id"], customer.id, created=False)
        for attempt, shown in enumerate(names):
            try:
                response = yield self._write(
                    "/customer",
                    build_customer(customer, shown),
                    operation="create_customer",
                    key=self._key(f"create_customer.{attempt}", customer.id),
                )
            except Conflict as exc:
                if exc.vendor_code != _DUPLICATE_NAME or attempt:
                    raise
                continue
            created = response_json(response)["Customer"]
            self._customers[customer.id] = str(created["Id"])
            return _record("customer", created["Id"], customer.id)
        raise AssertionError("unreachable")  # pragma: no cover

    def upsert_products(self, products: Sequence[Product]) -> Operation[list[LedgerRecord]]:
        """Find or create ``Service`` items named by SKU: one query, at most one batch."""
        ids = yield from self._ensure_items([(p.sku, p.name, p.price) for p in products])
        return [_record("item", ids[p.sku][0], p.sku, created=ids[p.sku][1]) for p in products]

    def _ensure_items(
        self, wanted: Iterable[tuple[str, str, Money]]
    ) -> Operation[dict[str, tuple[str, bool]]]:
        wanted = list(wanted)
        out: dict[str, tuple[str, bool]] = {}
        unknown = [w for w in wanted if w[0] not in self._items]
        if unknown:
            names = sorted({w[0] for w in unknown})
            response = yield self._query(
                select("Item", "Name", names, limit=1000),
                "find_items",
            )
            for row in (response_json(response).get("QueryResponse") or {}).get("Item") or ():
                self._items[str(row["Name"])] = str(row["Id"])
        missing: dict[str, tuple[str, str, Money]] = {}
        for sku, name, price in wanted:
            if sku not in self._items:
                missing.setdefault(sku, (sku, name, price))
        rows = list(missing.values())
        for start in range(0, len(rows), BATCH_SIZE):
            chunk = rows[start : start + BATCH_SIZE]
            refs = ",".join(r[0] for r in chunk)
            response = yield self._batch_request(
                [
                    {
                        "bId": str(n),
                        "operation": "create",
                        "Item": build_item(sku, name, price, self.config.income_account_id),
                    }
                    for n, (sku, name, price) in enumerate(chunk)
                ],
                operation="create_items",
                key=self._key("create_items", refs),
            )
            for item in response_json(response).get("BatchItemResponse") or ():
                fault = parse_fault(item)
                if fault is not None:
                    raise _fault_error(fault, status=200, rid=None)
                created = item["Item"]
                self._items[str(created["Name"])] = str(created["Id"])
                out[str(created["Name"])] = (str(created["Id"]), True)
        for sku, _, _ in wanted:
            out.setdefault(sku, (self._items[sku], False))
        return out

    def _references(
        self, customers: Sequence[Customer], orders: Sequence[Order]
    ) -> Operation[tuple[dict[str, str], dict[str, str]]]:
        """Tax codes, customers and items for ``orders`` in as few calls as possible.

        One batch of queries (tax codes and rates until checked, customers by
        ``DisplayName`` and by ``PrimaryEmailAddr`` (found again if renamed in QuickBooks:
        ``AcctNum``, where our id is, cannot be queried), items by ``Name``), then
        batches of creates for what is missing; a customer whose name is taken (6240) is
        created again as ``"<name> (<id>)"``.
        Returns (our customer id -> QBO id, SKU or item name -> QBO id).
        """
        wanted: dict[str, tuple[str, str, Money]] = {}
        currencies: set[str] = set()
        for order in orders:
            for line in order.lines:
                if line.sku not in wanted:
                    wanted[line.sku] = (line.sku, line.name, line.unit_price)
            if order.currency not in currencies:
                currencies.add(order.currency)
                zero = Money.zero(order.currency)
                for name, text in (
                    (self.config.shipping_item_name, "Shipping"),
                    (self.config.discount_item_name, "Order discount"),
                ):
                    wanted.setdefault(name, (name, text, zero))
        names: dict[str, tuple[Customer, str]] = {}
        for customer in customers:
            if customer.id not in self._customers and customer.id not in names:
                names[customer.id] = (customer, check_customer(customer, vendor=VENDOR))
        items = sorted(sku for sku in wanted if sku not in self._items)
        queries: list[dict[str, Any]] = []
        if not self._codes_checked:
            queries += [
                {"bId": "codes", "Query": "select * from TaxCode"},
                {"bId": "rates", "Query": "select * from TaxRate"},
            ]
        shown = sorted({n for c, name in names.values() for n in (name, f"{name} ({c.id})")})
        for n, start in enumerate(range(0, len(shown), 300)):
            queries.append(
                {
                    "bId": f"c{n}",
                    "Query": select(
                        "Customer", "DisplayName", shown[start : start + 300], limit=1000
                    ),
                }
            )
        # Customers renamed in QuickBooks are found by the e-mail stored with them.
        emails = sorted({str(c.email) for c, _ in names.values()})
        for n, start in enumerate(range(0, len(emails), 300)):
            queries.append(
                {
                    "bId": f"e{n}",
                    "Query": select(
                        "Customer", "PrimaryEmailAddr", emails[start : start + 300], limit=1000
                    ),
                }
            )
        for n, start in enumerate(range(0, len(items), 300)):
            queries.append(
                {
                    "bId": f"i{n}",
                    "Query": select("Item", "Name", items[start : start + 300], limit=1000),
                }
            )
        codes: list[dict[str, Any]] = []
        rates: list[dict[str, Any]] = []
        for start in range(0, len(queries), BATCH_SIZE):
            response = yield self._batch_request(
                queries[start : start + BATCH_SIZE], operation="lookup", idempotent=True
            )
            for answer in response_json(response).get("BatchItemResponse") or ():
                fault = parse_fault(answer)
                if fault is not None:
                    raise _fault_error(fault, status=200, rid=None)
                bid = str(answer.get("bId"))
                rows = answer.get("QueryResponse") or {}
                if bid == "codes":
                    codes = list(rows.get("TaxCode") or [])
                elif bid == "rates":
                    rates = list(rows.get("TaxRate") or [])
                elif bid.startswith(("c", "e")):
                    for row in rows.get("Customer") or ():
                        if row.get("AcctNum") in names:
                            self._customers[str(row["AcctNum"])] = str(row["Id"])
                else:
                    for row in rows.get("Item") or ():
                        self._items[str(row["Name"])] = str(row["Id"])
        if not self._codes_checked:
            check_tenant_codes(
                self.codes, parse_tax_codes(codes, rates), tenant=self.tenant, vendor=VENDOR
            )
            self._codes_checked = True
        creates: list[tuple[str, str, dict[str, Any]]] = [
            ("Customer", ref, build_customer(customer, name))
            for ref, (customer, name) in names.items()
            if ref not in self._customers
        ]
        creates += [
            (
                "Item",
                sku,
                build_item(sku, wanted[sku][1], wanted[sku][2], self.config.income_account_id),
            )
            for sku in items
            if sku not in self._items
        ]
        attempt = 0
        while creates:
            again: list[tuple[str, str, dict[str, Any]]] = []
            taken: list[str] = []
            taken_items: list[str] = []
            for start in range(0, len(creates), BATCH_SIZE):
                chunk = creates[start : start + BATCH_SIZE]
                response = yield self._batch_request(
                    [
                        {"bId": str(n), "operation": "create", kind: body}
                        for n, (kind, _, body) in enumerate(chunk)
                    ],
                    operation="create_references",
                    key=self._key(
                        f"create_references.{attempt}",
                        ",".join(f"{kind}:{key}" for kind, key, _ in chunk),
                    ),
                )
                answers = {
                    str(a.get("bId")): a
                    for a in response_json(response).get("BatchItemResponse") or ()
                }
                for n, (kind, key, _) in enumerate(chunk):
                    answer = answers.get(str(n), {})
                    fault = parse_fault(answer)
                    if fault is None and kind in answer:
                        target = self._customers if kind == "Customer" else self._items
                        target[key] = str(answer[kind]["Id"])
                        continue
                    error = _fault_error(fault or {}, status=200, rid=None)
                    if kind == "Customer" and error.vendor_code == _DUPLICATE_NAME and not attempt:
                        taken.append(key)
                        continue
                    if kind == "Item" and error.vendor_code == _DUPLICATE_NAME:
                        taken_items.append(key)  # created meanwhile (another worker)
                        continue
                    raise error
            if taken_items:
                response = yield self._query(
                    select("Item", "Name", taken_items, limit=1000), "find_items"
                )
                for row in (response_json(response).get("QueryResponse") or {}).get("Item") or ():
                    self._items[str(row["Name"])] = str(row["Id"])
                missing = [sku for sku in taken_items if sku not in self._items]
                if missing:
                    raise Conflict(
                        f"items named {missing} exist but could not be read back",
                        vendor=VENDOR,
                        vendor_code=_DUPLICATE_NAME,
                    )
            if taken:
                # Someone (another worker) may have created this very customer meanwhile:
                # look again by name and our AcctNum before taking a suffixed name.
                shown_again = [names[key][1] for key in taken]
                response = yield self._query(
                    select("Customer", "DisplayName", shown_again, limit=1000), "find_customers"
                )
                for row in (response_json(response).get("QueryResponse") or {}).get(
                    "Customer"
                ) or ():
                    if row.get("AcctNum") in names:
                        self._customers[str(row["AcctNum"])] = str(row["Id"])
                for key in taken:
                    if key not in self._customers:
                        customer, name = names[key]
                        again.append(
                            ("Customer", key, build_customer(customer, f"{name} ({customer.id})"))
                        )
            creates = again
            attempt += 1
        return (
            {c.id: self._customers[c.id] for c in customers},
            {sku: self._items[sku] for sku in wanted},
        )

    def prepare(self, orders: Sequence[Order]) -> Operation[None]:
        """Check the tax codes and find or create the customers and items of ``orders``
        (one batch of queries, then batches of creates): a warm-up before a bulk push.
        """
        yield from self._references([o.customer for o in orders], orders)

    # -- invoices ----------------------------------------------------------------------
    def _check(self, order: Order) -> InvoiceDraft:
        return check_order(
            order,
            self.codes,
            tenant=self.tenant,
            vendor=VENDOR,
            number=order.id,
            number_max_length=DOC_NUMBER_MAX,
            number_field="id",
        )

    def _plainly_valid(self, order: Order) -> bool:
        """Whether ``order`` passes every check of :meth:`_check`, as far as can be told
        without drafting it (a stated total needs the draft). Orders it is unsure of go
        through :meth:`_check` first, which reports every problem.
        """
        if order.stated_total is not None or len(order.id) > DOC_NUMBER_MAX:
            return False
        codes = self.codes.codes
        for line in order.lines:
            if line.vat_category not in codes:
                return False
        if order.shipping_fee.amount and order.shipping_vat_category not in codes:
            return False
        customer = order.customer
        return bool(customer.first_name or customer.last_name or customer.company)

    def _lean_invoice_text(
        self,
        order: Order,
        lines: list[LeanLine],
        customer_id: str,
        item_ids: dict[str, str],
        refs: dict[str, str],
    ) -> str:
        """:func:`build_invoice`'s body from :func:`lean_lines`' tuples (checked by then),
        written straight as JSON text: the very text :func:`dumps_marked` writes for that
        body (a test holds the two equal). The bulk path, one pass per invoice, with no
        dictionary per invoice or line and no second pass over the text.

        ``refs`` (id -> its reference object as JSON text) is shared by one push's
        bodies: items, tax codes, customers and currencies are written once each.
        """
        config = self.config
        out_lines = []
        total_tax = _ZERO
        for kind, description, sku, quantity, unit, discount, gross, vat, code in lines:
            if kind is _ITEM_LINE:
                item = item_ids[sku or ""]
            elif kind is _SHIPPING_LINE:
                item = item_ids[config.shipping_item_name]
            else:
                item = item_ids[config.discount_item_name]
            line = (
                f'{{"DetailType":"SalesItemLineDetail","Amount":{plain(gross - vat)},'
                f'"Description":{quoted(description)},"SalesItemLineDetail":{{"ItemRef":'
                f"{refs.get(item) or _ref_text(refs, item)},"
                f'"Qty":{plain(quantity)},"UnitPrice":{plain(unit)},'
                f'"TaxCodeRef":{refs.get(code) or _ref_text(refs, code)},'
                f'"TaxInclusiveAmt":{plain(gross)}'
            )
            if discount:
                line += f',"DiscountAmt":{plain(discount)}'
            out_lines.append(line + "}}")
            total_tax += vat
        issued = local_date(order.created_at, config.timezone)
        day = issued.isoformat()
        due = (issued + timedelta(days=config.due_days)).isoformat() if config.due_days else day
        currency = order.currency
        note = f"order {order.id} ({order.number})" if order.number else f"order {order.id}"
        return (
            f'{{"CustomerRef":{refs.get(customer_id) or _ref_text(refs, customer_id)},'
            f'"DocNumber":{quoted(order.id)},"TxnDate":"{day}","DueDate":"{due}",'
            f'"CurrencyRef":{refs.get(currency) or _ref_text(refs, currency)},'
            f'"GlobalTaxCalculation":"TaxInclusive","PrivateNote":{quoted(note)},'
            f'"Line":[{",".join(out_lines)}],"TxnTaxDetail":{{"TotalTax":{plain(total_tax)}}}}}'
        )

    def _find(self, reference: str) -> Operation[dict[str, Any] | None]:
        response = yield self._query(select("Invoice", "DocNumber", [reference]), "find_invoice")
        rows = (response_json(response).get("QueryResponse") or {}).get("Invoice") or []
        return rows[0] if rows else None

    def post_invoice(self, order: Order) -> Operation[PostedInvoice]:
        """Post the order (or return the invoice already posted for it).

        Raises:
            InvalidInput: before any call: lines that do not add up, an unmapped VAT
                category, a customer without a name, a document number over 21 chars.
        """
        totals = self._check(order)
        number = order.id
        existing = yield from self._find(number)
        if existing is not None:
            return parse_invoice(
                existing, reference=order.id, total=totals.gross, tax=totals.vat, created=False
            )
        customers, items = yield from self._references([order.customer], [order])
        body = build_invoice(
            order,
            totals.lines,
            self.config,
            self.codes,
            tenant=self.tenant,
            customer_id=customers[order.customer.id],
            item_ids=items,
        )
        try:
            response = yield self._write(
                "/invoice",
                body,
                operation="create_invoice",
                key=self._key("create_invoice", order.id),
            )
        except Conflict as exc:
            if exc.vendor_code != _DUPLICATE_DOC:
                raise
            existing = yield from self._find(number)
            if existing is None:
                raise
            return parse_invoice(
                existing, reference=order.id, total=totals.gross, tax=totals.vat, created=False
            )
        return parse_invoice(
            response_json(response)["Invoice"],
            reference=order.id,
            total=totals.gross,
            tax=totals.vat,
        )

    def post_invoices(self, orders: Sequence[Order]) -> Operation[list[BatchItemResult]]:
        """Push many orders through ``/batch``, 30 per call, ``bId`` = position.

        One result per order in input order: created, already existed (6140 duplicate
        ``DocNumber``, read back by one query per chunk), or rejected with QBO's fault
        (or ours, for input refused before sending; nothing is sent for those).
        """
        results: list[BatchItemResult | None] = [None] * len(orders)
        ready: list[tuple[int, Order]] = []
        for index, order in enumerate(orders):
            if not self._plainly_valid(order):
                try:  # the careful check: every problem reported at once
                    self._check(order)
                except InvalidInput as exc:
                    results[index] = _rejected(order.id, exc)
                    continue
            ready.append((index, order))
        if ready:
            customers, items = yield from self._references(
                [o.customer for _, o in ready], [o for _, o in ready]
            )
            plan = self._plan
            refs: dict[str, str] = {}  # shared by this push's bodies
            for start in range(0, len(ready), BATCH_SIZE):
                # Each chunk's invoices are drafted and written just before its call and
                # dropped once encoded: a large push never holds every body at once.
                chunk: list[tuple[int, Order, Decimal, Decimal]] = []
                requests: list[str] = []
                for index, order in ready[start : start + BATCH_SIZE]:
                    customer_id = customers[order.customer.id]
                    lean = lean_lines(order, plan)
                    if lean is not None:
                        lines, gross, vat = lean
                        text = self._lean_invoice_text(order, lines, customer_id, items, refs)
                    else:  # an order the lean path does not cover, drafted line by line
                        try:
                            draft = self._check(order)
                        except InvalidInput as exc:  # checked above; kept safe
                            results[index] = _rejected(order.id, exc)
                            continue
                        gross, vat = draft.gross_amount, draft.vat_amount
                        body = build_invoice(
                            order, draft.lines, self.config, self.codes, tenant=self.tenant,
                            customer_id=customer_id, item_ids=items,
                        )  # fmt: skip
                        text = dumps_marked(body).decode()
                    requests.append(
                        f'{{"bId":"{len(chunk)}","operation":"create","Invoice":{text}}}'
                    )
                    chunk.append((index, order, gross, vat))
                if not chunk:
                    continue
                request = self._batch_request(
                    [],
                    operation="create_invoices",
                    content=_batch_content(requests),
                    key=self._key("create_invoices", ",".join(o.id for _, o, _, _ in chunk)),
                )
                requests = []
                response = yield request
                answers = {
                    str(item.get("bId")): item
                    for item in take_json(response).get("BatchItemResponse") or ()
                }
                duplicates: dict[str, tuple[int, Money, Money]] = {}
                for n, (index, order, gross, vat) in enumerate(chunk):
                    answer = answers.get(str(n), {})
                    fault = parse_fault(answer)
                    currency = order.currency
                    total, tax = money(gross, currency), money(vat, currency)
                    if fault is None and "Invoice" in answer:
                        invoice = parse_invoice(
                            answer["Invoice"], reference=order.id, total=total, tax=tax
                        )
                        results[index] = created_item(order.id, invoice)
                        continue
                    error = _fault_error(fault or {}, status=200, rid=None)
                    if error.vendor_code == _DUPLICATE_DOC:
                        duplicates[order.id] = (index, total, tax)
                        continue
                    results[index] = BatchItemResult(
                        reference=order.id,
                        status=BatchItemStatus.REJECTED,
                        error_code=error.vendor_code or error.code,
                        reason=error.message,
                    )
                if duplicates:
                    response = yield self._query(
                        select("Invoice", "DocNumber", list(duplicates)),
                        "find_invoices",
                    )
                    rows = (take_json(response).get("QueryResponse") or {}).get("Invoice")
                    by_number = {str(r.get("DocNumber")): r for r in rows or ()}
                    for number, (index, total, tax) in duplicates.items():
                        row = by_number.get(number)
                        found = (
                            parse_invoice(
                                row, reference=number, total=total, tax=tax, created=False
                            )
                            if row
                            else None
                        )
                        results[index] = BatchItemResult(
                            reference=number,
                            status=BatchItemStatus.ALREADY_EXISTED,
                            external_id=found.external_id if found else None,
                            invoice=found,
                        )
        return [r for r in results if r is not None]

    def find_invoice(self, reference: str) -> Operation[PostedInvoice | None]:
        """The invoice whose ``DocNumber`` is our order reference, if any."""
        row = yield from self._find(reference)
        return None if row is None else parse_invoice(row, created=False)

    def sparse_update(
        self, entity: str, entity_id: str, fields: dict[str, Any], *, attempts: int = 3
    ) -> Operation[dict[str, Any]]:
        """A sparse update with the current ``SyncToken``; on 5010 re-read and retry.

        ``entity`` is the QBO resource (``"invoice"``, ``"customer"``...). Sending
        ``Line`` replaces every line (QBO's rule), so leave it out unless you mean it.
        """
        for attempt in range(attempts):
            response = yield self._api.request(
                "GET",
                f"/{entity}/{entity_id}",
                params=self._params,
                operation=f"quickbooks.read_{entity}",
            )
            current = next(iter(v for k, v in response_json(response).items() if k != "time"))
            body = {"Id": entity_id, "SyncToken": current["SyncToken"], "sparse": True, **fields}
            try:
                response = yield self._write(
                    f"/{entity}",
                    body,
                    operation=f"update_{entity}",
                    key=self._key(f"update_{entity}", f"{entity_id}@{current['SyncToken']}"),
                )
            except Conflict as exc:
                if exc.vendor_code != _STALE or attempt == attempts - 1:
                    raise
                continue
            return dict(next(iter(v for k, v in response_json(response).items() if k != "time")))
        raise AssertionError("unreachable")  # pragma: no cover

    def void_invoice(self, reference: str) -> Operation[PostedInvoice]:
        """Void the order's invoice (``operation=void`` with the current SyncToken).

        Raises:
            NotFound: no invoice for ``reference``.
        """
        row = yield from self._find(reference)
        if row is None:
            raise NotFound(f"no invoice for {reference!r}", vendor=VENDOR)
        for attempt in range(3):
            try:
                response = yield self._write(
                    "/invoice",
                    {"Id": row["Id"], "SyncToken": row["SyncToken"]},
                    params={"operation": "void"},
                    operation="void_invoice",
                    key=self._key("void_invoice", f"{reference}@{row['SyncToken']}"),
                )
            except Conflict as exc:
                if exc.vendor_code != _STALE or attempt == 2:
                    raise
                response = yield self._api.request(
                    "GET",
                    f"/invoice/{row['Id']}",
                    params=self._params,
                    operation="quickbooks.read_invoice",
                )
                row = response_json(response)["Invoice"]
                continue
            return parse_invoice(response_json(response)["Invoice"], created=False)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- payments and refunds ----------------------------------------------------------
    def record_payment(self, payment: Payment) -> Operation[LedgerRecord]:
        """Record the payment against the order's invoice (and its fee: see the module).

        Raises:
            NotFound: the order has no invoice.
        """
        ref = payment.id[:DOC_NUMBER_MAX]
        response = yield self._query(select("Payment", "PaymentRefNum", [ref]), "find_payment")
        rows = (response_json(response).get("QueryResponse") or {}).get("Payment") or []
        mine = [r for r in rows if f"payment {payment.id}" == r.get("PrivateNote")]
        if mine:
            return _record("payment", mine[0]["Id"], payment.id, created=False)
        invoice = yield from self._find_for_order(payment.order_id)
        day = local_date(payment.paid_at, self.config.timezone)
        response = yield self._write(
            "/payment",
            build_payment(
                payment,
                str(invoice["CustomerRef"]["value"]),
                str(invoice["Id"]),
                self.config.deposit_account_id,
                day,
            ),
            operation="create_payment",
            key=self._key("create_payment", payment.id),
        )
        created = response_json(response)["Payment"]
        if payment.fee is not None and payment.fee.is_positive and self.config.fee_account_id:
            yield self._write(
                "/purchase",
                build_fee_purchase(payment, self.config, day),
                operation="create_fee",
                key=self._key("create_fee", payment.id),
            )
        return _record("payment", created["Id"], payment.id)

    def _find_for_order(self, order_id: str) -> Operation[dict[str, Any]]:
        row = yield from self._find(order_id)
        if row is None:
            raise NotFound(f"no invoice for order {order_id!r}", vendor=VENDOR)
        return row

    def record_refund(self, refund: Refund) -> Operation[LedgerRecord]:
        """Record the refund against the order's invoice.

        Up to the invoice's open balance, the refund is a ``CreditMemo`` applied to the
        invoice (a zero ``Payment`` linking the two): the customer owes that much less.
        What goes beyond the balance (the invoice was paid) is money paid back: a
        ``RefundReceipt`` out of ``refund_account_id`` (by default
        ``deposit_account_id``, where the payments went). A refund of an open invoice is
        a credit memo alone, a refund of a paid invoice a refund receipt alone, and a
        refund larger than a partly paid invoice's balance both: a credit memo for the
        balance and a refund receipt for the rest. The result is the refund receipt when
        money went out, else the credit memo.

        Both carry the refund id as ``DocNumber``; each is looked up before it is
        created and written with a ``requestid`` derived from the refund, so a rerun
        after a crash finishes what is missing (the credit applied, the receipt) and
        creates nothing twice. The split is decided once, when the credit memo is
        created: a rerun pays out what the existing credit memo does not cover.

        Raises:
            NotFound: the order has no invoice.
            InvalidInput: the refund is larger than the invoice's total.
        """
        number = refund.id[:DOC_NUMBER_MAX]
        receipts = yield from self._by_doc_number("RefundReceipt", number, refund)
        if receipts:  # created last: the refund is complete
            return _record("refund_receipt", receipts[0]["Id"], refund.id, created=False)
        memos = yield from self._by_doc_number("CreditMemo", number, refund)
        invoice = yield from self._find_for_order(refund.order_id)
        currency = refund.amount.currency
        total = _money(invoice.get("TotalAmt"), currency)
        if refund.amount > total:
            raise InvalidInput(
                "refund is larger than the invoice",
                errors=[
                    FieldError(
                        ("amount",),
                        f"{refund.amount} is more than the invoice's total {total}",
                        code="too_large",
                    )
                ],
                vendor=VENDOR,
            )
        day = local_date(refund.created_at, self.config.timezone)
        memo: dict[str, Any] | None = None
        created = False
        if memos:
            memo = dict(memos[0])
            credited = _money(memo.get("TotalAmt"), currency)
            # Created by an earlier run; apply it if that run stopped before applying.
            if not any(link.get("TxnType") == "Payment" for link in memo.get("LinkedTxn") or ()):
                yield from self._apply_credit(invoice, memo, refund, day)
        else:
            balance = _money(invoice.get("Balance"), currency)
            credited = min(balance, refund.amount) if balance.is_positive else Money.zero(currency)
            if credited.is_positive:
                response = yield self._write(
                    "/creditmemo",
                    build_credit_memo(refund, invoice, day, self.codes, amount=credited),
                    operation="create_credit_memo",
                    key=self._key("create_credit_memo", refund.id),
                )
                memo = response_json(response)["CreditMemo"]
                created = True
                yield from self._apply_credit(invoice, memo, refund, day)
        rest = refund.amount - credited
        if rest.is_positive:
            response = yield self._write(
                "/refundreceipt",
                build_refund_receipt(
                    refund,
                    invoice,
                    day,
                    self.codes,
                    amount=rest,
                    account_id=self.config.refund_account_id or self.config.deposit_account_id,
                ),
                operation="create_refund_receipt",
                key=self._key("create_refund_receipt", refund.id),
            )
            receipt = response_json(response)["RefundReceipt"]
            return _record("refund_receipt", receipt["Id"], refund.id)
        assert memo is not None  # credited == refund.amount > 0
        return _record("credit_note", memo["Id"], refund.id, created=created)

    def _by_doc_number(
        self, entity: str, number: str, refund: Refund
    ) -> Operation[list[dict[str, Any]]]:
        response = yield self._query(
            select(entity, "DocNumber", [number]), f"find_{entity.lower()}"
        )
        rows = (response_json(response).get("QueryResponse") or {}).get(entity) or []
        note = f"refund {refund.id} of order {refund.order_id}"
        # Ours by the note we wrote (DocNumber is cut to 21 characters); rows written
        # without it (by hand) still count when the DocNumber is the whole refund id.
        return [r for r in rows if r.get("PrivateNote") == note or number == refund.id]

    def _apply_credit(
        self, invoice: dict[str, Any], memo: dict[str, Any], refund: Refund, day: date
    ) -> Operation[None]:
        balance = _money(invoice.get("Balance"), refund.amount.currency)
        credit = _money(memo.get("RemainingCredit", memo.get("TotalAmt")), refund.amount.currency)
        applied = min(balance, refund.amount, credit)
        if not applied.is_positive:
            return
        yield self._write(
            "/payment",
            {
                "CustomerRef": invoice["CustomerRef"],
                "TotalAmt": Decimal(0),
                "TxnDate": day.isoformat(),
                "PrivateNote": f"credit {refund.id}",
                "Line": [
                    {
                        "Amount": applied.amount,
                        "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                    },
                    {
                        "Amount": applied.amount,
                        "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}],
                    },
                ],
            },
            operation="apply_credit_memo",
            key=self._key("apply_credit_memo", refund.id),
        )

    # -- webhooks and CDC --------------------------------------------------------------
    def read_webhook(
        self, request: WebhookRequest, options: Mapping[str, Any]
    ) -> list[LedgerChange]:
        """Verify and read a delivery as it arrived (``intuit-signature``); see
        :meth:`parse_webhook`."""
        return self.parse_webhook(request.body, request.header("intuit-signature"))

    def parse_webhook(self, body: bytes, signature: str | None) -> list[LedgerChange]:
        """Verify (Verifier Token) and parse one delivery, legacy or CloudEvents.

        Raises:
            ConfigurationError: no ``webhook_verifier_token`` configured.
            WebhookError: bad signature.
        """
        if self.config.webhook_verifier_token is None:
            raise ConfigurationError(
                "webhook_verifier_token is not set", key="quickbooks.webhook_verifier_token"
            )
        return parse_webhook(body, signature, self.config.webhook_verifier_token)

    def fetch_invoice(self, invoice_id: str) -> Operation[PostedInvoice]:
        """Re-read one invoice by QBO id (after a webhook)."""
        response = yield self._api.request(
            "GET",
            f"/invoice/{invoice_id}",
            params=self._params,
            operation="quickbooks.read_invoice",
        )
        return parse_invoice(response_json(response)["Invoice"], created=False)

    def fetch_record(self, change: LedgerChange) -> Operation[PostedInvoice | LedgerRecord | None]:
        """Re-read what a webhook or a CDC pass reported changed.

        An invoice comes back as a :class:`PostedInvoice`; a customer, payment, credit
        memo or item as a :class:`LedgerRecord` whose ``reference`` is ours as stored
        at QBO (``AcctNum``, ``PaymentRefNum``, ``DocNumber``, ``Name``). A deleted
        record, or one QBO no longer has, is ``None``.

        Raises:
            NotSupported: a kind we do not read back.
        """
        if change.deleted:
            return None
        read = _READ_BACK.get(change.kind)
        if read is None:
            raise NotSupported(f"re-reading a {change.kind}", vendor=VENDOR)
        path, entity, reference_field = read
        try:
            response = yield self._api.request(
                "GET",
                f"/{path}/{change.external_id}",
                params=self._params,
                operation=f"quickbooks.read_{path}",
            )
        except NotFound:
            return None
        row = response_json(response).get(entity)
        if not row:
            return None
        if change.kind == "invoice":
            return parse_invoice(row, created=False)
        return _record(change.kind, row["Id"], str(row.get(reference_field) or ""), created=False)

    def changes_since(self, checkpoint: str | None) -> Operation[LedgerChangePage]:
        """Changed invoices, customers, payments, credit memos and items, by CDC.

        ``checkpoint`` is an ISO time (default: just inside CDC's 30-day look-back); the new
        checkpoint is the latest ``LastUpdatedTime`` seen (or the old one).
        """
        since = _when(checkpoint) or datetime.now(UTC) - timedelta(days=30) + timedelta(minutes=5)
        response = yield self._api.request(
            "GET",
            "/cdc",
            params={
                **self._params,
                "entities": "Invoice,Customer,Payment,CreditMemo,RefundReceipt,Item",
                "changedSince": since.isoformat(timespec="milliseconds"),
            },
            operation="quickbooks.cdc",
        )
        latest = since
        changes: list[LedgerChange] = []
        for block in response_json(response).get("CDCResponse") or ():
            for query in block.get("QueryResponse") or ():
                for entity, rows in query.items():
                    if not isinstance(rows, list):
                        continue
                    for row in rows:
                        when = _when((row.get("MetaData") or {}).get("LastUpdatedTime"))
                        if when is not None and when > latest:
                            latest = when
                        deleted = row.get("status") == "Deleted"
                        changes.append(
                            LedgerChange(
                                provider=VENDOR,
                                tenant=self.tenant,
                                kind=_ENTITY_KIND.get(entity.lower(), entity.lower()),
                                external_id=str(row.get("Id") or ""),
                                operation="delete" if deleted else "update",
                                changed_at=when,
                                deleted=deleted,
                            )
                        )
        return LedgerChangePage(
            changes=tuple(changes), checkpoint=latest.isoformat(timespec="milliseconds")
        )


def parse_tax_codes(
    codes: Sequence[dict[str, Any]], rates: Sequence[dict[str, Any]]
) -> list[TenantTaxCode]:
    """``TaxCode`` rows with their sales rate (the sum of their sales ``TaxRate``s)."""
    rate_by_id = {str(r.get("Id")): Decimal(str(r.get("RateValue") or 0)) for r in rates}
    out = []
    for code in codes:
        details = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
        rate = sum(
            (
                rate_by_id.get(str((d.get("TaxRateRef") or {}).get("value")), Decimal(0))
                for d in details
            ),
            Decimal(0),
        )
        out.append(
            TenantTaxCode(
                code=str(code.get("Id")),
                rate=rate,
                name=str(code.get("Name") or ""),
                active=bool(code.get("Active", True)),
            )
        )
    return out


def _ref_text(refs: dict[str, str], value: str) -> str:
    ref = refs[value] = f'{{"value":{quoted(value)}}}'
    return ref


def _batch_content(requests: list[str]) -> bytes:
    """The ``/batch`` body of items written as JSON text: the same bytes
    :func:`dumps_marked` writes for them."""
    text = '{"BatchItemRequest":[' + ",".join(requests) + "]}"
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: refused as dumps_marked refuses it
        return dumps_marked(text)


def _rejected(reference: str, error: InvalidInput) -> BatchItemResult:
    return BatchItemResult(
        reference=reference,
        status=BatchItemStatus.REJECTED,
        error_code=error.code,
        reason=str(error),
    )


def _with_payload(key: str, content: bytes) -> str:
    """The write's key bound to its exact payload: the same write gets the same
    ``requestid`` on every retry (QBO replays it), while another payload under the same
    reference (two workers creating one item from different orders) gets its own, since
    QBO answers a reused ``requestid`` with the original response whatever the body: a
    different write under it would silently get another write's answer.
    """
    return idempotency_key(key, "payload", hashlib.sha256(content).hexdigest())


_READ_BACK: dict[str, tuple[str, str, str]] = {
    # our kind -> (path, entity, field holding our reference)
    "invoice": ("invoice", "Invoice", "DocNumber"),
    "customer": ("customer", "Customer", "AcctNum"),
    "payment": ("payment", "Payment", "PaymentRefNum"),
    "credit_note": ("creditmemo", "CreditMemo", "DocNumber"),
    "refund_receipt": ("refundreceipt", "RefundReceipt", "DocNumber"),
    "item": ("item", "Item", "Name"),
}


def _record(kind: str, external_id: Any, reference: str, *, created: bool = True) -> LedgerRecord:
    return LedgerRecord(
        provider=VENDOR,
        kind=kind,
        external_id=str(external_id),
        reference=reference,
        created=created,
    )
