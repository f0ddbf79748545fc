"""Pipedrive (API v2 persons, v1 leads and fields): search-then-write contacts, leads,
deletion, and the token budget Pipedrive does not report.

Pipedrive has no upsert: each contact is searched by email, then updated by id (safe to
retry) or created (never sent twice blindly: after a failed create we search again).
Calls are limited per 2 seconds (searches separately) and a daily token budget is spent
from Pipedrive's published cost per call, tracked here since no header reports it; once
spent, calls raise :class:`RateLimited` before anything is sent.
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from dixis_integrations.auth.oauth import OAuth2Config
from dixis_integrations.crm._wire import (
    HeaderAuth,
    body_of,
    decode_cursor,
    dumps_exact,
    encode_cursor,
    exact_amount,
    next_utc_midnight,
)
from dixis_integrations.crm.contacts import (
    merge_results,
    rate_limited,
    screen,
    upsert_result,
    validate_contact,
    validate_lead,
)
from dixis_integrations.crm.fingerprints import ContactFingerprints, send_changed
from dixis_integrations.errors import (
    AuthError,
    ConfigurationError,
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
from dixis_integrations.webhooks import WebhookRequest, webhook_secret

__all__ = [
    "CUSTOM_FIELDS",
    "TOKEN_COSTS",
    "Pipedrive",
    "PipedriveConfig",
    "TokenBudget",
    "build_lead_body",
    "build_person_body",
    "classify",
    "find_open_lead",
    "limits_for",
    "oauth_config",
    "parse_recents",
    "verify_webhook",
]

VENDOR: Final = "pipedrive"
TOKEN_COSTS: Final[dict[str, int]] = {
    "get": 2,
    "list": 20,
    "create": 10,
    "update": 10,
    "delete": 6,
    "search": 40,
}
"""Tokens per call kind, from Pipedrive's published rate-limiting table."""
_MULTIPLIER: Final = {"lite": 1, "growth": 2, "premium": 5, "ultimate": 7}
_BURST: Final = {"lite": 20, "growth": 40, "premium": 100, "ultimate": 120}
_SEARCH_BURST: Final = 10

CUSTOM_FIELDS: Final[dict[str, tuple[str, str]]] = {
    "reference": ("Dixis customer id", "varchar"),
    "total_orders": ("Dixis total orders", "double"),
    "total_spent": ("Dixis total spent", "monetary"),
    "last_order_date": ("Dixis last order date", "date"),
    "segment": ("Dixis segment", "varchar"),
    "acquisition_source": ("Dixis acquisition source", "varchar"),
    "marketing_consent": ("Dixis marketing consent", "varchar"),
}
"""Our person fields: what we call them -> (Pipedrive field name, field type)."""

Plan = Literal["lite", "growth", "premium", "ultimate"]


