"""A Salesforce REST emulator: sObject Collections upsert by external id (HTTP 200 with
per-record results), Lead insert with its required fields, duplicate rules, convertLead,
SOQL ``WHERE Email =`` queries, collection delete, describe, and the daily allocation.

Written from Salesforce's REST API developer guide. Every answer carries
``Sforce-Limit-Info: api-usage=n/max``; over the allocation the answer is 403
``REQUEST_LIMIT_EXCEEDED``. OAuth: the web-server flow (mounted authorization server, with
``instance_url`` in each token) and the JWT bearer grant (RS256, checked with the
connected app's certificate key).
"""

from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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

__all__ = ["SalesforceSandbox"]

_V: Final = r"/services/data/v(?P<version>\d+\.\d)"
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_COLLECTION_MAX: Final = 200
_JWT_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_PREFIX: Final = {"Contact": "003", "Lead": "00Q", "Account": "001"}
_STANDARD_CONTACT: Final = (
    "Id", "FirstName", "LastName", "Email", "Phone", "HasOptedOutOfEmail", "AccountId",
    "SystemModstamp", "CreatedDate",
)  # fmt: skip
_LEAD_FIELDS: Final = ("Id", "FirstName", "LastName", "Company", "Email", "Phone",
                       "LeadSource", "Status", "IsConverted")  # fmt: skip
_CUSTOM_CONTACT: Final = {
    "Dixis_Customer_Id__c": "string",
    "Dixis_Total_Orders__c": "double",
    "Dixis_Total_Spent__c": "currency",
    "Dixis_Last_Order_Date__c": "date",
    "Dixis_Segment__c": "string",
    "Dixis_Acquisition_Source__c": "string",
    "Dixis_Marketing_Consent__c": "string",
}


def _errors(
    status: int, code: str, message: str, fields: list[str] | None = None
) -> httpx.Response:
    return json_response(status, [{"message": message, "errorCode": code, "fields": fields or []}])


