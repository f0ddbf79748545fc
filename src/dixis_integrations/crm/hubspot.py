"""HubSpot CRM (v3): contacts with order aggregates, leads, GDPR delete, changes, webhooks.

Contacts are upserted with ``batch/upsert`` by ``idProperty=email``, 100 per call, which is
safe to retry; a 207 answer carries per-item errors, matched back to our input by
``objectWriteTraceId``. Our custom properties are created on first use through the
properties API. Limits follow the account tier (per-10-seconds and daily); a 429 is read
by its ``policyName``. Webhooks are checked with signature v3 (5-minute window).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring as _json_string
from typing import Any, Final, Literal
from urllib.parse import unquote

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from dixis_integrations.auth.oauth import OAuth2Config
from dixis_integrations.crm._wire import (
    HeaderAuth,
    body_of,
    decode_cursor,
    encode_cursor,
    exact_amount,
    next_utc_midnight,
)
from dixis_integrations.crm.contacts import (
    chunks,
    merge_results,
    rate_limited,
    screen,
    upsert_result,
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
    parse_retry_after,
)
from dixis_integrations.http.redact import register_secret
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
    "CUSTOM_PROPERTIES",
    "HubSpot",
    "HubSpotConfig",
    "build_contact_properties",
    "build_lead_properties",
    "build_upsert_batch",
    "classify",
    "encode_upsert_batch",
    "limits_for",
    "oauth_config",
    "parse_upsert_batch",
    "verify_webhook",
]

VENDOR: Final = "hubspot"
BATCH_SIZE: Final = 100
"""Inputs per ``batch/upsert`` call (HubSpot's documented maximum)."""
_SEARCH_PAGE: Final = 100
_SEARCH_CAP: Final = 10_000  # a search query pages no further than this
_WEBHOOK_WINDOW: Final = 300.0
_CONTACTS: Final = "/crm/v3/objects/contacts"
_PROPERTY_GROUP: Final = "dixis"
_CHANGE_PROPERTIES: Final = (
    "email",
    "firstname",
    "lastname",
    "phone",
    "lifecyclestage",
    "lastmodifieddate",
)

Tier = Literal["free", "starter", "professional", "enterprise"]

CUSTOM_PROPERTIES: Final[tuple[dict[str, Any], ...]] = (
    {"name": "dixis_reference", "label": "Dixis customer id", "type": "string",
     "fieldType": "text"},
    {"name": "dixis_total_orders", "label": "Total orders", "type": "number",
     "fieldType": "number"},
    {"name": "dixis_total_spent", "label": "Total spent", "type": "number",
     "fieldType": "number"},
    {"name": "dixis_currency", "label": "Currency of total spent", "type": "string",
     "fieldType": "text"},
    {"name": "dixis_last_order_date", "label": "Last order date", "type": "date",
     "fieldType": "date"},
    {"name": "dixis_segment", "label": "Customer segment", "type": "string",
     "fieldType": "text"},
    {"name": "dixis_acquisition_source", "label": "Acquisition source", "type": "string",
     "fieldType": "text"},
    {"name": "dixis_acquisition_campaign", "label": "Acquisition campaign", "type": "string",
     "fieldType": "text"},
    {"name": "dixis_marketing_consent", "label": "Marketing consent", "type": "enumeration",
     "fieldType": "select", "options": [
         {"label": v.title(), "value": v, "displayOrder": i}
         for i, v in enumerate(("granted", "pending", "denied", "withdrawn", "unknown"))
     ]},
)  # fmt: skip
"""The contact properties we write that HubSpot does not have; created on first use."""


class HubSpotConfig(BaseModel):
    """How to reach one HubSpot account.

    ``access_token`` is a private-app token; leave it out and pass an OAuth2 ``auth``
    (see :func:`oauth_config`) for a public app. ``client_secret`` checks webhooks.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: SecretStr | None = None
    client_secret: SecretStr | None = None
    base_url: str = "https://api.hubapi.com"
    tier: Tier = "professional"
    oauth_app: bool = False
    capacity_pack: bool = False


def oauth_config(
    client_id: str,
    client_secret: SecretStr,
    redirect_uri: str,
    *,
    scopes: tuple[str, ...] = (
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.schemas.contacts.write",
    ),
    auth_base: str = "https://app.hubspot.com",
    api_base: str = "https://api.hubapi.com",
) -> OAuth2Config:
    """The OAuth2 settings of a HubSpot public app (v3 token endpoint, body parameters)."""
    return OAuth2Config(
        provider=VENDOR,
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=f"{auth_base.rstrip('/')}/oauth/authorize",
        token_url=f"{api_base.rstrip('/')}/oauth/v3/token",
        scopes=scopes,
        redirect_uri=redirect_uri,
        token_endpoint_auth="client_secret_post",  # noqa: S106 - a method name
    )


def limits_for(config: HubSpotConfig) -> Limits:
    """The per-10-seconds and daily budgets of the account's tier."""
    if config.oauth_app:
        burst = 100
    elif config.capacity_pack:
        burst = 250
    else:
        burst = 100 if config.tier in ("free", "starter") else 190
    daily = {"free": 250_000, "starter": 250_000, "professional": 650_000,
             "enterprise": 1_000_000}[config.tier]  # fmt: skip
    if config.capacity_pack:
        daily += 1_000_000
    return Limits(windows=(Window(burst, 10.0, "ten_secondly"), Window(daily, 86_400.0, "daily")))


# -- errors ---------------------------------------------------------------------------------


def _field_errors(body: Mapping[str, Any]) -> list[FieldError]:
    out: list[FieldError] = []
    for item in body.get("errors") or ():
        if isinstance(item, Mapping):
            where = item.get("in") or (item.get("context") or {}).get("propertyName") or "body"
            if isinstance(where, list):
                where = where[0] if where else "body"
            out.append(
                FieldError(
                    ("properties", str(where)),
                    str(item.get("message", "")),
                    code=str(item.get("code") or "invalid"),
                )
            )
    return out


def _rate_limited(
    body: Mapping[str, Any], response: httpx.Response, rid: str | None
) -> RateLimited:
    policy = str(body.get("policyName") or "")
    now = datetime.now(UTC)
    retry_at = parse_retry_after(response.headers.get("retry-after"), now)
    if policy == "DAILY":
        retry_at = next_utc_midnight(now)  # the account's midnight; UTC is our best guess
    elif retry_at is None:
        retry_at = now + timedelta(seconds=1.0 if policy == "SECONDLY" else 10.0)
    return RateLimited(
        str(body.get("message") or "rate limited"),
        retry_at=retry_at,
        vendor=VENDOR,
        request_id=rid,
        status_code=429,
        vendor_code=policy or None,
        scope="daily" if policy == "DAILY" else "burst",
    )


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """HubSpot's failures as typed errors (a 207 is a success with per-item errors)."""
    status = response.status_code
    if status < 400:
        return None
    rid = response.headers.get("x-hubspot-correlation-id")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        return default_classify(response, endpoint)
    rid = rid or body.get("correlationId")
    message = str(body.get("message") or f"HTTP {status}")
    category = str(body.get("category") or body.get("errorType") or "") or None
    common: dict[str, Any] = {
        "vendor": VENDOR,
        "request_id": rid,
        "status_code": status,
        "vendor_code": category,
    }
    if status == 429:
        return _rate_limited(body, response, rid)
    if status == 401:
        return AuthError(message, **common)
    if status == 403:
        return PermissionDenied(message, **common)
    if status == 404:
        return NotFound(message, **common)
    if status == 409:
        return Conflict(message, **common)
    if status >= 500:
        return TransientError(message, **common)
    return ValidationRejected(message, errors=_field_errors(body), **common)


# -- request building (pure) ----------------------------------------------------------------


_JSON_BODY: Final = {"Content-Type": "application/json"}


def _decimal_text(contact: CRMContact) -> str:
    return format(exact_amount(contact.total_spent), "f")


def build_contact_properties(contact: CRMContact) -> dict[str, str]:
    """The HubSpot properties of one contact (values as HubSpot takes them: strings)."""
    props: dict[str, str] = {
        "email": contact.email,
        "dixis_reference": contact.reference,
        "dixis_total_orders": str(contact.total_orders),
        "dixis_total_spent": _decimal_text(contact),
        "dixis_currency": contact.total_spent.currency,
        "dixis_marketing_consent": contact.consent.status.value,
    }
    if contact.first_name:
        props["firstname"] = contact.first_name
    if contact.last_name:
        props["lastname"] = contact.last_name
    if contact.phone:
        props["phone"] = contact.phone
    if contact.last_order_date is not None:
        props["dixis_last_order_date"] = contact.last_order_date.isoformat()
    if contact.segment:
        props["dixis_segment"] = contact.segment
    if contact.acquisition is not None:
        props["dixis_acquisition_source"] = contact.acquisition.channel
        if contact.acquisition.campaign:
            props["dixis_acquisition_campaign"] = contact.acquisition.campaign
    if contact.total_orders > 0:
        props["lifecyclestage"] = "customer"
    return props


def build_upsert_batch(contacts: Sequence[CRMContact]) -> dict[str, Any]:
    """The ``batch/upsert`` body: by email, with our reference as the write trace id."""
    return {
        "inputs": [
            {
                "idProperty": "email",
                "id": c.email,
                "objectWriteTraceId": c.reference,
                "properties": build_contact_properties(c),
            }
            for c in contacts
        ]
    }


def encode_upsert_batch(contacts: Sequence[CRMContact]) -> bytes:
    """The wire bytes of :func:`build_upsert_batch`, written directly.

    The same JSON value (a test pins the equality over varied contacts); each string
    goes through the json module's own C string encoder, so no input can break out of
    its quotes. The hot path of a bulk sync, cheaper than dicts then ``json.dumps``.
    """
    inputs: list[str] = []
    for c in contacts:
        email = _json_string(c.email)
        reference = _json_string(c.reference)
        props = (
            f'"email":{email},"dixis_reference":{reference}'
            f',"dixis_total_orders":"{int(c.total_orders)}"'
            f',"dixis_total_spent":"{exact_amount(c.total_spent):f}"'
            f',"dixis_currency":{_json_string(c.total_spent.currency)}'
            f',"dixis_marketing_consent":{_json_string(c.consent.status)}'  # a str itself
        )
        if c.first_name:
            props += ',"firstname":' + _json_string(c.first_name)
        if c.last_name:
            props += ',"lastname":' + _json_string(c.last_name)
        if c.phone:
            props += ',"phone":' + _json_string(c.phone)
        if c.last_order_date is not None:
            props += f',"dixis_last_order_date":"{c.last_order_date.isoformat()}"'
        if c.segment:
            props += ',"dixis_segment":' + _json_string(c.segment)
        if c.acquisition is not None:
            props += ',"dixis_acquisition_source":' + _json_string(c.acquisition.channel)
            if c.acquisition.campaign:
                props += ',"dixis_acquisition_campaign":' + _json_string(c.acquisition.campaign)
        if c.total_orders > 0:
            props += ',"lifecyclestage":"customer"'
        inputs.append(
            f'{{"idProperty":"email","id":{email},"objectWriteTraceId":{reference}'
            f',"properties":{{{props}}}}}'
        )
    return ('{"inputs":[' + ",".join(inputs) + "]}").encode()


def build_lead_properties(lead: Lead) -> dict[str, str]:
    """A lead is a contact in lifecycle stage ``lead``."""
    props = {"email": lead.email, "lifecyclestage": "lead", "hs_lead_status": "NEW"}
    for key, value in (
        ("firstname", lead.first_name),
        ("lastname", lead.last_name),
        ("company", lead.company),
        ("phone", lead.phone),
        ("dixis_acquisition_source", lead.source),
    ):
        if value:
            props[key] = value
    return props


def _search_body(since_ms: int, after: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(since_ms)}
                ]
            }
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": list(_CHANGE_PROPERTIES),
        "limit": _SEARCH_PAGE,
    }
    if after is not None:
        body["after"] = after
    return body


