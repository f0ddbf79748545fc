"""A Pipedrive emulator: v2 persons (search, create, update, delete), v1 person fields and
leads, lead conversion, api_token and OAuth auth, burst limits and the daily token budget.

Written from Pipedrive's API reference and rate-limiting guide. Bursts are counted per
rolling 2 seconds (searches on their own limit), answered with 429 and the
``x-ratelimit-*`` headers; the token budget is spent at the published cost per call and
reported by no header. A client that keeps calling through 429s gets Cloudflare's 403 page.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any, Final

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
from dixis_integrations.sandbox.oauth import OAuthServer, SandboxClient

__all__ = ["PipedriveSandbox"]

_COSTS: Final = {"get": 2, "list": 20, "create": 10, "update": 10, "delete": 6, "search": 40}
_MULTIPLIER: Final = {"lite": 1, "growth": 2, "premium": 5, "ultimate": 7}
_BURST: Final = {"lite": 20, "growth": 40, "premium": 100, "ultimate": 120}
_FIELD_TYPES: Final = {"varchar", "double", "monetary", "date", "text", "enum", "phone"}
_CLOUDFLARE_AFTER: Final = 50  # consecutive 429s before the 403 page


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fail(status: int, error: str, info: str | None = None) -> httpx.Response:
    return json_response(
        status,
        {"success": False, "error": error, "error_info": info, "data": None,
         "additional_data": None},
    )  # fmt: skip


class PipedriveSandbox(Emulator):
    """One Pipedrive company in memory.

    Args:
        plan: sets the burst limit and the budget multiplier.
        seats: multiplies the daily token budget.
        faults, time_scale, webhook_client: as for every emulator.
    """

    name = "pipedrive"

    def __init__(
        self,
        *,
        plan: str = "growth",
        seats: int = 1,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.api_token = secrets.token_hex(20)
        self.client_id = "pipedrive-sandbox-app"
        self.client_secret = secrets.token_hex(16)
        self.oauth = OAuthServer(
            clients=[SandboxClient(client_id=self.client_id, client_secret=self.client_secret)],
            token_path="/oauth/token",  # noqa: S106 - a path
            authorize_path="/oauth/authorize",
            userinfo_path="/oauth/userinfo",
            time_scale=time_scale,
        )
        self.mount("/oauth/", self.oauth)
        self.burst_limit = _BURST[plan]
        self.daily_tokens = 30_000 * _MULTIPLIER[plan] * seats
        self.tokens_spent = 0
        self.burst = FixedWindow(self.burst_limit, 2.0, self.clock, "burst")
        self.oauth_burst = FixedWindow(self.burst_limit * 4, 2.0, self.clock, "burst")
        self.search_burst = FixedWindow(10, 2.0, self.clock, "search")
        self.persons: dict[int, dict[str, Any]] = {}
        self.leads: dict[str, dict[str, Any]] = {}
        self.fields: list[dict[str, Any]] = [
            {"key": "name", "name": "Name", "field_type": "varchar"},
            {"key": "email", "name": "Email", "field_type": "varchar"},
            {"key": "phone", "name": "Phone", "field_type": "phone"},
        ]
        self.rate_limited = 0
        self._streak = 0
        self._next = 1
        self._emails: dict[str, int] = {}  # email -> person id (checked on use)
        self.deleted_persons: dict[int, dict[str, Any]] = {}

    def credentials(self) -> dict[str, str]:
        """The api_token and where to call."""
        return {"api_token": self.api_token, "base_url": self.base_url}

    # -- hooks --------------------------------------------------------------------------
    def _is_oauth(self, request: httpx.Request) -> bool:
        return str(request.headers.get("authorization", "")).startswith("Bearer ")

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        token = request.headers.get("x-api-token") or request.url.params.get("api_token")
        if token == self.api_token:
            return None
        if self._is_oauth(request) and self.oauth.validate_bearer(request) is not None:
            return None
        return _fail(401, "unauthorized access", "Please check the Pipedrive Developer docs")

    @staticmethod
    def _kind(request: httpx.Request) -> str:
        path = request.url.path
        if path.endswith("/search"):
            return "search"
        if request.method == "GET":
            return "get" if re.search(r"/\d+$|/me$", path) else "list"
        return {"POST": "create", "PATCH": "update", "PUT": "update", "DELETE": "delete"}.get(
            request.method, "get"
        )

    def limit(self, request: httpx.Request) -> httpx.Response | None:
        kind = self._kind(request)
        if self._streak >= _CLOUDFLARE_AFTER:
            return httpx.Response(
                403,
                content=b"<html><title>Attention Required! | Cloudflare</title></html>",
                headers={"content-type": "text/html"},
            )
        window = self.search_burst if kind == "search" else (
            self.oauth_burst if self._is_oauth(request) else self.burst
        )  # fmt: skip
        ok, left, reset = window.hit("company")
        if ok and self.tokens_spent + _COSTS[kind] > self.daily_tokens:
            ok, reset = False, 86_400.0
        headers = {
            "x-ratelimit-limit": str(window.limit),
            "x-ratelimit-remaining": str(left),
            "x-ratelimit-reset": f"{max(reset, 0.001) * self.clock.scale:.3f}",
        }
        if not ok:
            self.rate_limited += 1
            self._streak += 1
            response = _fail(429, "Request over limit")
            response.headers.update(headers)
            return response
        self._streak = 0
        self.tokens_spent += _COSTS[kind]
        return None

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            response = _fail(429, "Request over limit")
            response.headers["x-ratelimit-reset"] = str(self.faults.retry_after)
            return response
        if fault is Fault.SERVER_ERROR:
            return _fail(503, "Service unavailable")
        return super().fault_response(fault, request)

    # -- persons ------------------------------------------------------------------------
    def _person_out(self, person: dict[str, Any]) -> dict[str, Any]:
        return dict(person)

    def _validate_person(self, body: dict[str, Any], creating: bool) -> httpx.Response | None:
        known = {"name", "emails", "phones", "custom_fields", "owner_id", "org_id",
                 "visible_to", "label_ids", "marketing_status"}  # fmt: skip
        unknown = sorted(set(body) - known)
        if unknown:
            return _fail(400, f"Unknown parameter: {unknown[0]}")
        if creating and not str(body.get("name") or "").strip():
            return _fail(400, "Name must be given", "name")
        keys = {f["key"]: f for f in self.fields}
        for key, value in (body.get("custom_fields") or {}).items():
            field = keys.get(key)
            if field is None:
                return _fail(400, f"Custom field {key} does not exist")
            if (
                field["field_type"] == "monetary"
                and value is not None
                and (not isinstance(value, dict) or "value" not in value)
            ):
                return _fail(400, f"Custom field {key} expects {{value, currency}}")
        return None

    def _index(self, person: dict[str, Any]) -> None:
        for email in person.get("emails") or []:
            self._emails[str(email.get("value", "")).lower()] = int(person["id"])

    @route("GET", r"/api/v2/persons/search")
    def _search(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        term = params.get("term", "").lower()
        if len(term) < 2:
            return _fail(400, "term must be at least 2 characters")
        exact = params.get("exact_match") == "true"
        items = []
        pool = self.persons.values()
        if exact:
            pid = self._emails.get(term)
            pool = [self.persons[pid]] if pid in self.persons else []  # type: ignore[assignment]
        for person in pool:
            emails = [e["value"].lower() for e in person.get("emails") or []]
            hit = term in emails if exact else any(term in e for e in emails)
            if hit:
                items.append({"result_score": 1.0, "item": {
                    "id": person["id"], "type": "person", "name": person["name"],
                    "emails": [e["value"] for e in person["emails"]]}})  # fmt: skip
        limit = int(params.get("limit", "100"))
        return json_response(200, {"success": True, "data": {"items": items[:limit]},
                                   "additional_data": {"next_cursor": None}})  # fmt: skip

    @route("POST", r"/api/v2/persons")
    def _create(self, request: httpx.Request) -> httpx.Response:
        body = dict(read_json(request) or {})
        problem = self._validate_person(body, creating=True)
        if problem is not None:
            return problem
        pid = self._next
        self._next += 1
        person = {"id": pid, "add_time": _now(), "update_time": _now(), **body}
        person.setdefault("emails", [])
        self.persons[pid] = person
        self._index(person)
        return json_response(200, {"success": True, "data": self._person_out(person)})

    @route("PATCH", r"/api/v2/persons/(?P<pid>\d+)")
    def _update(self, request: httpx.Request, pid: str) -> httpx.Response:
        person = self.persons.get(int(pid))
        if person is None:
            return _fail(404, "Person not found")
        body = dict(read_json(request) or {})
        problem = self._validate_person(body, creating=False)
        if problem is not None:
            return problem
        custom = {**(person.get("custom_fields") or {}), **(body.pop("custom_fields", {}) or {})}
        person.update(body, custom_fields=custom, update_time=_now())
        self._index(person)
        return json_response(200, {"success": True, "data": self._person_out(person)})

    @route("GET", r"/api/v2/persons/(?P<pid>\d+)")
    def _get(self, request: httpx.Request, pid: str) -> httpx.Response:
        person = self.persons.get(int(pid))
        if person is None:
            return _fail(404, "Person not found")
        return json_response(200, {"success": True, "data": self._person_out(person)})

    @route("DELETE", r"/api/v2/persons/(?P<pid>\d+)")
    def _delete(self, request: httpx.Request, pid: str) -> httpx.Response:
        person = self.persons.pop(int(pid), None)
        if person is None:
            return _fail(404, "Person not found")
        # Pipedrive keeps deleted persons for 30 days, flagged inactive.
        self.deleted_persons[int(pid)] = {**person, "active_flag": False, "update_time": _now()}
        return json_response(200, {"success": True, "data": {"id": int(pid)}})

    @route("GET", r"/v1/recents")
    def _recents(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        since = params.get("since_timestamp", "")
        if params.get("items") != "person" or len(since) != 19:
            return _fail(400, "since_timestamp (YYYY-MM-DD HH:MM:SS) and items are required")
        start = int(params.get("start", "0"))
        limit = min(int(params.get("limit", "100")), 500)
        everyone = [
            {**p, "active_flag": p.get("active_flag", True)}
            for p in [*self.persons.values(), *self.deleted_persons.values()]
        ]
        changed = sorted(
            (p for p in everyone if str(p.get("update_time", "")) >= since),
            key=lambda p: (str(p["update_time"]), int(p["id"])),
        )
        page = changed[start : start + limit]
        more = start + limit < len(changed)
        pagination: dict[str, Any] = {"start": start, "limit": limit,
                                      "more_items_in_collection": more}  # fmt: skip
        if more:
            pagination["next_start"] = start + limit
        last = str(page[-1]["update_time"]) if page else since
        return json_response(
            200,
            {
                "success": True,
                "data": [{"item": "person", "id": p["id"], "data": p} for p in page],
                "additional_data": {
                    "since_timestamp": since,
                    "last_timestamp_on_page": last,
                    "pagination": pagination,
                },
            },
        )

    # -- fields, leads, users -----------------------------------------------------------
    @route("GET", r"/v1/personFields")
    def _fields(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"success": True, "data": self.fields})

    @route("POST", r"/v1/personFields")
    def _new_field(self, request: httpx.Request) -> httpx.Response:
        body = dict(read_json(request) or {})
        if not body.get("name") or body.get("field_type") not in _FIELD_TYPES:
            return _fail(400, "name and a valid field_type are required")
        field = {"key": secrets.token_hex(20), "name": body["name"],
                 "field_type": body["field_type"]}  # fmt: skip
        self.fields.append(field)
        return json_response(200, {"success": True, "data": field})

    @route("POST", r"/v1/leads")
    def _new_lead(self, request: httpx.Request) -> httpx.Response:
        body = dict(read_json(request) or {})
        if not str(body.get("title") or "").strip():
            return _fail(400, "Validation failed: title: Required")
        if body.get("person_id") is None and body.get("organization_id") is None:
            return _fail(400, "A lead must be linked to a person or an organization")
        if body.get("person_id") is not None and int(body["person_id"]) not in self.persons:
            return _fail(400, "Person not found")
        lead_id = str(secrets.token_hex(4)) + "-lead"
        lead = {"id": lead_id, "title": body["title"], "person_id": body.get("person_id"),
                "is_archived": False, "add_time": _now()}  # fmt: skip
        self.leads[lead_id] = lead
        return json_response(201, {"success": True, "data": lead})

    @route("GET", r"/v1/leads")
    def _list_leads(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        archived = params.get("archived_status", "all")
        rows = list(self.leads.values())
        if params.get("person_id"):
            rows = [r for r in rows if str(r.get("person_id")) == params["person_id"]]
        if archived in ("archived", "not_archived"):
            rows = [r for r in rows if bool(r.get("is_archived")) == (archived == "archived")]
        start = int(params.get("start", "0"))
        limit = min(int(params.get("limit", "100")), 500)
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        pagination = {"start": start, "limit": limit, "more_items_in_collection": more}
        return json_response(
            200,
            {"success": True, "data": page, "additional_data": {"pagination": pagination}},
        )

    @route("POST", r"/api/v2/leads/(?P<lead_id>[\w-]+)/convert/deal")
    def _convert(self, request: httpx.Request, lead_id: str) -> httpx.Response:
        lead = self.leads.get(lead_id)
        if lead is None:
            return _fail(404, "Lead not found")
        lead["is_archived"] = True
        lead["converted"] = True
        return json_response(
            200, {"success": True, "data": {"conversion_id": secrets.token_hex(8)}}
        )

    @route("GET", r"/v1/users/me")
    def _me(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"success": True, "data": {"id": 1, "name": "Sandbox User",
                                                             "company_id": 1}})  # fmt: skip

    def webhook(
        self, action: str, person_id: int, *, user: str, password: str
    ) -> tuple[bytes, dict[str, str]]:
        """A v2 webhook about a person, with the HTTP Basic credentials set on the hook."""
        person = self.persons.get(person_id) or self.deleted_persons.get(person_id) or {}
        body = {
            "meta": {
                "action": action,
                "entity": "person",
                "entity_id": str(person_id),
                "id": secrets.token_hex(16),
                "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "version": "2.0",
                "company_id": "1",
                "user_id": "1",
            },
            "data": None if action == "delete" else person,
            "previous": None,
        }
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return json.dumps(body, default=str).encode(), {
            "Content-Type": "application/json",
            "Authorization": f"Basic {token}",
        }
