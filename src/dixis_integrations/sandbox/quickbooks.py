"""An emulator of the QuickBooks Online Accounting API v3, written from Intuit's docs and XSDs.

Companies (realms) under ``/v3/company/{realmId}``, each reachable only with its own
OAuth2 token (a mounted :class:`OAuthServer`; the discovery document is served too),
customers, items, tax codes and rates, invoices (``TaxInclusive``/``TaxExcluded``),
payments, credit memos, refund receipts, purchases, queries, ``/batch`` (30 items, ``bId``), CDC,
``requestid`` replay, ``SyncToken`` checks (5010), duplicate names (6240) and document
numbers (6140), ``Fault`` bodies (also inside HTTP 200 on request), the documented limits
(500/min and 40 batch/min per realm) answered with Intuit's XML throttle body, and signed
webhooks in the legacy and the CloudEvents shapes. It never imports adapter code.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import httpx

from dixis_integrations.sandbox.kit import (
    Emulator,
    Fault,
    FixedWindow,
    json_bytes_exact,
    route,
    sign_hmac_sha256,
)
from dixis_integrations.sandbox.oauth import OAuthServer, SandboxClient

__all__ = ["QBOCompany", "QuickBooksSandbox"]

_CENT = Decimal("0.01")
_REALM = r"/v3/company/(?P<realm>\d+)"
_ENTITIES = {
    "invoice": "Invoice",
    "customer": "Customer",
    "item": "Item",
    "payment": "Payment",
    "creditmemo": "CreditMemo",
    "refundreceipt": "RefundReceipt",
    "purchase": "Purchase",
    "taxcode": "TaxCode",
    "taxrate": "TaxRate",
}
_ENTITY = (
    r"(?P<entity>invoice|customer|item|payment|creditmemo|refundreceipt|purchase|taxcode|taxrate)"
)
_QUERY = re.compile(
    r"\s*select\s+\*\s+from\s+(?P<entity>\w+)(?:\s+where\s+(?P<where>.*?))?"
    r"(?:\s+orderby\s+(?P<order>[\w.]+(?:\s+(?:asc|desc))?))?"
    r"(?:\s+startposition\s+(?P<start>\d+))?(?:\s+maxresults\s+(?P<max>\d+))?\s*",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION = re.compile(
    r"\s*(?P<field>[\w.]+)\s*(?:(?P<op>=|<|>|<=|>=)\s*'(?P<value>(?:[^'\\]|\\.)*)'"
    r"|in\s*\((?P<values>.*?)\))\s*",
    re.IGNORECASE | re.DOTALL,
)
_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")
# Element and attribute names of each entity, as Intuit's XSDs (Finance.xsd,
# IntuitNamesTypes.xsd, IntuitBaseTypes.xsd) define them: anything else is error 2010.
_ALLOWED = {
    "Invoice": frozenset(
        {
            "ARAccountRef",
            "AllowIPNPayment",
            "AllowOnlineACHPayment",
            "AllowOnlineCreditCardPayment",
            "AllowOnlinePayPalPayment",
            "AllowOnlinePayment",
            "ApplyTaxAfterDiscount",
            "AttachableRef",
            "AutoDocNumber",
            "AutoPayEligible",
            "Balance",
            "BillAddr",
            "BillEmail",
            "BillEmailBcc",
            "BillEmailCc",
            "CfdiUse",
            "CheckPayment",
            "ClassRef",
            "ConvenienceFeeDetail",
            "CreditCardPayment",
            "CurrencyRef",
            "CustomField",
            "CustomerMemo",
            "CustomerRef",
            "DeliveryInfo",
            "DepartmentRef",
            "Deposit",
            "DepositToAccountRef",
            "DiscountAmt",
            "DiscountRate",
            "DocNumber",
            "DueDate",
            "ECloudStatusTimeStamp",
            "EInvoiceStatus",
            "EmailStatus",
            "ExchangeRate",
            "Exportation",
            "FOB",
            "FinanceCharge",
            "FinancingProductType",
            "FreeFormAddress",
            "GlobalInfo",
            "GlobalTaxCalculation",
            "GovtTxnRefIdentifier",
            "GratuityEnabled",
            "HomeBalance",
            "HomeTotalAmt",
            "HomeTotalCostAmount",
            "Id",
            "InvoiceEx",
            "InvoiceLink",
            "InvoiceLinkExpiryDate",
            "InvoiceLinkSecurityCode",
            "LessCIS",
            "Line",
            "LinkedTxn",
            "MetaData",
            "PONumber",
            "PaymentDetailsMessage",
            "PaymentMethodRef",
            "PaymentRefNum",
            "PaymentType",
            "PrintStatus",
            "PrivateNote",
            "ProjectRef",
            "RecurDataRef",
            "RecurringInfo",
            "RemitToRef",
            "SalesRepRef",
            "SalesTermRef",
            "SchedulePayEligible",
            "ScheduledPaymentId",
            "ShipAddr",
            "ShipDate",
            "ShipFromAddr",
            "ShipMethodRef",
            "ShippingTaxIncludedInTotalTax",
            "SubscriptionPaymentsSetting",
            "SyncToken",
            "Tag",
            "TaxExemptionRef",
            "TaxFormNum",
            "TaxFormType",
            "TemplateRef",
            "TotalAmt",
            "TotalCostAmount",
            "TrackingNum",
            "TransactionLocationType",
            "TxnApprovalInfo",
            "TxnDate",
            "TxnSource",
            "TxnStatus",
            "TxnTaxDetail",
            "callToAction",
            "domain",
            "invoiceStatus",
            "invoiceStatusLog",
            "sparse",
            "status",
        }
    ),
    "Customer": frozenset(
        {
            "ARAccountRef",
            "AcctNum",
            "Active",
            "AltContactName",
            "AlternatePhone",
            "AttachableRef",
            "Balance",
            "BalanceWithJobs",
            "BillAddr",
            "BillWithParent",
            "BusinessNumber",
            "CCDetail",
            "ClientCompanyId",
            "ClientEntityId",
            "CompanyName",
            "ContactName",
            "CreditLimit",
            "CurrencyRef",
            "CustomField",
            "CustomerEx",
            "CustomerTypeRef",
            "DefaultTaxCodeRef",
            "DisplayName",
            "FamilyName",
            "Fax",
            "FullyQualifiedName",
            "GSTIN",
            "GSTRegistrationType",
            "GivenName",
            "Id",
            "IntuitId",
            "IsCISContractor",
            "IsProject",
            "Job",
            "JobInfo",
            "Level",
            "MetaData",
            "MiddleName",
            "Mobile",
            "Notes",
            "OpenBalanceDate",
            "Organization",
            "OtherAddr",
            "OtherContactInfo",
            "OverDueBalance",
            "ParentRef",
            "PaymentMethodRef",
            "PreferredDeliveryMethod",
            "PriceLevelRef",
            "PrimaryEmailAddr",
            "PrimaryPhone",
            "PrimaryTaxIdentifier",
            "PrintOnCheckName",
            "ResaleNum",
            "RootCustomerRef",
            "SalesRepRef",
            "SalesTermRef",
            "SecondaryTaxIdentifier",
            "ShipAddr",
            "Source",
            "Suffix",
            "SyncToken",
            "TDSEnabled",
            "TaxExemptionReasonId",
            "TaxGroupCodeRef",
            "TaxRateRef",
            "TaxRegime",
            "Taxable",
            "Title",
            "TotalExpense",
            "TotalRevenue",
            "UserId",
            "V4IDPseudonym",
            "WebAddr",
            "domain",
            "sparse",
            "status",
        }
    ),
    "Item": frozenset(
        {
            "AbatementRate",
            "Active",
            "AssetAccountRef",
            "AttachableRef",
            "AvgCost",
            "BuildPoint",
            "COGSAccountRef",
            "ClassRef",
            "CustomField",
            "DeferredRevenue",
            "DepositToAccountRef",
            "Description",
            "ExpenseAccountRef",
            "FullyQualifiedName",
            "Id",
            "IncomeAccountRef",
            "InvStartDate",
            "ItemAssemblyDetail",
            "ItemCategoryType",
            "ItemEx",
            "ItemGroupDetail",
            "Level",
            "ManPartNum",
            "MetaData",
            "Name",
            "ParentRef",
            "PaymentMethodRef",
            "PercentBased",
            "PrefVendorRef",
            "PrintGroupedItems",
            "PurchaseCost",
            "PurchaseDesc",
            "PurchaseTaxCodeRef",
            "PurchaseTaxIncluded",
            "QtyOnHand",
            "QtyOnPurchaseOrder",
            "QtyOnSalesOrder",
            "RatePercent",
            "ReorderPoint",
            "ReverseChargeRate",
            "SalesTaxCodeRef",
            "SalesTaxIncluded",
            "ServiceType",
            "Sku",
            "Source",
            "SpecialItem",
            "SpecialItemType",
            "SubItem",
            "SyncToken",
            "TaxClassificationRef",
            "Taxable",
            "TrackQtyOnHand",
            "Type",
            "UOMSetRef",
            "UQCDisplayText",
            "UQCId",
            "UnitPrice",
            "domain",
            "sparse",
            "status",
        }
    ),
    "Payment": frozenset(
        {
            "ARAccountRef",
            "AttachableRef",
            "CheckPayment",
            "CreditCardPayment",
            "CurrencyRef",
            "CustomField",
            "CustomerRef",
            "DepartmentRef",
            "DepositToAccountRef",
            "DocNumber",
            "ExchangeRate",
            "HomeTotalCostAmount",
            "Id",
            "Line",
            "LinkedTxn",
            "MetaData",
            "PaymentEx",
            "PaymentMethodRef",
            "PaymentRefNum",
            "PaymentType",
            "PrivateNote",
            "ProcessPayment",
            "ProjectRef",
            "RecurDataRef",
            "RecurringInfo",
            "RemitToRef",
            "SyncToken",
            "Tag",
            "TaxFormNum",
            "TaxFormType",
            "TotalAmt",
            "TotalCostAmount",
            "TransactionLocationType",
            "TxnApprovalInfo",
            "TxnDate",
            "TxnSource",
            "TxnStatus",
            "TxnTaxDetail",
            "UnappliedAmt",
            "domain",
            "sparse",
            "status",
        }
    ),
    "CreditMemo": frozenset(
        {
            "ARAccountRef",
            "ApplyTaxAfterDiscount",
            "AttachableRef",
            "AutoDocNumber",
            "Balance",
            "BillAddr",
            "BillEmail",
            "BillEmailBcc",
            "BillEmailCc",
            "CheckPayment",
            "ClassRef",
            "CreditCardPayment",
            "CreditMemoEx",
            "CurrencyRef",
            "CustomField",
            "CustomerMemo",
            "CustomerRef",
            "DeliveryInfo",
            "DepartmentRef",
            "DepositToAccountRef",
            "DiscountAmt",
            "DiscountRate",
            "DocNumber",
            "DueDate",
            "EmailStatus",
            "ExchangeRate",
            "FOB",
            "FinanceCharge",
            "FreeFormAddress",
            "GlobalTaxCalculation",
            "GovtTxnRefIdentifier",
            "HomeBalance",
            "HomeTotalAmt",
            "HomeTotalCostAmount",
            "Id",
            "InvoiceRef",
            "Line",
            "LinkedTxn",
            "MetaData",
            "PONumber",
            "PaymentMethodRef",
            "PaymentRefNum",
            "PaymentType",
            "PrintStatus",
            "PrivateNote",
            "ProjectRef",
            "RecurDataRef",
            "RecurringInfo",
            "RemainingCredit",
            "RemitToRef",
            "SalesRepRef",
            "SalesTermRef",
            "ShipAddr",
            "ShipDate",
            "ShipFromAddr",
            "ShipMethodRef",
            "ShippingTaxIncludedInTotalTax",
            "SyncToken",
            "Tag",
            "TaxExemptionRef",
            "TaxFormNum",
            "TaxFormType",
            "TemplateRef",
            "TotalAmt",
            "TotalCostAmount",
            "TrackingNum",
            "TransactionLocationType",
            "TxnApprovalInfo",
            "TxnDate",
            "TxnSource",
            "TxnStatus",
            "TxnTaxDetail",
            "domain",
            "sparse",
            "status",
        }
    ),
    "Purchase": frozenset(
        {
            "AccountRef",
            "AttachableRef",
            "CheckPayment",
            "Credit",
            "CreditCardPayment",
            "CurrencyRef",
            "CustomField",
            "DepartmentRef",
            "DocNumber",
            "EntityRef",
            "ExchangeRate",
            "GlobalTaxCalculation",
            "HomeTotalCostAmount",
            "Id",
            "IncludeInAnnualTPAR",
            "LessCIS",
            "Line",
            "LinkedTxn",
            "Memo",
            "MetaData",
            "PaymentMethodRef",
            "PaymentRefNum",
            "PaymentType",
            "PrintStatus",
            "PrivateNote",
            "ProjectRef",
            "PurchaseEx",
            "RecurDataRef",
            "RecurringInfo",
            "RemitToAddr",
            "SyncToken",
            "Tag",
            "TaxFormNum",
            "TaxFormType",
            "TotalAmt",
            "TotalCostAmount",
            "TransactionLocationType",
            "TxnApprovalInfo",
            "TxnDate",
            "TxnSource",
            "TxnStatus",
            "TxnTaxDetail",
            "domain",
            "sparse",
            "status",
        }
    ),
}
# RefundReceipt (Finance.xsd) extends SalesTransaction as CreditMemo does, with
# RemainingCredit and its own extension element instead of InvoiceRef and CreditMemoEx.
_ALLOWED["RefundReceipt"] = (_ALLOWED["CreditMemo"] - {"InvoiceRef", "CreditMemoEx"}) | {
    "RefundReceiptEx"
}


_dumps = json_bytes_exact  # amounts as exact JSON numbers


def _now() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="milliseconds")


def _respond(status: int, body: dict[str, Any], tid: str | None = None) -> httpx.Response:
    body.setdefault("time", _now())
    return httpx.Response(
        status,
        content=_dumps(body),
        headers={
            "content-type": "application/json;charset=UTF-8",
            "intuit_tid": tid or str(uuid.uuid4()),
        },
    )


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, ROUND_HALF_UP)


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise QBOFault("2170", "Invalid Number", f"{value!r} is not a number") from None


class QBOFault(Exception):
    """One QBO error: code, message, detail, element, and the Fault type."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: str = "",
        element: str = "",
        kind: str = "ValidationFault",
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.element = element
        self.kind = kind
        self.status = status

    def body(self) -> dict[str, Any]:
        return {
            "Fault": {
                "Error": [
                    {
                        "Message": self.message,
                        "Detail": self.detail,
                        "code": self.code,
                        "element": self.element,
                    }
                ],
                "type": self.kind,
            }
        }


