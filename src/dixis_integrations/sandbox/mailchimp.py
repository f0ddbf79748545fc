"""A Mailchimp Marketing API 3.0 emulator: audience members by subscriber hash, double
opt-in, GDPR marketing permissions, tags, batches, permanent deletion and the limits.

Written from Mailchimp's API reference: members are ``PUT`` by the MD5 of the lower-cased
address; a new member needs ``status_if_new`` (or ``status``); ``pending`` sends a
confirmation email (recorded in ``confirmations``; :meth:`MailchimpSandbox.confirm` plays
the click); an unsubscribed member cannot be set to ``subscribed`` by the API ("Member In
Compliance State"); a permanently deleted address cannot be re-added as subscribed
("Forgotten Email Not Subscribed"). Errors are problem+json documents. More than 10
concurrent connections are answered with 429.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

import httpx

from dixis_integrations.sandbox.kit import (
    Emulator,
    Fault,
    FaultPlan,
    json_response,
    read_json,
    route,
)

__all__ = ["MailchimpSandbox"]

_STATUSES: Final = frozenset({"subscribed", "unsubscribed", "cleaned", "pending", "transactional"})
_CONCURRENT: Final = 10
_DOCS: Final = "https://mailchimp.com/developer/marketing/docs/errors/"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _hash(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def _problem(
    status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> httpx.Response:
    body: dict[str, Any] = {
        "type": _DOCS,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": secrets.token_hex(8),
    }
    if errors:
        body["errors"] = errors
    return json_response(status, body, {"content-type": "application/problem+json"})


def _invalid(errors: list[dict[str, str]]) -> httpx.Response:
    return _problem(
        400,
        "Invalid Resource",
        "The resource submitted could not be validated. For field-specific details, "
        "see the 'errors' array.",
        errors,
    )


class MailchimpSandbox(Emulator):
    """One Mailchimp account with one audience, in memory.

    Attributes:
        members: subscriber hash -> member document, for the audience.
        confirmations: addresses a double opt-in confirmation email was sent to.
        forgotten: addresses deleted permanently.
        batches: batch id -> batch document.
    """

    name = "mailchimp"

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.api_key = f"{secrets.token_hex(16)}-us21"
        self.list_id = secrets.token_hex(5)
        self.marketing_permission_id = secrets.token_hex(5)
        self.members: dict[str, dict[str, Any]] = {}
        self.confirmations: list[str] = []
        self.forgotten: set[str] = set()
        self.batches: dict[str, dict[str, Any]] = {}
        self.webhooks: list[dict[str, Any]] = []
        self.rejected_concurrent = 0
        self._in_flight = 0
        self._count_lock = threading.Lock()

    def credentials(self) -> dict[str, str]:
        """The API key, the audience, its GDPR permission and where to call."""
        return {
            "api_key": self.api_key,
            "list_id": self.list_id,
            "marketing_permission_id": self.marketing_permission_id,
            "base_url": f"{self.base_url}/3.0",
        }

    # -- hooks ------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        # Connections are counted before the emulator's lock: the 11th concurrent one
        # is refused, as Mailchimp refuses more than 10 per account.
        with self._count_lock:
            self._in_flight += 1
            crowded = self._in_flight > _CONCURRENT
        try:
            if crowded:
                self.rejected_concurrent += 1
                return _problem(
                    429,
                    "Too Many Requests",
                    "You have exceeded the limit of 10 simultaneous connections.",
                )
            return super().handle(request)
        finally:
            with self._count_lock:
                self._in_flight -= 1

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            try:
                _, _, key = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                key = ""
            if secrets.compare_digest(key, self.api_key):
                return None
        return _problem(
            401,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        )

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            return _problem(
                429,
                "Too Many Requests",
                "You have exceeded the limit of 10 simultaneous connections.",
            )
        if fault is Fault.SERVER_ERROR:
            return _problem(503, "Service Unavailable", "Please try again later.")
        if fault is Fault.EXPIRED_TOKEN:
            return _problem(401, "API Key Invalid", "Your API key may be invalid.")
        return super().fault_response(fault, request)

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return _problem(404, "Resource Not Found", "The requested resource could not be found.")

    # -- helpers ---------------------------------------------------------------------------
    def confirm(self, email: str) -> None:
        """The person clicks the confirmation link: ``pending`` becomes ``subscribed``."""
        with self.lock:
            member = self.members[_hash(email)]
            if member["status"] == "pending":
                member["status"] = "subscribed"
                member["timestamp_opt"] = member["last_changed"] = _now()

    def unsubscribe_click(self, email: str) -> None:
        """The person clicks "unsubscribe" in a campaign: the member is unsubscribed and the
        audience's webhooks that listen for user unsubscribes are called (form-encoded)."""
        with self.lock:
            member = self.members[_hash(email)]
            self._set_status(member, "unsubscribed")
            hooks = [
                w
                for w in self.webhooks
                if w["events"].get("unsubscribe") and w["sources"].get("user")
            ]
        form = {
            "type": "unsubscribe",
            "fired_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "data[action]": "unsub",
            "data[reason]": "manual",
            "data[id]": member["unique_email_id"],
            "data[list_id]": self.list_id,
            "data[email]": member["email_address"],
            "data[email_type]": "html",
            "data[merges][EMAIL]": member["email_address"],
            "data[ip_opt]": "127.0.0.1",
        }
        body = urlencode(form).encode()
        for hook in hooks:
            self.deliver_webhook(
                hook["url"], body, {"content-type": "application/x-www-form-urlencoded"}
            )

    def member(self, email: str) -> dict[str, Any] | None:
        """The member document of an address, if any."""
        return self.members.get(_hash(email))

    def _check_list(self, list_id: str) -> httpx.Response | None:
        if list_id != self.list_id:
            return self.not_found(httpx.Request("GET", "/"))
        return None

    def _set_status(self, member: dict[str, Any], status: str) -> None:
        if status == member.get("status"):
            return
        member["status"] = status
        member["last_changed"] = _now()
        if status == "pending":
            self.confirmations.append(member["email_address"])

    def _apply_permissions(
        self, member: dict[str, Any], perms: Any, errors: list[dict[str, str]]
    ) -> None:
        if perms is None:
            return
        if not isinstance(perms, list):
            errors.append({"field": "marketing_permissions", "message": "must be an array"})
            return
        for p in perms:
            if not isinstance(p, Mapping) or p.get("marketing_permission_id") != (
                self.marketing_permission_id
            ):
                errors.append(
                    {
                        "field": "marketing_permissions.marketing_permission_id",
                        "message": "Invalid marketing permission id",
                    }
                )
                return
        member["marketing_permissions"] = (
            [
                {
                    "marketing_permission_id": self.marketing_permission_id,
                    "text": "Email",
                    "enabled": bool(perms[-1].get("enabled")),
                }
            ]
            if perms
            else member.get("marketing_permissions", [])
        )

    # -- routes ------------------------------------------------------------------------
    @route("GET", r"/3\.0/ping")
    def ping(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"health_status": "Everything's Chimpy!"})

    @route("GET", r"/3\.0/lists/(?P<list_id>\w+)/members/(?P<h>[0-9a-f]{32})")
    def get_member(self, request: httpx.Request, list_id: str, h: str) -> httpx.Response:
        missing = self._check_list(list_id)
        if missing is not None:
            return missing
        member = self.members.get(h)
        return json_response(200, member) if member else self.not_found(request)

    @route("PUT", r"/3\.0/lists/(?P<list_id>\w+)/members/(?P<h>[0-9a-f]{32})")
    def put_member(self, request: httpx.Request, list_id: str, h: str) -> httpx.Response:
        missing = self._check_list(list_id)
        if missing is not None:
            return missing
        body = read_json(request)
        if not isinstance(body, dict):
            return _problem(
                400, "JSON Parse Error", "We encountered an unspecified JSON parsing error."
            )
        email = str(body.get("email_address") or "")
        errors: list[dict[str, str]] = []
        if "@" not in email:
            errors.append(
                {"field": "email_address", "message": "This value should be a valid email."}
            )
        elif _hash(email) != h:
            errors.append(
                {
                    "field": "email_address",
                    "message": "The email address does not match the subscriber hash.",
                }
            )
        for key in ("status", "status_if_new"):
            if key in body and body[key] not in _STATUSES:
                errors.append(
                    {"field": key, "message": "Schema describes enum, " + key + " is invalid"}
                )
        existing = self.members.get(h)
        if existing is None and not (body.get("status_if_new") or body.get("status")):
            errors.append(
                {
                    "field": "status_if_new",
                    "message": "status_if_new is required to add a new member",
                }
            )
        if errors:
            return _invalid(errors)
        wanted = (
            body.get("status")
            if existing is not None
            else (body.get("status") or body.get("status_if_new"))
        )
        if existing is None and email.lower() in self.forgotten and wanted == "subscribed":
            return _problem(
                400,
                "Forgotten Email Not Subscribed",
                f"{email} was permanently deleted and cannot be re-imported. The "
                "contact must re-subscribe to get back on the list.",
            )
        if (
            existing is not None
            and existing["status"] in ("unsubscribed", "cleaned")
            and wanted == "subscribed"
        ):
            return _problem(
                400,
                "Member In Compliance State",
                f"{email} is already a list member in compliance state due to "
                "unsubscribe, bounce, or compliance review.",
            )
        created = existing is None
        member = existing or {
            "id": h,
            "email_address": email.lower(),
            "unique_email_id": secrets.token_hex(5),
            "status": "",
            "merge_fields": {},
            "tags": [],
            "marketing_permissions": [],
            "language": "",
            "timestamp_signup": _now(),
            "timestamp_opt": "",
            "last_changed": _now(),
            "list_id": list_id,
        }
        self._apply_permissions(member, body.get("marketing_permissions"), errors)
        if errors:
            return _invalid(errors)
        merge = body.get("merge_fields")
        if isinstance(merge, dict):
            member["merge_fields"] = {**member["merge_fields"], **merge}
        if body.get("language"):
            member["language"] = body["language"]
        if body.get("timestamp_opt"):
            try:
                datetime.fromisoformat(str(body["timestamp_opt"]))
            except ValueError:
                return _invalid([{"field": "timestamp_opt", "message": "not an ISO 8601 date"}])
            member["timestamp_opt"] = body["timestamp_opt"]
        if created:
            self.members[h] = member
        if wanted:
            self._set_status(member, str(wanted))
            if wanted == "subscribed" and not body.get("timestamp_opt"):
                member["timestamp_opt"] = _now()
        return json_response(200, member)

    @route("PATCH", r"/3\.0/lists/(?P<list_id>\w+)/members/(?P<h>[0-9a-f]{32})")
    def patch_member(self, request: httpx.Request, list_id: str, h: str) -> httpx.Response:
        missing = self._check_list(list_id)
        if missing is not None:
            return missing
        member = self.members.get(h)
        if member is None:
            return self.not_found(request)
        body = read_json(request) or {}
        status = body.get("status")
        if status is not None and status not in _STATUSES:
            return _invalid([{"field": "status", "message": "Schema describes enum"}])
        if status == "subscribed" and member["status"] in ("unsubscribed", "cleaned"):
            return _problem(400, "Member In Compliance State", "The member is in compliance state.")
        errors: list[dict[str, str]] = []
        self._apply_permissions(member, body.get("marketing_permissions"), errors)
        if errors:
            return _invalid(errors)
        if status:
            self._set_status(member, status)
        return json_response(200, member)

    @route("POST", r"/3\.0/lists/(?P<list_id>\w+)/members/(?P<h>[0-9a-f]{32})/tags")
    def tags(self, request: httpx.Request, list_id: str, h: str) -> httpx.Response:
        missing = self._check_list(list_id)
        if missing is not None:
            return missing
        member = self.members.get(h)
        if member is None:
            return self.not_found(request)
        body = read_json(request) or {}
        tags = body.get("tags")
        if not isinstance(tags, list) or not all(
            isinstance(t, dict) and t.get("name") and t.get("status") in ("active", "inactive")
            for t in tags
        ):
            return _invalid([{"field": "tags", "message": "tags need a name and a status"}])
        names = [t["name"] for t in member["tags"]]
        for t in tags:
            if t["status"] == "active" and t["name"] not in names:
                names.append(t["name"])
            elif t["status"] == "inactive" and t["name"] in names:
                names.remove(t["name"])
        member["tags"] = [{"id": abs(hash(n)) % 10**6, "name": n} for n in names]
        return httpx.Response(204)

    @route(
        "POST",
        r"/3\.0/lists/(?P<list_id>\w+)/members/(?P<h>[0-9a-f]{32})/actions/delete-permanent",
    )
    def delete_permanent(self, request: httpx.Request, list_id: str, h: str) -> httpx.Response:
        missing = self._check_list(list_id)
        if missing is not None:
            return missing
        member = self.members.pop(h, None)
        if member is None:
            return self.not_found(request)
        self.forgotten.add(member["email_address"])
        return httpx.Response(204)

    @route("POST", r"/3\.0/lists/(?P<list_id>\w+)/webhooks")
    def create_webhook(self, request: httpx.Request, list_id: str) -> httpx.Response:
        missing = self._check_list(list_id)
        if missing is not None:
            return missing
        body = read_json(request) or {}
        url = str(body.get("url") or "")
        if not url.startswith(("http://", "https://")):
            return _invalid([{"field": "url", "message": "This value should be a valid URL."}])
        hook = {
            "id": secrets.token_hex(5),
            "url": url,
            "events": {k: bool(v) for k, v in (body.get("events") or {}).items()},
            "sources": {k: bool(v) for k, v in (body.get("sources") or {}).items()},
            "list_id": list_id,
        }
        self.webhooks.append(hook)
        return json_response(200, hook)

    @route("POST", r"/3\.0/batches")
    def create_batch(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request) or {}
        operations = body.get("operations")
        if not isinstance(operations, list) or not operations:
            return _invalid([{"field": "operations", "message": "operations is required"}])
        batch_id = secrets.token_hex(5)
        results: list[dict[str, Any]] = []
        errored = 0
        for op in operations:
            if not isinstance(op, dict) or op.get("method") not in (
                "GET",
                "POST",
                "PUT",
                "PATCH",
                "DELETE",
            ):
                return _invalid([{"field": "operations.method", "message": "invalid method"}])
            sub = httpx.Request(
                op["method"],
                f"{self.base_url}/3.0{op.get('path', '')}",
                content=str(op.get("body") or "").encode(),
                headers=dict(request.headers),
            )
            answer = self._dispatch(sub)
            if answer.status_code >= 400:
                errored += 1
            results.append(
                {
                    "status_code": answer.status_code,
                    "operation_id": op.get("operation_id"),
                    "response": answer.content.decode() or "",
                }
            )
        batch = {
            "id": batch_id,
            "status": "pending",
            "total_operations": len(operations),
            "finished_operations": 0,
            "errored_operations": 0,
            "submitted_at": _now(),
            "completed_at": "",
            "response_body_url": "",
        }
        self.batches[batch_id] = {**batch, "_results": results, "_errored": errored}
        return json_response(200, batch)

    @route("GET", r"/3\.0/batches/(?P<batch_id>\w+)")
    def get_batch(self, request: httpx.Request, batch_id: str) -> httpx.Response:
        batch = self.batches.get(batch_id)
        if batch is None:
            return self.not_found(request)
        # processed in the background: finished by the time anyone asks
        batch.update(
            status="finished",
            finished_operations=batch["total_operations"],
            errored_operations=batch["_errored"],
            completed_at=batch["completed_at"] or _now(),
            response_body_url=f"{self.base_url}/batch-results/{batch_id}.json",
        )
        return json_response(200, {k: v for k, v in batch.items() if not k.startswith("_")})

    def batch_results(self, batch_id: str) -> list[dict[str, Any]]:
        """Each operation's status code and answer (what the results archive holds)."""
        return list(self.batches[batch_id]["_results"])

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        for r in self._routes:
            if r.method == request.method and r.attr != "create_batch":
                m = r.pattern.match(path)
                if m:
                    response: httpx.Response = getattr(self, r.attr)(request, **m.groupdict())
                    return response
        return self.not_found(request)