@functools.lru_cache(maxsize=1)
def _connected_app_key() -> rsa.RSAPrivateKey:
    """One RSA key per process: generating one per emulator would slow every test."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _when(text: str) -> datetime:
    value = text.strip().replace(" ", "+")  # a "+" in a query string may arrive as a space
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]
    return datetime.fromisoformat(value).astimezone(UTC)


class SalesforceSandbox(Emulator):
    """One Salesforce org in memory.

    Args:
        daily_api_requests: the org's rolling 24-hour allocation.
        custom_fields: whether the Dixis Contact fields exist (set-up done).
        duplicate_rule: whether the standard Contact duplicate rule (same Email) is active.
        faults, time_scale, webhook_client: as for every emulator.
    """

    name = "salesforce"

    def __init__(
        self,
        *,
        daily_api_requests: int = 100_000,
        custom_fields: bool = True,
        duplicate_rule: bool = True,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.client_id = "3MVG9sandbox" + secrets.token_hex(8)
        self.client_secret = secrets.token_hex(16)
        self.username = "integration@dixis.example"
        self._key = _connected_app_key()
        self.private_key_pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_key_pem = (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        self.oauth = OAuthServer(
            clients=[SandboxClient(client_id=self.client_id, client_secret=self.client_secret)],
            token_path="/services/oauth2/token",  # noqa: S106 - a path
            authorize_path="/services/oauth2/authorize",
            userinfo_path="/services/oauth2/userinfo",
            rotate_refresh_tokens=False,
            extra_token_fields=lambda _c, _g: {"instance_url": self.base_url},
            time_scale=time_scale,
        )
        self.mount("/services/oauth2/", self.oauth)
        self.daily = FixedWindow(daily_api_requests, 86_400.0, self.clock, "DailyApiRequests")
        self.daily_api_requests = daily_api_requests
        self.used = 0
        self.rate_limited = 0
        self._emails: dict[tuple[str, str], set[str]] = {}  # checked on use
        self._external: dict[tuple[str, str, str], str] = {}  # checked on use
        self.duplicate_rule = duplicate_rule
        self.fields: dict[str, str] = {f: "string" for f in _STANDARD_CONTACT}
        if custom_fields:
            self.fields.update(_CUSTOM_CONTACT)
        self.external_ids = {"Dixis_Customer_Id__c"} if custom_fields else set()
        self.records: dict[str, dict[str, dict[str, Any]]] = {
            "Contact": {},
            "Lead": {},
            "Account": {},
        }
        self.deleted: dict[str, str] = {}
        self.session_tokens: set[str] = set()
        self.jwt_grants = 0
        self._seq = 0
        self._lock = threading.Lock()

    def credentials(self) -> dict[str, str]:
        """The JWT bearer settings of the connected app, and where to call."""
        return {
            "base_url": self.base_url,
            "client_id": self.client_id,
            "username": self.username,
            "private_key": self.private_key_pem,
        }

    # -- ids and the JWT grant ------------------------------------------------------------
    def _new_id(self, sobject: str) -> str:
        self._seq += 1
        return f"{_PREFIX[sobject]}5g00000{self._seq:08d}AAA"[:18]

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token" and request.method == "POST":
            request.read()
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            if form.get("grant_type") == _JWT_GRANT:
                return self._jwt_grant(form.get("assertion", ""))
        response = super().handle(request)
        if not request.url.path.startswith("/services/oauth2/"):
            response.headers["Sforce-Limit-Info"] = (
                f"api-usage={self.used}/{self.daily_api_requests}"
            )
        return response

    def _jwt_grant(self, assertion: str) -> httpx.Response:
        def refuse(description: str) -> httpx.Response:
            return json_response(400, {"error": "invalid_grant", "error_description": description})

        claims = self._verified_claims(assertion)
        if claims is None:
            return refuse("invalid assertion")
        if claims.get("iss") != self.client_id:
            return json_response(
                400,
                {"error": "invalid_client_id", "error_description": "client identifier invalid"},
            )
        if claims.get("sub") != self.username:
            return refuse("user hasn't approved this consumer")
        if str(claims.get("aud", "")).rstrip("/") != self.base_url:
            return refuse("audience is invalid")
        if int(claims.get("exp", 0)) < time.time():
            return refuse("expired authorization code")
        token = "00D" + secrets.token_urlsafe(40)
        with self._lock:
            self.session_tokens.add(token)
            self.jwt_grants += 1
        return json_response(
            200,
            {
                "access_token": token,
                "scope": "api",
                "instance_url": self.base_url,
                "id": f"{self.base_url}/id/00D000000000001/005000000000001",
                "token_type": "Bearer",
            },
        )

    def _verified_claims(self, assertion: str) -> dict[str, Any] | None:
        def unb64(part: str) -> bytes:
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        try:
            head, body, signature = assertion.split(".")
            header = json.loads(unb64(head))
            if header.get("alg") != "RS256":
                return None
            self._key.public_key().verify(
                unb64(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            claims = json.loads(unb64(body))
        except (ValueError, InvalidSignature):
            return None
        return claims if isinstance(claims, dict) else None

    # -- hooks --------------------------------------------------------------------------
    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ")
        if token in self.session_tokens:
            return None
        if header.startswith("Bearer ") and self.oauth.validate_bearer(request) is not None:
            return None
        return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def limit(self, request: httpx.Request) -> httpx.Response | None:
        ok, _, _ = self.daily.hit("org")
        if not ok:
            self.rate_limited += 1
            return _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self.used += 1
        return None

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            return _errors(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
        if fault is Fault.SERVER_ERROR:
            return _errors(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
        if fault is Fault.EXPIRED_TOKEN:
            return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return super().fault_response(fault, request)

    # -- validation ------------------------------------------------------------------------
    def _field_problem(self, sobject: str, record: dict[str, Any]) -> dict[str, Any] | None:
        known = set(self.fields) if sobject == "Contact" else set(_LEAD_FIELDS)
        for key, value in record.items():
            if key == "attributes":
                continue
            if key not in known:
                return {"statusCode": "INVALID_FIELD",
                        "message": f"No such column '{key}' on sobject of type {sobject}",
                        "fields": [key]}  # fmt: skip
            kind = self.fields.get(key, "string") if sobject == "Contact" else "string"
            if value is None:
                continue
            if kind in ("double", "currency"):
                try:
                    Decimal(str(value))
                except InvalidOperation:
                    return {"statusCode": "INVALID_TYPE_ON_FIELD_IN_RECORD",
                            "message": f"{key}: value not of required type: {value}",
                            "fields": [key]}  # fmt: skip
            if key == "Email" and not _EMAIL.match(str(value)):
                return {"statusCode": "INVALID_EMAIL_ADDRESS",
                        "message": f"Email: invalid email address: {value}",
                        "fields": ["Email"]}  # fmt: skip
        required = ("LastName",) if sobject == "Contact" else ("LastName", "Company")
        missing = [f for f in required if not record.get(f)]
        if missing:
            return {"statusCode": "REQUIRED_FIELD_MISSING",
                    "message": f"Required fields are missing: [{', '.join(missing)}]",
                    "fields": missing}  # fmt: skip
        return None

    def _duplicate(self, sobject: str, record: dict[str, Any], own_id: str | None) -> bool:
        if not self.duplicate_rule or not record.get("Email"):
            return False
        email = str(record["Email"]).lower()
        rows = self.records[sobject]
        return any(
            rid != own_id and rid in rows and str(rows[rid].get("Email", "")).lower() == email
            for rid in self._emails.get((sobject, email), ())
        )

    def _save(self, sobject: str, record: dict[str, Any], existing: dict[str, Any] | None) -> str:
        clean = {k: v for k, v in record.items() if k != "attributes"}
        if existing is None:
            rid = self._new_id(sobject)
            existing = {"Id": rid, "CreatedDate": _stamp()}
            if sobject == "Lead":
                existing["IsConverted"] = False
            self.records[sobject][rid] = existing
        existing.update(clean)
        existing["SystemModstamp"] = _stamp()
        rid = str(existing["Id"])
        if existing.get("Email"):
            self._emails.setdefault((sobject, str(existing["Email"]).lower()), set()).add(rid)
        for field in self.external_ids:
            if existing.get(field) is not None:
                self._external[(sobject, field, str(existing[field]))] = rid
        return rid

    def _allow_duplicates(self, request: httpx.Request) -> bool:
        header = request.headers.get("sforce-duplicate-rule-header", "")
        return "allowsave=true" in header.replace(" ", "").lower()

    # -- routes -----------------------------------------------------------------------
    @route("PATCH", _V + r"/composite/sobjects/(?P<sobject>\w+)/(?P<field>\w+)")
    def _collection_upsert(
        self, request: httpx.Request, version: str, sobject: str, field: str
    ) -> httpx.Response:
        if float(version) < 46.0:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        if sobject not in ("Contact", "Lead"):
            return _errors(404, "NOT_FOUND", f"sObject type '{sobject}' is not supported.")
        if field not in self.external_ids:
            return _errors(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field}",
            )
        body = read_json(request) or {}
        records = list(body.get("records") or [])
        if len(records) > _COLLECTION_MAX:
            return _errors(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        all_or_none = bool(body.get("allOrNone"))
        allow_dupes = self._allow_duplicates(request)
        results: list[dict[str, Any]] = []
        for record in records:
            if (record.get("attributes") or {}).get("type") != sobject:
                results.append({"success": False, "errors": [
                    {"statusCode": "INVALID_TYPE", "message": "attributes.type is required",
                     "fields": []}]})  # fmt: skip
                continue
            key = record.get(field)
            if not key:
                results.append({"success": False, "errors": [
                    {"statusCode": "MISSING_ARGUMENT", "message": f"{field} not specified",
                     "fields": [field]}]})  # fmt: skip
                continue
            found = self._external.get((sobject, field, str(key)))
            existing = self.records[sobject].get(found) if found else None
            if existing is not None and existing.get(field) != key:
                existing = None
            merged = {**(existing or {}), **record}
            problem = self._field_problem(sobject, merged if existing else record)
            if (
                problem is None
                and not allow_dupes
                and self._duplicate(sobject, record, existing["Id"] if existing else None)
            ):
                problem = {"statusCode": "DUPLICATES_DETECTED",
                           "message": "Use one of these records?", "fields": []}  # fmt: skip
            if problem is not None:
                results.append({"success": False, "errors": [problem]})
                continue
            rid = self._save(sobject, record, existing)
            results.append({"id": rid, "success": True, "errors": [], "created": existing is None})
        if all_or_none and any(not r["success"] for r in results):
            return json_response(200, [
                r if not r["success"] else {"success": False, "errors": [
                    {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                     "message": "Record rolled back because not all records were valid "
                                "and the request was using AllOrNone header", "fields": []}]}
                for r in results
            ])  # fmt: skip
        return json_response(200, results)

    @route("PATCH", _V + r"/sobjects/(?P<sobject>Contact|Lead)/(?P<field>\w+__c)/(?P<value>[^/]+)")
    def _upsert_one(
        self, request: httpx.Request, version: str, sobject: str, field: str, value: str
    ) -> httpx.Response:
        if field not in self.external_ids:
            return _errors(404, "NOT_FOUND", f"Provided external ID field does not exist: {field}")
        record = {**dict(read_json(request) or {}), field: value}
        found = self._external.get((sobject, field, value))
        existing = self.records[sobject].get(found) if found else None
        merged = {**(existing or {}), **record}
        problem = self._field_problem(sobject, merged)
        if problem is not None:
            return _errors(400, problem["statusCode"], problem["message"], problem["fields"])
        if not self._allow_duplicates(request) and self._duplicate(
            sobject, record, existing["Id"] if existing else None
        ):
            return _errors(400, "DUPLICATES_DETECTED", "Use one of these records?")
        rid = self._save(sobject, record, existing)
        body = {"id": rid, "success": True, "errors": [], "created": existing is None}
        return json_response(201 if existing is None else 200, body)

    @route("POST", _V + r"/sobjects/(?P<sobject>Lead|Contact)/?")
    def _insert(self, request: httpx.Request, version: str, sobject: str) -> httpx.Response:
        record = dict(read_json(request) or {})
        problem = self._field_problem(sobject, record)
        if problem is not None:
            return _errors(400, problem["statusCode"], problem["message"], problem["fields"])
        if not self._allow_duplicates(request) and self._duplicate(sobject, record, None):
            return _errors(400, "DUPLICATES_DETECTED", "Use one of these records?")
        rid = self._save(sobject, record, None)
        return json_response(201, {"id": rid, "success": True, "errors": []})

    @route("GET", _V + r"/sobjects/Contact/describe")
    def _describe(self, request: httpx.Request, version: str) -> httpx.Response:
        fields = [
            {"name": name, "type": kind, "externalId": name in self.external_ids,
             "unique": name in self.external_ids}
            for name, kind in self.fields.items()
        ]  # fmt: skip
        return json_response(200, {"name": "Contact", "fields": fields})

    @route("GET", _V + r"/query/?")
    def _query(self, request: httpx.Request, version: str) -> httpx.Response:
        soql = request.url.params.get("q", "")
        m = re.fullmatch(
            r"SELECT\s+([\w,\s]+)\s+FROM\s+(\w+)\s+WHERE\s+Email\s*=\s*'((?:[^'\\]|\\.)*)'",
            soql.strip(),
            re.IGNORECASE,
        )
        if m is None or m.group(2) not in self.records:
            return _errors(400, "MALFORMED_QUERY", "unexpected token")
        fields = [f.strip() for f in m.group(1).split(",")]
        email = re.sub(r"\\(.)", r"\1", m.group(3)).lower()
        sobject = m.group(2)
        rows = [
            {"attributes": {"type": sobject,
                            "url": f"/services/data/v{version}/sobjects/{sobject}/{r['Id']}"},
             **{f: r.get(f) for f in fields}}
            for r in self.records[sobject].values()
            if str(r.get("Email", "")).lower() == email
        ]  # fmt: skip
        return json_response(200, {"totalSize": len(rows), "done": True, "records": rows})

    @route("DELETE", _V + r"/composite/sobjects")
    def _collection_delete(self, request: httpx.Request, version: str) -> httpx.Response:
        ids = [i for i in request.url.params.get("ids", "").split(",") if i]
        if len(ids) > _COLLECTION_MAX:
            return _errors(400, "EXCEEDED_ID_LIMIT", "too many ids")
        results = []
        for rid in ids:
            sobject = next((s for s, rows in self.records.items() if rid in rows), None)
            if sobject is None:
                code = "ENTITY_IS_DELETED" if rid in self.deleted else "INVALID_CROSS_REFERENCE_KEY"
                results.append({"id": rid, "success": False, "errors": [
                    {"statusCode": code, "message": "entity is deleted",
                     "fields": []}]})  # fmt: skip
                continue
            del self.records[sobject][rid]
            self.deleted[rid] = _stamp()
            results.append({"id": rid, "success": True, "errors": []})
        return json_response(200, results)

    @route("DELETE", _V + r"/sobjects/(?P<sobject>\w+)/(?P<rid>\w+)")
    def _delete(
        self, request: httpx.Request, version: str, sobject: str, rid: str
    ) -> httpx.Response:
        if rid not in self.records.get(sobject, {}):
            return _errors(
                404, "ENTITY_IS_DELETED" if rid in self.deleted else "NOT_FOUND", "not found"
            )
        del self.records[sobject][rid]
        self.deleted[rid] = _stamp()
        return httpx.Response(204)

    @route("POST", _V + r"/actions/standard/convertLead")
    def _convert_lead(self, request: httpx.Request, version: str) -> httpx.Response:
        out = []
        for item in (read_json(request) or {}).get("inputs") or []:
            lead = self.records["Lead"].get(str(item.get("leadId")))
            if lead is None or lead.get("IsConverted"):
                out.append({"actionName": "convertLead", "isSuccess": False, "outputValues": None,
                            "errors": [{"statusCode": "INVALID_CROSS_REFERENCE_KEY",
                                        "message": "invalid cross reference id"}]})  # fmt: skip
                continue
            account = self._save("Account", {"Name": lead.get("Company")}, None)
            contact = self._save("Contact", {"LastName": lead.get("LastName"),
                                             "FirstName": lead.get("FirstName"),
                                             "Email": lead.get("Email"), "AccountId": account},
                                 None)  # fmt: skip
            lead.update(IsConverted=True, Status=item.get("convertedStatus"),
                        ConvertedContactId=contact, ConvertedAccountId=account)  # fmt: skip
            out.append({"actionName": "convertLead", "isSuccess": True, "errors": None,
                        "outputValues": {"accountId": account, "contactId": contact,
                                         "opportunityId": None}})  # fmt: skip
        return json_response(200, out)

    def _window(self, request: httpx.Request) -> tuple[datetime, datetime] | httpx.Response:
        params = request.url.params
        try:
            start, end = _when(params["start"]), _when(params["end"])
        except (KeyError, ValueError):
            return _errors(400, "INVALID_REPLICATION_DATE", "start and end are required dates")
        if end <= start:
            return _errors(400, "INVALID_REPLICATION_DATE", "end must be after start")
        return start, end

    @route("GET", _V + r"/sobjects/(?P<sobject>Contact|Lead)/updated/?")
    def _updated(self, request: httpx.Request, version: str, sobject: str) -> httpx.Response:
        window = self._window(request)
        if isinstance(window, httpx.Response):
            return window
        start, end = window
        ids = [
            rid
            for rid, r in self.records[sobject].items()
            if start < _when(str(r["SystemModstamp"])) <= end
        ]
        latest = end.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        return json_response(200, {"ids": ids, "latestDateCovered": latest})

    @route("GET", _V + r"/sobjects/(?P<sobject>Contact|Lead)/deleted/?")
    def _deleted_since(self, request: httpx.Request, version: str, sobject: str) -> httpx.Response:
        window = self._window(request)
        if isinstance(window, httpx.Response):
            return window
        start, end = window
        rows = [
            {"id": rid, "deletedDate": stamp}
            for rid, stamp in self.deleted.items()
            if rid.startswith(_PREFIX[sobject]) and start < _when(stamp) <= end
        ]
        latest = end.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        return json_response(
            200,
            {"deletedRecords": rows, "earliestDateAvailable": latest, "latestDateCovered": latest},
        )

    @route("GET", _V + r"/composite/sobjects/(?P<sobject>Contact|Lead)")
    def _collection_read(
        self, request: httpx.Request, version: str, sobject: str
    ) -> httpx.Response:
        ids = [i for i in request.url.params.get("ids", "").split(",") if i]
        fields = [f for f in request.url.params.get("fields", "Id").split(",") if f]
        if len(ids) > 2000:
            return _errors(400, "EXCEEDED_ID_LIMIT", "too many ids")
        out: list[dict[str, Any] | None] = []
        for rid in ids:
            row = self.records[sobject].get(rid)
            out.append(
                None
                if row is None
                else {"attributes": {"type": sobject}, **{f: row.get(f) for f in fields}}
            )
        return json_response(200, out)

    @route("GET", _V + r"/limits/?")
    def _limits(self, request: httpx.Request, version: str) -> httpx.Response:
        return json_response(200, {"DailyApiRequests": {
            "Max": self.daily_api_requests,
            "Remaining": self.daily_api_requests - self.used}})  # fmt: skip

    organization_id = "00D5g000004XyZaEAK"

    def outbound_message(self, sobject: str, record_id: str) -> bytes:
        """An Outbound Message (SOAP) about one record, as a workflow rule sends it."""
        row = self.records[sobject][record_id]
        fields = "".join(
            f"<sf:{k}>{escape(str(v))}</sf:{k}>"
            for k, v in row.items()
            if k in ("Id", "Email", "LastName", "SystemModstamp") and v is not None
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
            '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
            f"<OrganizationId>{self.organization_id}</OrganizationId>"
            "<ActionId>04k5g000000XyZaAAK</ActionId>"
            '<SessionId xsi:nil="true"/>'
            f"<EnterpriseUrl>{self.base_url}/services/Soap/c/59.0</EnterpriseUrl>"
            f"<PartnerUrl>{self.base_url}/services/Soap/u/59.0</PartnerUrl>"
            f"<Notification><Id>04l5g{secrets.token_hex(6)}</Id>"
            f'<sObject xsi:type="sf:{sobject}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
            f"{fields}</sObject></Notification>"
            "</notifications></soapenv:Body></soapenv:Envelope>"
        ).encode()