@dataclass
class QBOCompany:
    """One company's books, in memory: entities by type then by Id."""

    realm_id: str
    name: str
    entities: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    next_id: int = 100
    replays: dict[str, tuple[str, int, bytes, float]] = field(default_factory=dict)
    deleted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def table(self, entity: str) -> dict[str, dict[str, Any]]:
        return self.entities.setdefault(entity, {})

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)


def _greek_tax(company: QBOCompany) -> None:
    rates = [
        ("24", "24"),
        ("13", "13"),
        ("6", "6"),
        ("17", "17"),
        ("9", "9"),
        ("4", "4"),
        ("0", "0"),
    ]
    for n, (name, value) in enumerate(rates, start=1):
        company.table("TaxRate")[str(n)] = {
            "Id": str(n),
            "Name": f"ΦΠΑ {name}%",
            "RateValue": Decimal(value),
            "Active": True,
            "SyncToken": "0",
        }
    codes = [
        ("ΦΠΑ 24%", "1"),
        ("ΦΠΑ 13%", "2"),
        ("ΦΠΑ 6%", "3"),
        ("ΦΠΑ νησιών 17%", "4"),
        ("ΦΠΑ νησιών 9%", "5"),
        ("ΦΠΑ νησιών 4%", "6"),
        ("Μηδενικός 0%", "7"),
        ("Απαλλαγή", "7"),
    ]
    for n, (name, rate_id) in enumerate(codes, start=1):
        company.table("TaxCode")[str(n)] = {
            "Id": str(n),
            "Name": name,
            "Active": True,
            "Taxable": n < 8,
            "SyncToken": "0",
            "SalesTaxRateList": {"TaxRateDetail": [{"TaxRateRef": {"value": rate_id}}]},
            "PurchaseTaxRateList": {"TaxRateDetail": []},
        }
    for acct_id, name, kind in (
        ("1", "Sales", "Income"),
        ("4", "Stripe clearing", "Bank"),
        ("5", "Bank fees", "Expense"),
    ):
        company.table("Account")[acct_id] = {
            "Id": acct_id,
            "Name": name,
            "AccountType": kind,
            "Active": True,
            "SyncToken": "0",
        }


