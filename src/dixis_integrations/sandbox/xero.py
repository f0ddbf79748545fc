"""An emulator of the Xero Accounting API (v2.0), written from Xero's OpenAPI spec and docs.

Several organisations (tenants) selected by ``xero-tenant-id``, ``/connections``,
OAuth2 (mounted :class:`OAuthServer` at ``/connect/token``), contacts, items, tax rates,
invoices (``summarizeErrors=false`` mixed results, unique ``InvoiceNumber``, Inclusive /
Exclusive amounts, ``TaxAmount`` overrides), payments, credit notes and allocations,
bank transactions, ``If-Modified-Since`` and paging, ``Idempotency-Key`` replay, the
documented limits with their headers (``X-MinLimit-Remaining``...), signed webhooks and
intent-to-receive. It never imports adapter code.
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
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
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

__all__ = ["XeroSandbox", "XeroTenant"]

_CENT = Decimal("0.01")
_API = "/api.xro/2.0"
_ID = r"(?P<ident>[0-9a-fA-F-]{36})"
_WHERE_TERM = re.compile(
    r'\s*(?P<field>[A-Za-z.]+)\s*==\s*(?:"(?P<text>[^"]*)"|Guid\("(?P<guid>[^"]*)"\))\s*'
)
_IDEMPOTENCY_WINDOW = 360.0  # vendor seconds: cached about 6 minutes (3rd-party, see docs)
_LIMIT_HEADERS = "xero.limit_headers"
_ACCREC_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")


_dumps = json_bytes_exact  # amounts as exact JSON numbers


def _respond(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=_dumps(body),
        headers={"content-type": "application/json; charset=utf-8", **(headers or {})},
    )


def _ms_date(moment: datetime) -> str:
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def _day_ms(day: str) -> str:
    moment = datetime.fromisoformat(day[:10]).replace(tzinfo=UTC)
    return _ms_date(moment)


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise _Invalid(f"{value!r} is not a number") from None


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, ROUND_HALF_UP)


class _Invalid(Exception):
    """One validation message about one element."""


@dataclass
class XeroTenant:
    """One organisation's books, in memory."""

    tenant_id: str
    name: str
    tax_rates: dict[str, dict[str, Any]]
    accounts: dict[str, dict[str, Any]]
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    credit_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    bank_transactions: dict[str, dict[str, Any]] = field(default_factory=dict)


def _greek_tax_rates() -> dict[str, dict[str, Any]]:
    rates = [
        ("TAX001", "Greek VAT 24%", "24"),
        ("TAX002", "Greek VAT 13%", "13"),
        ("TAX003", "Greek VAT 6%", "6"),
        ("TAX004", "Greek island VAT 17%", "17"),
        ("TAX005", "Greek island VAT 9%", "9"),
        ("TAX006", "Greek island VAT 4%", "4"),
        ("ZERORATEDOUTPUT", "Zero Rated", "0"),
        ("EXEMPTOUTPUT", "Exempt Output", "0"),
        ("NONE", "No VAT", "0"),
    ]
    return {
        code: {
            "Name": name,
            "TaxType": code,
            "ReportTaxType": "OUTPUT",
            "Status": "ACTIVE",
            "CanApplyToRevenue": True,
            "DisplayTaxRate": Decimal(rate),
            "EffectiveRate": Decimal(rate),
            "TaxComponents": [
                {
                    "Name": "VAT",
                    "Rate": Decimal(rate),
                    "IsCompound": False,
                    "IsNonRecoverable": False,
                }
            ],
        }
        for code, name, rate in rates
    }


def _accounts() -> dict[str, dict[str, Any]]:
    rows = [
        ("200", "Sales", "REVENUE", False),
        ("260", "Other Revenue", "REVENUE", False),
        ("090", "Stripe clearing", "BANK", True),
        ("091", "Business Bank Account", "BANK", True),
        ("404", "Bank Fees", "EXPENSE", False),
    ]
    return {
        code: {
            "AccountID": str(uuid.uuid4()),
            "Code": code,
            "Name": name,
            "Type": kind,
            "Status": "ACTIVE",
            "EnablePaymentsToAccount": payable,
        }
        for code, name, kind, payable in rows
    }


@dataclass
class _Replay:
    fingerprint: str
    response: tuple[int, bytes]
    at: float


