"""Salesforce (REST): contacts upserted by our external id, leads, deletion, limits, OAuth.

Contacts go through sObject Collections upsert (``PATCH /composite/sobjects/Contact/
{external id field}``), 200 per call, safe to retry; the answer is HTTP 200 with one
result per record, in input order. Every response's ``Sforce-Limit-Info`` is read, and
403 ``REQUEST_LIMIT_EXCEEDED`` is throttling. Auth is the web-server flow (through a
:class:`TokenManager`) or the JWT bearer flow; both call the token's ``instance_url``.

Set-up: the contact fields we write must exist in the org (see :data:`CUSTOM_FIELDS`);
``check()`` reports any that are missing. The external id field must be marked
"External ID" and "Unique".
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring as _json_string
from typing import Any, Final, Literal
from xml.etree import ElementTree

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, SecretStr

from dixis_integrations.auth.oauth import OAuth2Auth, OAuth2Config, TokenManager
from dixis_integrations.crm._wire import body_of, exact_amount, next_utc_midnight
from dixis_integrations.crm.contacts import (
    chunks,
    merge_results,
    rate_limited,
    screen,
    upsert_results,
    validate_contact,
    validate_lead,
)
from dixis_integrations.crm.fingerprints import ContactFingerprints, send_changed
from dixis_integrations.errors import (
    AuthError,
    ConfigurationError,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    ReauthorizationRequired,
    TransientError,
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http.driver import Operation
from dixis_integrations.http.endpoint import Endpoint, Limits, Window, default_classify
from dixis_integrations.http.redact import register_secret
from dixis_integrations.models._types import normalize_email
from dixis_integrations.models.crm import (
    ContactChange,
    ContactChangePage,
    CRMContact,
    CRMEvent,
    CRMEventKind,
    ErasureResult,
    Lead,
    LeadStatus,
    UpsertResult,
    UpsertStatus,
)
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.webhooks import WebhookRequest

__all__ = [
    "BATCH_SIZE",
    "CUSTOM_FIELDS",
    "OUTBOUND_ACK",
    "Salesforce",
    "SalesforceConfig",
    "SalesforceJWTAuth",
    "SalesforceOAuth",
    "build_contact_record",
    "build_lead_record",
    "build_upsert_collection",
    "classify",
    "encode_upsert_collection",
    "oauth_config",
    "parse_api_usage",
    "parse_changes",
    "parse_upsert_collection",
    "sign_rs256",
    "verify_outbound_message",
]

VENDOR: Final = "salesforce"
BATCH_SIZE: Final = 200
"""Records per sObject Collections call (Salesforce's maximum)."""
JWT_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"

CUSTOM_FIELDS: Final[dict[str, str]] = {
    "Dixis_Customer_Id__c": "Text(64), External ID, Unique",
    "Dixis_Total_Orders__c": "Number(18, 0)",
    "Dixis_Total_Spent__c": "Currency(16, 2)",
    "Dixis_Last_Order_Date__c": "Date",
    "Dixis_Segment__c": "Text(80)",
    "Dixis_Acquisition_Source__c": "Text(80)",
    "Dixis_Marketing_Consent__c": "Text(20)",
}
"""Custom Contact fields to create in Setup (API name -> type) before the first sync."""

Edition = Literal["production", "developer"]


class SalesforceConfig(BaseModel):
    """How to reach one Salesforce org.

    ``base_url`` is the login host (token endpoint) and, until a token names its
    ``instance_url``, where API calls go. ``access_token`` is a ready session token; the
    JWT bearer flow needs ``client_id``, ``username`` and ``private_key`` (PEM).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "https://login.salesforce.com"
    api_version: str = "59.0"
    access_token: SecretStr | None = None
    instance_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    private_key: SecretStr | None = None
    external_id_field: str = "Dixis_Customer_Id__c"
    edition: Edition = "production"
    daily_api_requests: int = 100_000
    allow_duplicates: bool = False
    converted_status: str = "Closed - Converted"


def oauth_config(
    client_id: str,
    client_secret: SecretStr,
    redirect_uri: str,
    *,
    login_url: str = "https://login.salesforce.com",
) -> OAuth2Config:
    """The web-server flow settings of a connected app (``instance_url`` lands in
    ``Token.extra``)."""
    return OAuth2Config(
        provider=VENDOR,
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=f"{login_url.rstrip('/')}/services/oauth2/authorize",
        token_url=f"{login_url.rstrip('/')}/services/oauth2/token",
        scopes=("api", "refresh_token"),
        redirect_uri=redirect_uri,
        token_endpoint_auth="client_secret_post",  # noqa: S106 - a method name
    )


def _to_instance(request: httpx.Request, instance_url: str | None) -> None:
    if not instance_url:
        return
    target = httpx.URL(instance_url)
    request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
    request.headers["Host"] = target.netloc.decode()


class SalesforceOAuth(httpx.Auth):
    """Bearer auth from a :class:`TokenManager` that sends each call to the token's
    ``instance_url``; on a 401 it refreshes once and retries."""

    requires_request_body = True

    def __init__(self, manager: TokenManager) -> None:
        self.manager = manager

    def __repr__(self) -> str:
        return f"SalesforceOAuth({self.manager!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.manager.token()
        _to_instance(request, token.extra.get("instance_url"))
        request.headers["Authorization"] = f"Bearer {token.access_token.get_secret_value()}"
        response = yield request
        if response.status_code == 401:
            fresh = self.manager.refresh(rejected=token)
            _to_instance(request, fresh.extra.get("instance_url"))
            request.headers["Authorization"] = f"Bearer {fresh.access_token.get_secret_value()}"
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> Any:
        token = await self.manager.atoken()
        _to_instance(request, token.extra.get("instance_url"))
        request.headers["Authorization"] = f"Bearer {token.access_token.get_secret_value()}"
        response = yield request
        if response.status_code == 401:
            fresh = await self.manager.arefresh(rejected=token)
            _to_instance(request, fresh.extra.get("instance_url"))
            request.headers["Authorization"] = f"Bearer {fresh.access_token.get_secret_value()}"
            yield request


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign_rs256(claims: Mapping[str, Any], private_key: SecretStr) -> str:
    """A compact JWS (RS256) of ``claims``, signed with a PEM private key.

    Raises:
        ConfigurationError: the key is not an RSA private key in PEM.
    """
    return _sign_with(_load_rsa_key(private_key), claims)


def _load_rsa_key(private_key: SecretStr) -> rsa.RSAPrivateKey:
    """The RSA private key in ``private_key`` (PEM), checked: about 60 ms of CPU."""
    try:
        key = serialization.load_pem_private_key(
            private_key.get_secret_value().encode(), password=None
        )
    except (ValueError, TypeError):
        raise ConfigurationError("is not a PEM private key", key="private_key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("must be an RSA key", key="private_key")
    return key


def _sign_with(key: rsa.RSAPrivateKey, claims: Mapping[str, Any]) -> str:
    head = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(dict(claims), separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode()
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(signature)}"


class SalesforceJWTAuth(httpx.Auth):
    """The OAuth 2.0 JWT bearer flow (no refresh token: a new assertion when needed).

    The assertion is RS256-signed with ``iss`` = client id, ``sub`` = username,
    ``aud`` = the login host, valid three minutes. The token response's
    ``instance_url`` is kept and every call goes there.
    """

    requires_request_body = True
    requires_response_body = True  # the token answer is read inside the flow

    def __init__(
        self,
        *,
        client_id: str,
        username: str,
        private_key: SecretStr,
        login_url: str = "https://login.salesforce.com",
        audience: str | None = None,
        session_seconds: float = 7200.0,
    ) -> None:
        self.client_id = client_id
        self.username = username
        self._key = private_key
        self.login_url = login_url.rstrip("/")
        # ``aud`` is the login host (test.salesforce.com for sandboxes), even when the
        # token endpoint is called on a My Domain host.
        self.audience = (audience or login_url).rstrip("/")
        self.session_seconds = session_seconds
        self._lock = threading.Lock()
        self._fetching = threading.Lock()  # one token request at a time across threads
        self._rsa: rsa.RSAPrivateKey | None = None  # parsed once: loading costs ~60 ms
        self._token: tuple[SecretStr, str, float] | None = None
        self.token_requests = 0

    def __repr__(self) -> str:
        return f"SalesforceJWTAuth(client_id={self.client_id!r}, username={self.username!r})"

    def assertion(self, now: float | None = None) -> str:
        """A signed JWT assertion for the token endpoint."""
        now = time.time() if now is None else now
        claims = {"iss": self.client_id, "sub": self.username, "aud": self.audience,
                  "exp": int(now) + 180}  # fmt: skip
        key = self._rsa
        if key is None:
            key = self._rsa = _load_rsa_key(self._key)
        return _sign_with(key, claims)

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            f"{self.login_url}/services/oauth2/token",
            data={"grant_type": JWT_GRANT, "assertion": self.assertion()},
        )

    def _keep(self, response: httpx.Response) -> tuple[SecretStr, str]:
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code != 200 or "access_token" not in data:
            code = str(data.get("error") or response.status_code)
            raise ReauthorizationRequired(
                f"JWT bearer grant refused: {code}", vendor=VENDOR, vendor_code=code
            )
        token = SecretStr(str(data["access_token"]))
        register_secret(token.get_secret_value())
        instance = str(data.get("instance_url") or self.login_url)
        self._token = (token, instance, time.monotonic() + self.session_seconds * 0.9)
        self.token_requests += 1
        return token, instance

    def _current(self) -> tuple[SecretStr, str] | None:
        with self._lock:
            if self._token is not None and self._token[2] > time.monotonic():
                return self._token[0], self._token[1]
            return None

    def _flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        current = self._current()
        if current is None:
            current = self._keep((yield self._token_request()))
        _to_instance(request, current[1])
        request.headers["Authorization"] = f"Bearer {current[0].get_secret_value()}"
        response = yield request
        if response.status_code == 401:
            token, instance = self._keep((yield self._token_request()))
            _to_instance(request, instance)
            request.headers["Authorization"] = f"Bearer {token.get_secret_value()}"
            yield request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        return self._flow(request)

    def _single_flight(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if self._current() is None:
            with self._fetching:  # a sync flow runs on its caller's thread: safe to hold
                if self._current() is None:
                    self._keep((yield self._token_request()))
        yield from self._flow(request)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """As :meth:`auth_flow`, but threads that find no token wait for the one getting
        it, instead of each signing an assertion and asking for a token of its own."""
        request.read()  # requires_request_body, as httpx's own sync_auth_flow does
        flow = self._single_flight(request)
        try:
            outgoing = next(flow)
            while True:
                response = yield outgoing
                response.read()  # requires_response_body
                try:
                    outgoing = flow.send(response)
                except StopIteration:
                    break
        finally:
            flow.close()  # abandoned mid-token-request: the lock is released here


# -- errors ---------------------------------------------------------------------------------

_USAGE_HEADER: Final = "sforce-limit-info"
_JSON: Final = {"Content-Type": "application/json"}


def parse_api_usage(value: str | None) -> tuple[int, int] | None:
    """``api-usage=10018/100000`` as ``(used, allowed)``."""
    if not value:
        return None
    for part in value.split(","):
        key, _, usage = part.strip().partition("=")
        if key == "api-usage" and "/" in usage:
            used, _, allowed = usage.partition("/")
            if used.isdigit() and allowed.isdigit():
                return int(used), int(allowed)
    return None


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """Salesforce's error arrays as typed errors (collection results are HTTP 200)."""
    status = response.status_code
    if status < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return default_classify(response, endpoint)
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], Mapping) else None
    if first is None:
        return default_classify(response, endpoint)
    code = str(first.get("errorCode") or "")
    message = f"{code}: {first.get('message', '')}"
    common: dict[str, Any] = {"vendor": VENDOR, "status_code": status, "vendor_code": code}
    if code == "REQUEST_LIMIT_EXCEEDED":
        # No Retry-After: a rolling 24-hour allocation, or too many long requests at once.
        concurrent = "Concurrent" in str(first.get("message", ""))
        retry_at = datetime.now(UTC) + timedelta(seconds=5) if concurrent else next_utc_midnight()
        return RateLimited(message, retry_at=retry_at, scope="concurrent" if concurrent
                           else "daily", **common)  # fmt: skip
    if status == 401 or code == "INVALID_SESSION_ID":
        return AuthError(message, **common)
    if status == 403:
        return PermissionDenied(message, **common)
    if status == 404 or code == "NOT_FOUND":
        return NotFound(message, **common)
    if status == 300 or code == "DUPLICATE_VALUE" or code == "DUPLICATES_DETECTED":
        return Conflict(message, **common)
    if status >= 500:
        return TransientError(message, **common)
    fields = [str(f) for f in first.get("fields") or ()] or ["body"]
    errors = [FieldError((f,), str(first.get("message", "")), code=code) for f in fields]
    return ValidationRejected(message, errors=errors, **common)