class QuickBooksSandbox(Emulator):
    """QuickBooks Online in memory (see the module docstring)."""

    name = "quickbooks"

    def __init__(
        self,
        *,
        companies: int = 2,
        minute_limit: int = 500,
        batch_minute_limit: int = 40,
        concurrency_limit: int = 10,
        latency: float = 0.0,
        verifier_token: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.latency = latency
        self.client_id = "qbo-sandbox-client"
        self.oauth = OAuthServer(
            clients=[
                SandboxClient(client_id=self.client_id, client_secret=secrets.token_urlsafe(24))
            ],
            access_token_lifetime=3600.0,
            refresh_token_lifetime=100 * 86400.0,
            token_path="/oauth2/v1/tokens/bearer",  # noqa: S106 - a path
            authorize_path="/connect/oauth2",
            userinfo_path="/oauth2/v1/userinfo",
            time_scale=self.clock.scale,
            extra_token_fields={"x_refresh_token_expires_in": 8640000},
        )
        self.mount("/oauth2/", self.oauth)
        self.mount("/connect/", self.oauth)
        self.companies: dict[str, QBOCompany] = {}
        self.tokens: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}
        for n in range(companies):
            realm = str(9130350000000000 + n)
            company = QBOCompany(realm_id=realm, name=f"Dixis Sandbox {n + 1}")
            _greek_tax(company)
            self.companies[realm] = company
            token = self.oauth.issue_token(self.client_id)
            self.tokens[realm] = str(token["access_token"])
            self.refresh_tokens[realm] = str(token.get("refresh_token") or "")
        self.minute = FixedWindow(minute_limit, 60.0, self.clock, "minute")
        self.batch_minute = FixedWindow(batch_minute_limit, 60.0, self.clock, "batch")
        self.verifier_token = verifier_token or secrets.token_urlsafe(24)
        self.faults_in_200: list[tuple[str, str]] = []
        self.pending_events: list[tuple[str, str, str, str]] = []
        self.minor_versions: list[str | None] = []
        self.calls: dict[str, int] = {}
        self.replayed = 0
        self.replayed_other_request = 0
        self.concurrency_limit = concurrency_limit
        self.concurrency_rejected = 0
        self._inflight: dict[str | None, int] = {}
        self._inflight_lock = threading.Lock()

    @property
    def realm_id(self) -> str:
        """The first company's realm id."""
        return next(iter(self.companies))

    def credentials(self) -> dict[str, str]:
        """What a client needs: base URL, realm, app, tokens, discovery, verifier token."""
        client = self.oauth.clients[self.client_id]
        return {
            "base_url": self.base_url,
            "realm_id": self.realm_id,
            "client_id": self.client_id,
            "client_secret": client.client_secret or "",
            "discovery_url": self.base_url + "/.well-known/openid_configuration/",
            "webhook_verifier_token": self.verifier_token,
            "access_token": self.tokens[self.realm_id],
            "refresh_token": self.refresh_tokens[self.realm_id],
        }

    # -- auth, limits, faults ------------------------------------------------------------
    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        path = request.url.path
        if path.startswith("/.well-known/"):
            return None
        info = self.oauth.validate_bearer(request)
        if info is None:
            return httpx.Response(
                401,
                content=_dumps(
                    {
                        "warnings": None,
                        "intuitObject": None,
                        "fault": {
                            "error": [
                                {
                                    "message": "message=AuthenticationFailed; errorCode=003200; "
                                    "statusCode=401",
                                    "detail": "Token expired or invalid",
                                    "code": "3200",
                                }
                            ],
                            "type": "AUTHENTICATION",
                        },
                        "report": None,
                        "queryResponse": None,
                        "batchItemResponse": [],
                        "attachableResponse": [],
                        "syncErrorResponse": None,
                        "requestId": None,
                        "time": int(time.time() * 1000),
                        "status": None,
                        "cdcresponse": [],
                    }
                ),
                headers={"content-type": "application/json", "WWW-Authenticate": "Bearer"},
            )
        match = re.match(_REALM, path)
        if match is not None:
            realm = match.group("realm")
            token = request.headers["authorization"].partition(" ")[2].strip()
            owner = next((r for r, t in self.tokens.items() if t == token), None)
            if realm not in self.companies or (owner is not None and owner != realm):
                return _respond(
                    403,
                    QBOFault(
                        "3100",
                        "ApplicationAuthorizationFailed",
                        "the token is not for this company",
                        "",
                        "AuthorizationFault",
                    ).body(),
                )
        return None

    def limit(self, request: httpx.Request) -> httpx.Response | None:
        match = re.match(_REALM, request.url.path)
        if match is None:
            return None
        realm = match.group("realm")
        ok, _, reset = self.minute.hit(realm)
        if ok and request.url.path.endswith("/batch"):
            ok, _, reset = self.batch_minute.hit(realm)
        if ok:
            return None
        return self._throttle(self.clock.retry_after(reset))

    def _throttle(self, retry_after: str) -> httpx.Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{_now()}">'
            '<Fault type="SERVICE"><Error code="003001">'
            "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
            "<Detail>The request limit was reached.</Detail></Error></Fault></IntuitResponse>"
        )
        return httpx.Response(
            429,
            content=body.encode(),
            headers={"content-type": "application/xml", "Retry-After": retry_after},
        )

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            return self._throttle(str(self.faults.retry_after))
        if fault is Fault.EXPIRED_TOKEN:
            self.oauth.expire_all()
            denied = self.authenticate(request)
            if denied is None:  # a request that needs no token (discovery): a 5xx instead
                return super().fault_response(Fault.SERVER_ERROR, request)
            return denied
        return super().fault_response(fault, request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        match = re.match(_REALM, request.url.path)
        realm = match.group("realm") if match else None
        with self._inflight_lock:
            inflight = self._inflight.get(realm, 0) + 1
            self._inflight[realm] = inflight
        try:
            if realm is not None and inflight > self.concurrency_limit:
                # At most 10 requests in progress per realm. A call is in progress from
                # its arrival to its answer: over HTTP or from several threads
                # in-process, calls overlap (``latency`` stretches each one).
                with self._inflight_lock:
                    self.concurrency_rejected += 1
                return self._throttle(self.clock.retry_after(1.0))
            if realm is not None:
                self._hold(request)
            return self._handle(request)
        finally:
            with self._inflight_lock:
                self._inflight[realm] -= 1

    def _hold(self, request: httpx.Request) -> None:
        """Keep an admitted call in progress for ``latency`` (vendor seconds, scaled):
        the time a real call spends on the network and at Intuit, during which it holds
        one of the realm's concurrent slots. Blocks the calling thread only.
        """
        if self.latency > 0:
            time.sleep(self.clock.window(self.latency))

    def _handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls[f"{request.method} {re.sub(r'/[0-9]+', '/N', path)}"] = (
            self.calls.get(f"{request.method} {re.sub(r'/[0-9]+', '/N', path)}", 0) + 1
        )
        request_id = request.url.params.get("requestid")
        match = re.match(_REALM, path)
        if request_id and match and request.method == "POST":
            request.read()
            company = self.companies.get(match.group("realm"))
            fingerprint = f"{path}?{request.url.query!r}:{hash(request.content)}"
            if company is not None:
                with self.lock:
                    seen = company.replays.get(request_id)
                if seen is not None and self.oauth.validate_bearer(request) is not None:
                    # Intuit: "If the service receives another request with the same
                    # RequestID, instead of performing the operation again or returning an
                    # error, the service sends the same response as it did for the original
                    # request" - whatever the body. A different body is only counted, so
                    # tests can check a client never reuses a requestid for another write.
                    with self.lock:
                        throttled = self.limit(request)
                        if throttled is not None:
                            return throttled
                        self.replayed += 1
                        if seen[0] != fingerprint:
                            self.replayed_other_request += 1
                    return httpx.Response(
                        seen[1], content=seen[2], headers={"content-type": "application/json"}
                    )
                response = super().handle(request)
                response.read()
                if (
                    response.status_code < 500
                    and response.status_code not in (401, 429)
                    and b'"SystemFault"' not in response.content
                ):
                    with self.lock:
                        company.replays[request_id] = (
                            fingerprint,
                            response.status_code,
                            response.content,
                            time.monotonic(),
                        )
                return response
        return super().handle(request)

    # -- discovery and company info ------------------------------------------------------
    @route("GET", r"/\.well-known/openid_(?:sandbox_)?configuration/?")
    def _discovery(self, request: httpx.Request) -> httpx.Response:
        base = self.base_url
        return httpx.Response(
            200,
            content=_dumps(
                {
                    "issuer": "https://oauth.platform.intuit.com/op/v1",
                    "authorization_endpoint": base + "/connect/oauth2",
                    "token_endpoint": base + "/oauth2/v1/tokens/bearer",
                    "userinfo_endpoint": base + "/oauth2/v1/userinfo",
                    "revocation_endpoint": base + "/oauth2/v1/tokens/revoke",
                    "jwks_uri": base + "/oauth2/v1/keys",
                }
            ),
            headers={"content-type": "application/json"},
        )

    @route("GET", _REALM + r"/companyinfo/(?P<ident>\d+)")
    def _company_info(self, request: httpx.Request, realm: str, ident: str) -> httpx.Response:
        company = self.companies[realm]
        return _respond(
            200,
            {
                "CompanyInfo": {
                    "Id": "1",
                    "CompanyName": company.name,
                    "Country": "GR",
                    "SyncToken": "0",
                }
            },
        )

    # -- entities ------------------------------------------------------------------------
    def _company(self, realm: str) -> QBOCompany:
        return self.companies[realm]

    def _pre(self, request: httpx.Request) -> None:
        self.minor_versions.append(request.url.params.get("minorversion"))

    @route("GET", _REALM + "/" + _ENTITY + r"/(?P<ident>\d+)")
    def _read(self, request: httpx.Request, realm: str, entity: str, ident: str) -> httpx.Response:
        self._pre(request)
        name = _ENTITIES.get(entity)
        row = self._company(realm).table(name).get(ident) if name else None
        if row is None or name is None:
            return _respond(
                400,
                QBOFault(
                    "610",
                    "Object Not Found",
                    "Object Not Found : Something you're trying to use "
                    "has been made inactive. Check the fields with "
                    "accounts, customers, items, vendors or employees.",
                    "",
                    "ValidationFault",
                ).body(),
            )
        return _respond(200, {name: row})

    @route("POST", _REALM + "/" + _ENTITY)
    def _write(self, request: httpx.Request, realm: str, entity: str) -> httpx.Response:
        self._pre(request)
        name = _ENTITIES.get(entity)
        if name is None or name not in _ALLOWED:
            return _respond(
                400,
                QBOFault(
                    "500", "Unsupported Operation", f"Operation on {entity} is not supported"
                ).body(),
            )
        if self.faults_in_200:
            code, message = self.faults_in_200.pop(0)
            return _respond(200, QBOFault(code, message, "injected", kind="SystemFault").body())
        try:
            body = json.loads(request.content, parse_float=Decimal)
        except ValueError:
            return _respond(
                400,
                QBOFault(
                    "2010", "Request has invalid or unsupported property", "the body is not JSON"
                ).body(),
            )
        company = self._company(realm)
        try:
            operation = request.url.params.get("operation", "create")
            row = self._apply(company, name, operation, body)
        except QBOFault as fault:
            return _respond(fault.status, fault.body())
        return _respond(200, {name: row})

    def _apply(self, company: QBOCompany, name: str, operation: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise QBOFault("2010", "Request has invalid or unsupported property", "not an object")
        unknown = set(body) - _ALLOWED[name]
        if unknown:
            prop = sorted(unknown)[0]
            raise QBOFault(
                "2010",
                "Request has invalid or unsupported property",
                f"Property Name:{prop} specified is unsupported or invalid",
                prop,
            )
        if operation == "void":
            return self._void(company, name, body)
        if operation == "delete":
            row = self._current(company, name, body)
            del company.table(name)[row["Id"]]
            company.deleted.append(
                (
                    name,
                    {"Id": row["Id"], "status": "Deleted", "MetaData": {"LastUpdatedTime": _now()}},
                )
            )
            self.pending_events.append((company.realm_id, name, row["Id"], "Delete"))
            return {"Id": row["Id"], "status": "Deleted", "domain": "QBO"}
        if body.get("Id"):
            row = self._current(company, name, body)
            if body.get("sparse") is True:
                merged = {**row, **{k: v for k, v in body.items() if k != "sparse"}}
            else:
                merged = {k: v for k, v in body.items() if k != "sparse"}
            saved = self._save(company, name, merged, existing=row)
            self.pending_events.append((company.realm_id, name, saved["Id"], "Update"))
            return saved
        saved = self._save(company, name, dict(body), existing=None)
        self.pending_events.append((company.realm_id, name, saved["Id"], "Create"))
        return saved

    def _current(self, company: QBOCompany, name: str, body: dict[str, Any]) -> dict[str, Any]:
        row = company.table(name).get(str(body.get("Id")))
        if row is None:
            raise QBOFault("610", "Object Not Found", f"{name} {body.get('Id')} not found")
        if "SyncToken" not in body:
            raise QBOFault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter SyncToken is missing",
                "SyncToken",
            )
        if str(body["SyncToken"]) != row["SyncToken"]:
            raise QBOFault(
                "5010",
                "Stale Object Error",
                "Stale Object Error : You and root were working on this at the same time. "
                "root finished before you did, so your work was not saved.",
            )
        return row

    def _void(self, company: QBOCompany, name: str, body: dict[str, Any]) -> dict[str, Any]:
        row = self._current(company, name, body)
        if any(link for link in row.get("LinkedTxn") or () if link.get("TxnType") == "Payment"):
            raise QBOFault(
                "6540",
                "Deposited Transaction cannot be changed",
                "This transaction has payments applied to it",
            )
        row["PrivateNote"] = "Voided" + (
            " - " + row["PrivateNote"] if row.get("PrivateNote") else ""
        )
        for line in row.get("Line") or ():
            line["Amount"] = Decimal("0.00")
            detail = line.get("SalesItemLineDetail")
            if detail:
                detail["TaxInclusiveAmt"] = Decimal("0.00")
        row["TotalAmt"] = Decimal("0.00")
        row["Balance"] = Decimal("0.00")
        row.setdefault("TxnTaxDetail", {})["TotalTax"] = Decimal("0.00")
        self._touch(row)
        self.pending_events.append((company.realm_id, name, row["Id"], "Void"))
        return row

    def _touch(self, row: dict[str, Any], *, created: bool = False) -> None:
        now = _now()
        row["SyncToken"] = "0" if created else str(int(row.get("SyncToken") or 0) + 1)
        meta = row.setdefault("MetaData", {})
        if created:
            meta["CreateTime"] = now
        meta["LastUpdatedTime"] = now
        row["domain"] = "QBO"
        row["sparse"] = False

    def _save(
        self, company: QBOCompany, name: str, data: dict[str, Any], existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        saver: Callable[[QBOCompany, dict[str, Any], dict[str, Any] | None], None] = getattr(
            self, f"_check_{name.lower()}"
        )
        saver(company, data, existing)
        if existing is None:
            data["Id"] = company.new_id()
            self._touch(data, created=True)
        else:
            data["Id"] = existing["Id"]
            data["MetaData"] = existing.get("MetaData", {})
            data["SyncToken"] = existing["SyncToken"]
            self._touch(data)
        company.table(name)[data["Id"]] = data
        return data

    # -- per-entity rules ----------------------------------------------------------------
    def _check_customer(
        self, company: QBOCompany, data: dict[str, Any], existing: dict[str, Any] | None
    ) -> None:
        name = str(data.get("DisplayName") or "").strip()
        if not name:
            given = " ".join(p for p in (data.get("GivenName"), data.get("FamilyName")) if p)
            name = given or str(data.get("CompanyName") or "")
        if not name:
            raise QBOFault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: You must fill out at least one of the name fields.",
            )
        for other in company.table("Customer").values():
            if other["DisplayName"].lower() == name.lower() and other is not existing:
                raise QBOFault(
                    "6240",
                    "Duplicate Name Exists Error",
                    f"The name supplied already exists. : Another customer, vendor "
                    f"or employee is already using this name. Please use a different "
                    f"name. Id={other['Id']}",
                )
        data["DisplayName"] = name
        data.setdefault("Active", True)
        data.setdefault("Balance", Decimal("0.00"))

    def _check_item(
        self, company: QBOCompany, data: dict[str, Any], existing: dict[str, Any] | None
    ) -> None:
        name = str(data.get("Name") or "")
        if not name:
            raise QBOFault("2020", "Required param missing", "Name is required", "Name")
        if len(name) > 100:
            raise QBOFault("6000", "Business Validation Error", "Name is too long", "Name")
        for other in company.table("Item").values():
            if other["Name"] == name and other is not existing:
                raise QBOFault(
                    "6240",
                    "Duplicate Name Exists Error",
                    f"The name supplied already exists. : Id={other['Id']}",
                )
        kind = data.get("Type")
        if kind not in ("Service", "NonInventory", "Inventory"):
            raise QBOFault("2170", "Invalid Enumeration", f"Type {kind!r} is not valid", "Type")
        if (data.get("IncomeAccountRef") or {}).get("value") not in company.table("Account"):
            raise QBOFault(
                "2500", "Invalid Reference Id", "IncomeAccountRef is not valid", "IncomeAccountRef"
            )
        data.setdefault("Active", True)
        data["FullyQualifiedName"] = name

    def _check_invoice(
        self, company: QBOCompany, data: dict[str, Any], existing: dict[str, Any] | None
    ) -> None:
        self._sales_transaction(company, data, existing, "Invoice")
        data["Balance"] = data["TotalAmt"] - (
            existing["TotalAmt"] - existing["Balance"] if existing else Decimal(0)
        )
        data.setdefault("LinkedTxn", existing.get("LinkedTxn", []) if existing else [])

    def _check_creditmemo(
        self, company: QBOCompany, data: dict[str, Any], existing: dict[str, Any] | None
    ) -> None:
        self._sales_transaction(company, data, existing, "CreditMemo")
        data["RemainingCredit"] = data["TotalAmt"]
        data["Balance"] = data["TotalAmt"]

    def _check_refundreceipt(
        self, company: QBOCompany, data: dict[str, Any], existing: dict[str, Any] | None
    ) -> None:
        # Intuit's RefundReceipt: Line and DepositToAccountRef are required on create;
        # DepositToAccountRef is the account the money is refunded from, of type Bank or
        # Other Current Asset. Money paid out at once: no balance, no credit left.
        account_id = str((data.get("DepositToAccountRef") or {}).get("value") or "")
        if not account_id:
            raise QBOFault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter DepositToAccountRef is missing",
                "DepositToAccountRef",
            )
        account = company.table("Account").get(account_id)
        if account is None or account.get("AccountType") not in ("Bank", "Other Current Asset"):
            raise QBOFault(
                "2500",
                "Invalid Reference Id",
                f"Invalid Reference Id : DepositToAccountRef {account_id} is not a bank or "
                "other current asset account",
                "DepositToAccountRef",
            )
        self._sales_transaction(company, data, existing, "RefundReceipt", customer_required=False)
        data["Balance"] = Decimal("0.00")
        data["RemainingCredit"] = Decimal("0.00")

    def _sales_transaction(
        self,
        company: QBOCompany,
        data: dict[str, Any],
        existing: dict[str, Any] | None,
        name: str,
        *,
        customer_required: bool = True,
    ) -> None:
        customer = (data.get("CustomerRef") or {}).get("value")
        if not customer and customer_required:
            raise QBOFault(
                "2020", "Required param missing", "CustomerRef is required", "CustomerRef"
            )
        if customer and str(customer) not in company.table("Customer"):
            raise QBOFault(
                "2500",
                "Invalid Reference Id",
                f"Invalid Reference Id : Customer {customer}",
                "CustomerRef",
            )
        number = data.get("DocNumber")
        if number is not None:
            if len(str(number)) > 21:
                raise QBOFault(
                    "6000",
                    "A business validation error has occurred",
                    "DocNumber: String length must be at most 21",
                    "DocNumber",
                )
            for other in company.table(name).values():
                if other.get("DocNumber") == number and other is not existing:
                    raise QBOFault(
                        "6140",
                        "Duplicate Document Number Error",
                        f"Duplicate Document Number Error : You must specify a "
                        f"different number. This number has already been used. "
                        f"DocNumber={number} is assigned to TxnType={name} with "
                        f"TxnId={other['Id']}",
                    )
        lines = data.get("Line")
        if not isinstance(lines, list) or not lines:
            raise QBOFault(
                "6000",
                "A business validation error has occurred",
                "Business Validation Error: You must add at least one line.",
            )
        mode = data.get("GlobalTaxCalculation", "TaxExcluded")
        if mode not in ("TaxInclusive", "TaxExcluded", "NotApplicable"):
            raise QBOFault("2170", "Invalid Enumeration", f"GlobalTaxCalculation {mode!r}")
        net_total = tax_total = Decimal(0)
        for n, line in enumerate(lines, start=1):
            line.setdefault("Id", str(n))
            line["LineNum"] = n
            if line.get("DetailType") != "SalesItemLineDetail":
                raise QBOFault(
                    "2170",
                    "Invalid Enumeration",
                    f"DetailType {line.get('DetailType')!r} is not supported here",
                )
            detail = line.get("SalesItemLineDetail") or {}
            item = (detail.get("ItemRef") or {}).get("value")
            if str(item) not in company.table("Item"):
                raise QBOFault(
                    "2500", "Invalid Reference Id", f"Invalid Reference Id : Item {item}", "ItemRef"
                )
            code_id = str((detail.get("TaxCodeRef") or {}).get("value") or "")
            code = company.table("TaxCode").get(code_id)
            if code is None:
                raise QBOFault(
                    "2500",
                    "Invalid Reference Id",
                    f"Invalid Reference Id : TaxCode {code_id}",
                    "TaxCodeRef",
                )
            rate = sum(
                (
                    _dec(company.table("TaxRate")[d["TaxRateRef"]["value"]]["RateValue"])
                    for d in code["SalesTaxRateList"]["TaxRateDetail"]
                ),
                Decimal(0),
            )
            amount = _dec(line.get("Amount"))
            if "Qty" in detail and "UnitPrice" in detail:
                gross_or_net = _cents(_dec(detail["Qty"]) * _dec(detail["UnitPrice"]))
                gross_or_net -= _dec(detail.get("DiscountAmt"))
                expected = (
                    _dec(detail["TaxInclusiveAmt"])
                    if mode == "TaxInclusive" and "TaxInclusiveAmt" in detail
                    else amount
                )
                if gross_or_net != expected:
                    raise QBOFault(
                        "6070",
                        "Amount is not equal to UnitPrice * Qty",
                        f"line {n}: {gross_or_net} != {expected}",
                        "Amount",
                    )
            if mode == "TaxInclusive":
                gross = _dec(detail.get("TaxInclusiveAmt", amount))
                tax = _cents(gross * rate / (100 + rate))
                if abs((gross - tax) - amount) > _CENT and "TaxInclusiveAmt" in detail:
                    raise QBOFault(
                        "6000",
                        "A business validation error has occurred",
                        f"line {n}: Amount {amount} is not the net of TaxInclusiveAmt {gross}",
                        "Amount",
                    )
                detail["TaxInclusiveAmt"] = gross
            elif mode == "TaxExcluded":
                tax = _cents(amount * rate / 100)
            else:
                tax = Decimal(0)
            net_total += amount
            tax_total += tax
        given = (data.get("TxnTaxDetail") or {}).get("TotalTax")
        if given is not None and mode != "NotApplicable":
            override = _dec(given)
            if abs(override - tax_total) > _CENT * len(lines):
                raise QBOFault(
                    "6000",
                    "A business validation error has occurred",
                    f"TotalTax {override} is too far from the computed {tax_total}",
                )
            tax_total = override
        data["TxnTaxDetail"] = {"TotalTax": tax_total}
        data["TotalAmt"] = net_total + tax_total
        data.setdefault("TxnDate", datetime.now(UTC).date().isoformat())
        data.setdefault("CurrencyRef", {"value": "EUR", "name": "Euro"})

    def _check_payment(
        self, company: QBOCompany, data: dict[str, Any], existing: dict[str, Any] | None
    ) -> None:
        if existing is not None:
            raise QBOFault(
                "6000", "Business Validation Error", "the sandbox does not update payments"
            )
        customer = str((data.get("CustomerRef") or {}).get("value") or "")
        if customer not in company.table("Customer"):
            raise QBOFault("2500", "Invalid Reference Id", "CustomerRef", "CustomerRef")
        total = _dec(data.get("TotalAmt"))
        applied = Decimal(0)
        links: list[tuple[dict[str, Any], str, Decimal]] = []
        for line in data.get("Line") or ():
            amount = _dec(line.get("Amount"))
            for link in line.get("LinkedTxn") or ():
                kind = link.get("TxnType")
                table = company.table("Invoice" if kind == "Invoice" else "CreditMemo")
                target = table.get(str(link.get("TxnId")))
                if target is None or kind not in ("Invoice", "CreditMemo"):
                    raise QBOFault(
                        "2500",
                        "Invalid Reference Id",
                        f"LinkedTxn {link.get('TxnId')}",
                        "LinkedTxn",
                    )
                if kind == "Invoice":
                    if amount > target["Balance"]:
                        raise QBOFault(
                            "6000",
                            "Business Validation Error",
                            "the amount applied is more than the invoice's balance",
                        )
                    applied += amount
                else:
                    if amount > target["RemainingCredit"]:
                        raise QBOFault(
                            "6000",
                            "Business Validation Error",
                            "the amount applied is more than the remaining credit",
                        )
                    applied -= amount
                links.append((target, kind, amount))
        if applied > total:
            raise QBOFault(
                "6000", "Business Validation Error", "the amounts applied are more than the payment"
            )
        data["UnappliedAmt"] = total - applied
        payment_id = company.new_id()
        company.next_id -= 1  # the id _save assigns next
        for target, kind, amount in links:
            if kind == "Invoice":
                target["Balance"] -= amount
            else:
                target["RemainingCredit"] -= amount
                target["Balance"] = target["RemainingCredit"]
            target.setdefault("LinkedTxn", []).append({"TxnId": payment_id, "TxnType": "Payment"})
            self._touch(target)

    def _check_purchase(
        self, company: QBOCompany, data: dict[str, Any], existing: dict[str, Any] | None
    ) -> None:
        account = str((data.get("AccountRef") or {}).get("value") or "")
        if account not in company.table("Account"):
            raise QBOFault("2500", "Invalid Reference Id", "AccountRef", "AccountRef")
        data["TotalAmt"] = sum(
            (_dec(line.get("Amount")) for line in data.get("Line") or ()), Decimal(0)
        )

    # -- query, batch, CDC -------------------------------------------------------------
    @route("GET", _REALM + r"/query")
    @route("POST", _REALM + r"/query")
    def _query_route(self, request: httpx.Request, realm: str) -> httpx.Response:
        self._pre(request)
        text = (
            request.url.params.get("query") if request.method == "GET" else request.content.decode()
        )
        try:
            return _respond(200, {"QueryResponse": self._query(self._company(realm), text or "")})
        except QBOFault as fault:
            return _respond(fault.status, fault.body())

    def _query(self, company: QBOCompany, text: str) -> dict[str, Any]:
        match = _QUERY.fullmatch(text)
        if match is None:
            raise QBOFault("4000", "Error parsing query", f"QueryParserError: {text[:80]}")
        entity = next(
            (v for v in _ENTITIES.values() if v.lower() == match.group("entity").lower()), None
        )
        if entity is None:
            raise QBOFault("4001", "Invalid query", f"unknown entity {match.group('entity')}")
        rows = list(company.table(entity).values())
        where = match.group("where")
        if where:
            for condition in re.split(r"\s+and\s+", where, flags=re.IGNORECASE):
                cond = _CONDITION.fullmatch(condition)
                if cond is None:
                    raise QBOFault("4000", "Error parsing query", f"near {condition[:40]!r}")
                field_name = cond.group("field")
                if cond.group("values") is not None:
                    wanted = {_unquote(v) for v in _STRING.findall(cond.group("values"))}
                    rows = [r for r in rows if str(_path(r, field_name)) in wanted]
                else:
                    value = _unquote(cond.group("value"))
                    op = cond.group("op")
                    rows = [r for r in rows if _compare(str(_path(r, field_name)), op, value)]
        start = int(match.group("start") or 1)
        size = min(1000, int(match.group("max") or 100))
        page = rows[start - 1 : start - 1 + size]
        if not page:
            return {}
        return {entity: page, "startPosition": start, "maxResults": len(page)}

    @route("POST", _REALM + r"/batch")
    def _batch(self, request: httpx.Request, realm: str) -> httpx.Response:
        self._pre(request)
        try:
            body = json.loads(request.content, parse_float=Decimal)
            items = body["BatchItemRequest"]
        except (ValueError, KeyError, TypeError):
            return _respond(
                400,
                QBOFault(
                    "2010",
                    "Request has invalid or unsupported property",
                    "BatchItemRequest is required",
                ).body(),
            )
        if len(items) > 30:
            return _respond(
                400,
                QBOFault("1040", "Batch request too large", "at most 30 items in one batch").body(),
            )
        company = self._company(realm)
        answers = []
        for item in items:
            bid = str(item.get("bId") or "")
            try:
                if "Query" in item:
                    answers.append(
                        {"bId": bid, "QueryResponse": self._query(company, str(item["Query"]))}
                    )
                    continue
                entity = next((k for k in item if k in _ALLOWED), None)
                if entity is None:
                    raise QBOFault(
                        "2010",
                        "Request has invalid or unsupported property",
                        "no entity in the batch item",
                    )
                operation = str(item.get("operation") or "create")
                if operation not in ("create", "update", "delete"):
                    raise QBOFault("2170", "Invalid Enumeration", f"operation {operation!r}")
                if item.get("optionsData") == "void":
                    operation = "void"
                row = self._apply(company, entity, operation, dict(item[entity]))
                answers.append({"bId": bid, entity: row})
            except QBOFault as fault:
                answers.append({"bId": bid, **fault.body()})
        return _respond(200, {"BatchItemResponse": answers})

    @route("GET", _REALM + r"/cdc")
    def _cdc(self, request: httpx.Request, realm: str) -> httpx.Response:
        self._pre(request)
        company = self._company(realm)
        since_text = request.url.params.get("changedSince", "")
        try:
            since = datetime.fromisoformat(since_text.replace("Z", "+00:00"))
        except ValueError:
            return _respond(
                400, QBOFault("2020", "Required param missing", "changedSince is required").body()
            )
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        if since < datetime.now(UTC) - timedelta(days=30):
            return _respond(
                400,
                QBOFault(
                    "6000",
                    "Business Validation Error",
                    "changedSince must be within the last 30 days",
                ).body(),
            )
        blocks = []
        for name in (request.url.params.get("entities") or "").split(","):
            entity = next(
                (v for v in _ENTITIES.values() if v.lower() == name.strip().lower()), None
            )
            if entity is None:
                continue
            rows = [r for r in company.table(entity).values() if _when(r) > since]
            rows += [r for n, r in company.deleted if n == entity and _when(r) > since]
            blocks.append({entity: rows[:1000], "startPosition": 1, "maxResults": len(rows)})
        return _respond(200, {"CDCResponse": [{"QueryResponse": blocks}]})

    # -- webhooks --------------------------------------------------------------------
    def deliver_events(self, url: str, *, cloudevents: bool = False) -> int | None:
        """POST pending changes, signed with the verifier token; the status answered."""
        if not self.pending_events:
            return None
        events, self.pending_events = self.pending_events, []
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        payload: Any
        if cloudevents:
            payload = [
                {
                    "specversion": "1.0",
                    "id": str(uuid.uuid4()),
                    "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
                    "type": f"qbo.{name.lower()}.{_past(op)}.v1",
                    "datacontenttype": "application/json",
                    "time": stamp,
                    "intuitentityid": ident,
                    "intuitaccountid": realm,
                    "data": {},
                }
                for realm, name, ident, op in events
            ]
        else:
            by_realm: dict[str, list[dict[str, str]]] = {}
            for realm, name, ident, op in events:
                by_realm.setdefault(realm, []).append(
                    {"name": name, "id": ident, "operation": op, "lastUpdated": stamp}
                )
            payload = {
                "eventNotifications": [
                    {"realmId": realm, "dataChangeEvent": {"entities": entities}}
                    for realm, entities in by_realm.items()
                ]
            }
        body = _dumps(payload)
        delivery = self.deliver_webhook(
            url,
            body,
            {
                "content-type": "application/json"
                if not cloudevents
                else "application/cloudevents-batch+json",
                "intuit-signature": sign_hmac_sha256(self.verifier_token, body),
            },
        )
        return delivery.status


def _past(operation: str) -> str:
    return {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided"}.get(
        operation, operation.lower()
    )


def _unquote(value: str) -> str:
    return value.replace("\\'", "'").replace("\\\\", "\\")


def _path(row: dict[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if dotted == "PrimaryEmailAddr" and isinstance(value, dict):
        value = value.get("Address")  # queried as a plain string: PrimaryEmailAddr = 'a@b'
    return value if value is not None else ""


def _compare(left: str, op: str, right: str) -> bool:
    if op == "=":
        return left == right
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]


def _when(row: dict[str, Any]) -> datetime:
    text = str((row.get("MetaData") or {}).get("LastUpdatedTime") or "")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return datetime(1970, 1, 1, tzinfo=UTC)