# -- response parsing (pure) ----------------------------------------------------------------


def _trace_ids(error: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    trace = error.get("objectWriteTraceId")
    if isinstance(trace, str):
        found.append(trace)
    context = error.get("context")
    if isinstance(context, Mapping):
        for key in ("objectWriteTraceId", "ids", "id"):
            value = context.get(key)
            if isinstance(value, list):
                found.extend(str(v) for v in value)
            elif isinstance(value, str):
                found.append(value)
    return found


def parse_upsert_batch(
    contacts: Sequence[CRMContact], body: Mapping[str, Any]
) -> list[UpsertResult]:
    """Per-contact results of a ``batch/upsert`` answer (200 or 207), in input order.

    Results are matched by email (HubSpot does not promise their order), errors by
    ``objectWriteTraceId`` or email; a contact with neither is reported rejected.
    """
    found = body.get("results") or ()
    if not body.get("errors") and len(found) == len(contacts):
        # The common answer: every input landed, listed in input order (HubSpot does not
        # promise the order, so each is checked; any mismatch takes the general path).
        rows: list[dict[str, Any]] = []
        for contact, item in zip(contacts, found, strict=True):
            props = item.get("properties")
            if not props or props.get("email") != contact.email:
                break
            rows.append(
                {
                    "reference": contact.reference,
                    "status": UpsertStatus.CREATED if item.get("new") else UpsertStatus.UPDATED,
                    "external_id": str(item.get("id")),
                }
            )
        else:
            return upsert_results(rows)
    by_email: dict[str, Mapping[str, Any]] = {}
    for item in found:
        email = str((item.get("properties") or {}).get("email") or "").lower()
        if email:
            by_email[email] = item
    errors: dict[str, Mapping[str, Any]] = {}
    for error in body.get("errors") or ():
        if isinstance(error, Mapping):
            for key in _trace_ids(error):
                errors.setdefault(key.lower(), error)
    rows = []
    for contact in contacts:
        hit = by_email.get(contact.email)
        if hit is not None:
            rows.append(
                {
                    "reference": contact.reference,
                    "status": UpsertStatus.CREATED if hit.get("new") else UpsertStatus.UPDATED,
                    "external_id": str(hit.get("id")),
                }
            )
            continue
        err = errors.get(contact.reference.lower()) or errors.get(contact.email)
        rows.append(
            {
                "reference": contact.reference,
                "status": UpsertStatus.REJECTED,
                "error_code": str(err.get("category") or "error") if err else "missing_result",
                "reason": str(err.get("message")) if err else "HubSpot returned no result for it",
            }
        )
    return upsert_results(rows)


def _ms(value: Any) -> int:
    """A HubSpot timestamp (ISO 8601 or epoch milliseconds) as epoch milliseconds."""
    if isinstance(value, int | float):
        return int(value)
    text = str(value)
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _change(item: Mapping[str, Any], *, deleted: bool) -> ContactChange:
    props = {k: str(v) for k, v in (item.get("properties") or {}).items() if v is not None}
    stamp = item.get("archivedAt") if deleted else None
    stamp = stamp or props.get("lastmodifieddate") or item.get("updatedAt")
    return ContactChange(
        provider=VENDOR,
        external_id=str(item["id"]),
        email=props.get("email"),
        deleted=deleted,
        changed_at=_at(_ms(stamp)),
        properties=props,
    )


_EVENT_KINDS: Final = {
    "creation": CRMEventKind.CREATED,
    "propertyChange": CRMEventKind.UPDATED,
    "deletion": CRMEventKind.DELETED,
    "privacyDeletion": CRMEventKind.PRIVACY_DELETED,
    "merge": CRMEventKind.MERGED,
    "restore": CRMEventKind.UPDATED,
    "associationChange": CRMEventKind.UPDATED,
}


def parse_webhook_events(payload: Iterable[Mapping[str, Any]]) -> list[CRMEvent]:
    """HubSpot webhook notifications as :class:`CRMEvent`s."""
    out: list[CRMEvent] = []
    for item in payload:
        kind_text = str(item.get("subscriptionType", ""))
        object_type, _, action = kind_text.partition(".")
        value = item.get("propertyValue")
        out.append(
            CRMEvent(
                provider=VENDOR,
                event_id=str(item.get("eventId")),
                kind=_EVENT_KINDS.get(action, CRMEventKind.OTHER),
                object_type=object_type or "contact",
                object_id=str(item.get("objectId")),
                occurred_at=_at(_ms(item.get("occurredAt", 0))),
                vendor_type=kind_text,
                property_name=item.get("propertyName"),
                property_value=None if value is None else str(value),
            )
        )
    return out


def verify_webhook(
    *,
    method: str,
    uri: str,
    body: bytes,
    headers: Mapping[str, str],
    client_secret: SecretStr,
    now: datetime | None = None,
    tolerance: float = _WEBHOOK_WINDOW,
) -> list[CRMEvent]:
    """Check a webhook's signature v3 and return its events.

    The signature is base64(HMAC-SHA256(client secret, method + uri + body + timestamp)),
    compared in constant time; the timestamp (ms) must be within ``tolerance`` seconds.
    ``uri`` is the full URL HubSpot called; its URL-decoded form is accepted too.

    Raises:
        WebhookError: missing headers, stale timestamp, bad signature, or a bad body.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get("x-hubspot-signature-v3")
    stamp = lowered.get("x-hubspot-request-timestamp")
    if not signature or not stamp or not stamp.isdigit():
        raise WebhookError("missing X-HubSpot-Signature-v3 or its timestamp", vendor=VENDOR)
    now = now or datetime.now(UTC)
    age = abs(now.timestamp() - int(stamp) / 1000)
    if age > tolerance:
        raise WebhookError("webhook timestamp outside the 5-minute window", vendor=VENDOR)
    key = client_secret.get_secret_value().encode()
    good = False
    for candidate in dict.fromkeys((uri, unquote(uri))):
        message = method.upper().encode() + candidate.encode() + body + stamp.encode()
        expected = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
        good |= hmac.compare_digest(expected, signature)
    if not good:
        raise WebhookError("webhook signature does not match", vendor=VENDOR)
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookError("webhook body is not JSON", vendor=VENDOR) from None
    if isinstance(payload, Mapping):
        payload = [payload]
    if not isinstance(payload, list):
        raise WebhookError("webhook body is not a list of events", vendor=VENDOR)
    return parse_webhook_events(p for p in payload if isinstance(p, Mapping))


# -- the adapter ----------------------------------------------------------------------------


class HubSpot:
    """The HubSpot CRM adapter (contacts v3).

    Args:
        config: the account's settings.
        tenant: whose account it is (budgets are per tenant).
        auth: OAuth2 auth for a public app; default is the private-app token.
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
        config: HubSpotConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
        fingerprints: ContactFingerprints | None = None,
    ) -> None:
        if auth is None:
            if config.access_token is None:
                raise ConfigurationError(
                    "a private-app token or an OAuth2 auth is needed",
                    key="access_token",
                    vendor=VENDOR,
                )
            auth = HeaderAuth("Authorization", config.access_token, "Bearer ")
        for secret in (config.access_token, config.client_secret):
            if secret is not None:
                register_secret(secret.get_secret_value())
        self.config = config
        self.tenant = tenant
        self.fingerprints = fingerprints
        limits = limits_for(config).scaled(time_scale)
        self.endpoint = Endpoint(
            vendor=VENDOR,
            base_url=config.base_url,
            tenant=tenant,
            auth=auth,
            limits=limits,
            classify=classify,
            request_id_headers=("x-hubspot-correlation-id",),
        )
        # Search has its own limit (about 5 per second per account).
        self.search_endpoint = Endpoint(
            vendor=VENDOR,
            base_url=config.base_url,
            tenant=f"{tenant}/search",
            auth=auth,
            limits=Limits(windows=(Window(5, 1.0, "search"),)).scaled(time_scale),
            classify=classify,
            request_id_headers=("x-hubspot-correlation-id",),
        )
        self._properties_ready = False

    def read_webhook(self, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
        """Verify (signature v3, against ``options["url"]`` when the host's public URL
        differs from the one received) and read a delivery as it arrived."""
        secret = options.get("client_secret") or self.config.client_secret
        if secret is None:
            raise ConfigurationError(
                "HubSpot webhooks need the app's client_secret", key="hubspot.client_secret"
            )
        return list(
            verify_webhook(
                method=request.method,
                uri=str(options.get("url") or request.url),
                body=request.body,
                headers=dict(request.headers),
                client_secret=secret if isinstance(secret, SecretStr) else SecretStr(str(secret)),
            )
        )

    def __repr__(self) -> str:
        return f"HubSpot(tenant={self.tenant!r}, base_url={self.config.base_url!r})"

    # -- health -------------------------------------------------------------------------
    def check(self) -> Operation[HealthStatus]:
        """One cheap read; reports the daily calls left from HubSpot's headers."""
        request = self.endpoint.request(
            "GET", _CONTACTS, operation="hubspot.check", params={"limit": 1}
        )
        try:
            response = yield request
        except AuthError as exc:
            return HealthStatus(name=VENDOR, ok=False, detail=exc.message)
        left = response.headers.get("x-hubspot-ratelimit-daily-remaining")
        return HealthStatus(
            name=VENDOR,
            ok=True,
            quota_remaining=int(left) if left and left.isdigit() else None,
        )

    # -- custom properties --------------------------------------------------------------
    def ensure_properties(self) -> Operation[list[str]]:
        """Create the custom properties HubSpot lacks (once per adapter); their names."""
        if self._properties_ready:
            return []
        response = yield self.endpoint.request(
            "GET", "/crm/v3/properties/contacts", operation="hubspot.properties.list"
        )
        existing = {
            str(p.get("name")) for p in (body_of(response, VENDOR) or {}).get("results", ())
        }
        missing = [dict(p) for p in CUSTOM_PROPERTIES if p["name"] not in existing]
        if missing:
            groups = yield self.endpoint.request(
                "GET", "/crm/v3/properties/contacts/groups", operation="hubspot.groups.list"
            )
            names = {str(g.get("name")) for g in (body_of(groups, VENDOR) or {}).get("results", ())}
            if _PROPERTY_GROUP not in names:
                with contextlib.suppress(Conflict):  # created meanwhile: fine
                    yield self.endpoint.request(
                        "POST",
                        "/crm/v3/properties/contacts/groups",
                        operation="hubspot.groups.create",
                        json={"name": _PROPERTY_GROUP, "label": "Dixis", "displayOrder": -1},
                        idempotent=True,  # a second create is a 409
                    )
            for prop in missing:
                prop["groupName"] = _PROPERTY_GROUP
            yield self.endpoint.request(
                "POST",
                "/crm/v3/properties/contacts/batch/create",
                operation="hubspot.properties.create",
                json={"inputs": missing},
                idempotent=True,  # names are unique: a repeat cannot duplicate
            )
        self._properties_ready = True
        return [str(p["name"]) for p in missing]

    # -- contacts -----------------------------------------------------------------------
    def upsert_contact(self, contact: CRMContact) -> Operation[UpsertResult]:
        """Create or update one contact by email.

        Raises:
            InvalidInput: a bad email or phone (nothing is sent).
        """
        checked = validate_contact(contact, vendor=VENDOR)
        results = yield from self._upsert_checked([checked])
        return results[0]

    def upsert_contacts(self, contacts: Sequence[CRMContact]) -> Operation[list[UpsertResult]]:
        """Bulk upsert by email, 100 per call, one result per contact in input order.

        Contacts our own checks refuse (or a repeated email) are reported ``REJECTED``
        and not sent; the rest still go.
        """
        checked, refused = screen(contacts, self._check_contact, unique_emails=True)
        sent = (yield from self._send_changed(checked)) if checked else []
        return merge_results(len(contacts), refused, sent)

    @staticmethod
    def _check_contact(contact: CRMContact) -> CRMContact:
        return validate_contact(contact, vendor=VENDOR)

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
        yield from self.ensure_properties()
        out: list[UpsertResult] = []
        for chunk in chunks(contacts, BATCH_SIZE):
            request = self.endpoint.request(
                "POST",
                f"{_CONTACTS}/batch/upsert",
                operation="hubspot.contacts.upsert",
                content=encode_upsert_batch(chunk),
                headers=_JSON_BODY,
                idempotent=True,  # an upsert by unique key lands once however often sent
            )
            try:
                response = yield request
            except RateLimited as exc:
                if not partial:
                    raise
                out.extend(rate_limited(c.reference, exc) for c in contacts[len(out) :])
                break
            except ValidationRejected as exc:
                out.extend(
                    upsert_result(
                        reference=c.reference,
                        status=UpsertStatus.REJECTED,
                        error_code=exc.vendor_code or exc.code,
                        reason=exc.message,
                    )
                    for c in chunk
                )
                continue
            out.extend(parse_upsert_batch(chunk, body_of(response, VENDOR) or {}))
        return out

    # -- leads --------------------------------------------------------------------------
    def create_lead(self, lead: Lead) -> Operation[Lead]:
        """A contact in lifecycle stage ``lead``; an existing contact is kept as it is.

        Raises:
            InvalidInput: a bad email or phone (nothing is sent).
        """
        checked = validate_lead(lead, vendor=VENDOR)
        yield from self.ensure_properties()
        request = self.endpoint.request(
            "POST",
            _CONTACTS,
            operation="hubspot.leads.create",
            json={"properties": build_lead_properties(checked)},
            idempotent=True,  # email is unique: a repeat is a 409 carrying the id
        )
        try:
            response = yield request
        except Conflict as exc:
            existing = _existing_id(exc.message)
            if existing is None:
                raise
            crm_id = existing
        else:
            crm_id = str((body_of(response, VENDOR) or {})["id"])
        return checked.model_copy(update={"crm_id": crm_id, "provider": VENDOR})

    def convert_lead(self, lead: Lead) -> Operation[Lead]:
        """Move the contact to lifecycle stage ``customer``."""
        if lead.crm_id is None:
            raise InvalidInput(
                "lead has no CRM id", errors=(FieldError(("crm_id",), "missing"),), vendor=VENDOR
            )
        yield self.endpoint.request(
            "PATCH",
            f"{_CONTACTS}/{lead.crm_id}",
            operation="hubspot.leads.convert",
            json={"properties": {"lifecyclestage": "customer"}},
            idempotent=True,  # setting a value is idempotent
        )
        return lead.model_copy(update={"status": LeadStatus.CONVERTED})

    # -- GDPR ---------------------------------------------------------------------------
    def erase(self, email: str) -> Operation[ErasureResult]:
        """Permanently delete the contact (``gdpr-delete``), found by email."""
        try:
            yield self.endpoint.request(
                "POST",
                f"{_CONTACTS}/gdpr-delete",
                operation="hubspot.contacts.gdpr_delete",
                json={"objectId": email.strip().lower(), "idProperty": "email"},
                idempotent=True,  # deleting twice leaves the same state
            )
        except NotFound:
            return ErasureResult(provider=VENDOR, email=email, erased=True, detail="not present")
        return ErasureResult(provider=VENDOR, email=email, erased=True)

    # -- changes ------------------------------------------------------------------------
    def changes(self, cursor: str | None = None) -> Operation[ContactChangePage]:
        """One page of contacts changed (search on ``lastmodifieddate``) or archived.

        The cursor windows by date, so HubSpot's 10,000-results search cap never stops a
        pull; archived contacts are reported as deletions after the modified ones.
        Limits: HubSpot's search index trails writes by a few seconds, so a contact
        written just before a pull may be stamped earlier than the cursor by the time it
        is indexed (run a periodic full pull from ``None`` to catch those); and more than
        9,900 contacts sharing one ``lastmodifieddate`` millisecond cannot be windowed.
        """
        state = decode_cursor(cursor, VENDOR) if cursor else {"ms": 0, "ds": 0, "p": "m"}
        if state.get("p", "m") == "m":
            return (yield from self._modified_page(state))
        return (yield from self._archived_page(state))

    def _modified_page(self, state: dict[str, Any]) -> Operation[ContactChangePage]:
        since = int(state.get("ms", 0))
        response = yield self.search_endpoint.request(
            "POST",
            f"{_CONTACTS}/search",
            operation="hubspot.contacts.search",
            json=_search_body(since, state.get("ma")),
            idempotent=True,  # a search reads
        )
        body = body_of(response, VENDOR) or {}
        items = list(body.get("results") or ())
        stamped = [(_ms(_stamp_of(item)), item) for item in items]
        changes, new = _advance(state, "m", since, stamped, deleted=False)
        nxt = ((body.get("paging") or {}).get("next") or {}).get("after")
        if nxt is not None and int(nxt) + _SEARCH_PAGE < _SEARCH_CAP:
            new["ma"] = str(nxt)
        elif nxt is not None:
            _restart(new, "m")  # the 10k cap: a new query from the latest stamp seen
        else:
            _restart(new, "m")
            new["p"] = "d"
        return ContactChangePage(changes=changes, cursor=encode_cursor(new), has_more=True)

    def _archived_page(self, state: dict[str, Any]) -> Operation[ContactChangePage]:
        since = int(state.get("ds", 0))
        params: dict[str, Any] = {"archived": "true", "limit": _SEARCH_PAGE, "properties": "email"}
        if state.get("da"):
            params["after"] = state["da"]
        response = yield self.endpoint.request(
            "GET", _CONTACTS, operation="hubspot.contacts.archived", params=params
        )
        body = body_of(response, VENDOR) or {}
        stamped = [
            (_ms(item["archivedAt"]), item)
            for item in body.get("results") or ()
            if item.get("archivedAt") and _ms(item["archivedAt"]) >= since
        ]
        changes, new = _advance(state, "d", since, stamped, deleted=True)
        nxt = ((body.get("paging") or {}).get("next") or {}).get("after")
        if nxt is not None:
            new["da"] = str(nxt)
            return ContactChangePage(changes=changes, cursor=encode_cursor(new), has_more=True)
        _restart(new, "d")
        new["p"] = "m"
        return ContactChangePage(changes=changes, cursor=encode_cursor(new), has_more=False)


def _stamp_of(item: Mapping[str, Any]) -> Any:
    return (item.get("properties") or {}).get("lastmodifieddate") or item.get("updatedAt") or 0


def _advance(
    state: dict[str, Any],
    phase: str,
    since: int,
    stamped: list[tuple[int, Mapping[str, Any]]],
    *,
    deleted: bool,
) -> tuple[tuple[ContactChange, ...], dict[str, Any]]:
    """Changes of one page, skipping what the cursor already reported at ``since``
    (the query is inclusive, and HubSpot stamps a whole batch with one millisecond);
    the new state tracks the latest stamp seen and the ids carrying it."""
    seen = set(state.get(f"{phase}seen") or ())
    top = int(state.get(f"{phase}x", since))
    at_top = set(state.get(f"{phase}xs") or ())
    changes: list[ContactChange] = []
    for stamp, item in stamped:
        key = str(item.get("id"))
        if stamp == since and key in seen:
            continue
        changes.append(_change(item, deleted=deleted))
        if stamp > top:
            top, at_top = stamp, {key}
        elif stamp == top:
            at_top.add(key)
    new = dict(state)
    new[f"{phase}x"] = top
    new[f"{phase}xs"] = sorted(at_top)
    return tuple(changes), new


def _restart(state: dict[str, Any], phase: str) -> None:
    """Start the next query at the latest stamp seen, skipping the ids reported there."""
    since_key, after_key = ("ms", "ma") if phase == "m" else ("ds", "da")
    top = int(state.get(f"{phase}x", state.get(since_key, 0)))
    keep = set(state.get(f"{phase}xs") or ())
    if top == int(state.get(since_key, 0)):
        keep |= set(state.get(f"{phase}seen") or ())
    state[since_key] = top
    state[f"{phase}seen"] = sorted(keep)
    state[after_key] = None


def _existing_id(message: str) -> str | None:
    """The id in HubSpot's 409 text: ``Contact already exists. Existing ID: 123``."""
    marker = "Existing ID:"
    if marker not in message:
        return None
    tail = message.split(marker, 1)[1].strip().split()
    return tail[0].rstrip(".") if tail else None
