"""Mailchimp Marketing API 3.0: audience members with GDPR consent, tags, batches, erasure.

A member is addressed by its subscriber hash (MD5 of the lower-cased email) and written
with ``PUT`` (an upsert, safe to retry). Consent decides everything: no consent, no
request; consent awaiting double opt-in becomes ``pending`` (Mailchimp sends the
confirmation); refused or withdrawn consent unsubscribes an existing member and never
adds one. Mailchimp allows 10 concurrent connections and sends no rate-limit headers.
Mailchimp's Marketing API has no single transactional send: ``send`` is not supported.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

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
from dixis_integrations.http.driver import Operation, unsupported
from dixis_integrations.http.endpoint import Endpoint, Limits, default_classify
from dixis_integrations.http.redact import register_secret
from dixis_integrations.marketing._wire import BasicKeyAuth, body_of, checked_email
from dixis_integrations.marketing.consent import ListAction, list_action, no_consent
from dixis_integrations.models.crm import ErasureResult, UpsertResult, UpsertStatus
from dixis_integrations.models.customer import ConsentStatus
from dixis_integrations.models.email import (
    BatchState,
    BatchSubmission,
    ConsentChange,
    EmailMessage,
    SendResult,
    Subscriber,
)
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.webhooks import WebhookRequest, given_secret, webhook_secret

__all__ = [
    "BATCH_LIMIT",
    "Mailchimp",
    "MailchimpConfig",
    "build_batch_operations",
    "build_member_body",
    "build_tags_body",
    "classify",
    "parse_batch",
    "parse_webhook",
    "subscriber_hash",
]

VENDOR: Final = "mailchimp"
BATCH_LIMIT: Final = 500
"""Operations per batch we submit (Mailchimp's synchronous list batch takes 500)."""
_CONCURRENCY: Final = 10
_RESUBSCRIBE_NEEDS_CONFIRMATION: Final = frozenset({"unsubscribed", "archived"})


class MailchimpConfig(BaseModel):
    """One Mailchimp audience.

    ``api_key`` ends in its data centre (``...-us21``), which gives the default
    ``base_url``. ``marketing_permission_id`` is the audience's GDPR "Email" permission,
    enabled for everyone who consented (leave it out for audiences without GDPR fields).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    list_id: str = Field(min_length=1)
    base_url: str | None = None
    marketing_permission_id: str | None = None

    def url(self) -> str:
        """The API root: ``base_url``, or ``https://<dc>.api.mailchimp.com/3.0``."""
        if self.base_url:
            return self.base_url.rstrip("/")
        _, dash, dc = self.api_key.get_secret_value().rpartition("-")
        if not dash or not dc or not dc.isalnum():
            raise ConfigurationError(
                "the API key has no data centre suffix (like -us21)", key="api_key", vendor=VENDOR
            )
        return f"https://{dc}.api.mailchimp.com/3.0"


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 hex digest of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def _permissions(config: MailchimpConfig, enabled: bool) -> list[dict[str, Any]]:
    if not config.marketing_permission_id:
        return []
    return [{"marketing_permission_id": config.marketing_permission_id, "enabled": enabled}]


def build_member_body(
    subscriber: Subscriber,
    config: MailchimpConfig,
    action: ListAction,
    *,
    status: str | None = None,
) -> dict[str, Any]:
    """The ``PUT .../members/{hash}`` body for a subscriber (pure).

    ``status_if_new`` is ``subscribed`` for confirmed consent and ``pending`` (Mailchimp
    sends the confirmation email) when double opt-in is awaited; ``status`` is set only
    when the caller decided to change an existing member's status. ``timestamp_opt``
    records when confirmed consent was given.
    """
    if action not in (ListAction.SUBSCRIBE, ListAction.CONFIRM):
        raise ValueError(f"no member body for {action}")
    merge: dict[str, str] = {}
    if subscriber.first_name:
        merge["FNAME"] = subscriber.first_name
    if subscriber.last_name:
        merge["LNAME"] = subscriber.last_name
    for key, value in sorted(subscriber.attributes.items()):
        merge[key.upper()] = value
    body: dict[str, Any] = {
        "email_address": subscriber.email.strip().lower(),
        "status_if_new": "subscribed" if action is ListAction.SUBSCRIBE else "pending",
        "merge_fields": merge,
        "language": subscriber.language,
    }
    if status is not None:
        body["status"] = status
    consented_at = subscriber.consent.timestamp
    if action is ListAction.SUBSCRIBE and consented_at is not None:
        # the proof of when the person opted in, kept with the member (GDPR accountability)
        body["timestamp_opt"] = consented_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    permissions = _permissions(config, True)
    if permissions:
        body["marketing_permissions"] = permissions
    return body


def build_tags_body(tags: Iterable[str], *, active: bool = True) -> dict[str, Any]:
    """The ``POST .../members/{hash}/tags`` body (pure)."""
    state = "active" if active else "inactive"
    return {"tags": [{"name": t, "status": state} for t in tags]}


def build_batch_operations(
    subscribers: Sequence[Subscriber], config: MailchimpConfig
) -> tuple[list[dict[str, Any]], list[UpsertResult]]:
    """``/batches`` operations for the subscribers who may be written, and the refusals.

    Members are upserted with ``status_if_new`` only, so a batch never changes an
    existing member's status (an unsubscribed person stays unsubscribed); withdrawn
    consent becomes a ``PATCH`` to ``unsubscribed``; unknown consent is refused here.
    """
    operations: list[dict[str, Any]] = []
    refused: list[UpsertResult] = []
    base = f"/lists/{config.list_id}/members"
    for index, sub in enumerate(subscribers):
        try:
            email = checked_email(sub.email, VENDOR, (index, "email"))
        except InvalidInput as exc:
            refused.append(
                UpsertResult(
                    reference=sub.email,
                    status=UpsertStatus.REJECTED,
                    error_code="invalid_email",
                    reason=str(exc.errors[0]),
                )
            )
            continue
        action = list_action(sub.consent)
        member = f"{base}/{subscriber_hash(email)}"
        if action is ListAction.SKIP:
            refused.append(no_consent(email))
        elif action is ListAction.UNSUBSCRIBE:
            body = {"status": "unsubscribed"}
            permissions = _permissions(config, False)
            if permissions:
                body["marketing_permissions"] = permissions  # type: ignore[assignment]
            operations.append(
                {
                    "method": "PATCH",
                    "path": member,
                    "operation_id": email,
                    "body": json.dumps(body, separators=(",", ":")),
                }
            )
        else:
            body = build_member_body(sub, config, action)
            operations.append(
                {
                    "method": "PUT",
                    "path": member,
                    "operation_id": email,
                    "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
                }
            )
            if sub.tags:
                operations.append(
                    {
                        "method": "POST",
                        "path": f"{member}/tags",
                        "operation_id": f"{email}#tags",
                        "body": json.dumps(build_tags_body(sub.tags), ensure_ascii=False),
                    }
                )
    return operations, refused


_STATES: Final = {
    "pending": BatchState.PENDING,
    "preprocessing": BatchState.RUNNING,
    "started": BatchState.RUNNING,
    "finalizing": BatchState.RUNNING,
    "finished": BatchState.FINISHED,
}


def parse_batch(data: Mapping[str, Any], rejected: Sequence[UpsertResult] = ()) -> BatchSubmission:
    """A ``/batches`` answer as a :class:`BatchSubmission` (pure)."""
    return BatchSubmission(
        provider=VENDOR,
        batch_id=str(data["id"]),
        state=_STATES.get(str(data.get("status")), BatchState.RUNNING),
        submitted=int(data.get("total_operations") or 0),
        finished=int(data.get("finished_operations") or 0),
        errored=int(data.get("errored_operations") or 0),
        rejected=tuple(rejected),
        result_url=data.get("response_body_url") or None,
    )


_WEBHOOK_CONSENT: Final = {
    "subscribe": ConsentStatus.GRANTED,
    "unsubscribe": ConsentStatus.WITHDRAWN,
}


def parse_webhook(
    body: bytes,
    *,
    secret: SecretStr | None = None,
    given_secret: str | None = None,
    list_id: str | None = None,
) -> ConsentChange | None:
    """A Mailchimp audience webhook (form-encoded ``type``, ``fired_at``, ``data[...]``)
    as a consent change: ``subscribe`` is consent granted at Mailchimp, ``unsubscribe``
    is consent withdrawn; other types (``profile``, ``cleaned``...) give ``None``.

    Mailchimp does not sign webhooks: put a secret in the webhook URL and pass it as
    ``secret`` with the value the request carried as ``given_secret`` (compared in
    constant time). ``list_id`` refuses webhooks of another audience.

    Raises:
        WebhookError: wrong or missing secret, another audience, or a malformed body.
    """
    if secret is not None and not hmac.compare_digest(
        (given_secret or "").encode(), secret.get_secret_value().encode()
    ):
        raise WebhookError("the webhook secret does not match", vendor=VENDOR)
    try:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), strict_parsing=True).items()}
    except (UnicodeDecodeError, ValueError):
        raise WebhookError("the webhook body is not a form", vendor=VENDOR) from None
    if list_id is not None and form.get("data[list_id]") != list_id:
        raise WebhookError("the webhook is for another audience", vendor=VENDOR)
    status = _WEBHOOK_CONSENT.get(form.get("type", ""))
    if status is None:
        return None
    try:
        email = checked_email(form.get("data[email]", ""), VENDOR, ("data[email]",))
        at = datetime.strptime(form["fired_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except (InvalidInput, KeyError, ValueError):
        raise WebhookError("the webhook lacks a valid email or fired_at", vendor=VENDOR) from None
    return ConsentChange(
        provider=VENDOR, email=email, status=status, at=at, reason=form.get("data[reason]")
    )


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """Mailchimp's problem-detail errors (``title``, ``detail``, ``instance``) as typed
    errors; a 403 without a body is throttling (Mailchimp's overload answer)."""
    status = response.status_code
    if status < 400:
        return None
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    title = str(data.get("title") or "")
    detail = str(data.get("detail") or title or f"HTTP {status}")
    rid = str(data.get("instance") or "") or response.headers.get("x-request-id")
    kw: dict[str, Any] = {
        "vendor": VENDOR,
        "request_id": rid,
        "status_code": status,
        "vendor_code": title or None,
    }
    if status == 429 or (status == 403 and not response.content):
        return RateLimited(detail, retry_at=datetime.now(UTC) + timedelta(seconds=1), **kw)
    if status == 401:
        return AuthError(detail, **kw)
    if status == 403:
        return PermissionDenied(detail, **kw)
    if status == 404:
        return NotFound(detail, **kw)
    if status == 400 and title == "Member Exists":
        return Conflict(detail, **kw)
    if status == 400:
        errors = [
            FieldError((str(e.get("field") or "body"),), str(e.get("message") or ""))
            for e in data.get("errors") or ()
            if isinstance(e, dict)
        ]
        return ValidationRejected(f"{title}: {detail}" if title else detail, errors=errors, **kw)
    return default_classify(response, endpoint)


class Mailchimp:
    """One Mailchimp audience as an :class:`~dixis_integrations.protocols.EmailProvider`."""

    name = "mailchimp"
    capabilities = frozenset({Capability.BATCH, Capability.DOUBLE_OPT_IN, Capability.ERASURE})

    def __init__(
        self,
        config: MailchimpConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        register_secret(config.api_key.get_secret_value())
        self.config = config
        self.endpoint = Endpoint(
            vendor=VENDOR,
            base_url=config.url(),
            tenant=tenant,
            auth=auth or BasicKeyAuth(config.api_key),
            limits=Limits(concurrency=_CONCURRENCY).scaled(time_scale),
            classify=classify,
            headers={"accept": "application/json"},
        )

    def read_webhook(self, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
        """Verify (the secret set in the webhook's URL: ``options["secret"]``) and read a
        delivery as it arrived."""
        change = parse_webhook(
            request.body,
            secret=webhook_secret(options, "secret", "mailchimp"),
            given_secret=given_secret(request, options),
            list_id=getattr(self.config, "list_id", None),
        )
        return [] if change is None else [change]

    def __repr__(self) -> str:
        return f"Mailchimp(list_id={self.config.list_id!r}, tenant={self.endpoint.tenant!r})"

    def _member_path(self, email: str) -> str:
        return f"/lists/{self.config.list_id}/members/{subscriber_hash(email)}"

    # -- the Protocol ----------------------------------------------------------------
    def check(self) -> Operation[HealthStatus]:
        """``GET /ping``."""
        response = yield self.endpoint.request("GET", "/ping", operation="mailchimp.ping")
        body = body_of(response, VENDOR) or {}
        return HealthStatus(self.name, True, detail=str(body.get("health_status", "")))

    def upsert_subscriber(self, subscriber: Subscriber) -> Operation[UpsertResult]:
        """Apply the subscriber's consent to the audience (see the module docstring).

        An existing member who unsubscribed is asked to confirm again (``pending``)
        rather than resubscribed silently; a ``cleaned`` (bounced) address is refused.
        """
        email = checked_email(subscriber.email, VENDOR)
        action = list_action(subscriber.consent)
        if action is ListAction.SKIP:
            return no_consent(email)
        path = self._member_path(email)
        try:
            found = yield self.endpoint.request("GET", path, operation="mailchimp.get_member")
            existing: str | None = str((body_of(found, VENDOR) or {}).get("status"))
        except NotFound:
            existing = None
        ref = subscriber_hash(email)
        if action is ListAction.UNSUBSCRIBE:
            if existing is None or existing in ("unsubscribed", "cleaned", "archived"):
                return UpsertResult(
                    reference=email,
                    status=UpsertStatus.UNCHANGED,
                    external_id=ref if existing else None,
                )
            patch: dict[str, Any] = {"status": "unsubscribed"}
            permissions = _permissions(self.config, False)
            if permissions:
                patch["marketing_permissions"] = permissions
            yield self.endpoint.request(
                "PATCH", path, operation="mailchimp.unsubscribe", json=patch, idempotent=True
            )
            return UpsertResult(reference=email, status=UpsertStatus.UPDATED, external_id=ref)
        if existing == "cleaned":
            return UpsertResult(
                reference=email,
                status=UpsertStatus.REJECTED,
                external_id=ref,
                error_code="cleaned",
                reason="the address bounced; Mailchimp will not mail it",
            )
        status: str | None = None
        if existing in _RESUBSCRIBE_NEEDS_CONFIRMATION:
            status = "pending"
        elif action is ListAction.SUBSCRIBE and existing in ("pending", "transactional"):
            status = "subscribed"
        body = build_member_body(subscriber, self.config, action, status=status)
        response = yield self.endpoint.request(
            "PUT", path, operation="mailchimp.upsert_member", json=body
        )
        member = body_of(response, VENDOR) or {}
        if subscriber.tags:
            yield self.endpoint.request(
                "POST",
                f"{path}/tags",
                operation="mailchimp.tags",
                json=build_tags_body(subscriber.tags),
                idempotent=True,
            )
        reason = f"member is {member.get('status')}" if member.get("status") == "pending" else None
        return UpsertResult(
            reference=email,
            status=UpsertStatus.CREATED if existing is None else UpsertStatus.UPDATED,
            external_id=str(member.get("id") or ref),
            reason=reason,
        )

    def send(self, message: EmailMessage) -> Operation[SendResult]:
        """Not offered: Mailchimp's Marketing API sends campaigns, not single messages."""
        return unsupported("send", VENDOR, "the Marketing API has no single transactional send")

    def erase(self, email: str) -> Operation[ErasureResult]:
        """GDPR: ``delete-permanent`` (the address cannot be re-imported afterwards)."""
        address = checked_email(email, VENDOR)
        try:
            yield self.endpoint.request(
                "POST",
                f"{self._member_path(address)}/actions/delete-permanent",
                operation="mailchimp.delete_permanent",
                idempotent=True,
            )
        except NotFound:
            return ErasureResult(
                provider=self.name, email=address, erased=False, detail="not present"
            )
        return ErasureResult(provider=self.name, email=address, erased=True)

    # -- beyond the Protocol -----------------------------------------------------------
    def tag(self, email: str, tags: Sequence[str], *, active: bool = True) -> Operation[None]:
        """Add (or with ``active=False`` remove) tags on an existing member, e.g. a segment."""
        address = checked_email(email, VENDOR)
        yield self.endpoint.request(
            "POST",
            f"{self._member_path(address)}/tags",
            operation="mailchimp.tags",
            json=build_tags_body(tags, active=active),
            idempotent=True,
        )

    def upsert_subscribers(self, subscribers: Sequence[Subscriber]) -> Operation[BatchSubmission]:
        """Submit many subscribers as one asynchronous ``/batches`` job (poll it with
        :meth:`batch_status`). Refusals (no consent, bad address) are in ``rejected``."""
        operations, refused = build_batch_operations(subscribers, self.config)
        if not operations:
            return BatchSubmission(
                provider=VENDOR,
                batch_id=None,
                state=BatchState.FINISHED,
                submitted=0,
                rejected=tuple(refused),
            )
        response = yield self.endpoint.request(
            "POST", "/batches", operation="mailchimp.batch", json={"operations": operations}
        )
        return parse_batch(body_of(response, VENDOR) or {}, refused)

    def tag_members(
        self, tag: str, emails: Iterable[str], *, active: bool = True
    ) -> Operation[BatchSubmission]:
        """Push a segment as a tag on many existing members, in one batch."""
        body = json.dumps(build_tags_body([tag], active=active), ensure_ascii=False)
        operations = [
            {
                "method": "POST",
                "path": f"{self._member_path(e)}/tags",
                "operation_id": e,
                "body": body,
            }
            for e in sorted({checked_email(e, VENDOR) for e in emails})
        ]
        if not operations:
            return BatchSubmission(
                provider=VENDOR, batch_id=None, state=BatchState.FINISHED, submitted=0
            )
        response = yield self.endpoint.request(
            "POST", "/batches", operation="mailchimp.batch", json={"operations": operations}
        )
        return parse_batch(body_of(response, VENDOR) or {})

    def register_webhook(self, url: str) -> Operation[str]:
        """Ask Mailchimp to call ``url`` when people subscribe or unsubscribe themselves or
        are changed in Mailchimp's own interface (not for our API calls, which we know);
        returns the webhook id. Parse the calls with :func:`parse_webhook`."""
        body = {
            "url": url,
            "events": {"subscribe": True, "unsubscribe": True},
            "sources": {"user": True, "admin": True, "api": False},
        }
        response = yield self.endpoint.request(
            "POST",
            f"/lists/{self.config.list_id}/webhooks",
            operation="mailchimp.webhook",
            json=body,
        )
        return str((body_of(response, VENDOR) or {}).get("id", ""))

    def batch_status(self, batch_id: str) -> Operation[BatchSubmission]:
        """The progress of a submitted batch."""
        response = yield self.endpoint.request(
            "GET", f"/batches/{batch_id}", operation="mailchimp.batch_status"
        )
        return parse_batch(body_of(response, VENDOR) or {})
