"""A Brevo API v3 emulator: contacts (upsert with ``updateEnabled``), lists, double
opt-in confirmation, transactional email with idempotency keys, events, and the limits.

Written from Brevo's API reference: auth by the ``api-key`` header; errors are
``{"code", "message"}``; creating an existing contact without ``updateEnabled`` is
``duplicate_parameter``; a double opt-in request sends the template's confirmation
email and the contact joins ``includeListIds`` only on the click
(:meth:`BrevoSandbox.confirm`); ``/smtp/email`` processes a request once per
``headers.idempotencyKey`` (a UUID) within its time-to-live. Limits are counted per
endpoint family and answered with 429 and the ``x-sib-ratelimit-*`` headers. Marketing
webhooks (``POST /webhooks``) are called with Brevo's JSON events: ``unsubscribe`` when a
person clicks a campaign's unsubscribe link (:meth:`BrevoSandbox.unsubscribe_click`) and
``list_addition`` when a double opt-in link is clicked.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

import httpx

from dixis_integrations.sandbox.kit import (
    Emulator,
    Fault,
    FaultPlan,
    FixedWindow,
    json_response,
    read_json,
    route,
)

__all__ = ["BrevoSandbox"]

_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_IDEMPOTENCY_TTL: Final = 30 * 60.0
_LIST_ADD_MAX: Final = 150
_WEBHOOK_EVENTS: Final = {
    "marketing": frozenset(
        {
            "spam",
            "opened",
            "click",
            "hardBounce",
            "softBounce",
            "delivered",
            "unsubscribed",
            "listAddition",
            "contactUpdated",
            "contactDeleted",
        }
    ),
    "transactional": frozenset(
        {
            "sent",
            "hardBounce",
            "softBounce",
            "blocked",
            "spam",
            "delivered",
            "request",
            "click",
            "invalid",
            "deferred",
            "opened",
            "uniqueOpened",
            "unsubscribed",
        }
    ),
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def _error(status: int, code: str, message: str) -> httpx.Response:
    return json_response(status, {"code": code, "message": message})


class BrevoSandbox(Emulator):
    """One Brevo account in memory.

    Attributes:
        contacts: email -> contact document.
        lists: list id -> list name (list 2 "Newsletter" exists).
        templates: template id -> whether it is a double opt-in template.
        doi_emails: confirmation emails sent (email, template id, redirection URL).
        emails: transactional emails accepted (the request body plus ``messageId``).
        events: events received.
        webhooks: registered webhooks (``id``, ``url``, ``events``, ``type``).
    """

    name = "brevo"

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.api_key = "xkeysib-" + secrets.token_hex(32)
        self.contacts: dict[str, dict[str, Any]] = {}
        self.lists: dict[int, str] = {2: "Newsletter", 3: "Champions"}
        self.templates: dict[int, bool] = {7: True, 8: False}
        self.doi_emails: list[tuple[str, int, str]] = []
        self.emails: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        self._pending_doi: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, tuple[float, str]] = {}
        self._next_id = 1
        self.windows = {
            "smtp": FixedWindow(1000, 1.0, self.clock, "smtp"),
            "events": FixedWindow(10, 1.0, self.clock, "events"),
            "contacts": FixedWindow(36_000, 3600.0, self.clock, "contacts"),
            "other": FixedWindow(100, 3600.0, self.clock, "other"),
        }

    def credentials(self) -> dict[str, str]:
        """The API key, where to call, the marketing list, the double opt-in template and
        where its link lands, and a sender for transactional mail."""
        return {
            "api_key": self.api_key,
            "base_url": f"{self.base_url}/v3",
            "list_ids": "2",
            "doi_template_id": "7",
            "redirection_url": "https://dixis.example/welcome",
            "sender_email": "hello@dixis.example",
        }

    # -- hooks ------------------------------------------------------------------------
    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        key = request.headers.get("api-key", "")
        if key and secrets.compare_digest(key, self.api_key):
            return None
        return _error(401, "unauthorized", "Key not found")

    @staticmethod
    def _family(path: str) -> str:
        if path.startswith("/v3/smtp/"):
            return "smtp"
        if path.startswith("/v3/events"):
            return "events"
        if path.startswith("/v3/contacts"):
            return "contacts"
        return "other"

    def limit(self, request: httpx.Request) -> httpx.Response | None:
        window = self.windows[self._family(request.url.path)]
        ok, left, reset = window.hit(self.api_key)
        if ok:
            return None
        response = _error(429, "too_many_requests", "The expected rate limit is exceeded.")
        response.headers.update(
            {
                "x-sib-ratelimit-limit": str(window.limit),
                "x-sib-ratelimit-remaining": str(left),
                "x-sib-ratelimit-reset": f"{max(reset, 0.0) * self.clock.scale:.3f}",
            }
        )
        return response

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            response = _error(429, "too_many_requests", "The expected rate limit is exceeded.")
            response.headers["x-sib-ratelimit-reset"] = str(self.faults.retry_after)
            return response
        if fault is Fault.SERVER_ERROR:
            return _error(503, "service_unavailable", "Service temporarily unavailable")
        if fault is Fault.EXPIRED_TOKEN:
            return _error(401, "unauthorized", "Key not found")
        return super().fault_response(fault, request)

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return _error(404, "not_found", f"Invalid route {request.method} {request.url.path}")

    # -- helpers ---------------------------------------------------------------------------
    def confirm(self, email: str) -> None:
        """The person clicks the double opt-in link: the contact is created on its lists
        and the ``listAddition`` webhooks are called."""
        with self.lock:
            pending = self._pending_doi.pop(email.lower())
            contact = self._upsert(email.lower(), pending["attributes"], pending["lists"])
            contact["emailBlacklisted"] = False
            event = {
                "id": contact["id"],
                "email": contact["email"],
                "key": secrets.token_hex(8),
                "list_id": list(pending["lists"]),
                "event": "list_addition",
                **self._stamps(),
            }
        self._notify("listAddition", event)

    def unsubscribe_click(self, email: str, *, campaign_id: int = 1) -> None:
        """The person clicks "unsubscribe" in a campaign: the contact is blacklisted for
        email campaigns and the ``unsubscribed`` webhooks are called."""
        with self.lock:
            contact = self.contacts[email.lower()]
            contact["emailBlacklisted"] = True
            contact["modifiedAt"] = _now()
            stamps = self._stamps()
            event = {
                "id": contact["id"],
                "camp_id": campaign_id,
                "email": contact["email"],
                "campaign name": "Newsletter",
                "date_sent": stamps["date"],
                "date_event": stamps["date"],
                "event": "unsubscribe",
                "tag": "",
                "ts_sent": stamps["ts"],
                "ts_event": stamps["ts"],
                "ts": stamps["ts"],
                "list_id": list(contact["listIds"]),
            }
        self._notify("unsubscribed", event)

    def _stamps(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {"date": now.strftime("%Y-%m-%d %H:%M:%S"), "ts": int(now.timestamp())}

    def _notify(self, event_name: str, payload: dict[str, Any]) -> None:
        with self.lock:
            urls = [h["url"] for h in self.webhooks if event_name in h["events"]]
        body = json.dumps(payload).encode()
        for url in urls:
            self.deliver_webhook(url, body, {"content-type": "application/json"})

    def _upsert(self, email: str, attributes: dict[str, Any], lists: list[int]) -> dict[str, Any]:
        contact = self.contacts.get(email)
        if contact is None:
            contact = {
                "id": self._next_id,
                "email": email,
                "emailBlacklisted": False,
                "smsBlacklisted": False,
                "createdAt": _now(),
                "modifiedAt": _now(),
                "attributes": {},
                "listIds": [],
                "listUnsubscribed": [],
            }
            self._next_id += 1
            self.contacts[email] = contact
        contact["attributes"].update(attributes)
        for list_id in lists:
            if list_id not in contact["listIds"]:
                contact["listIds"].append(list_id)
        contact["modifiedAt"] = _now()
        return contact

    def _bad_lists(self, ids: Any) -> httpx.Response | None:
        if ids is None:
            return None
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            return _error(400, "invalid_parameter", "listIds should be an array of integers")
        unknown = [i for i in ids if i not in self.lists]
        if unknown:
            return _error(404, "document_not_found", f"List ID does not exist: {unknown[0]}")
        return None

    # -- routes ------------------------------------------------------------------------
    @route("GET", r"/v3/account")
    def account(self, request: httpx.Request) -> httpx.Response:
        return json_response(
            200,
            {
                "email": "owner@dixis.gr",
                "firstName": "Dixis",
                "lastName": "Fresh",
                "companyName": "Dixis Fresh",
                "plan": [{"type": "free", "credits": 300}],
            },
        )

    @route("POST", r"/v3/contacts")
    def create_contact(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if not isinstance(body, dict):
            return _error(400, "bad_request", "Input must be a valid JSON object")
        email = str(body.get("email") or "").lower()
        if not _EMAIL.match(email):
            return _error(400, "invalid_parameter", "Invalid email address")
        bad = self._bad_lists(body.get("listIds"))
        if bad is not None:
            return bad
        existing = email in self.contacts
        if existing and not body.get("updateEnabled"):
            return _error(400, "duplicate_parameter", "Contact already exist")
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict):
            return _error(400, "invalid_parameter", "attributes should be an object")
        contact = self._upsert(email, attributes, list(body.get("listIds") or []))
        if "emailBlacklisted" in body:
            contact["emailBlacklisted"] = bool(body["emailBlacklisted"])
        if existing:
            return httpx.Response(204)
        return json_response(201, {"id": contact["id"]})

    @route("POST", r"/v3/contacts/doubleOptinConfirmation")
    def double_opt_in(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request) or {}
        email = str(body.get("email") or "").lower()
        if not _EMAIL.match(email):
            return _error(400, "invalid_parameter", "Invalid email address")
        for key in ("includeListIds", "templateId", "redirectionUrl"):
            if body.get(key) in (None, "", []):
                return _error(400, "missing_parameter", f"{key} is missing")
        bad = self._bad_lists(body["includeListIds"])
        if bad is not None:
            return bad
        template = body["templateId"]
        if not self.templates.get(template):
            return _error(400, "invalid_parameter", "Template is not a double opt-in template")
        self._pending_doi[email] = {
            "attributes": body.get("attributes") or {},
            "lists": list(body["includeListIds"]),
        }
        self.doi_emails.append((email, template, str(body["redirectionUrl"])))
        return httpx.Response(204 if email in self.contacts else 201)

    @route("GET", r"/v3/contacts/(?P<ident>[^/]+)")
    def get_contact(self, request: httpx.Request, ident: str) -> httpx.Response:
        contact = self.contacts.get(unquote(ident).lower())
        if contact is None:
            return _error(404, "document_not_found", "Contact does not exist")
        return json_response(200, contact)

    @route("PUT", r"/v3/contacts/(?P<ident>[^/]+)")
    def update_contact(self, request: httpx.Request, ident: str) -> httpx.Response:
        contact = self.contacts.get(unquote(ident).lower())
        if contact is None:
            return _error(404, "document_not_found", "Contact does not exist")
        body = read_json(request) or {}
        for key in ("listIds", "unlinkListIds"):
            bad = self._bad_lists(body.get(key))
            if bad is not None:
                return bad
        if isinstance(body.get("attributes"), dict):
            contact["attributes"].update(body["attributes"])
        if "emailBlacklisted" in body:
            contact["emailBlacklisted"] = bool(body["emailBlacklisted"])
        for list_id in body.get("listIds") or []:
            if list_id not in contact["listIds"]:
                contact["listIds"].append(list_id)
        for list_id in body.get("unlinkListIds") or []:
            if list_id in contact["listIds"]:
                contact["listIds"].remove(list_id)
                contact["listUnsubscribed"].append(list_id)
        contact["modifiedAt"] = _now()
        return httpx.Response(204)

    @route("DELETE", r"/v3/contacts/(?P<ident>[^/]+)")
    def delete_contact(self, request: httpx.Request, ident: str) -> httpx.Response:
        email = unquote(ident).lower()
        if self.contacts.pop(email, None) is None:
            return _error(404, "document_not_found", "Contact does not exist")
        self._pending_doi.pop(email, None)
        return httpx.Response(204)

    @route("POST", r"/v3/contacts/lists/(?P<list_id>\d+)/contacts/add")
    def add_to_list(self, request: httpx.Request, list_id: str) -> httpx.Response:
        lid = int(list_id)
        if lid not in self.lists:
            return _error(404, "document_not_found", "List ID does not exist")
        emails = (read_json(request) or {}).get("emails")
        if not isinstance(emails, list) or not emails:
            return _error(400, "missing_parameter", "emails is missing")
        if len(emails) > _LIST_ADD_MAX:
            return _error(400, "out_of_range", f"at most {_LIST_ADD_MAX} emails per request")
        success: list[str] = []
        failure: list[str] = []
        for e in emails:
            contact = self.contacts.get(str(e).lower())
            if contact is None:
                failure.append(str(e))
                continue
            if lid not in contact["listIds"]:
                contact["listIds"].append(lid)
            success.append(str(e))
        return json_response(201, {"contacts": {"success": success, "failure": failure}})

    @route("POST", r"/v3/webhooks")
    def create_webhook(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if not isinstance(body, dict):
            return _error(400, "bad_request", "Input must be a valid JSON object")
        url = str(body.get("url") or "")
        if not url.startswith(("http://", "https://")):
            return _error(400, "invalid_parameter", "url is not valid")
        events = body.get("events")
        kind = body.get("type", "transactional")
        allowed = _WEBHOOK_EVENTS.get(str(kind))
        if allowed is None:
            return _error(400, "invalid_parameter", "type should be transactional or marketing")
        if not isinstance(events, list) or not events:
            return _error(400, "missing_parameter", "events is missing")
        unknown = [e for e in events if e not in allowed]
        if unknown:
            return _error(400, "invalid_parameter", f"Invalid event: {unknown[0]}")
        hook = {
            "id": len(self.webhooks) + 1,
            "url": url,
            "description": str(body.get("description") or ""),
            "events": list(events),
            "type": kind,
        }
        self.webhooks.append(hook)
        return json_response(201, {"id": hook["id"]})

    @route("POST", r"/v3/smtp/email")
    def send_email(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if not isinstance(body, dict):
            return _error(400, "bad_request", "Input must be a valid JSON object")
        key = (body.get("headers") or {}).get("idempotencyKey")
        if key is not None:
            try:
                uuid.UUID(str(key))
            except ValueError:
                return _error(400, "invalid_parameter", "idempotencyKey must be a UUID")
            seen = self._keys.get(str(key))
            if seen is not None and self.clock.monotonic() - seen[0] < self.clock.window(
                _IDEMPOTENCY_TTL
            ):
                return json_response(201, {"messageId": seen[1]})
        to = body.get("to")
        if not isinstance(to, list) or not to:
            return _error(400, "missing_parameter", "to is missing")
        for recipient in to:
            if not isinstance(recipient, dict) or not _EMAIL.match(str(recipient.get("email"))):
                return _error(400, "invalid_parameter", "email is not valid in to")
        template = body.get("templateId")
        if template is None:
            if not body.get("sender"):
                return _error(400, "missing_parameter", "sender is missing")
            if not (body.get("htmlContent") or body.get("textContent")):
                return _error(400, "missing_parameter", "htmlContent or textContent is missing")
            if not body.get("subject"):
                return _error(400, "missing_parameter", "subject is missing")
        elif template not in self.templates:
            return _error(404, "document_not_found", "Template ID does not exist")
        message_id = f"<{secrets.token_hex(12)}@smtp-relay.mailin.fr>"
        if key is not None:
            self._keys[str(key)] = (self.clock.monotonic(), message_id)
        self.emails.append({**body, "messageId": message_id})
        return json_response(201, {"messageId": message_id})

    @route("POST", r"/v3/events")
    def create_event(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if not isinstance(body, dict) or not body.get("event_name"):
            return _error(400, "missing_parameter", "event_name is missing")
        identifiers = body.get("identifiers")
        if not isinstance(identifiers, dict) or not identifiers:
            return _error(400, "missing_parameter", "identifiers is missing")
        self.events.append(body)
        return httpx.Response(204)