# -- request building (pure) ----------------------------------------------------------------


def build_contact_record(contact: CRMContact, external_id_field: str) -> dict[str, Any]:
    """One Contact record for a collection upsert (numbers as JSON numbers, exact)."""
    record: dict[str, Any] = {
        "attributes": {"type": "Contact"},
        external_id_field: contact.reference,
        "LastName": contact.last_name,
        "Email": contact.email,
        "Dixis_Total_Orders__c": contact.total_orders,
        "Dixis_Total_Spent__c": exact_amount(contact.total_spent),
        "Dixis_Last_Order_Date__c": (
            contact.last_order_date.isoformat() if contact.last_order_date else None
        ),
        "Dixis_Segment__c": contact.segment,
        "Dixis_Acquisition_Source__c": contact.acquisition.channel if contact.acquisition else None,
        "Dixis_Marketing_Consent__c": contact.consent.status.value,
        "HasOptedOutOfEmail": not contact.consent.allows_marketing(),
    }
    if contact.first_name:
        record["FirstName"] = contact.first_name
    if contact.phone:
        record["Phone"] = contact.phone
    return record


def build_upsert_collection(
    contacts: Sequence[CRMContact], external_id_field: str
) -> dict[str, Any]:
    """The collection upsert body; ``allOrNone`` false so each record stands alone."""
    return {
        "allOrNone": False,
        "records": [build_contact_record(c, external_id_field) for c in contacts],
    }


