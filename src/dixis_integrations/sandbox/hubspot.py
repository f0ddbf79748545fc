"""A HubSpot CRM emulator: contacts v3 (CRUD, batch upsert with 207, search, gdpr-delete),
the properties API, private-app and OAuth (v3) tokens, rate limits and signed webhooks.

Written from HubSpot's public API documentation. Limits: per-10-seconds and daily per
account (``X-HubSpot-RateLimit-*`` headers, 429 with ``policyName``) and about five
searches a second. Timestamps are ISO 8601 strings with millisecond precision.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import httpx

from dixis_integrations.sandbox.kit import (
    Emulator,
    Fault,
    FaultPlan,
    FixedWindow,
    WebhookDelivery,
    json_response,
    read_json,
    route,
    sign_hmac_sha256,
)
from dixis_integrations.sandbox.oauth import OAuthServer, SandboxClient

__all__ = ["HubSpotSandbox"]

_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_BATCH_MAX: Final = 100
_SEARCH_MAX: Final = 200
_SEARCH_CAP: Final = 10_000
_TIERS: Final = {"free": (100, 250_000), "starter": (100, 250_000),
                 "professional": (190, 650_000), "enterprise": (190, 1_000_000)}  # fmt: skip
_DEFAULT_PROPERTIES: Final = {
    "email": "string",
    "firstname": "string",
    "lastname": "string",
    "phone": "string",
    "company": "string",
    "lifecyclestage": "enumeration",
    "hs_lead_status": "enumeration",
    "createdate": "datetime",
    "lastmodifieddate": "datetime",
    "hs_object_id": "number",
}
_LIFECYCLE: Final = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _error(status: int, message: str, category: str, **extra: Any) -> httpx.Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return json_response(status, body)


class HubSpotSandbox(Emulator):
    """HubSpot's contacts API in memory.

    Args:
        tier: the account tier, which sets the per-10-seconds and daily limits.
        access_token: the private-app token it accepts (a random one by default).
        client_secret: the app secret that signs webhooks and OAuth clients use.
        faults, time_scale, webhook_client: as for every emulator.
    """

    name = "hubspot"

    def __init__(
        self,
        *,
        tier: str = "professional",
        access_token: str | None = None,
        client_secret: str | None = None,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        burst, daily = _TIERS[tier]
        self.access_token = access_token or "pat-eu1-" + secrets.token_hex(16)
        self.client_secret = client_secret or secrets.token_hex(16)
        self.client_id = "hubspot-sandbox-app"
        self.oauth = OAuthServer(
            clients=[SandboxClient(client_id=self.client_id, client_secret=self.client_secret)],
            access_token_lifetime=1800.0,
            token_path="/oauth/v3/token",  # noqa: S106 - a path
            authorize_path="/oauth/authorize",
            userinfo_path="/oauth/v3/userinfo",
            time_scale=time_scale,
        )
        self.mount("/oauth/", self.oauth)
        self.ten_secondly = FixedWindow(burst, 10.0, self.clock, "TEN_SECONDLY_ROLLING")
        self.daily = FixedWindow(daily, 86_400.0, self.clock, "DAILY")
        self.searches = FixedWindow(5, 1.0, self.clock, "SECONDLY")
        self.burst_limit = burst
        self.daily_limit = daily
        self.contacts: dict[str, dict[str, Any]] = {}
        self.archived: dict[str, dict[str, Any]] = {}
        self.properties: dict[str, dict[str, Any]] = {
            n: {"name": n, "type": t, "groupName": "contactinformation", "hubspotDefined": True}
            for n, t in _DEFAULT_PROPERTIES.items()
        }
        self.groups: dict[str, dict[str, Any]] = {
            "contactinformation": {"name": "contactinformation", "label": "Contact information"}
        }
        self.rate_limited = 0
        self._ids = 100
        self._last_ms = 0
        self._headers = threading.local()
        self._emails: dict[str, str] = {}  # email -> contact id (checked on use)

    def credentials(self) -> dict[str, str]:
        """The private-app token, the app secret (webhooks) and where to call."""
        return {
            "access_token": self.access_token,
            "client_secret": self.client_secret,
            "base_url": self.base_url,
        }

    # -- helpers ------------------------------------------------------------------------
    def _now_ms(self) -> int:
        ms = int(time.time() * 1000)
        self._last_ms = max(ms, self._last_ms + 1)
        return self._last_ms

    def _next_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def _by_email(self, email: str) -> dict[str, Any] | None:
        cid = self._emails.get(email.lower())
        contact = self.contacts.get(cid) if cid is not None else None
        if contact is None or contact["properties"].get("email") != email.lower():
            return None
        return contact

    def _public(self, contact: dict[str, Any], wanted: list[str] | None = None) -> dict[str, Any]:
        props = contact["properties"]
        if wanted is not None:
            props = {k: props.get(k) for k in {*wanted, "hs_object_id", "createdate",
                                               "lastmodifieddate"}}  # fmt: skip
        out = {
            "id": contact["id"],
            "properties": dict(props),
            "createdAt": contact["createdAt"],
            "updatedAt": contact["updatedAt"],
            "archived": contact.get("archived", False),
        }
        if contact.get("archivedAt"):
            out["archivedAt"] = contact["archivedAt"]
        return out

    def _check_properties(self, props: dict[str, Any]) -> tuple[str, str, list[str]] | None:
        """``(category, message, property names)`` of the first problem, if any."""
        unknown = [k for k in props if k not in self.properties]
        if unknown:
            return (
                "VALIDATION_ERROR",
                f'Property values were not valid: Property "{unknown[0]}" does not exist',
                unknown,
            )
        for key, value in props.items():
            if value is None or value == "":
                continue
            kind = self.properties[key]["type"]
            if key == "email" and not _EMAIL.match(str(value)):
                return ("VALIDATION_ERROR", f"Email address {value} is invalid", [key])
            if kind == "number":
                try:
                    Decimal(str(value))
                except InvalidOperation:
                    return ("VALIDATION_ERROR", f'"{value}" is not a valid number', [key])
            if kind == "date" and not re.match(r"^\d{4}-\d{2}-\d{2}$|^\d+$", str(value)):
                return ("VALIDATION_ERROR", f'"{value}" is not a valid date', [key])
            if key == "lifecyclestage" and value not in _LIFECYCLE:
                return ("VALIDATION_ERROR", f'"{value}" is not a valid lifecycle stage', [key])
            options = self.properties[key].get("options")
            if options and value not in {o["value"] for o in options}:
                return ("VALIDATION_ERROR", f'"{value}" is not a valid option for {key}', [key])
        return None

    def _write(self, contact: dict[str, Any], props: dict[str, Any]) -> None:
        now = self._now_ms()
        clean = {k: (str(v) if v is not None else None) for k, v in props.items()}
        email = clean.get("email")
        if email:
            clean["email"] = email.lower()
            self._emails[email.lower()] = contact["id"]
        contact["properties"].update(clean)
        contact["properties"]["lastmodifieddate"] = _iso(now)
        contact["updatedAt"] = _iso(now)

    def _create(self, props: dict[str, Any]) -> dict[str, Any]:
        cid = self._next_id()
        now = self._now_ms()
        contact: dict[str, Any] = {
            "id": cid,
            "properties": {"hs_object_id": cid, "createdate": _iso(now)},
            "createdAt": _iso(now),
            "updatedAt": _iso(now),
        }
        self._write(contact, props)
        self.contacts[cid] = contact
        return contact

    # -- the base hooks -----------------------------------------------------------------
    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        if header == f"Bearer {self.access_token}":
            return None
        if header.startswith("Bearer ") and self.oauth.validate_bearer(request) is not None:
            return None
        return _error(
            401,
            "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
            "oauth-overview",
            "INVALID_AUTHENTICATION",
        )

    def limit(self, request: httpx.Request) -> httpx.Response | None:
        key = "account"
        ok_day, left_day, _ = self.daily.hit(key)
        ok, left, reset = self.ten_secondly.hit(key)
        self._headers.values = {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(left_day),
            "X-HubSpot-RateLimit-Max": str(self.burst_limit),
            "X-HubSpot-RateLimit-Remaining": str(left),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        }
        policy = None
        if not ok_day:
            policy, reset = "DAILY", 86_400.0
        elif not ok:
            policy = "TEN_SECONDLY_ROLLING"
        elif request.url.path.endswith("/search"):
            ok_s, _, reset_s = self.searches.hit(key)
            if not ok_s:
                policy, reset = "SECONDLY", reset_s
        if policy is None:
            return None
        self.rate_limited += 1
        message = {
            "DAILY": "You have reached your daily limit.",
            "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
            "SECONDLY": "You have reached your secondly limit.",
        }[policy]
        response = json_response(
            429,
            {
                "status": "error",
                "message": message,
                "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()),
                "policyName": policy,
                "groupName": "api-calls",
            },
            {"Retry-After": self.clock.retry_after(reset)},
        )
        return response

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            return json_response(
                429,
                {
                    "status": "error",
                    "message": "You have reached your ten_secondly_rolling limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": str(uuid.uuid4()),
                    "policyName": "TEN_SECONDLY_ROLLING",
                    "groupName": "api-calls",
                },
                {"Retry-After": str(self.faults.retry_after)},
            )
        if fault is Fault.SERVER_ERROR:
            return _error(502, "Bad gateway", "INTERNAL_ERROR")
        if fault is Fault.EXPIRED_TOKEN:
            return _error(401, "The OAuth token used to make this call expired", "EXPIRED_AUTH")
        return super().fault_response(fault, request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self._headers.values = {}
        response = super().handle(request)
        for key, value in getattr(self._headers, "values", {}).items():
            response.headers.setdefault(key, value)
        return response

    # -- contacts -----------------------------------------------------------------------
    @route("GET", r"/crm/v3/objects/contacts")
    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        archived = params.get("archived") == "true"
        limit = min(int(params.get("limit", "10")), 100)
        after = int(params.get("after", "0"))
        wanted = params.get("properties")
        pool = self.archived if archived else self.contacts
        ordered = sorted(pool.values(), key=lambda c: int(c["id"]))
        page = [c for c in ordered if int(c["id"]) > after][:limit]
        props = wanted.split(",") if wanted else ["email", "firstname", "lastname"]
        body: dict[str, Any] = {"results": [self._public(c, props) for c in page]}
        if len(page) == limit and any(int(c["id"]) > int(page[-1]["id"]) for c in ordered):
            body["paging"] = {"next": {"after": page[-1]["id"]}}
        return json_response(200, body)

    @route("POST", r"/crm/v3/objects/contacts")
    def _create_one(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request) or {}
        props = dict(body.get("properties") or {})
        problem = self._check_properties(props)
        if problem:
            return _error(400, problem[1], problem[0], context={"propertyName": problem[2]})
        email = str(props.get("email") or "")
        existing = self._by_email(email) if email else None
        if existing is not None:
            return _error(409, f"Contact already exists. Existing ID: {existing['id']}", "CONFLICT")
        return json_response(201, self._public(self._create(props)))

    @route("GET", r"/crm/v3/objects/contacts/(?P<cid>\d+)")
    def _get(self, request: httpx.Request, cid: str) -> httpx.Response:
        contact = self.contacts.get(cid)
        if contact is None:
            return _error(
                404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND"
            )
        return json_response(200, self._public(contact))

    @route("PATCH", r"/crm/v3/objects/contacts/(?P<cid>\d+)")
    def _update(self, request: httpx.Request, cid: str) -> httpx.Response:
        contact = self.contacts.get(cid)
        if contact is None:
            return _error(404, "resource not found", "OBJECT_NOT_FOUND")
        props = dict((read_json(request) or {}).get("properties") or {})
        problem = self._check_properties(props)
        if problem:
            return _error(400, problem[1], problem[0], context={"propertyName": problem[2]})
        self._write(contact, props)
        return json_response(200, self._public(contact))

    @route("DELETE", r"/crm/v3/objects/contacts/(?P<cid>\d+)")
    def _archive(self, request: httpx.Request, cid: str) -> httpx.Response:
        contact = self.contacts.pop(cid, None)
        if contact is not None:
            contact["archived"] = True
            contact["archivedAt"] = _iso(self._now_ms())
            self.archived[cid] = contact
        return httpx.Response(204)

    @route("POST", r"/crm/v3/objects/contacts/batch/upsert")
    def _batch_upsert(self, request: httpx.Request) -> httpx.Response:
        started = _iso(self._now_ms())
        inputs = list((read_json(request) or {}).get("inputs") or [])
        if not inputs or len(inputs) > _BATCH_MAX:
            return _error(
                400,
                f"Batch input must contain between 1 and {_BATCH_MAX} inputs",
                "VALIDATION_ERROR",
            )
        ids = [str(i.get("id", "")).lower() for i in inputs]
        if len(set(ids)) != len(ids):
            return _error(400, "Duplicate IDs found in batch input", "VALIDATION_ERROR")
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            trace = item.get("objectWriteTraceId")
            id_property = item.get("idProperty") or "hs_object_id"
            props = dict(item.get("properties") or {})
            problem = None
            if id_property != "email":
                prop = self.properties.get(id_property)
                if prop is None or not prop.get("hasUniqueValue"):
                    problem = ("VALIDATION_ERROR", f"{id_property} is not a unique property",
                               [id_property])  # fmt: skip
            if problem is None:
                props.setdefault("email", item.get("id"))
                problem = self._check_properties(props)
            if problem is not None:
                error: dict[str, Any] = {
                    "status": "error",
                    "category": problem[0],
                    "message": problem[1],
                    "context": {"propertyName": problem[2], "ids": [str(item.get("id"))]},
                }
                if trace:
                    error["objectWriteTraceId"] = trace
                errors.append(error)
                continue
            contact = self._by_email(str(item.get("id")))
            new = contact is None
            if contact is None:
                contact = self._create(props)
            else:
                self._write(contact, props)
            result = self._public(contact)
            result["new"] = new
            if trace:
                result["objectWriteTraceId"] = trace
            results.append(result)
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": _iso(self._now_ms()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return json_response(207, body)
        return json_response(200, body)

    @route("POST", r"/crm/v3/objects/contacts/search")
    def _search(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request) or {}
        limit = int(body.get("limit", 10))
        after = int(body.get("after", 0) or 0)
        if limit > _SEARCH_MAX:
            return _error(400, f"limit must be at most {_SEARCH_MAX}", "VALIDATION_ERROR")
        if after + limit > _SEARCH_CAP:
            return _error(400, "Paging beyond 10000 results is not supported", "VALIDATION_ERROR")
        found = [c for c in self.contacts.values() if self._matches(c, body)]
        for sort in reversed(body.get("sorts") or []):
            name = str(sort.get("propertyName"))

            def by(c: dict[str, Any], n: str = name) -> tuple[str, int]:
                return (str(c["properties"].get(n) or ""), int(c["id"]))

            found.sort(key=by, reverse=sort.get("direction") == "DESCENDING")
        page = found[after : after + limit]
        wanted = body.get("properties") or ["email", "firstname", "lastname"]
        out: dict[str, Any] = {
            "total": len(found),
            "results": [self._public(c, list(wanted)) for c in page],
        }
        if after + limit < len(found):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return json_response(200, out)

    def _matches(self, contact: dict[str, Any], body: dict[str, Any]) -> bool:
        groups = body.get("filterGroups") or []
        if not groups:
            return True
        return any(all(self._filter(contact, f) for f in g.get("filters", [])) for g in groups)

    @staticmethod
    def _filter(contact: dict[str, Any], flt: dict[str, Any]) -> bool:
        raw = contact["properties"].get(flt.get("propertyName"))
        op = flt.get("operator", "EQ")
        if op == "HAS_PROPERTY":
            return raw is not None
        if op == "NOT_HAS_PROPERTY":
            return raw is None
        if raw is None:
            return False
        value = str(flt.get("value", ""))
        if flt.get("propertyName") in ("lastmodifieddate", "createdate"):
            have: Any = int(datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp() * 1000)
            want: Any = (
                int(value)
                if value.isdigit()
                else int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
            )
        else:
            have, want = str(raw).lower(), value.lower()
        return bool(
            {
                "EQ": have == want,
                "NEQ": have != want,
                "GT": have > want,
                "GTE": have >= want,
                "LT": have < want,
                "LTE": have <= want,
            }.get(op, False)
        )

    @route("POST", r"/crm/v3/objects/contacts/gdpr-delete")
    def _gdpr_delete(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request) or {}
        key = str(body.get("objectId", ""))
        contact = (
            self._by_email(key) if body.get("idProperty") == "email" else self.contacts.get(key)
        )
        if contact is None:
            return _error(404, "Object not found", "OBJECT_NOT_FOUND")
        del self.contacts[contact["id"]]  # permanently: it is not kept among the archived
        return httpx.Response(204)

    # -- properties ---------------------------------------------------------------------
    @route("GET", r"/crm/v3/properties/contacts")
    def _properties(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"results": list(self.properties.values())})

    def _new_property(self, spec: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not spec.get(k)
        ]
        if missing:
            return 400, {"message": f"missing required fields: {', '.join(missing)}"}
        if spec["name"] in self.properties:
            return 409, {"message": f"A property named '{spec['name']}' already exists."}
        if spec["groupName"] not in self.groups:
            return 400, {"message": f"group {spec['groupName']} does not exist"}
        prop = {**spec, "hubspotDefined": False, "createdAt": _iso(self._now_ms())}
        self.properties[spec["name"]] = prop
        return 201, prop

    @route("POST", r"/crm/v3/properties/contacts")
    def _create_property(self, request: httpx.Request) -> httpx.Response:
        status, body = self._new_property(dict(read_json(request) or {}))
        if status >= 400:
            category = "CONFLICT" if status == 409 else "VALIDATION_ERROR"
            return _error(status, body["message"], category)
        return json_response(status, body)

    @route("POST", r"/crm/v3/properties/contacts/batch/create")
    def _create_properties(self, request: httpx.Request) -> httpx.Response:
        inputs = list((read_json(request) or {}).get("inputs") or [])
        results, errors = [], []
        for spec in inputs:
            status, body = self._new_property(dict(spec))
            if status >= 400:
                errors.append({"status": "error", "category": "VALIDATION_ERROR", **body})
            else:
                results.append(body)
        out: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            out.update(numErrors=len(errors), errors=errors)
            return json_response(207, out)
        return json_response(201, out)

    @route("GET", r"/crm/v3/properties/contacts/groups")
    def _groups(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"results": list(self.groups.values())})

    @route("POST", r"/crm/v3/properties/contacts/groups")
    def _create_group(self, request: httpx.Request) -> httpx.Response:
        spec = dict(read_json(request) or {})
        if not spec.get("name") or not spec.get("label"):
            return _error(400, "name and label are required", "VALIDATION_ERROR")
        if spec["name"] in self.groups:
            return _error(409, f"group {spec['name']} already exists", "CONFLICT")
        self.groups[spec["name"]] = spec
        return json_response(201, spec)

    # -- webhooks -----------------------------------------------------------------------
    def signed_webhook(
        self, url: str, events: list[dict[str, Any]], *, timestamp_ms: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook body and its signature v3 headers, as HubSpot would POST to ``url``."""
        body = json.dumps(events, separators=(",", ":")).encode()
        stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        message = b"POST" + url.encode() + body + stamp.encode()
        return body, {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": sign_hmac_sha256(self.client_secret, message),
            "X-HubSpot-Request-Timestamp": stamp,
        }

    def contact_event(
        self, subscription_type: str, object_id: str, **fields: Any
    ) -> dict[str, Any]:
        """One webhook notification about a contact (``contact.creation``...)."""
        return {
            "eventId": secrets.randbelow(10**9),
            "subscriptionId": 1,
            "portalId": 62515,
            "appId": 1,
            "occurredAt": int(time.time() * 1000),
            "subscriptionType": subscription_type,
            "attemptNumber": 0,
            "objectId": int(object_id),
            "changeSource": "CRM",
            **fields,
        }

    def send_webhook(self, url: str, events: list[dict[str, Any]]) -> WebhookDelivery:
        """Sign ``events`` and POST them to ``url``."""
        body, headers = self.signed_webhook(url, events)
        return self.deliver_webhook(url, body, headers)
