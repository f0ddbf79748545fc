"""Brevo API v3: contacts with GDPR consent and double opt-in, lists, transactional
email with idempotency, and events.

Consent decides everything: no consent, no request; confirmed consent upserts the
contact onto the configured lists (``updateEnabled``); consent awaiting double opt-in
asks Brevo to send its confirmation email (the contact joins the lists only when they
click); refused or withdrawn consent blacklists an existing contact for campaigns and
takes them off the lists, and never creates one. Transactional sends carry the
idempotency key in ``headers.idempotencyKey``, so a retried send is processed once.
Brevo's limits differ per endpoint family; each family has its own budget here.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import quote

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

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
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http.driver import Operation
from dixis_integrations.http.endpoint import Endpoint, Limits, Window, default_classify
from dixis_integrations.http.redact import register_secret
from dixis_integrations.marketing._wire import HeaderKeyAuth, body_of, checked_email
from dixis_integrations.marketing.consent import ListAction, list_action, no_consent
from dixis_integrations.models.crm import ErasureResult, UpsertResult, UpsertStatus
from dixis_integrations.models.customer import ConsentStatus
from dixis_integrations.models.email import (
    ConsentChange,
    EmailMessage,
    MarketingEvent,
    SendResult,
    Subscriber,
)
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.webhooks import WebhookRequest, given_secret, webhook_secret

__all__ = [
    "LIMITS",
    "LIST_ADD_LIMIT",
    "WEBHOOK_EVENTS",
    "Brevo",
    "BrevoConfig",
    "build_contact_body",
    "build_doi_body",
    "build_email_body",
    "build_event_body",
    "build_webhook_body",
    "classify",
    "parse_webhook",
    "send_key",
]

VENDOR: Final = "brevo"
LIST_ADD_LIMIT: Final = 150
"""Addresses per "add contacts to a list" call."""
LIMITS: Final[dict[str, Limits]] = {
    "smtp": Limits(windows=(Window(1000, 1.0, "smtp"),)),
    "events": Limits(windows=(Window(10, 1.0, "events"), Window(36_000, 3600.0, "events/h"))),
    "contacts": Limits(windows=(Window(36_000, 3600.0, "contacts"),)),
    "other": Limits(windows=(Window(100, 3600.0, "other"),)),
}
"""Brevo's published limits per endpoint family (developers.brevo.com/docs/api-limits)."""


def _split_ids(value: Any) -> Any:
    # "2" or "2,3" from an environment variable or a sandbox's credentials
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, int):
        return (value,)
    return value