class PipedriveConfig(BaseModel):
    """How to reach one Pipedrive company.

    ``api_token`` is a user's token; leave it out and pass an OAuth2 ``auth`` (see
    :func:`oauth_config`) for an app. ``field_keys`` maps our field names (the keys of
    :data:`CUSTOM_FIELDS`) to Pipedrive's field keys when known; missing ones are looked
    up, and created, on first use.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_token: SecretStr | None = None
    base_url: str = "https://api.pipedrive.com"
    plan: Plan = "growth"
    seats: int = Field(default=1, ge=1)
    oauth: bool = False
    field_keys: dict[str, str] = Field(default_factory=dict)


def oauth_config(
    client_id: str,
    client_secret: SecretStr,
    redirect_uri: str,
    *,
    oauth_base: str = "https://oauth.pipedrive.com",
) -> OAuth2Config:
    """The OAuth2 settings of a Pipedrive app."""
    return OAuth2Config(
        provider=VENDOR,
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=f"{oauth_base.rstrip('/')}/oauth/authorize",
        token_url=f"{oauth_base.rstrip('/')}/oauth/token",
        redirect_uri=redirect_uri,
    )


def limits_for(config: PipedriveConfig) -> tuple[Limits, Limits]:
    """The burst limits (2-second windows) of general calls and of searches."""
    burst = _BURST[config.plan] * (4 if config.oauth else 1)
    return (
        Limits(windows=(Window(burst, 2.0, "burst"),)),
        Limits(windows=(Window(_SEARCH_BURST, 2.0, "search"),)),
    )


class TokenBudget:
    """The company's daily token budget, spent from the published cost of each call.

    Thread-safe; share one between adapters of the same company. Resets at midnight UTC
    (Pipedrive resets at its server's midnight, which it does not publish per company).
    """

    def __init__(self, daily: int, *, clock: Any = None) -> None:
        self.daily = daily
        self.spent = 0
        self._day = self._today(clock)
        self._clock = clock
        self._lock = threading.Lock()

    @staticmethod
    def _today(clock: Any) -> str:
        now: datetime = clock() if clock is not None else datetime.now(UTC)
        return now.date().isoformat()

    @property
    def remaining(self) -> int:
        """Tokens left today."""
        return max(0, self.daily - self.spent)

    def spend(self, kind: str) -> None:
        """Count one call of ``kind``.

        Raises:
            RateLimited: the day's budget would be exceeded (nothing is sent).
        """
        cost = TOKEN_COSTS[kind]
        with self._lock:
            today = self._today(self._clock)
            if today != self._day:
                self._day, self.spent = today, 0
            if self.spent + cost > self.daily:
                raise RateLimited(
                    f"daily token budget of {self.daily} spent",
                    retry_at=next_utc_midnight(),
                    vendor=VENDOR,
                    scope="daily",
                    vendor_code="token_budget",
                )
            self.spent += cost


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """Pipedrive's failures (``success: false`` bodies, Cloudflare's 403 page) as errors."""
    status = response.status_code
    if status < 400:
        return None
    kind = response.headers.get("content-type", "")
    if status == 403 and "html" in kind:
        # Cloudflare blocks clients that kept calling through 429s.
        return RateLimited(
            "blocked by Cloudflare after ignored 429s",
            retry_at=datetime.now(UTC) + timedelta(seconds=60),
            vendor=VENDOR,
            status_code=status,
            scope="cloudflare",
        )
    try:
        body = response.json()
    except ValueError:
        return default_classify(response, endpoint)
    if not isinstance(body, Mapping):
        return default_classify(response, endpoint)
    message = str(body.get("error") or f"HTTP {status}")
    info = body.get("error_info")
    common: dict[str, Any] = {"vendor": VENDOR, "status_code": status,
                              "vendor_code": str(body.get("errorCode") or status)}  # fmt: skip
    if status == 429:
        reset = response.headers.get("x-ratelimit-reset") or response.headers.get("retry-after")
        return RateLimited(message, retry_at=parse_retry_after(reset), scope="burst", **common)
    if status == 401:
        return AuthError(message, **common)
    if status == 403:
        return PermissionDenied(message, **common)
    if status == 404:
        return NotFound(message, **common)
    if status >= 500:
        return TransientError(message, **common)
    detail = f"{message} ({info})" if info else message
    return ValidationRejected(detail, **common)


# -- request building (pure) ----------------------------------------------------------------


def build_person_body(contact: CRMContact, keys: Mapping[str, str]) -> dict[str, Any]:
    """A v2 person: name, primary email and phone, our figures in ``custom_fields``."""
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) or contact.email
    values: dict[str, Any] = {
        "reference": contact.reference,
        "total_orders": contact.total_orders,
        "total_spent": {
            "value": exact_amount(contact.total_spent),
            "currency": contact.total_spent.currency,
        },
        "last_order_date": (
            contact.last_order_date.isoformat() if contact.last_order_date else None
        ),
        "segment": contact.segment,
        "acquisition_source": contact.acquisition.channel if contact.acquisition else None,
        "marketing_consent": contact.consent.status.value,
    }
    body: dict[str, Any] = {
        "name": name,
        "emails": [{"value": contact.email, "primary": True, "label": "work"}],
        "custom_fields": {keys[k]: v for k, v in values.items() if k in keys},
    }
    if contact.phone:
        body["phones"] = [{"value": contact.phone, "primary": True, "label": "mobile"}]
    return body


def build_lead_body(lead: Lead, person_id: int) -> dict[str, Any]:
    """A v1 lead: a title and the person it is about."""
    who = " ".join(p for p in (lead.first_name, lead.last_name) if p) or lead.email
    title = f"{lead.company} - {who}" if lead.company else who
    return {"title": title, "person_id": person_id}


def find_open_lead(answer: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
    """In a ``GET /v1/leads`` answer, the unarchived lead of ``body``'s person and title."""
    for row in answer.get("data") or ():
        if (
            isinstance(row, Mapping)
            and not row.get("is_archived")
            and row.get("title") == body["title"]
            and row.get("person_id") == body["person_id"]
        ):
            return str(row["id"])
    return None