def _text(value: str | None) -> str:
    return "null" if value is None else _json_string(value)


def encode_upsert_collection(contacts: Sequence[CRMContact], external_id_field: str) -> bytes:
    """The wire bytes of :func:`build_upsert_collection`, written directly.

    The same JSON value (a test pins the equality over varied contacts), with the money
    amount formatted once as an exact JSON number; each string goes through the json
    module's own C string encoder, so no input can break out of its quotes. This is the
    hot path of a bulk sync: about half the CPU of building dicts and serialising them.
    """
    head = '{"attributes":{"type":"Contact"},' + _json_string(external_id_field) + ":"
    records: list[str] = []
    for c in contacts:
        acquisition = c.acquisition
        day = "null" if c.last_order_date is None else f'"{c.last_order_date.isoformat()}"'
        optional = ""
        if c.first_name:
            optional += ',"FirstName":' + _json_string(c.first_name)
        if c.phone:
            optional += ',"Phone":' + _json_string(c.phone)
        records.append(
            f"{head}{_json_string(c.reference)}"
            f',"LastName":{_text(c.last_name)}'
            f',"Email":{_json_string(c.email)}'
            f',"Dixis_Total_Orders__c":{int(c.total_orders)}'
            f',"Dixis_Total_Spent__c":{exact_amount(c.total_spent):f}'
            f',"Dixis_Last_Order_Date__c":{day}'
            f',"Dixis_Segment__c":{_text(c.segment)}'
            f',"Dixis_Acquisition_Source__c":{_text(acquisition.channel if acquisition else None)}'
            f',"Dixis_Marketing_Consent__c":{_json_string(c.consent.status)}'  # a str itself
            f',"HasOptedOutOfEmail":{"false" if c.consent.allows_marketing() else "true"}'
            f"{optional}}}"
        )
    return ('{"allOrNone":false,"records":[' + ",".join(records) + "]}").encode()