class XeroSandbox(Emulator):
    """The Xero Accounting API in memory (see the module docstring)."""

    name = "xero"

    def __init__(
        self,
        *,
        tenants: int = 2,
        minute_limit: int = 60,
        day_limit: int = 5000,
        app_minute_limit: int = 10000,
        concurrency_limit: int = 5,
        latency: float = 0.0,
        webhook_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.latency = latency
        self.client_id = "xero-sandbox-client"
        self.oauth = OAuthServer(
            clients=[
                SandboxClient(
                    client_id=self.client_id,
                    client_secret=secrets.token_urlsafe(24),
                    scope="",
                )
            ],
            access_token_lifetime=1800.0,
            refresh_token_lifetime=60 * 86400.0,
            token_path="/connect/token",  # noqa: S106 - a path
            authorize_path="/identity/connect/authorize",
            userinfo_path="/connect/userinfo",
            time_scale=self.clock.scale,
        )
        self.mount("/connect/", self.oauth)
        self.mount("/identity/", self.oauth)
        self.tenants: dict[str, XeroTenant] = {}
        for n in range(tenants):
            tid = str(uuid.UUID(int=0x5EED0000 + n))
            self.tenants[tid] = XeroTenant(
                tenant_id=tid,
                name=f"Dixis Sandbox {n + 1}",
                tax_rates=_greek_tax_rates(),
                accounts=_accounts(),
            )
        self.minute = FixedWindow(minute_limit, 60.0, self.clock, "minute")
        self.day = FixedWindow(day_limit, 86400.0, self.clock, "day")
        self.app_minute = FixedWindow(app_minute_limit, 60.0, self.clock, "appminute")
        self.webhook_key = webhook_key or secrets.token_urlsafe(32)
        self.webhook_url: str | None = None
        self.pending_events: list[dict[str, Any]] = []
        self._replays: dict[tuple[str, str], _Replay] = {}
        self.concurrency_limit = concurrency_limit
        self.concurrency_rejected = 0
        self._inflight: dict[str, int] = {}
        self._inflight_lock = threading.Lock()
        self.calls_by_path: dict[str, int] = {}
        self.replayed = 0
        self._token = self.oauth.issue_token(self.client_id)

    # -- identity --------------------------------------------------------------------
    @property
    def tenant_id(self) -> str:
        """The first organisation's id."""
        return next(iter(self.tenants))

    def credentials(self) -> dict[str, str]:
        """What a client needs: API and identity URLs, the app, a connected token."""
        client = self.oauth.clients[self.client_id]
        return {
            "base_url": self.base_url + _API,
            "connections_url": self.base_url + "/connections",
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": client.client_secret or "",
            "token_url": self.base_url + "/connect/token",
            "authorize_url": self.base_url + "/identity/connect/authorize",
            "webhook_key": self.webhook_key,
            "access_token": str(self._token["access_token"]),
            "refresh_token": str(self._token.get("refresh_token") or ""),
        }

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if self.oauth.validate_bearer(request) is None:
            return _respond(
                401,
                {
                    "Type": None,
                    "Title": "Unauthorized",
                    "Status": 401,
                    "Detail": "AuthenticationUnsuccessful",
                },
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if request.url.path.startswith(_API):
            tid = request.headers.get("xero-tenant-id", "")
            if tid not in self.tenants:
                return _respond(
                    403,
                    {
                        "Type": None,
                        "Title": "Forbidden",
                        "Status": 403,
                        "Detail": "AuthorizationUnsuccessful",
                    },
                )
        return None

    # -- limits ----------------------------------------------------------------------
    def limit(self, request: httpx.Request) -> httpx.Response | None:
        path = request.url.path
        if not path.startswith(_API):
            return None
        tid = request.headers.get("xero-tenant-id", "")
        app_ok, app_left, app_reset = self.app_minute.hit("app")
        ok_min, min_left, min_reset = self.minute.hit(tid) if app_ok else (True, 0, 0.0)
        ok_day, day_left, day_reset = self.day.hit(tid) if app_ok and ok_min else (True, 0, 0.0)
        request.extensions[_LIMIT_HEADERS] = {
            "X-AppMinLimit-Remaining": str(app_left),
            "X-MinLimit-Remaining": str(min_left),
            "X-DayLimit-Remaining": str(day_left),
        }
        problem, reset = None, 0.0
        if not app_ok:
            problem, reset = "appminute", app_reset
        elif not ok_min:
            problem, reset = "minute", min_reset
        elif not ok_day:
            problem, reset = "day", day_reset
        if problem is None:
            return None
        return self._throttled(problem, reset, request)

    def _throttled(self, problem: str, reset: float, request: httpx.Request) -> httpx.Response:
        headers = {
            **request.extensions.get(_LIMIT_HEADERS, {}),
            "Retry-After": self.clock.retry_after(reset),
            "X-Rate-Limit-Problem": problem,
        }
        return httpx.Response(429, content=b"", headers=headers)

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            return httpx.Response(
                429,
                headers={
                    "Retry-After": str(int(self.faults.retry_after)),
                    "X-Rate-Limit-Problem": "minute",
                    "X-MinLimit-Remaining": "0",
                },
            )
        if fault is Fault.EXPIRED_TOKEN:
            return _respond(401, {"Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired"})
        return super().fault_response(fault, request)

    # -- the handler: idempotency and headers around every route ---------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        path = request.url.path
        tid = request.headers.get("xero-tenant-id", "")
        counted = path.startswith(_API)
        with self._inflight_lock:
            name = f"{request.method} {path}"
            self.calls_by_path[name] = self.calls_by_path.get(name, 0) + 1
            inflight = self._inflight.get(tid, 0) + counted
            self._inflight[tid] = inflight
        try:
            if counted and inflight > self.concurrency_limit:
                # Xero's 5 calls in progress per tenant. A call is in progress from its
                # arrival to its answer: over HTTP or from several threads in-process,
                # calls overlap (``latency`` stretches each one as the network would).
                with self._inflight_lock:
                    self.concurrency_rejected += 1
                return self._throttled("concurrent", 1.0, request)
            if counted:
                self._hold(request)
            if key and request.method in ("PUT", "POST") and counted:
                return self._idempotent(request, key)
            response = super().handle(request)
        except _BadWhere as exc:
            response = _respond(400, _error(f"The where clause is not valid: {exc}"))
        finally:
            with self._inflight_lock:
                self._inflight[tid] -= counted
        return self._with_headers(response, request)

    def _hold(self, request: httpx.Request) -> None:
        """Keep an admitted call in progress for ``latency`` (vendor seconds, scaled):
        the time a real call spends on the network and at Xero, during which it holds
        one of the tenant's concurrent slots. Blocks the calling thread only.
        """
        if self.latency > 0:
            time.sleep(self.clock.window(self.latency))

    def _with_headers(self, response: httpx.Response, request: httpx.Request) -> httpx.Response:
        for name, value in request.extensions.get(_LIMIT_HEADERS, {}).items():
            response.headers.setdefault(name, value)
        return response

    def _idempotent(self, request: httpx.Request, key: str) -> httpx.Response:
        request.read()
        if len(key) > 128:
            return _respond(400, _error("Idempotency-Key must be 128 characters or fewer"))
        tid = request.headers.get("xero-tenant-id", "")
        fingerprint = f"{request.method} {request.url.path}?{request.url.query!r} " + str(
            hash(request.content)
        )
        now = time.monotonic()
        with self.lock:
            seen = self._replays.get((tid, key))
            if seen is not None and now - seen.at > self.clock.window(_IDEMPOTENCY_WINDOW):
                seen = None
        if seen is not None:
            if seen.fingerprint != fingerprint:
                return _respond(
                    400, _error("The Idempotency-Key was used with a different request")
                )
            # Replays still count against the limits.
            with self.lock:
                throttled = self.limit(request)
                if throttled is not None:
                    return throttled
                self.replayed += 1
            status, content = seen.response
            return self._with_headers(
                httpx.Response(
                    status, content=content, headers={"content-type": "application/json"}
                ),
                request,
            )
        response = super().handle(request)
        response.read()
        if response.status_code < 500 and response.status_code != 429:
            with self.lock:
                self._replays[(tid, key)] = _Replay(
                    fingerprint, (response.status_code, response.content), now
                )
        return self._with_headers(response, request)

    # -- helpers ---------------------------------------------------------------------
    def _tenant(self, request: httpx.Request) -> XeroTenant:
        return self.tenants[request.headers["xero-tenant-id"]]

    def _event(self, tenant: XeroTenant, category: str, kind: str, resource_id: str) -> None:
        plural = {"INVOICE": "Invoices", "CONTACT": "Contacts", "CREDITNOTE": "CreditNotes"}
        self.pending_events.append(
            {
                "resourceUrl": f"https://api.xero.com/api.xro/2.0/{plural[category]}/{resource_id}",
                "resourceId": resource_id,
                "eventDateUtc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
                "eventType": kind,
                "eventCategory": category,
                "tenantId": tenant.tenant_id,
                "tenantType": "ORGANISATION",
            }
        )

    # -- connections and settings ----------------------------------------------------
    @route("GET", r"/connections")
    def _connections(self, request: httpx.Request) -> httpx.Response:
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "")
        return _respond(
            200,
            [
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, t.tenant_id)),
                    "authEventId": str(uuid.uuid5(uuid.NAMESPACE_DNS, t.tenant_id)),
                    "tenantId": t.tenant_id,
                    "tenantType": "ORGANISATION",
                    "tenantName": t.name,
                    "createdDateUtc": now,
                    "updatedDateUtc": now,
                }
                for t in self.tenants.values()
            ],
        )

    @route("GET", _API + r"/Organisation")
    def _organisation(self, request: httpx.Request) -> httpx.Response:
        tenant = self._tenant(request)
        return _respond(
            200,
            {
                "Organisations": [
                    {
                        "OrganisationID": tenant.tenant_id,
                        "Name": tenant.name,
                        "BaseCurrency": "EUR",
                        "CountryCode": "GR",
                        "OrganisationType": "COMPANY",
                    }
                ]
            },
        )

    @route("GET", _API + r"/TaxRates")
    def _tax_rates(self, request: httpx.Request) -> httpx.Response:
        return _respond(200, {"TaxRates": list(self._tenant(request).tax_rates.values())})

    @route("GET", _API + r"/Accounts")
    def _accounts_list(self, request: httpx.Request) -> httpx.Response:
        return _respond(200, {"Accounts": list(self._tenant(request).accounts.values())})

    # -- contacts --------------------------------------------------------------------
    @route("GET", _API + r"/Contacts")
    def _get_contacts(self, request: httpx.Request) -> httpx.Response:
        tenant = self._tenant(request)
        rows = _filter(list(tenant.contacts.values()), request)
        return _respond(200, {"Contacts": rows})

    @route("GET", _API + r"/Contacts/" + _ID)
    def _get_contact(self, request: httpx.Request, ident: str) -> httpx.Response:
        contact = self._tenant(request).contacts.get(ident)
        if contact is None:
            return _not_found()
        return _respond(200, {"Contacts": [contact]})

    @route("GET", _API + r"/(?P<collection>Payments|CreditNotes|Items)/" + _ID)
    def _get_one(self, request: httpx.Request, collection: str, ident: str) -> httpx.Response:
        # GET /Payments/{PaymentID}, /CreditNotes/{CreditNoteID}, /Items/{ItemID}.
        tenant = self._tenant(request)
        table = {
            "Payments": tenant.payments,
            "CreditNotes": tenant.credit_notes,
            "Items": tenant.items,
        }[collection]
        row = table.get(ident) or next(
            (r for r in table.values() if r.get("ItemID") == ident),
            None,  # items keyed by Code
        )
        if row is None:
            return _not_found()
        return _respond(200, {collection: [row]})

    @route("PUT", _API + r"/Contacts")
    @route("POST", _API + r"/Contacts")
    def _put_contacts(self, request: httpx.Request) -> httpx.Response:
        tenant = self._tenant(request)
        return self._bulk(
            request, "Contacts", lambda c: self._save_contact(tenant, c, request.method == "POST")
        )

    def _save_contact(
        self, tenant: XeroTenant, data: dict[str, Any], upsert: bool
    ) -> dict[str, Any]:
        name = str(data.get("Name") or "").strip()
        existing = tenant.contacts.get(str(data.get("ContactID") or ""))
        if existing is None and not name:
            raise _Invalid("The contact name must be specified.")
        if len(str(data.get("ContactNumber") or "")) > 50:
            raise _Invalid("The Contact Number must not exceed 50 characters.")
        for other in tenant.contacts.values():
            if name and other["Name"].lower() == name.lower() and other is not existing:
                raise _Invalid(
                    f"The contact name {name} is already assigned to another contact. "
                    "The contact name must be unique across all active contacts."
                )
        if existing is not None and not upsert:
            raise _Invalid("A contact with this ContactID already exists.")
        contact = existing or {"ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE"}
        for key in (
            "ContactNumber",
            "Name",
            "FirstName",
            "LastName",
            "EmailAddress",
            "TaxNumber",
            "Addresses",
            "Phones",
            "IsCustomer",
        ):
            if key in data:
                contact[key] = data[key]
        contact["UpdatedDateUTC"] = _ms_date(datetime.now(UTC))
        contact.setdefault("IsSupplier", False)
        contact.setdefault("IsCustomer", True)
        tenant.contacts[contact["ContactID"]] = contact
        self._event(tenant, "CONTACT", "UPDATE" if existing else "CREATE", contact["ContactID"])
        return contact

    def _resolve_contact(self, tenant: XeroTenant, ref: Any) -> dict[str, Any]:
        if not isinstance(ref, dict):
            raise _Invalid("A Contact must be specified for this type of transaction")
        if ref.get("ContactID"):
            contact = tenant.contacts.get(str(ref["ContactID"]))
            if contact is None:
                raise _Invalid("Contact ID is not valid")
            return contact
        number = ref.get("ContactNumber")
        if number:
            for contact in tenant.contacts.values():
                if contact.get("ContactNumber") == number:
                    return contact
        name = str(ref.get("Name") or "").strip()
        if name:
            for contact in tenant.contacts.values():
                if contact["Name"].lower() == name.lower():
                    if number and contact.get("ContactNumber") not in (None, number):
                        raise _Invalid(
                            f"The contact name {name} is already assigned to another contact. "
                            "The contact name must be unique across all active contacts."
                        )
                    return contact
            return self._save_contact(tenant, dict(ref), upsert=False)
        raise _Invalid("A Contact must be specified for this type of transaction")

    # -- items -----------------------------------------------------------------------
    @route("GET", _API + r"/Items")
    def _get_items(self, request: httpx.Request) -> httpx.Response:
        rows = _filter(list(self._tenant(request).items.values()), request)
        return _respond(200, {"Items": rows})

    @route("PUT", _API + r"/Items")
    @route("POST", _API + r"/Items")
    def _put_items(self, request: httpx.Request) -> httpx.Response:
        tenant = self._tenant(request)
        upsert = request.method == "POST"

        def save(data: dict[str, Any]) -> dict[str, Any]:
            code = str(data.get("Code") or "")
            if not code:
                raise _Invalid("Item code must be specified")
            if len(code) > 30:
                raise _Invalid("The Item Code must not exceed 30 characters in length.")
            if len(str(data.get("Name") or "")) > 50:
                raise _Invalid("The Item Name must not exceed 50 characters in length.")
            existing = next((i for i in tenant.items.values() if i["Code"] == code), None)
            if existing is not None and not upsert:
                raise _Invalid(f"Item code '{code}' already exists")
            sales = data.get("SalesDetails") or {}
            if sales.get("TaxType") and sales["TaxType"] not in tenant.tax_rates:
                raise _Invalid(
                    f"The TaxType code '{sales['TaxType']}' does not exist or cannot be used "
                    "for this type of transaction."
                )
            item = existing or {"ItemID": str(uuid.uuid4())}
            item.update({k: v for k, v in data.items() if k != "ItemID"})
            item["UpdatedDateUTC"] = _ms_date(datetime.now(UTC))
            tenant.items[item["ItemID"]] = item
            return item

        return self._bulk(request, "Items", save)

    # -- invoices --------------------------------------------------------------------
    @route("GET", _API + r"/Invoices")
    def _get_invoices(self, request: httpx.Request) -> httpx.Response:
        tenant = self._tenant(request)
        rows = list(tenant.invoices.values())
        numbers = request.url.params.get("InvoiceNumbers")
        if numbers:
            wanted = set(numbers.split(","))
            rows = [r for r in rows if r.get("InvoiceNumber") in wanted]
        ids = request.url.params.get("IDs")
        if ids:
            wanted_ids = set(ids.split(","))
            rows = [r for r in rows if r["InvoiceID"] in wanted_ids]
        statuses = request.url.params.get("Statuses")
        if statuses:
            rows = [r for r in rows if r["Status"] in statuses.split(",")]
        rows = _filter(rows, request)
        paged = "page" in request.url.params
        rows, pagination = _page(rows, request)
        out = [r if paged else {k: v for k, v in r.items() if k != "LineItems"} for r in rows]
        body: dict[str, Any] = {"Invoices": out}
        if pagination:
            body["pagination"] = pagination
        return _respond(200, body)

    @route("GET", _API + r"/Invoices/" + _ID)
    def _get_invoice(self, request: httpx.Request, ident: str) -> httpx.Response:
        invoice = self._tenant(request).invoices.get(ident)
        if invoice is None:
            return _not_found()
        return _respond(200, {"Invoices": [invoice]})

    @route("PUT", _API + r"/Invoices")
    def _put_invoices(self, request: httpx.Request) -> httpx.Response:
        tenant = self._tenant(request)
        return self._bulk(request, "Invoices", lambda inv: self._create_invoice(tenant, inv))

    @route("POST", _API + r"/Invoices")
    def _post_invoices(self, request: httpx.Request) -> httpx.Response:
        tenant = self._tenant(request)

        def save(data: dict[str, Any]) -> dict[str, Any]:
            ident = str(data.get("InvoiceID") or "")
            if ident and ident in tenant.invoices:
                return self._update_invoice(tenant, tenant.invoices[ident], data)
            return self._create_invoice(tenant, data)

        return self._bulk(request, "Invoices", save)

    @route("POST", _API + r"/Invoices/" + _ID)
    def _post_invoice(self, request: httpx.Request, ident: str) -> httpx.Response:
        tenant = self._tenant(request)
        invoice = tenant.invoices.get(ident)
        if invoice is None:
            return _not_found()
        return self._bulk(request, "Invoices", lambda d: self._update_invoice(tenant, invoice, d))

    def _lines(
        self, tenant: XeroTenant, items: Any, amount_types: str
    ) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
        if not isinstance(items, list) or not items:
            raise _Invalid("At least one line item is required")
        out = []
        sub_total = total_tax = Decimal(0)
        for raw in items:
            line = dict(raw)
            line.setdefault("LineItemID", str(uuid.uuid4()))
            quantity = _dec(line.get("Quantity", 1))
            unit = _dec(line.get("UnitAmount"))
            discount_amount = _dec(line.get("DiscountAmount"))
            discount_rate = _dec(line.get("DiscountRate"))
            computed = _cents(quantity * unit * (1 - discount_rate / 100)) - discount_amount
            if "LineAmount" in raw and raw["LineAmount"] is not None:
                given = _dec(raw["LineAmount"])
                if "UnitAmount" in raw and _cents(given) != _cents(computed):
                    raise _Invalid(
                        f"The line total {given} does not match the quantity x unit amount "
                        f"less discount ({computed})"
                    )
                computed = given
            code = line.get("ItemCode")
            if code and not any(i["Code"] == code for i in tenant.items.values()):
                raise _Invalid(f"Item code '{code}' is not valid")
            account = line.get("AccountCode")
            if account and account not in tenant.accounts:
                raise _Invalid(f"Account code '{account}' is not a valid code for this document.")
            tax_type = str(line.get("TaxType") or "NONE")
            rate_row = tenant.tax_rates.get(tax_type)
            if rate_row is None:
                raise _Invalid(
                    f"The TaxType code '{tax_type}' does not exist or cannot be used for "
                    "this type of transaction."
                )
            rate = _dec(rate_row["EffectiveRate"])
            if amount_types == "NoTax":
                tax = Decimal(0)
            elif amount_types == "Inclusive":
                tax = _cents(computed * rate / (100 + rate))
            else:
                tax = _cents(computed * rate / 100)
            if raw.get("TaxAmount") is not None:
                override = _dec(raw["TaxAmount"])
                if abs(override - tax) > _CENT:
                    raise _Invalid(
                        f"The TaxAmount {override} is too far from the calculated tax {tax}"
                    )
                tax = override
            line.update(
                {
                    "Quantity": quantity,
                    "UnitAmount": unit,
                    "LineAmount": _cents(computed),
                    "TaxAmount": tax,
                    "TaxType": tax_type,
                }
            )
            sub_total += computed - tax if amount_types == "Inclusive" else computed
            total_tax += tax
            out.append(line)
        return out, _cents(sub_total), total_tax

    def _create_invoice(self, tenant: XeroTenant, data: dict[str, Any]) -> dict[str, Any]:
        kind = data.get("Type")
        if kind not in ("ACCREC", "ACCPAY"):
            raise _Invalid("Invoice Type must be specified (ACCREC or ACCPAY)")
        number = str(data.get("InvoiceNumber") or "")
        if len(number) > 255:
            raise _Invalid("Invoice number must be 255 characters or fewer")
        if kind == "ACCREC" and number:
            for other in tenant.invoices.values():
                if other.get("InvoiceNumber") == number and other["Status"] != "DELETED":
                    raise _Invalid("Invoice # must be unique.")
        status = str(data.get("Status") or "DRAFT")
        if status not in _ACCREC_STATUSES:
            raise _Invalid(f"Invoice Status '{status}' is not valid for a new invoice")
        amount_types = str(data.get("LineAmountTypes") or "Exclusive")
        if amount_types not in ("Exclusive", "Inclusive", "NoTax"):
            raise _Invalid("LineAmountTypes must be Exclusive, Inclusive or NoTax")
        lines, sub_total, total_tax = self._lines(tenant, data.get("LineItems"), amount_types)
        contact = self._resolve_contact(tenant, data.get("Contact"))
        total = sub_total + total_tax
        if not number and kind == "ACCREC":
            number = f"INV-{len(tenant.invoices) + 1:04d}"
        day = str(data.get("Date") or datetime.now(UTC).date().isoformat())
        invoice: dict[str, Any] = {
            "Type": kind,
            "InvoiceID": str(uuid.uuid4()),
            "InvoiceNumber": number,
            "Reference": data.get("Reference") or "",
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "Date": _day_ms(day),
            "LineAmountTypes": amount_types,
            "LineItems": lines,
            "SubTotal": sub_total,
            "TotalTax": total_tax,
            "Total": total,
            "AmountDue": total,
            "AmountPaid": Decimal(0),
            "AmountCredited": Decimal(0),
            "CurrencyCode": data.get("CurrencyCode") or "EUR",
            "CurrencyRate": Decimal(1),
            "Status": status,
            "Payments": [],
            "CreditNotes": [],
            "HasErrors": False,
            "IsDiscounted": any(_dec(line.get("DiscountAmount")) for line in lines),
            "UpdatedDateUTC": _ms_date(datetime.now(UTC)),
        }
        if data.get("DueDate"):
            invoice["DueDate"] = _day_ms(str(data["DueDate"]))
        tenant.invoices[invoice["InvoiceID"]] = invoice
        self._event(tenant, "INVOICE", "CREATE", invoice["InvoiceID"])
        return invoice

    def _update_invoice(
        self, tenant: XeroTenant, invoice: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        status = data.get("Status")
        if status == "VOIDED":
            if invoice["Status"] not in ("AUTHORISED", "VOIDED"):
                raise _Invalid("Only AUTHORISED invoices can be voided")
            if invoice["Payments"]:
                raise _Invalid(
                    "This document cannot be voided while it has payments allocated to it"
                )
        elif status == "DELETED":
            if invoice["Status"] not in ("DRAFT", "SUBMITTED", "DELETED"):
                raise _Invalid("Only DRAFT or SUBMITTED invoices can be deleted")
        elif status is not None and status not in _ACCREC_STATUSES:
            raise _Invalid(f"Invoice Status '{status}' cannot be set")
        if "LineItems" in data:
            if invoice["Status"] in ("PAID", "VOIDED", "DELETED"):
                raise _Invalid("This invoice cannot be edited")
            # As Xero does: lines without a LineItemID are new, existing lines left out
            # of the update are deleted.
            lines, sub_total, total_tax = self._lines(
                tenant, data["LineItems"], invoice["LineAmountTypes"]
            )
            invoice.update(
                LineItems=lines,
                SubTotal=sub_total,
                TotalTax=total_tax,
                Total=sub_total + total_tax,
                AmountDue=sub_total + total_tax - invoice["AmountPaid"] - invoice["AmountCredited"],
            )
        if status is not None:
            invoice["Status"] = status
            if status in ("VOIDED", "DELETED"):
                invoice["AmountDue"] = Decimal(0)
        for key in ("Reference", "DueDate"):
            if key in data:
                invoice[key] = data[key]
        invoice["UpdatedDateUTC"] = _ms_date(datetime.now(UTC))
        self._event(tenant, "INVOICE", "UPDATE", invoice["InvoiceID"])
        return invoice

    # -- payments --------------------------------------------------------------------
    @route("GET", _API + r"/Payments")
    def _get_payments(self, request: httpx.Request) -> httpx.Response:
        rows = _filter(list(self._tenant(request).payments.values()), request)
        rows, pagination = _page(rows, request)
        return _respond(
            200, {"Payments": rows, **({"pagination": pagination} if pagination else {})}
        )

    @route("PUT", _API + r"/Payments")
    @route("POST", _API + r"/Payments")
    def _put_payments(self, request: httpx.Request) -> httpx.Response:
        tenant = self._tenant(request)
        return self._bulk(request, "Payments", lambda p: self._create_payment(tenant, p))

    def _create_payment(self, tenant: XeroTenant, data: dict[str, Any]) -> dict[str, Any]:
        amount = _dec(data.get("Amount"))
        if amount <= 0:
            raise _Invalid("Payment amount must be greater than zero")
        account_ref = data.get("Account") or {}
        account = tenant.accounts.get(str(account_ref.get("Code") or "")) or next(
            (a for a in tenant.accounts.values() if a["AccountID"] == account_ref.get("AccountID")),
            None,
        )
        if account is None or not account["EnablePaymentsToAccount"]:
            raise _Invalid("Account code is not a valid bank account or payments are not enabled")
        payment: dict[str, Any] = {
            "PaymentID": str(uuid.uuid4()),
            "Date": _day_ms(str(data.get("Date") or datetime.now(UTC).date().isoformat())),
            "Amount": amount,
            "Reference": data.get("Reference") or "",
            "Status": "AUTHORISED",
            "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
            "UpdatedDateUTC": _ms_date(datetime.now(UTC)),
        }
        if data.get("Invoice"):
            invoice = tenant.invoices.get(str((data["Invoice"] or {}).get("InvoiceID") or ""))
            if invoice is None:
                raise _Invalid("Invoice could not be found")
            if invoice["Status"] != "AUTHORISED":
                raise _Invalid("Payments can only be made against Authorised documents")
            if amount > invoice["AmountDue"]:
                raise _Invalid("Payment amount exceeds the amount outstanding on this document")
            invoice["AmountPaid"] += amount
            invoice["AmountDue"] -= amount
            if invoice["AmountDue"] == 0:
                invoice["Status"] = "PAID"
            invoice["Payments"].append(
                {"PaymentID": payment["PaymentID"], "Amount": amount, "Date": payment["Date"]}
            )
            invoice["UpdatedDateUTC"] = payment["UpdatedDateUTC"]
            payment["PaymentType"] = "ACCRECPAYMENT"
            payment["Invoice"] = {
                "InvoiceID": invoice["InvoiceID"],
                "InvoiceNumber": invoice["InvoiceNumber"],
            }
        elif data.get("CreditNote"):
            note = tenant.credit_notes.get(
                str((data["CreditNote"] or {}).get("CreditNoteID") or "")
            )
            if note is None:
                raise _Invalid("Credit note could not be found")
            if amount > note["RemainingCredit"]:
                raise _Invalid("Payment amount exceeds the remaining credit")
            note["RemainingCredit"] -= amount
            if note["RemainingCredit"] == 0:
                note["Status"] = "PAID"
            note["Payments"].append({"PaymentID": payment["PaymentID"], "Amount": amount})
            payment["PaymentType"] = "ARCREDITPAYMENT"
            payment["CreditNote"] = {"CreditNoteID": note["CreditNoteID"]}
        else:
            raise _Invalid("A payment must be made against an Invoice or a CreditNote")
        tenant.payments[payment["PaymentID"]] = payment
        return payment

    # -- credit notes ----------------------------------------------------------------
    @route("GET", _API + r"/CreditNotes")
    def _get_credit_notes(self, request: httpx.Request) -> httpx.Response:
        rows = _filter(list(self._tenant(request).credit_notes.values()), request)
        rows, pagination = _page(rows, request)
        return _respond(
            200, {"CreditNotes": rows, **({"pagination": pagination} if pagination else {})}
        )

    @route("PUT", _API + r"/CreditNotes")
    def _put_credit_notes(self, request: httpx.Request) -> httpx.Response:
        tenant = self._tenant(request)
        return self._bulk(request, "CreditNotes", lambda c: self._create_credit_note(tenant, c))

    def _create_credit_note(self, tenant: XeroTenant, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("Type") not in ("ACCRECCREDIT", "ACCPAYCREDIT"):
            raise _Invalid("CreditNote Type must be ACCRECCREDIT or ACCPAYCREDIT")
        number = str(data.get("CreditNoteNumber") or "")
        if number and any(
            c.get("CreditNoteNumber") == number for c in tenant.credit_notes.values()
        ):
            raise _Invalid("Credit Note # must be unique.")
        amount_types = str(data.get("LineAmountTypes") or "Exclusive")
        lines, sub_total, total_tax = self._lines(tenant, data.get("LineItems"), amount_types)
        contact = self._resolve_contact(tenant, data.get("Contact"))
        total = sub_total + total_tax
        note: dict[str, Any] = {
            "Type": data["Type"],
            "CreditNoteID": str(uuid.uuid4()),
            "CreditNoteNumber": number or f"CN-{len(tenant.credit_notes) + 1:04d}",
            "Reference": data.get("Reference") or "",
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "Date": _day_ms(str(data.get("Date") or datetime.now(UTC).date().isoformat())),
            "Status": str(data.get("Status") or "DRAFT"),
            "LineAmountTypes": amount_types,
            "LineItems": lines,
            "SubTotal": sub_total,
            "TotalTax": total_tax,
            "Total": total,
            "RemainingCredit": total,
            "CurrencyCode": data.get("CurrencyCode") or "EUR",
            "Allocations": [],
            "Payments": [],
            "HasErrors": False,
            "UpdatedDateUTC": _ms_date(datetime.now(UTC)),
        }
        tenant.credit_notes[note["CreditNoteID"]] = note
        self._event(tenant, "CREDITNOTE", "CREATE", note["CreditNoteID"])
        return note

    @route("PUT", _API + r"/CreditNotes/" + _ID + r"/Allocations")
    def _allocate(self, request: httpx.Request, ident: str) -> httpx.Response:
        tenant = self._tenant(request)
        note = tenant.credit_notes.get(ident)
        if note is None:
            return _not_found()

        def save(data: dict[str, Any]) -> dict[str, Any]:
            amount = _dec(data.get("Amount"))
            invoice = tenant.invoices.get(str((data.get("Invoice") or {}).get("InvoiceID") or ""))
            if invoice is None:
                raise _Invalid("Invoice could not be found")
            if not data.get("Date"):
                raise _Invalid("Allocation Date must be specified")
            if note["Status"] != "AUTHORISED":
                raise _Invalid("Only AUTHORISED credit notes can be allocated")
            if amount <= 0 or amount > note["RemainingCredit"]:
                raise _Invalid("Allocation amount exceeds the remaining credit")
            if amount > invoice["AmountDue"]:
                raise _Invalid("Allocation amount exceeds the amount due on the invoice")
            note["RemainingCredit"] -= amount
            if note["RemainingCredit"] == 0:
                note["Status"] = "PAID"
            invoice["AmountCredited"] += amount
            invoice["AmountDue"] -= amount
            if invoice["AmountDue"] == 0:
                invoice["Status"] = "PAID"
            allocation = {
                "AllocationID": str(uuid.uuid4()),
                "Amount": amount,
                "Date": _day_ms(str(data["Date"])),
                "Invoice": {
                    "InvoiceID": invoice["InvoiceID"],
                    "InvoiceNumber": invoice["InvoiceNumber"],
                },
                "CreditNote": {"CreditNoteID": note["CreditNoteID"]},
            }
            note["Allocations"].append(allocation)
            invoice["CreditNotes"].append(
                {"CreditNoteID": note["CreditNoteID"], "AppliedAmount": amount}
            )
            return allocation

        return self._bulk(request, "Allocations", save)

    # -- bank transactions (processor fees) -----------------------------------------
    @route("GET", _API + r"/BankTransactions")
    def _get_bank_transactions(self, request: httpx.Request) -> httpx.Response:
        rows = _filter(list(self._tenant(request).bank_transactions.values()), request)
        return _respond(200, {"BankTransactions": rows})

    @route("PUT", _API + r"/BankTransactions")
    def _put_bank_transactions(self, request: httpx.Request) -> httpx.Response:
        tenant = self._tenant(request)

        def save(data: dict[str, Any]) -> dict[str, Any]:
            if data.get("Type") not in ("SPEND", "RECEIVE"):
                raise _Invalid("BankTransaction Type must be SPEND or RECEIVE")
            bank = tenant.accounts.get(str((data.get("BankAccount") or {}).get("Code") or ""))
            if bank is None or bank["Type"] != "BANK":
                raise _Invalid("BankAccount must be a bank account")
            amount_types = str(data.get("LineAmountTypes") or "Exclusive")
            lines, sub_total, total_tax = self._lines(tenant, data.get("LineItems"), amount_types)
            contact = self._resolve_contact(tenant, data.get("Contact"))
            row = {
                "BankTransactionID": str(uuid.uuid4()),
                "Type": data["Type"],
                "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
                "BankAccount": {"AccountID": bank["AccountID"], "Code": bank["Code"]},
                "Date": _day_ms(str(data.get("Date") or datetime.now(UTC).date().isoformat())),
                "Reference": data.get("Reference") or "",
                "LineAmountTypes": amount_types,
                "LineItems": lines,
                "SubTotal": sub_total,
                "TotalTax": total_tax,
                "Total": sub_total + total_tax,
                "Status": "AUTHORISED",
                "UpdatedDateUTC": _ms_date(datetime.now(UTC)),
            }
            tenant.bank_transactions[row["BankTransactionID"]] = row
            return row

        return self._bulk(request, "BankTransactions", save)

    # -- the bulk write shape shared by every PUT/POST -------------------------------
    def _bulk(
        self,
        request: httpx.Request,
        key: str,
        save: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> httpx.Response:
        try:
            body = json.loads(request.content, parse_float=Decimal) if request.content else None
        except ValueError:
            return _respond(400, _error("The request body is not valid JSON"))
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            items = [body] if isinstance(body, dict) and body else None
            if items is None:
                return _respond(400, _error(f"The request must contain {key}"))
        else:
            items = body[key]
        summarize = request.url.params.get("summarizeErrors", "true").lower() != "false"
        saved: list[dict[str, Any]] = []
        failed = False
        for item in items:
            try:
                saved.append(save(item if isinstance(item, dict) else {}))
            except _Invalid as exc:
                failed = True
                echo = dict(item) if isinstance(item, dict) else {}
                echo.update(
                    HasErrors=True,
                    StatusAttributeString="ERROR",
                    ValidationErrors=[{"Message": str(exc)}],
                )
                if key == "Contacts":
                    echo["HasValidationErrors"] = True
                    echo.pop("HasErrors", None)
                saved.append(echo)
        if failed and summarize:
            elements = [e for e in saved if e.get("ValidationErrors")]
            return _respond(
                400,
                {
                    "ErrorNumber": 10,
                    "Type": "ValidationException",
                    "Message": "A validation exception occurred",
                    "Elements": elements,
                },
            )
        for item in saved:
            item.setdefault("StatusAttributeString", "OK")
        return _respond(200, {key: saved})

    # -- webhooks --------------------------------------------------------------------
    def deliver_events(self, url: str | None = None) -> int | None:
        """POST the pending events as one signed delivery; returns the status answered."""
        target = url or self.webhook_url
        if target is None or not self.pending_events:
            return None
        body = _dumps(
            {
                "events": self.pending_events,
                "firstEventSequence": 1,
                "lastEventSequence": len(self.pending_events),
                "entropy": secrets.token_hex(10).upper(),
            }
        )
        self.pending_events = []
        signature = sign_hmac_sha256(self.webhook_key, body)
        delivery = self.deliver_webhook(
            target, body, {"Content-Type": "application/json", "x-xero-signature": signature}
        )
        return delivery.status

    def intent_to_receive(self, url: str) -> bool:
        """Xero's intent-to-receive: a signed and a badly signed probe; 200 then 401."""
        body = _dumps(
            {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "X"}
        )
        good = self.deliver_webhook(
            url, body, {"x-xero-signature": sign_hmac_sha256(self.webhook_key, body)}
        )
        bad = self.deliver_webhook(
            url, body, {"x-xero-signature": sign_hmac_sha256(self.webhook_key + "x", body)}
        )
        return good.status == 200 and bad.status == 401


# -- module helpers ------------------------------------------------------------------
def _error(message: str) -> dict[str, Any]:
    return {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": message,
        "Elements": [{"ValidationErrors": [{"Message": message}]}],
    }


def _not_found() -> httpx.Response:
    return httpx.Response(404, content=b"The resource you're looking for cannot be found")


def _field(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _filter(rows: list[dict[str, Any]], request: httpx.Request) -> list[dict[str, Any]]:
    where = request.url.params.get("where")
    if where:
        for term in re.split(r"\s+(?:AND|&&)\s+", where.strip()):
            match = _WHERE_TERM.fullmatch(term)
            if match is None:
                raise _BadWhere(where)
            wanted = match.group("text") if match.group("guid") is None else match.group("guid")
            rows = [r for r in rows if str(_field(r, match.group("field")) or "") == wanted]
    since_header = request.headers.get("if-modified-since")
    if since_header:
        since = _parse_since(since_header)
        if since is not None:
            rows = [r for r in rows if _updated(r) > since]
    return rows


class _BadWhere(Exception):
    pass


def _parse_since(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _updated(row: dict[str, Any]) -> datetime:
    match = re.search(r"-?\d+", str(row.get("UpdatedDateUTC") or ""))
    ms = int(match.group(0)) if match else 0
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _page(
    rows: list[dict[str, Any]], request: httpx.Request
) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    if "page" not in request.url.params:
        return rows, None
    page = max(1, int(request.url.params.get("page") or 1))
    size = min(1000, max(1, int(request.url.params.get("pageSize") or 100)))
    start = (page - 1) * size
    count = len(rows)
    return rows[start : start + size], {
        "page": page,
        "pageSize": size,
        "pageCount": (count + size - 1) // size,
        "itemCount": count,
    }