_EPOCH: Final = "1970-01-01 00:00:00"


def _pd_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _seen_key(person: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    return f"{row.get('id') or person.get('id')}:{person.get('active_flag') is not False}"


def parse_recents(body: Mapping[str, Any], state: Mapping[str, Any]) -> ContactChangePage:
    """A ``recents`` page of persons as changes, with the cursor to resume from.

    The feed's timestamps have one-second resolution and ``since_timestamp`` is
    inclusive, so the cursor remembers what it already reported at its own second and
    the next pull skips exactly those: nothing is lost, nothing is repeated.
    """
    since = str(state["since"])
    seen = set(state.get("seen") or ())
    changes: list[ContactChange] = []
    at_last: dict[str, list[str]] = {}
    for row in body.get("data") or ():
        person = row.get("data") or {}
        stamp = str(person.get("update_time") or since)
        key = _seen_key(person, row)
        at_last.setdefault(stamp, []).append(key)
        if stamp == since and key in seen:
            continue
        emails = person.get("emails") or person.get("email") or []
        primary = next((e.get("value") for e in emails if isinstance(e, Mapping)), None)
        changes.append(
            ContactChange(
                provider=VENDOR,
                external_id=str(row.get("id") or person.get("id")),
                email=primary,
                deleted=person.get("active_flag") is False,
                changed_at=_pd_time(stamp),
                properties={"name": str(person.get("name") or "")},
            )
        )
    extra = body.get("additional_data") or {}
    paging = extra.get("pagination") or {}
    if paging.get("more_items_in_collection"):
        new: dict[str, Any] = {"since": since, "start": int(paging.get("next_start") or 0)}
        if seen:
            new["seen"] = sorted(seen)
        return ContactChangePage(changes=tuple(changes), cursor=encode_cursor(new), has_more=True)
    last = max(str(extra.get("last_timestamp_on_page") or since), since)
    keep = set(at_last.get(last, ())) | (seen if last == since else set())
    new = {"since": last, "start": 0, "seen": sorted(keep)}
    return ContactChangePage(changes=tuple(changes), cursor=encode_cursor(new), has_more=False)


_WEBHOOK_KINDS: Final = {
    "create": CRMEventKind.CREATED,
    "added": CRMEventKind.CREATED,
    "change": CRMEventKind.UPDATED,
    "updated": CRMEventKind.UPDATED,
    "delete": CRMEventKind.DELETED,
    "deleted": CRMEventKind.DELETED,
    "merged": CRMEventKind.MERGED,
}


def verify_webhook(
    *,
    body: bytes,
    headers: Mapping[str, str],
    username: str,
    password: SecretStr,
) -> list[CRMEvent]:
    """Check a webhook's HTTP Basic credentials (Pipedrive signs nothing) and parse it.

    Pipedrive sends the user and password set on the webhook; they are compared in
    constant time. Both payload versions (2.0 ``meta.action``/``entity`` and 1.0
    ``event``) are read.

    Raises:
        WebhookError: missing or wrong credentials, or a body that is not a webhook.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    given = lowered.get("authorization", "")
    expected = (
        "Basic " + base64.b64encode(f"{username}:{password.get_secret_value()}".encode()).decode()
    )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookError("webhook credentials do not match", vendor=VENDOR)
    try:
        payload = json.loads(body)
        meta = payload["meta"]
    except (ValueError, KeyError, TypeError):
        raise WebhookError("not a Pipedrive webhook body", vendor=VENDOR) from None
    action = str(meta.get("action") or "")
    entity = str(meta.get("entity") or meta.get("object") or "")
    stamp = meta.get("timestamp")
    if isinstance(stamp, int | float):
        when = datetime.fromtimestamp(stamp / 1000 if stamp > 1e11 else stamp, tz=UTC)
    else:
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).astimezone(UTC)
    object_id = meta.get("entity_id") or meta.get("id")
    return [
        CRMEvent(
            provider=VENDOR,
            # 2.0 has an event id; 1.0's ``meta.id`` is the object's, so build one.
            event_id=str(meta["id"])
            if "entity_id" in meta
            else str(meta.get("request_id") or f"{action}:{object_id}:{stamp}"),
            kind=_WEBHOOK_KINDS.get(action, CRMEventKind.OTHER),
            object_type=entity,
            object_id=str(object_id),
            occurred_at=when,
            vendor_type=f"{action}.{entity}",
        )
    ]


# -- the adapter ----------------------------------------------------------------------------


class Pipedrive:
    """The Pipedrive CRM adapter.

    Args:
        config: the company's settings.
        tenant: whose company it is (budgets are per tenant).
        auth: OAuth2 auth for an app; default is the ``api_token`` header.
        time_scale: shrinks the rate windows to meet a time-scaled sandbox.
        budget: the daily token budget, shared between adapters of one company.
    """

    name = VENDOR
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
        config: PipedriveConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
        budget: TokenBudget | None = None,
        fingerprints: ContactFingerprints | None = None,
    ) -> None:
        if auth is None:
            if config.api_token is None:
                raise ConfigurationError(
                    "an api_token or an OAuth2 auth is needed", key="api_token", vendor=VENDOR
                )
            register_secret(config.api_token.get_secret_value())
            auth = HeaderAuth("x-api-token", config.api_token)
        self.config = config
        self.tenant = tenant
        self.fingerprints = fingerprints
        general, search = limits_for(config)
        common: dict[str, Any] = {"vendor": VENDOR, "base_url": config.base_url, "auth": auth,
                                  "classify": classify,
                                  "request_id_headers": ("x-correlation-id",)}  # fmt: skip
        self.endpoint = Endpoint(tenant=tenant, limits=general.scaled(time_scale), **common)
        self.search_endpoint = Endpoint(
            tenant=f"{tenant}/search", limits=search.scaled(time_scale), **common
        )
        self.budget = budget or TokenBudget(30_000 * _MULTIPLIER[config.plan] * config.seats)
        self._keys: dict[str, str] = dict(config.field_keys)

    def read_webhook(self, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
        """Verify (the basic-auth pair set on the webhook: ``options["username"]`` and
        ``options["password"]``) and read a delivery as it arrived."""
        return list(
            verify_webhook(
                body=request.body,
                headers=dict(request.headers),
                username=str(options.get("username") or ""),
                password=webhook_secret(options, "password", "pipedrive"),
            )
        )

    def __repr__(self) -> str:
        return f"Pipedrive(tenant={self.tenant!r}, base_url={self.config.base_url!r})"

    def _call(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Request:
        self.budget.spend(kind)
        endpoint = self.search_endpoint if kind == "search" else self.endpoint
        if "json" in kwargs:
            kwargs["content"] = dumps_exact(kwargs.pop("json"))
            kwargs["headers"] = {"Content-Type": "application/json"}
        return endpoint.request(method, path, **kwargs)

    def check(self) -> Operation[HealthStatus]:
        """The token's user, and the day's token budget left (as we count it)."""
        try:
            yield self._call("get", "GET", "/v1/users/me", operation="pipedrive.me")
        except AuthError as exc:
            return HealthStatus(name=VENDOR, ok=False, detail=exc.message)
        return HealthStatus(name=VENDOR, ok=True, quota_remaining=self.budget.remaining)

    def ensure_fields(self) -> Operation[dict[str, str]]:
        """Our person fields' keys, creating the ones Pipedrive lacks (once per adapter)."""
        if all(k in self._keys for k in CUSTOM_FIELDS):
            return self._keys
        response = yield self._call(
            "list", "GET", "/v1/personFields", operation="pipedrive.fields.list",
            params={"limit": 500},
        )  # fmt: skip
        by_name = {str(f.get("name")): str(f.get("key"))
                   for f in (body_of(response, VENDOR) or {}).get("data") or ()}  # fmt: skip
        for ours, (label, field_type) in CUSTOM_FIELDS.items():
            if ours in self._keys:
                continue
            if label in by_name:
                self._keys[ours] = by_name[label]
                continue
            created = yield self._call(
                "create", "POST", "/v1/personFields", operation="pipedrive.fields.create",
                json={"name": label, "field_type": field_type},
            )  # fmt: skip
            self._keys[ours] = str((body_of(created, VENDOR) or {})["data"]["key"])
        return self._keys

    def _find(self, email: str) -> Operation[int | None]:
        response = yield self._call(
            "search",
            "GET",
            "/api/v2/persons/search",
            operation="pipedrive.persons.search",
            params={"term": email, "fields": "email", "exact_match": "true", "limit": 1},
        )
        items = ((body_of(response, VENDOR) or {}).get("data") or {}).get("items") or ()
        for item in items:
            person = item.get("item") or {}
            if person.get("id") is not None:
                return int(person["id"])
        return None

    def _write(self, contact: CRMContact) -> Operation[UpsertResult]:
        keys = yield from self.ensure_fields()
        body = build_person_body(contact, keys)
        existing = yield from self._find(contact.email)
        if existing is None:
            try:
                response = yield self._call(
                    "create", "POST", "/api/v2/persons", operation="pipedrive.persons.create",
                    json=body,
                )  # fmt: skip
            except TransientError:
                # The create may have landed: look before writing again.
                existing = yield from self._find(contact.email)
                if existing is None:
                    raise
            else:
                person_id = (body_of(response, VENDOR) or {})["data"]["id"]
                return upsert_result(
                    reference=contact.reference,
                    status=UpsertStatus.CREATED,
                    external_id=str(person_id),
                )
        yield self._call(
            "update", "PATCH", f"/api/v2/persons/{existing}",
            operation="pipedrive.persons.update", json=body, idempotent=True,
        )  # fmt: skip
        return upsert_result(
            reference=contact.reference, status=UpsertStatus.UPDATED, external_id=str(existing)
        )

    def upsert_contact(self, contact: CRMContact) -> Operation[UpsertResult]:
        """Search by email, then update or create.

        Raises:
            InvalidInput: a bad email or phone (nothing is sent).
        """
        return (yield from self._write(validate_contact(contact, vendor=VENDOR)))

    def upsert_contacts(self, contacts: Sequence[CRMContact]) -> Operation[list[UpsertResult]]:
        """One search and one write per contact, one result per contact in input order.

        Contacts our checks refuse and those Pipedrive rejects are ``REJECTED``. When the
        day's token budget (or Pipedrive's patience) runs out mid-bulk, the results
        obtained so far are kept and each remaining contact is ``REJECTED`` with
        ``error_code="rate_limited"`` and ``retry_at``; nothing is lost. With a
        fingerprint store, contacts sent unchanged before are ``UNCHANGED`` (no call).
        """
        checked, refused = screen(contacts, self._check_contact)
        sent: list[UpsertResult] = []
        if checked:
            sent = yield from send_changed(
                VENDOR, self.tenant, checked, self.fingerprints, self._write_many
            )
        return merge_results(len(contacts), refused, sent)

    @staticmethod
    def _check_contact(contact: CRMContact) -> CRMContact:
        return validate_contact(contact, vendor=VENDOR)

    def _write_many(self, contacts: Sequence[CRMContact]) -> Operation[list[UpsertResult]]:
        out: list[UpsertResult] = []
        for contact in contacts:
            try:
                out.append((yield from self._write(contact)))
            except ValidationRejected as exc:
                out.append(
                    upsert_result(
                        reference=contact.reference,
                        status=UpsertStatus.REJECTED,
                        error_code=exc.vendor_code or exc.code,
                        reason=exc.message,
                    )
                )
            except RateLimited as exc:
                out.extend(rate_limited(c.reference, exc) for c in contacts[len(out) :])
                break
        return out

    def create_lead(self, lead: Lead) -> Operation[Lead]:
        """A lead (v1) on the person with this email, created if Pipedrive has none.

        Idempotent on re-run: the person is looked up by email first, and an open lead
        of that person with the same title is returned rather than doubled.

        Raises:
            InvalidInput: a bad email or phone (nothing is sent).
        """
        checked = validate_lead(lead, vendor=VENDOR)
        person = yield from self._find(checked.email)
        if person is None:
            name = " ".join(p for p in (checked.first_name, checked.last_name) if p)
            body: dict[str, Any] = {
                "name": name or checked.email,
                "emails": [{"value": checked.email, "primary": True, "label": "work"}],
            }
            if checked.phone:
                body["phones"] = [{"value": checked.phone, "primary": True, "label": "mobile"}]
            response = yield self._call(
                "create", "POST", "/api/v2/persons", operation="pipedrive.persons.create",
                json=body,
            )  # fmt: skip
            person = int((body_of(response, VENDOR) or {})["data"]["id"])
            existing = None  # a person just created has no leads
        else:
            existing = yield from self._open_lead(person, build_lead_body(checked, person))
        if existing is None:
            response = yield self._call(
                "create", "POST", "/v1/leads", operation="pipedrive.leads.create",
                json=build_lead_body(checked, person),
            )  # fmt: skip
            existing = str((body_of(response, VENDOR) or {})["data"]["id"])
        return checked.model_copy(update={"crm_id": existing, "provider": VENDOR})

    def _open_lead(self, person: int, body: Mapping[str, Any]) -> Operation[str | None]:
        """The id of the person's unarchived lead titled as ``body``, if there is one."""
        response = yield self._call(
            "list", "GET", "/v1/leads", operation="pipedrive.leads.list",
            params={"person_id": person, "archived_status": "not_archived", "limit": 500},
        )  # fmt: skip
        return find_open_lead(body_of(response, VENDOR) or {}, body)

    def convert_lead(self, lead: Lead) -> Operation[Lead]:
        """Convert the lead to a deal (Pipedrive's lead conversion)."""
        if lead.crm_id is None:
            raise InvalidInput(
                "lead has no CRM id", errors=(FieldError(("crm_id",), "missing"),), vendor=VENDOR
            )
        yield self._call(
            "create", "POST", f"/api/v2/leads/{lead.crm_id}/convert/deal",
            operation="pipedrive.leads.convert", json={},
        )  # fmt: skip
        return lead.model_copy(update={"status": LeadStatus.CONVERTED})

    def erase(self, email: str) -> Operation[ErasureResult]:
        """Delete the person with this email."""
        try:
            address = normalize_email(email)
        except ValueError as exc:
            raise InvalidInput(
                "bad email", errors=(FieldError(("email",), str(exc)),), vendor=VENDOR
            ) from None
        person = yield from self._find(address)
        if person is None:
            return ErasureResult(provider=VENDOR, email=email, erased=True, detail="not present")
        try:
            yield self._call(
                "delete", "DELETE", f"/api/v2/persons/{person}",
                operation="pipedrive.persons.delete",
            )  # fmt: skip
        except NotFound:
            return ErasureResult(provider=VENDOR, email=email, erased=True, detail="not present")
        return ErasureResult(provider=VENDOR, email=email, erased=True)

    def changes(self, cursor: str | None = None) -> Operation[ContactChangePage]:
        """Persons changed or deleted since ``cursor`` (the ``recents`` feed, 500 a page).

        Deleted persons come back flagged inactive and are reported as deletions. The
        cursor keeps the timestamp to resume from and the offset within it.
        """
        state = decode_cursor(cursor, VENDOR) if cursor else {"since": _EPOCH, "start": 0}
        response = yield self._call(
            "list",
            "GET",
            "/v1/recents",
            operation="pipedrive.recents",
            params={
                "since_timestamp": state["since"],
                "items": "person",
                "start": state.get("start", 0),
                "limit": 500,
            },
        )
        return parse_recents(body_of(response, VENDOR) or {}, state)