def build_lead_record(lead: Lead) -> dict[str, Any]:
    """A Lead: ``LastName`` and ``Company`` are required by Salesforce."""
    record: dict[str, Any] = {
        "LastName": lead.last_name,
        "Company": lead.company,
        "Email": lead.email,
        "Status": "Open - Not Contacted",
    }
    for key, value in (
        ("FirstName", lead.first_name),
        ("Phone", lead.phone),
        ("LeadSource", lead.source),
    ):
        if value:
            record[key] = value
    return record


# -- response parsing (pure) ----------------------------------------------------------------


def parse_upsert_collection(
    contacts: Sequence[CRMContact], body: Sequence[Mapping[str, Any]]
) -> list[UpsertResult]:
    """Per-record results (same order as sent) of a collection upsert."""
    rows: list[dict[str, Any]] = []
    for contact, row in zip(contacts, body, strict=True):
        if row.get("success"):
            rows.append(
                {
                    "reference": contact.reference,
                    "status": UpsertStatus.CREATED if row.get("created") else UpsertStatus.UPDATED,
                    "external_id": str(row.get("id")),
                }
            )
            continue
        errors = list(row.get("errors") or ())
        first = errors[0] if errors else {}
        fields = ",".join(str(f) for f in first.get("fields") or ())
        reason = str(first.get("message", "rejected"))
        rows.append(
            {
                "reference": contact.reference,
                "status": UpsertStatus.REJECTED,
                "error_code": str(first.get("statusCode") or "error"),
                "reason": f"{fields}: {reason}" if fields else reason,
            }
        )
    return upsert_results(rows)