class BrevoConfig(BaseModel):
    """One Brevo account.

    Attributes:
        list_ids: the marketing lists consenting people join (``"2,3"`` is accepted).
        tag_lists: our tags or segment names -> the Brevo list that carries them.
        doi_template_id: the double opt-in template (it contains the confirmation link).
        redirection_url: where the confirmation link lands.
        sender_email, sender_name: the sender of transactional mail.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    base_url: str = "https://api.brevo.com/v3"
    list_ids: Annotated[tuple[int, ...], BeforeValidator(_split_ids), Field(min_length=1)]
    tag_lists: dict[str, int] = Field(default_factory=dict)
    doi_template_id: int | None = None
    redirection_url: str | None = None
    sender_email: str | None = None
    sender_name: str | None = None


def send_key(idempotency_key: str) -> str:
    """The key Brevo gets: ours when it is a UUID (it must be one), else a UUID from it."""
    try:
        return str(uuid.UUID(idempotency_key))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dixis:{idempotency_key}"))


def _attributes(subscriber: Subscriber) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if subscriber.first_name:
        attrs["FIRSTNAME"] = subscriber.first_name
    if subscriber.last_name:
        attrs["LASTNAME"] = subscriber.last_name
    for key, value in sorted(subscriber.attributes.items()):
        attrs[key.upper()] = value
    return attrs


def _lists(subscriber: Subscriber, config: BrevoConfig) -> list[int]:
    ids = list(config.list_ids)
    for tag in subscriber.tags:
        extra = config.tag_lists.get(tag)
        if extra is not None and extra not in ids:
            ids.append(extra)
    return ids


def build_contact_body(subscriber: Subscriber, config: BrevoConfig) -> dict[str, Any]:
    """The ``POST /contacts`` upsert for a person whose consent is confirmed (pure)."""
    return {
        "email": subscriber.email.strip().lower(),
        "attributes": _attributes(subscriber),
        "listIds": _lists(subscriber, config),
        "emailBlacklisted": False,
        "updateEnabled": True,
    }


def build_doi_body(subscriber: Subscriber, config: BrevoConfig) -> dict[str, Any]:
    """The ``POST /contacts/doubleOptinConfirmation`` body (pure).

    Raises:
        ConfigurationError: no double opt-in template or redirection URL configured.
    """
    if config.doi_template_id is None or not config.redirection_url:
        raise ConfigurationError(
            "double opt-in needs doi_template_id and redirection_url",
            key="doi_template_id",
            vendor=VENDOR,
        )
    return {
        "email": subscriber.email.strip().lower(),
        "attributes": _attributes(subscriber),
        "includeListIds": _lists(subscriber, config),
        "templateId": config.doi_template_id,
        "redirectionUrl": config.redirection_url,
    }


def build_email_body(message: EmailMessage, config: BrevoConfig) -> dict[str, Any]:
    """The ``POST /smtp/email`` body (pure).

    Raises:
        InvalidInput: bad recipient, a template id that is not a number, or neither a
            template nor content.
        ConfigurationError: no sender configured for content sends.
    """
    errors: list[FieldError] = []
    try:
        to = checked_email(message.to, VENDOR, ("to",))
    except InvalidInput as exc:
        errors.extend(exc.errors)
        to = message.to
    template: int | None = None
    if message.template_id is not None:
        if message.template_id.isdigit():
            template = int(message.template_id)
        else:
            errors.append(FieldError(("template_id",), "Brevo template ids are numbers"))
    elif message.html is None and message.text is None:
        errors.append(FieldError(("html",), "give a template_id, html or text", "missing"))
    if errors:
        raise InvalidInput("message cannot go by Brevo", errors=errors, vendor=VENDOR)
    body: dict[str, Any] = {"to": [{"email": to}]}
    if config.sender_email:
        sender = {"email": config.sender_email}
        if config.sender_name:
            sender["name"] = config.sender_name
        body["sender"] = sender
    elif template is None:
        raise ConfigurationError("content sends need sender_email", key="sender_email")
    body["subject"] = message.subject
    if template is not None:
        body["templateId"] = template
    if message.html is not None:
        body["htmlContent"] = message.html
    if message.text is not None:
        body["textContent"] = message.text
    if message.params:
        body["params"] = dict(message.params)
    if message.tags:
        body["tags"] = list(message.tags)
    body["headers"] = {"idempotencyKey": send_key(message.idempotency_key)}
    return body


def build_event_body(event: MarketingEvent) -> dict[str, Any]:
    """The ``POST /events`` body (pure)."""
    return {
        "event_name": event.name,
        "event_date": event.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "identifiers": {"email_id": event.email.strip().lower()},
        "event_properties": dict(event.properties),
    }


WEBHOOK_EVENTS: Final = ("unsubscribed", "listAddition", "contactUpdated", "contactDeleted")
"""The marketing webhook events we subscribe to (names as in ``POST /webhooks``)."""


def build_webhook_body(url: str) -> dict[str, Any]:
    """``POST /webhooks``: a marketing webhook for unsubscribes and contact changes."""
    return {
        "url": url,
        "description": "dixis: consent changes",
        "events": list(WEBHOOK_EVENTS),
        "type": "marketing",
    }


def _event_instant(data: Mapping[str, Any]) -> datetime:
    """The event's instant in UTC: ``ts_event`` (seconds, UTC), else ``ts_epoch`` (ms),
    else ``ts`` (seconds). ``date_event`` and ``date`` are local/CET text and are ignored."""
    for key, scale in (("ts_event", 1), ("ts_epoch", 1000), ("ts", 1)):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / scale, UTC)
    raise WebhookError("the webhook has no event timestamp", vendor=VENDOR)


def parse_webhook(
    body: bytes,
    *,
    list_ids: Collection[int] | None = None,
    secret: SecretStr | None = None,
    given_secret: str | None = None,
) -> ConsentChange | None:
    """A Brevo marketing webhook (JSON, one event per call) as a consent change.

    ``unsubscribe`` (the person clicked a campaign's unsubscribe link) is consent
    withdrawn; ``list_addition`` to one of ``list_ids`` (the marketing lists; any list
    when ``None``) is consent granted, as when a double opt-in link is clicked or a Brevo
    form is signed. ``contact_updated``, ``contact_deleted``, opens, clicks and the
    other events give ``None``. Brevo does not sign webhooks: put a secret in the
    webhook URL (or its basic-auth part) and pass it as ``secret`` with the value the
    request carried as ``given_secret`` (compared in constant time).

    Raises:
        WebhookError: wrong or missing secret, a body that is not a JSON object, or an
            unsubscribe/list addition without a valid email or timestamp.
    """
    if secret is not None and not hmac.compare_digest(
        (given_secret or "").encode(), secret.get_secret_value().encode()
    ):
        raise WebhookError("the webhook secret does not match", vendor=VENDOR)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookError("the webhook body is not JSON", vendor=VENDOR) from None
    if not isinstance(data, dict):
        raise WebhookError("the webhook body is not a JSON object", vendor=VENDOR)
    event = data.get("event")
    if event == "unsubscribe":
        status, reason = ConsentStatus.WITHDRAWN, "unsubscribe link"
    elif event == "list_addition":
        raw = data.get("list_id")
        added = set(raw if isinstance(raw, list) else [raw])
        if list_ids is not None and not added & set(list_ids):
            return None
        status, reason = ConsentStatus.GRANTED, "added to a marketing list"
    else:
        return None
    try:
        email = checked_email(str(data.get("email") or ""), VENDOR, ("email",))
    except InvalidInput:
        raise WebhookError("the webhook lacks a valid email", vendor=VENDOR) from None
    return ConsentChange(
        provider=VENDOR, email=email, status=status, at=_event_instant(data), reason=reason
    )


def _reset_at(response: httpx.Response) -> datetime | None:
    value = response.headers.get("x-sib-ratelimit-reset")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return None if seconds is None else datetime.now(UTC) + timedelta(seconds=max(seconds, 0))


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """Brevo's ``{code, message}`` errors as typed errors; 429 waits for the
    ``x-sib-ratelimit-reset`` seconds (Brevo sends no ``Retry-After``)."""
    status = response.status_code
    if status < 400:
        return None
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    code = str(data.get("code") or "") or None
    message = str(data.get("message") or f"HTTP {status}")
    kw: dict[str, Any] = {
        "vendor": VENDOR,
        "request_id": response.headers.get("x-request-id"),
        "status_code": status,
        "vendor_code": code,
    }
    if status == 429:
        return RateLimited(message, retry_at=_reset_at(response), **kw)
    if status == 401:
        return AuthError(message, **kw)
    if status in (402, 403):
        return PermissionDenied(message, **kw)
    if status == 404:
        return NotFound(message, **kw)
    if status == 400 and code == "duplicate_parameter":
        return Conflict(message, **kw)
    if status == 400:
        return ValidationRejected(message, **kw)
    return default_classify(response, endpoint)


class Brevo:
    """One Brevo account as an :class:`~dixis_integrations.protocols.EmailProvider`."""

    name = "brevo"
    capabilities = frozenset(
        {
            Capability.TRANSACTIONAL,
            Capability.DOUBLE_OPT_IN,
            Capability.ERASURE,
            Capability.IDEMPOTENCY_KEYS,
            Capability.BATCH,
        }
    )

    def __init__(
        self,
        config: BrevoConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        register_secret(config.api_key.get_secret_value())
        self.config = config
        self.tenant = tenant
        auth = auth or HeaderKeyAuth("api-key", config.api_key)
        self._endpoints = {
            family: Endpoint(
                vendor=VENDOR,
                base_url=config.base_url,
                tenant=f"{tenant}/{family}",
                auth=auth,
                limits=limits.scaled(time_scale),
                classify=classify,
                headers={"accept": "application/json"},
            )
            for family, limits in LIMITS.items()
        }

    def read_webhook(self, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
        """Verify (the secret set in the webhook's URL or basic auth:
        ``options["secret"]``) and read a delivery as it arrived."""
        change = parse_webhook(
            request.body,
            list_ids=getattr(self.config, "list_ids", None),
            secret=webhook_secret(options, "secret", "brevo"),
            given_secret=given_secret(request, options),
        )
        return [] if change is None else [change]

    def __repr__(self) -> str:
        return f"Brevo(tenant={self.tenant!r}, base_url={self.config.base_url!r})"

    def endpoint(self, family: str) -> Endpoint:
        """The endpoint (and budget) of one family: smtp, events, contacts, other."""
        return self._endpoints[family]

    def _contacts(self, method: str, path: str, **kwargs: Any) -> httpx.Request:
        return self._endpoints["contacts"].request(method, path, **kwargs)

    # -- the Protocol ----------------------------------------------------------------
    def check(self) -> Operation[HealthStatus]:
        """``GET /account``."""
        response = yield self._endpoints["other"].request(
            "GET", "/account", operation="brevo.account"
        )
        account = body_of(response, VENDOR) or {}
        return HealthStatus(self.name, True, detail=str(account.get("companyName") or ""))

    def upsert_subscriber(self, subscriber: Subscriber) -> Operation[UpsertResult]:
        """Apply the subscriber's consent (see the module docstring)."""
        email = checked_email(subscriber.email, VENDOR)
        action = list_action(subscriber.consent)
        if action is ListAction.SKIP:
            return no_consent(email)
        if action is ListAction.UNSUBSCRIBE:
            body = {"emailBlacklisted": True, "unlinkListIds": list(self.config.list_ids)}
            try:
                yield self._contacts(
                    "PUT",
                    f"/contacts/{quote(email, safe='')}",
                    operation="brevo.unsubscribe",
                    json=body,
                )
            except NotFound:
                return UpsertResult(reference=email, status=UpsertStatus.UNCHANGED)
            return UpsertResult(reference=email, status=UpsertStatus.UPDATED)
        if action is ListAction.CONFIRM:
            response = yield self._contacts(
                "POST",
                "/contacts/doubleOptinConfirmation",
                operation="brevo.double_opt_in",
                json=build_doi_body(subscriber, self.config),
            )  # not retried blindly: each attempt may send a confirmation email
            created = response.status_code == 201
            return UpsertResult(
                reference=email,
                status=UpsertStatus.CREATED if created else UpsertStatus.UPDATED,
                reason="double opt-in confirmation sent",
            )
        response = yield self._contacts(
            "POST",
            "/contacts",
            operation="brevo.upsert_contact",
            json=build_contact_body(subscriber, self.config),
            idempotent=True,
        )
        data = body_of(response, VENDOR) or {}
        created = response.status_code == 201
        return UpsertResult(
            reference=email,
            status=UpsertStatus.CREATED if created else UpsertStatus.UPDATED,
            external_id=str(data["id"]) if data.get("id") is not None else None,
        )

    def send(self, message: EmailMessage) -> Operation[SendResult]:
        """Send one transactional email; the idempotency key makes a retry a no-op."""
        body = build_email_body(message, self.config)
        key = body["headers"]["idempotencyKey"]
        response = yield self._endpoints["smtp"].request(
            "POST", "/smtp/email", operation="brevo.send", json=body, idempotency_key=key
        )
        data = body_of(response, VENDOR) or {}
        return SendResult(provider=self.name, message_id=data.get("messageId"), accepted=True)

    def erase(self, email: str) -> Operation[ErasureResult]:
        """GDPR: delete the contact."""
        address = checked_email(email, VENDOR)
        try:
            yield self._contacts(
                "DELETE", f"/contacts/{quote(address, safe='')}", operation="brevo.delete_contact"
            )
        except NotFound:
            return ErasureResult(
                provider=self.name, email=address, erased=False, detail="not present"
            )
        return ErasureResult(provider=self.name, email=address, erased=True)

    # -- beyond the Protocol -----------------------------------------------------------
    def track(self, event: MarketingEvent) -> Operation[None]:
        """Record an event (``order_delivered``, ``segment_entered``...) for automations."""
        checked_email(event.email, VENDOR)
        yield self._endpoints["events"].request(
            "POST", "/events", operation="brevo.event", json=build_event_body(event)
        )

    def register_webhook(self, url: str) -> Operation[int]:
        """Ask Brevo to call ``url`` on unsubscribes and contact changes
        (:data:`WEBHOOK_EVENTS`); returns the webhook id. Parse the calls with
        :func:`parse_webhook`."""
        response = yield self._endpoints["other"].request(
            "POST", "/webhooks", operation="brevo.webhook", json=build_webhook_body(url)
        )
        return int((body_of(response, VENDOR) or {}).get("id", 0))

    def add_to_list(self, list_id: int, emails: Iterable[str]) -> Operation[dict[str, list[str]]]:
        """Push a segment as list membership: existing contacts only (a person is a
        contact only with consent), in calls of 150. Returns ``success``/``failure``."""
        unique = sorted({checked_email(e, VENDOR) for e in emails})
        out: dict[str, list[str]] = {"success": [], "failure": []}
        for start in range(0, len(unique), LIST_ADD_LIMIT):
            chunk = unique[start : start + LIST_ADD_LIMIT]
            response = yield self._contacts(
                "POST",
                f"/contacts/lists/{list_id}/contacts/add",
                operation="brevo.list_add",
                json={"emails": chunk},
                idempotent=True,
            )
            contacts: Mapping[str, Any] = (body_of(response, VENDOR) or {}).get("contacts") or {}
            out["success"].extend(contacts.get("success") or [])
            out["failure"].extend(contacts.get("failure") or [])
        return out
