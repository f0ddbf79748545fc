"""A BOX NOW emulator: partner API v1, OAuth2 client credentials, lockers, signed webhooks.

Written from BOX NOW's partner manual and public integrations: ``POST /api/v1/auth-sessions``
takes a JSON body and returns a one-hour bearer token; delivery requests carry one item per
parcel with compartment sizes 1-3; parcels can be cancelled only while ``new``; their
events advance on the (scaled) clock and each one is delivered as a CloudEvent webhook
whose ``datasignature`` is the hex HMAC-SHA256 of the raw ``data`` JSON.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx

from dixis_integrations.sandbox._soap import minimal_pdf, zpl_label
from dixis_integrations.sandbox.kit import Emulator, FaultPlan, json_response, read_json, route

__all__ = ["BoxNowSandbox"]

_CLIENT_ID = "sandbox-boxnow-client"
_CLIENT_SECRET = "sandbox-boxnow-secret"  # noqa: S105 - a sandbox credential
_TOKEN_LIFETIME = 3600
_CALENDAR = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
_ORIGINS = ({"id": "2", "name": "Dixis Fresh warehouse", "postalCode": "11745"},)
_LOCKERS = (
    {
        "id": "4",
        "name": "BOX NOW Σύνταγμα",
        "postalCode": "10563",
        "lat": "37.9755",
        "lng": "23.7348",
        "addressLine1": "Ερμού 2",
    },
    {
        "id": "9",
        "name": "BOX NOW Καλαμαριά",
        "postalCode": "55131",
        "lat": "40.5823",
        "lng": "22.9505",
        "addressLine1": "Πλαστήρα 40",
    },
    {
        "id": "17",
        "name": "BOX NOW Ηράκλειο",
        "postalCode": "71202",
        "lat": "35.3387",
        "lng": "25.1442",
        "addressLine1": "25ης Αυγούστου 10",
    },
)
# (vendor seconds after creation, event type, location)
_JOURNEY = (
    (2 * 3600, "accepted-to-locker", "Dixis Fresh warehouse"),
    (8 * 3600, "in-depot", "BOX NOW depot Αθήνα"),
    (20 * 3600, "final-destination", None),
    (30 * 3600, "delivered", None),
)


@dataclass
class _Parcel:
    id: str
    request_id: str
    order_number: str
    destination: str
    created: float
    events: list[dict[str, Any]] = field(default_factory=list)
    cancelled: bool = False
    announced: int = 0


class BoxNowSandbox(Emulator):
    """BOX NOW's partner API in memory.

    Knobs: :meth:`advance` moves the clock (and sends the webhooks of the events it
    passes); :meth:`subscribe` sets the one webhook URL and secret a partner may have;
    :meth:`expire_tokens` makes every issued token invalid.
    """

    name: ClassVar[str] = "boxnow"

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
        page_size: int = 50,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.page_size = page_size
        self.tokens: dict[str, float] = {}
        self.token_requests = 0
        self.parcels: dict[str, _Parcel] = {}
        self.orders: dict[str, str] = {}
        self._ids = itertools.count(9_100_000_001)
        self._requests = itertools.count(51)
        self._offset = 0.0
        self._start = self._now()
        self.webhook_url: str | None = None
        self.webhook_secret = "sandbox-boxnow-webhook-secret"  # noqa: S105

    def credentials(self) -> dict[str, str]:
        """What a BOX NOW client config needs."""
        return {
            "client_id": _CLIENT_ID,
            "client_secret": _CLIENT_SECRET,
            "origin_location_id": "2",
            "webhook_secret": self.webhook_secret,
        }

    def subscribe(self, url: str, secret: str | None = None) -> None:
        """Set the partner's single webhook URL (and, optionally, a new secret)."""
        self.webhook_url = url
        if secret is not None:
            self.webhook_secret = secret

    def expire_tokens(self) -> None:
        """Every token issued so far stops working."""
        self.tokens.clear()

    def _now(self) -> float:
        return self.clock.monotonic() / self.clock.scale + self._offset

    def _stamp(self, vendor_time: float) -> str:
        moment = _CALENDAR + timedelta(seconds=vendor_time - self._start)
        return moment.isoformat().replace("+00:00", "Z")

    def advance(self, vendor_seconds: float) -> None:
        """Move the clock forward; events passed on the way are sent as webhooks."""
        with self.lock:
            self._offset += vendor_seconds
            for parcel in self.parcels.values():
                self._refresh(parcel)
            pending = [
                (parcel, event)
                for parcel in self.parcels.values()
                for event in parcel.events[parcel.announced :]
            ]
            for parcel in self.parcels.values():
                parcel.announced = len(parcel.events)
        if self.webhook_url is not None:
            for parcel, event in pending:
                self._send_webhook(parcel, event)

    def _send_webhook(self, parcel: _Parcel, event: dict[str, Any]) -> None:
        data = {
            "parcelId": parcel.id,
            "orderNumber": parcel.order_number,
            "event": event["type"],
            "time": event["createTime"],
        }
        raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        signature = hmac.new(self.webhook_secret.encode(), raw.encode(), hashlib.sha256)
        body = (
            '{"specversion":"1.0","type":"gr.boxnow.parcel_event_change",'
            f'"source":"urn:boxnow:partner-api","id":"{secrets.token_hex(8)}",'
            f'"time":"{event["createTime"]}","datacontenttype":"application/json",'
            f'"data":{raw},"datasignature":"{signature.hexdigest()}"}}'
        )
        assert self.webhook_url is not None
        self.deliver_webhook(
            self.webhook_url, body.encode(), {"content-type": "application/cloudevents+json"}
        )

    # -- auth ------------------------------------------------------------------------
    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if (
            request.url.path == "/api/v1/auth-sessions"
            or request.url.path == "/api/v1/parcels:track"
        ):
            return None
        header = request.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        expires = self.tokens.get(token)
        if expires is None or expires <= self._now():
            return json_response(401, {"code": "P401", "message": "Unauthorized"})
        return None

    @route("POST", r"/api/v1/auth-sessions")
    def _auth(self, request: httpx.Request) -> httpx.Response:
        self.token_requests += 1
        body = read_json(request) or {}
        if body.get("grant_type") != "client_credentials":
            return json_response(400, {"code": "P400", "message": "unsupported grant_type"})
        if body.get("client_id") != _CLIENT_ID or body.get("client_secret") != _CLIENT_SECRET:
            return json_response(401, {"code": "P401", "message": "invalid client credentials"})
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self._now() + _TOKEN_LIFETIME
        return json_response(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": _TOKEN_LIFETIME}
        )

    # -- locations -------------------------------------------------------------------
    @route("GET", r"/api/v1/origins")
    def _origins(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"data": list(_ORIGINS)})

    @route("GET", r"/api/v1/destinations")
    def _destinations(self, request: httpx.Request) -> httpx.Response:
        # BOX NOW ignores filters here: every locker, every time.
        return json_response(200, {"data": list(_LOCKERS)})

    @route("POST", r"/api/v2/delivery-requests:checkAddressDelivery")
    def _nearest(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request) or {}
        postcode = str(body.get("postalCode") or "")
        if not postcode.isdigit():
            return json_response(400, {"code": "P400", "message": "postalCode is required"})
        ranked = sorted(_LOCKERS, key=lambda lk: abs(int(lk["postalCode"]) - int(postcode)))
        return json_response(200, {"data": ranked[:2]})

    # -- delivery requests -------------------------------------------------------------
    def _check_request(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "body must be a JSON object"
        for name in ("orderNumber", "origin", "destination", "items", "paymentMode"):
            if not body.get(name):
                return f"{name} is required"
        if body["origin"].get("locationId") not in {o["id"] for o in _ORIGINS}:
            return "origin.locationId is not one of your origins"
        if body["destination"].get("locationId") not in {lk["id"] for lk in _LOCKERS}:
            return "destination.locationId is not a locker"
        if not str(body["destination"].get("contactNumber") or "").startswith("+"):
            return "destination.contactNumber must be an international number"
        if body["paymentMode"] not in ("prepaid", "cod"):
            return "paymentMode must be prepaid or cod"
        try:
            collect = Decimal(str(body.get("amountToBeCollected") or "0"))
        except InvalidOperation:
            return "amountToBeCollected must be a decimal"
        if body["paymentMode"] == "cod" and collect <= 0:
            return "amountToBeCollected must be above 0 for cod"
        for item in body["items"]:
            if item.get("compartmentSize") not in (1, 2, 3):
                return "items[].compartmentSize must be 1, 2 or 3"
            if not 0 < float(item.get("weight") or 0) <= 20:
                return "items[].weight must be above 0 and at most 20 kg"
        return None

    @route("POST", r"/api/v1/delivery-requests")
    def _create(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        problem = self._check_request(body)
        if problem is not None:
            return json_response(400, {"code": "P400", "message": problem})
        order = str(body["orderNumber"])
        if order in self.orders:
            return json_response(409, {"code": "P410", "message": "orderNumber already exists"})
        request_id = str(next(self._requests))
        now = self._now()
        made = []
        for _ in body["items"]:
            parcel = _Parcel(
                id=str(next(self._ids)),
                request_id=request_id,
                order_number=order,
                destination=str(body["destination"]["locationId"]),
                created=now,
            )
            parcel.events.append(
                {"type": "new", "createTime": self._stamp(now), "locationDisplayName": None}
            )
            self.parcels[parcel.id] = parcel
            made.append({"id": parcel.id})
        self.orders[order] = request_id
        return json_response(200, {"id": request_id, "parcels": made})

    # -- parcels ---------------------------------------------------------------------
    def _refresh(self, parcel: _Parcel) -> None:
        if parcel.cancelled:
            return
        elapsed = self._now() - parcel.created
        have = {e["type"] for e in parcel.events}
        locker = next(lk["name"] for lk in _LOCKERS if lk["id"] == parcel.destination)
        for offset, kind, location in _JOURNEY:
            if elapsed >= offset and kind not in have:
                parcel.events.append(
                    {
                        "type": kind,
                        "createTime": self._stamp(parcel.created + offset),
                        "locationDisplayName": location or locker,
                    }
                )

    def _state(self, parcel: _Parcel) -> str:
        self._refresh(parcel)
        return str(parcel.events[-1]["type"])

    def _view(self, parcel: _Parcel) -> dict[str, Any]:
        return {
            "id": parcel.id,
            "deliveryRequestId": parcel.request_id,
            "orderNumber": parcel.order_number,
            "state": self._state(parcel),
            "events": list(parcel.events),
        }

    @route("GET", r"/api/v1/parcels")
    def _parcels(self, request: httpx.Request) -> httpx.Response:
        wanted_id = request.url.params.get("parcelId")
        wanted_order = request.url.params.get("orderNumber")
        matching = [
            p
            for p in self.parcels.values()
            if (wanted_id is None or p.id == wanted_id)
            and (wanted_order is None or p.order_number == wanted_order)
        ]
        # Cursor pagination: pageToken is opaque to clients (here, the offset encoded).
        token = request.url.params.get("pageToken")
        start = 0
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode())
            except (ValueError, UnicodeDecodeError):
                return json_response(400, {"code": "P400", "message": "invalid pageToken"})
        end = start + self.page_size
        following = None
        if end < len(matching):
            following = base64.urlsafe_b64encode(str(end).encode()).decode()
        found = [self._view(p) for p in matching[start:end]]
        return json_response(200, {"data": found, "pagination": {"nextPageToken": following}})

    @route("GET", r"/api/v1/parcels/(?P<parcel_id>\d+)/label\.(?P<kind>pdf|zpl)")
    def _label(self, request: httpx.Request, parcel_id: str, kind: str) -> httpx.Response:
        parcel = self.parcels.get(parcel_id)
        if parcel is None:
            return json_response(404, {"code": "P404", "message": "parcel not found"})
        if kind == "zpl":
            text = zpl_label(parcel_id, [f"BOX NOW {parcel.order_number}"])
            return httpx.Response(
                200, content=text.encode(), headers={"content-type": "text/plain"}
            )
        pdf = minimal_pdf(f"BOX NOW {parcel_id} locker {parcel.destination}")
        return httpx.Response(200, content=pdf, headers={"content-type": "application/pdf"})

    @route("POST", r"/api/v1/parcels/(?P<parcel_id>\d+):cancel")
    def _cancel(self, request: httpx.Request, parcel_id: str) -> httpx.Response:
        parcel = self.parcels.get(parcel_id)
        if parcel is None:
            return json_response(404, {"code": "P404", "message": "parcel not found"})
        if parcel.cancelled:
            return httpx.Response(204)
        if self._state(parcel) != "new":
            return json_response(
                400, {"code": "P420", "message": "Parcel not ready for cancel (state is not new)"}
            )
        parcel.cancelled = True
        parcel.events.append(
            {
                "type": "canceled",
                "createTime": self._stamp(self._now()),
                "locationDisplayName": None,
            }
        )
        return httpx.Response(204)

    @route("POST", r"/api/v1/parcels:track")
    def _public_track(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request) or {}
        parcel = self.parcels.get(str(body.get("parcelId") or ""))
        if parcel is None:
            return json_response(404, {"code": "P404", "message": "parcel not found"})
        return json_response(200, {"data": [self._view(parcel)]})