_CHANGE_FIELDS: Final = ("Id", "Email", "FirstName", "LastName", "Phone", "SystemModstamp")


def _sf_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"


def _parse_sf_time(text: str) -> datetime:
    """Salesforce's ``2026-03-14T09:30:00.000+0000`` as an aware UTC datetime."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]
    return datetime.fromisoformat(value).astimezone(UTC)


def parse_changes(
    records: Sequence[Mapping[str, Any]],
    deleted: Sequence[Mapping[str, Any]],
    latest: str,
) -> ContactChangePage:
    """Updated Contact records and ``deletedRecords`` as one page; ``latest`` is the cursor."""
    changes = [
        ContactChange(
            provider=VENDOR,
            external_id=str(r["Id"]),
            email=r.get("Email"),
            changed_at=_parse_sf_time(str(r.get("SystemModstamp") or latest)),
            properties={k: str(v) for k, v in r.items() if k != "attributes" and v is not None},
        )
        for r in records
    ]
    changes += [
        ContactChange(
            provider=VENDOR,
            external_id=str(d["id"]),
            deleted=True,
            changed_at=_parse_sf_time(str(d.get("deletedDate") or latest)),
        )
        for d in deleted
    ]
    return ContactChangePage(changes=tuple(changes), cursor=latest, has_more=False)


_OM_NS: Final = "{http://soap.sforce.com/2005/09/outbound}"
_SF_NS: Final = "{urn:sobject.enterprise.soap.sforce.com}"
OUTBOUND_ACK: Final = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<soapenv:Body><notificationsResponse "
    b'xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
    b"</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)
"""The answer an Outbound Message endpoint returns (text/xml) once it kept the events."""


def verify_outbound_message(
    body: bytes, *, organization_id: str, now: datetime | None = None
) -> list[CRMEvent]:
    """Parse a Salesforce Outbound Message (SOAP) and check it is from our org.

    Outbound Messages are not signed: Salesforce's guidance is to check the
    ``OrganizationId`` (done here, in constant time) and to accept them only over TLS,
    ideally with its client certificate. Documents with a DTD are refused outright.

    Raises:
        WebhookError: not an Outbound Message, or from another org.
    """
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise WebhookError("outbound message with a DTD refused", vendor=VENDOR)
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - DTDs refused above
    except ElementTree.ParseError:
        raise WebhookError("outbound message is not XML", vendor=VENDOR) from None
    notes = root.find(f".//{_OM_NS}notifications")
    org = notes.findtext(f"{_OM_NS}OrganizationId", "") if notes is not None else ""
    if notes is None or not hmac.compare_digest(org[:15].encode(), organization_id[:15].encode()):
        raise WebhookError("outbound message from another organisation", vendor=VENDOR)
    when = now or datetime.now(UTC)
    events: list[CRMEvent] = []
    for note in notes.findall(f"{_OM_NS}Notification"):
        sobject = note.find(f"{_OM_NS}sObject")
        if sobject is None:
            continue
        kind = sobject.get("{http://www.w3.org/2001/XMLSchema-instance}type", "sf:sObject")
        stamp = sobject.findtext(f"{_SF_NS}SystemModstamp")
        events.append(
            CRMEvent(
                provider=VENDOR,
                event_id=note.findtext(f"{_OM_NS}Id", ""),
                kind=CRMEventKind.UPDATED,
                object_type=kind.split(":")[-1],
                object_id=sobject.findtext(f"{_SF_NS}Id", ""),
                occurred_at=_parse_sf_time(stamp) if stamp else when,
                vendor_type="outbound_message",
            )
        )
    return events


# -- the adapter ----------------------------------------------------------------------------


class Salesforce:
    """The Salesforce CRM adapter (REST API, sObject Collections).

    Args:
        config: the org's settings.
        tenant: whose org it is (budgets are per tenant).
        auth: :class:`SalesforceOAuth` or :class:`SalesforceJWTAuth` (a plain
            :class:`~dixis_integrations.auth.OAuth2Auth` becomes a ``SalesforceOAuth`` on
            the same tokens, so calls go to the token's ``instance_url``); by default the
            JWT flow when its settings are present, else the static ``access_token``.
        time_scale: shrinks the rate windows to meet a time-scaled sandbox.
    """

    name = VENDOR
    oauth_token_endpoint_auth = "client_secret_post"  # noqa: S105 - a method name
    capabilities = frozenset(
        {
            Capability.BATCH,
            Capability.LEADS,
            Capability.ERASURE,
            Capability.CUSTOM_FIELDS,
            Capability.INCREMENTAL,
            Capability.WEBHOOKS,
        }
    )

    def __init__(
        self,
        config: SalesforceConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
        fingerprints: ContactFingerprints | None = None,
    ) -> None:
        for secret in (config.access_token, config.client_secret, config.private_key):
            if secret is not None:
                register_secret(secret.get_secret_value())
        if auth is None:
            auth = _default_auth(config)
        elif type(auth) is OAuth2Auth:
            auth = SalesforceOAuth(auth.manager)  # same tokens, calls to their instance_url
        self.config = config
        self.tenant = tenant
        self.fingerprints = fingerprints
        self.api = f"/services/data/v{config.api_version}"
        concurrency = 25 if config.edition == "production" else 5
        limits = Limits(
            windows=(Window(config.daily_api_requests, 86_400.0, "daily"),),
            concurrency=concurrency,
        ).scaled(time_scale)
        self.endpoint = Endpoint(
            vendor=VENDOR,
            base_url=config.instance_url or config.base_url,
            tenant=tenant,
            auth=auth,
            limits=limits,
            classify=classify,
            headers=(
                {"Sforce-Duplicate-Rule-Header": "allowSave=true"}
                if config.allow_duplicates
                else {}
            ),
            request_id_headers=("sforce-request-id",),
        )
        self.api_usage: tuple[int, int] | None = None

    def read_webhook(self, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
        """Verify (``options["organization_id"]``) and read an outbound message."""
        organization = options.get("organization_id")
        if not organization:
            raise ConfigurationError(
                "Salesforce outbound messages need organization_id",
                key="webhooks.salesforce.organization_id",
            )
        return list(verify_outbound_message(request.body, organization_id=str(organization)))

    def __repr__(self) -> str:
        return f"Salesforce(tenant={self.tenant!r}, base_url={self.endpoint.base_url!r})"

    def _note(self, response: httpx.Response) -> None:
        usage = parse_api_usage(response.headers.get(_USAGE_HEADER))
        if usage is not None:
            self.api_usage = usage

    def check(self) -> Operation[HealthStatus]:
        """The Contact fields we write exist, and how much of the daily allocation is left."""
        response = yield self.endpoint.request(
            "GET", f"{self.api}/sobjects/Contact/describe", operation="salesforce.describe"
        )
        self._note(response)
        names = {str(f.get("name")) for f in (body_of(response, VENDOR) or {}).get("fields", ())}
        wanted = (set(CUSTOM_FIELDS) - {"Dixis_Customer_Id__c"}) | {self.config.external_id_field}
        missing = sorted(wanted - names)
        left = self.api_usage[1] - self.api_usage[0] if self.api_usage else None
        return HealthStatus(
            name=VENDOR,
            ok=not missing,
            detail=f"missing Contact fields: {', '.join(missing)}" if missing else "",
            quota_remaining=left,
        )

    def _check_contact(self, contact: CRMContact) -> CRMContact:
        checked = validate_contact(contact, vendor=VENDOR)
        if not checked.last_name:
            raise InvalidInput(
                "contact refused",
                errors=(FieldError(("last_name",), "is required by Salesforce", code="missing"),),
                vendor=VENDOR,
            )
        return checked

    def upsert_contact(self, contact: CRMContact) -> Operation[UpsertResult]:
        """Create or update one Contact by our external id.

        Raises:
            InvalidInput: bad email or phone, or no last name (nothing is sent).
        """
        checked = self._check_contact(contact)
        results = yield from self._upsert_checked([checked])
        return results[0]

    def upsert_contacts(self, contacts: Sequence[CRMContact]) -> Operation[list[UpsertResult]]:
        """Bulk upsert, 200 per call, one result per contact in input order; contacts our
        checks refuse are ``REJECTED`` and not sent."""
        checked, refused = screen(contacts, self._check_contact)
        sent = (yield from self._send_changed(checked)) if checked else []
        return merge_results(len(contacts), refused, sent)

    def _send_changed(self, contacts: Sequence[CRMContact]) -> Operation[list[UpsertResult]]:
        """Through the fingerprint store when one is configured (``UNCHANGED`` skipped)."""
        return (
            yield from send_changed(
                self.name,
                self.tenant,
                contacts,
                self.fingerprints,
                lambda todo: self._upsert_checked(todo, partial=True),
            )
        )

    def _upsert_checked(
        self, contacts: Sequence[CRMContact], *, partial: bool = False
    ) -> Operation[list[UpsertResult]]:
        """Upsert in chunks. With ``partial``, a budget that runs out mid-bulk ends the run
        with the results obtained so far and ``rate_limited`` ones for the rest."""
        field = self.config.external_id_field
        out: list[UpsertResult] = []
        for chunk in chunks(contacts, BATCH_SIZE):
            try:
                response = yield self.endpoint.request(
                    "PATCH",
                    f"{self.api}/composite/sobjects/Contact/{field}",
                    operation="salesforce.contacts.upsert",
                    content=encode_upsert_collection(chunk, field),
                    headers=_JSON,
                    idempotent=True,  # an upsert by external id lands once
                )
            except RateLimited as exc:
                if not partial:
                    raise
                out.extend(rate_limited(c.reference, exc) for c in contacts[len(out) :])
                break
            except NotFound as exc:
                raise ConfigurationError(
                    f"the org has no external id field {field} on Contact ({exc.message}); "
                    "create the fields in salesforce.CUSTOM_FIELDS (check() lists them)",
                    key="external_id_field",
                    vendor=VENDOR,
                ) from exc
            self._note(response)
            out.extend(parse_upsert_collection(chunk, body_of(response, VENDOR) or []))
        return out

    def create_lead(self, lead: Lead) -> Operation[Lead]:
        """Insert a Lead.

        Raises:
            InvalidInput: no ``last_name`` or ``company`` (Salesforce requires them), or a
                bad email or phone; nothing is sent.
            Conflict: a duplicate rule matched (``DUPLICATES_DETECTED``).
        """
        checked = validate_lead(lead, required=("last_name", "company"), vendor=VENDOR)
        response = yield self.endpoint.request(
            "POST",
            f"{self.api}/sobjects/Lead",
            operation="salesforce.leads.create",
            json=build_lead_record(checked),
        )
        self._note(response)
        crm_id = str((body_of(response, VENDOR) or {})["id"])
        return checked.model_copy(update={"crm_id": crm_id, "provider": VENDOR})

    def convert_lead(self, lead: Lead) -> Operation[Lead]:
        """Convert the Lead (standard ``convertLead`` action) to an Account and Contact."""
        if lead.crm_id is None:
            raise InvalidInput(
                "lead has no CRM id", errors=(FieldError(("crm_id",), "missing"),), vendor=VENDOR
            )
        response = yield self.endpoint.request(
            "POST",
            f"{self.api}/actions/standard/convertLead",
            operation="salesforce.leads.convert",
            json={
                "inputs": [
                    {
                        "leadId": lead.crm_id,
                        "convertedStatus": self.config.converted_status,
                        "doNotCreateOpportunity": True,
                    }
                ]
            },
        )
        rows = body_of(response, VENDOR) or [{}]
        row = rows[0]
        if not row.get("isSuccess"):
            errors = row.get("errors") or [{}]
            raise ValidationRejected(
                f"lead conversion failed: {errors[0].get('message', '')}",
                vendor=VENDOR,
                vendor_code=str(errors[0].get("statusCode") or "") or None,
            )
        return lead.model_copy(update={"status": LeadStatus.CONVERTED})

    def erase(self, email: str) -> Operation[ErasureResult]:
        """Delete every Contact and Lead with this email (found by a SOQL query)."""
        email = _checked_email(email)
        address = email.replace("\\", "\\\\").replace("'", "\\'")
        ids: list[str] = []
        for sobject in ("Contact", "Lead"):
            response = yield self.endpoint.request(
                "GET",
                f"{self.api}/query",
                operation="salesforce.query",
                params={"q": f"SELECT Id FROM {sobject} WHERE Email = '{address}'"},  # noqa: S608 - escaped, validated
            )
            ids.extend(str(r["Id"]) for r in (body_of(response, VENDOR) or {}).get("records", ()))
        if not ids:
            return ErasureResult(provider=VENDOR, email=email, erased=True, detail="not present")
        failed: list[str] = []
        for chunk in chunks(ids, BATCH_SIZE):
            response = yield self.endpoint.request(
                "DELETE",
                f"{self.api}/composite/sobjects",
                operation="salesforce.delete",
                params={"ids": ",".join(chunk), "allOrNone": "false"},
            )
            for row in body_of(response, VENDOR) or ():
                if not row.get("success"):
                    codes = [e.get("statusCode") for e in row.get("errors") or ()]
                    if "ENTITY_IS_DELETED" not in codes:
                        failed.append(str(row.get("id")))
        if failed:
            return ErasureResult(
                provider=VENDOR, email=email, erased=False, detail=f"not deleted: {failed}"
            )
        return ErasureResult(provider=VENDOR, email=email, erased=True, detail=f"{len(ids)} rows")

    def changes(self, cursor: str | None = None) -> Operation[ContactChangePage]:
        """Contacts updated or deleted since ``cursor`` (``getUpdated``/``getDeleted``).

        The first pull covers the last 29 days (Salesforce keeps 30); the cursor is the
        ``latestDateCovered`` Salesforce answered, so nothing between pulls is missed.
        """
        now = datetime.now(UTC)
        start = cursor or _sf_time(now - timedelta(days=29))
        window = {"start": start, "end": _sf_time(now)}
        updated = yield self.endpoint.request(
            "GET",
            f"{self.api}/sobjects/Contact/updated/",
            operation="salesforce.contacts.updated",
            params=window,
        )
        deleted = yield self.endpoint.request(
            "GET",
            f"{self.api}/sobjects/Contact/deleted/",
            operation="salesforce.contacts.deleted",
            params=window,
        )
        self._note(deleted)
        up = body_of(updated, VENDOR) or {}
        gone = body_of(deleted, VENDOR) or {}
        records: list[Mapping[str, Any]] = []
        for chunk in chunks([str(i) for i in up.get("ids") or ()], BATCH_SIZE):
            response = yield self.endpoint.request(
                "GET",
                f"{self.api}/composite/sobjects/Contact",
                operation="salesforce.contacts.read",
                params={"ids": ",".join(chunk), "fields": ",".join(_CHANGE_FIELDS)},
            )
            records.extend(r for r in body_of(response, VENDOR) or () if r)
        latest = str(up.get("latestDateCovered") or window["end"])
        return parse_changes(records, gone.get("deletedRecords") or (), latest)


def _checked_email(email: str) -> str:
    try:
        return normalize_email(email)
    except ValueError as exc:
        raise InvalidInput(
            "bad email", errors=(FieldError(("email",), str(exc), code="invalid_email"),)
        ) from None


def _default_auth(config: SalesforceConfig) -> httpx.Auth:
    if config.client_id and config.username and config.private_key is not None:
        return SalesforceJWTAuth(
            client_id=config.client_id,
            username=config.username,
            private_key=config.private_key,
            login_url=config.base_url,
        )
    if config.access_token is not None:
        token = config.access_token

        class _Session(httpx.Auth):
            def auth_flow(
                self, request: httpx.Request
            ) -> Generator[httpx.Request, httpx.Response, None]:
                _to_instance(request, config.instance_url)
                request.headers["Authorization"] = f"Bearer {token.get_secret_value()}"
                yield request

        return _Session()
    raise ConfigurationError(
        "an access_token, JWT settings (client_id, username, private_key) or an auth is needed",
        key="access_token",
        vendor=VENDOR,
    )
