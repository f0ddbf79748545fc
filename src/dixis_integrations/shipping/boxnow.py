"""BOX NOW: parcel lockers over REST, OAuth2 client credentials, signed webhooks.

The token comes from ``POST /api/v1/auth-sessions`` (client credentials in a JSON body).
In production the host passes ``auth=boxnow_auth(config, token_store)``: an
:class:`~dixis_integrations.auth.OAuth2Auth` whose token lives in the host's
:class:`~dixis_integrations.auth.TokenStore` and is renewed once across threads and
processes. Without ``auth`` the adapter fetches the token itself, through the driver, and
keeps it in memory (see :class:`BoxNow`). ``orderNumber`` is our reference, so a create
retried after a lost answer finds the parcel it already made instead of failing. Webhooks
are CloudEvents whose ``datasignature`` is an HMAC-SHA256 over the raw ``data`` member.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from dixis_integrations.auth.oauth import OAuth2Auth, OAuth2Config, TokenManager
from dixis_integrations.auth.tokens import TokenStore
from dixis_integrations.errors import (
    AuthError,
    Conflict,
    FieldError,
    NotFound,
    ProviderError,
    TransientError,
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http.driver import Operation, unsupported
from dixis_integrations.http.endpoint import (
    Endpoint,
    default_classify,
    idempotency_key,
    request_id_of,
)
from dixis_integrations.http.redact import register_secret
from dixis_integrations.models.address import Address
from dixis_integrations.models.events import ShipmentStatusChanged
from dixis_integrations.models.shipping import (
    CodMethod,
    CompartmentSize,
    DeliveryType,
    Label,
    LabelFormat,
    Manifest,
    PickupPoint,
    Quote,
    Shipment,
    ShipmentRequest,
    Tracking,
    TrackingStatus,
)
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.shipping._base import (
    CarrierBase,
    default_rate_table,
    json_bytes,
    require_cancellable,
)
from dixis_integrations.shipping.rates import RateTable
from dixis_integrations.shipping.tracking import StatusMap, build_tracking
from dixis_integrations.shipping.validation import CarrierRules
from dixis_integrations.webhooks import WebhookRequest

__all__ = [
    "BOXNOW_EVENTS",
    "BoxNow",
    "BoxNowConfig",
    "boxnow_auth",
    "classify",
    "compartment_for",
    "delivery_request_body",
    "parse_delivery_request",
    "parse_destinations",
    "parse_parcel_events",
    "parse_parcels_page",
    "verify_webhook",
]

_SIZE_CODE = {CompartmentSize.SMALL: 1, CompartmentSize.MEDIUM: 2, CompartmentSize.LARGE: 3}
# Compartments share a 60 x 45 cm footprint; heights 8, 17 and 36 cm.
_HEIGHTS = ((Decimal(8), CompartmentSize.SMALL), (Decimal(17), CompartmentSize.MEDIUM))
_MAX_HEIGHT = Decimal(36)

BOXNOW_EVENTS = StatusMap(
    codes={
        "NEW": TrackingStatus.PENDING,
        "ACCEPTED-TO-LOCKER": TrackingStatus.ACCEPTED,
        "IN-DEPOT": TrackingStatus.IN_TRANSIT,
        "FINAL-DESTINATION": TrackingStatus.AVAILABLE_FOR_PICKUP,
        "DELIVERED": TrackingStatus.DELIVERED,
        "EXPIRED": TrackingStatus.RETURNING,
        "RETURNED": TrackingStatus.RETURNED,
        "CANCELED": TrackingStatus.CANCELLED,
        "LOST": TrackingStatus.EXCEPTION,
        "MISSING": TrackingStatus.EXCEPTION,
    },
    reasons={"EXPIRED": "not collected from the locker in time"},
)


class BoxNowConfig(BaseModel):
    """Credentials and the warehouse BOX NOW collects from (``origin_location_id``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    client_id: str
    client_secret: SecretStr
    origin_location_id: str
    base_url: str = "https://api-production.boxnow.gr"
    webhook_secret: SecretStr | None = None
    allow_return: bool = True
    rate_table: RateTable = default_rate_table("2.40", "2.40", "2.40", "0.50", cod_fee="1.00")

    def oauth(self) -> OAuth2Config:
        """The OAuth2 settings of ``POST /api/v1/auth-sessions`` for a ``TokenManager``.

        Client credentials sent in a JSON body; renewed a minute before ``expires_in``.
        """
        return OAuth2Config(
            provider="boxnow",
            client_id=self.client_id,
            client_secret=self.client_secret,
            token_url=self.base_url.rstrip("/") + "/api/v1/auth-sessions",
            grant_type="client_credentials",
            token_request_encoding="json",  # noqa: S106 - an encoding, not a secret
            refresh_margin_seconds=60,
        )


def boxnow_auth(
    config: BoxNowConfig,
    store: TokenStore,
    *,
    tenant: str = "default",
    client_factory: Callable[[], httpx.Client] | None = None,
    async_client_factory: Callable[[], httpx.AsyncClient] | None = None,
) -> OAuth2Auth:
    """The ``auth`` to pass to :class:`BoxNow`: tokens kept in ``store`` per tenant.

    ``client_factory``/``async_client_factory`` make the clients the token requests go
    through (a sandbox's transport in tests); by default, plain ``httpx`` clients.
    """
    manager = TokenManager(
        config.oauth(),
        tenant,
        store,
        client_factory,
        async_client_factory=async_client_factory,
    )
    return OAuth2Auth(manager)


_RULES = CarrierRules(
    vendor="boxnow",
    max_weight_kg=Decimal(20),
    max_parcels=10,
    max_side_cm=Decimal(60),
    # BOX NOW collects "cod" at the locker or by payment link, by card; either method asked
    # for by the shop is sent as paymentMode "cod".
    cod_methods=frozenset({CodMethod.CASH, CodMethod.CARD}),
    cod_max=Decimal(500),
    delivery_types=frozenset({DeliveryType.LOCKER}),
    content_type_for=frozenset(),
)


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """BOX NOW errors: ``{"code", "message"}`` bodies on 4xx, typed by status."""
    status = response.status_code
    if status < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = str(body.get("code") or "") if isinstance(body, dict) else ""
    message = str(body.get("message") or "") if isinstance(body, dict) else ""
    rid = request_id_of(response)
    if status == 401:
        return AuthError(message or "token rejected", vendor="boxnow", status_code=status)
    if status == 404:
        return NotFound(message or "not found", vendor="boxnow", status_code=status)
    if status == 409:
        return Conflict(
            message or "conflict", vendor="boxnow", status_code=status, vendor_code=code
        )
    if status in (400, 422):
        return ValidationRejected(
            message or "rejected",
            vendor="boxnow",
            request_id=rid,
            status_code=status,
            vendor_code=code or None,
        )
    return default_classify(response, endpoint)


def compartment_for(request: ShipmentRequest, index: int) -> CompartmentSize:
    """The compartment a parcel needs: the option if set, else from its height."""
    if request.options.compartment_size is not None:
        return request.options.compartment_size
    height = request.parcels[index].height_cm
    if height is None:
        return CompartmentSize.MEDIUM
    for limit, size in _HEIGHTS:
        if height <= limit:
            return size
    return CompartmentSize.LARGE


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):f}"


def delivery_request_body(request: ShipmentRequest, config: BoxNowConfig) -> dict[str, Any]:
    """``POST /api/v1/delivery-requests`` body: one ``items`` entry per parcel."""
    sender, recipient, options = request.sender, request.recipient, request.options
    cod = options.cod
    value = request.declared_value.amount if request.declared_value else Decimal(0)
    if cod is not None:
        value = max(value, cod.amount.amount)
    per_parcel = value / len(request.parcels)
    return {
        "orderNumber": request.reference,
        "invoiceValue": _money(value),
        "paymentMode": "cod" if cod is not None else "prepaid",
        "amountToBeCollected": _money(cod.amount.amount if cod else Decimal(0)),
        "allowReturn": config.allow_return,
        "origin": {
            "contactNumber": sender.mobile or sender.phone or "",
            "contactEmail": sender.email or "",
            "contactName": sender.company or sender.name,
            "locationId": config.origin_location_id,
        },
        "destination": {
            "contactNumber": recipient.mobile or "",
            "contactEmail": recipient.email or "",
            "contactName": recipient.name,
            "locationId": options.pickup_point_id or "",
        },
        "items": [
            {
                "id": str(i + 1),
                "name": parcel.description or request.reference,
                "value": _money(per_parcel),
                "weight": parcel.weight_kg,
                "compartmentSize": _SIZE_CODE[compartment_for(request, i)],
            }
            for i, parcel in enumerate(request.parcels)
        ],
    }


def parse_delivery_request(body: Any, request: ShipmentRequest, now: datetime) -> Shipment:
    """The :class:`Shipment` from a delivery request answer (``id`` and ``parcels[].id``)."""
    parcels = [str(p.get("id")) for p in (body or {}).get("parcels") or [] if p.get("id")]
    if not parcels:
        raise TransientError("BOX NOW created no parcel", vendor="boxnow")
    return Shipment(
        carrier="boxnow",
        reference=request.reference,
        tracking_number=parcels[0],
        parcel_numbers=tuple(parcels),
        created_at=now,
        service=request.service,
        cod=request.options.cod,
        pickup_point_id=request.options.pickup_point_id,
        carrier_data={"delivery_request_id": str(body.get("id") or "")},
    )


def _at(text: Any) -> datetime:
    parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_parcels_page(body: Any) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``GET /api/v1/parcels``: its parcels, and the next ``pageToken``
    (``None`` on the last page)."""
    data = (body or {}).get("data") or []
    pagination = (body or {}).get("pagination") or {}
    following = pagination.get("nextPageToken") if isinstance(pagination, dict) else None
    parcels = [p for p in data if isinstance(p, dict)]
    return parcels, str(following) if following else None


def _parcel_tracking(parcel: Mapping[str, Any]) -> Tracking:
    events = [
        BOXNOW_EVENTS.event(
            code=str(e.get("type") or ""),
            at=_at(e.get("createTime")),
            description=e.get("displayName") or e.get("type"),
            location=e.get("locationDisplayName"),
        )
        for e in parcel.get("events") or []
    ]
    return build_tracking("boxnow", str(parcel.get("id")), events)


def parse_parcel_events(body: Any, parcel_id: str) -> Tracking:
    """A :class:`Tracking` from ``GET /api/v1/parcels?parcelId=`` (its ``events``)."""
    data = (body or {}).get("data") or []
    parcel = next((p for p in data if str(p.get("id")) == parcel_id), None)
    if parcel is None:
        raise NotFound(f"BOX NOW knows no parcel {parcel_id}", vendor="boxnow")
    return _parcel_tracking(parcel)


def parse_destinations(body: Any) -> list[PickupPoint]:
    """Lockers from ``GET /api/v1/destinations`` or the nearest-locker answer."""
    points = []
    for row in (body or {}).get("data") or []:
        lat, lng = row.get("lat"), row.get("lng")
        points.append(
            PickupPoint(
                carrier="boxnow",
                id=str(row.get("id")),
                name=str(row.get("name") or row.get("title") or ""),
                kind=DeliveryType.LOCKER,
                latitude=Decimal(str(lat)) if lat not in (None, "") else None,
                longitude=Decimal(str(lng)) if lng not in (None, "") else None,
            )
        )
    return points


def _raw_member(body: bytes, name: str) -> bytes | None:
    """The exact bytes of a top-level JSON member's value, as the sender wrote them."""
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    i = text.index("{") + 1
    while i < len(text):
        while text[i] in " \t\r\n,":
            i += 1
        if text[i] == "}":
            return None
        key, i = decoder.raw_decode(text, i)
        while text[i] in " \t\r\n:":
            i += 1
        start = i
        _, i = decoder.raw_decode(text, i)
        if key == name:
            return text[start:i].encode("utf-8")
    return None


def verify_webhook(body: bytes, secret: SecretStr) -> dict[str, Any]:
    """Check a BOX NOW CloudEvent's ``datasignature`` and return the event.

    The signature is the hex HMAC-SHA256, keyed by the webhook secret, of the raw bytes of
    the ``data`` member; it is compared in constant time.

    Raises:
        WebhookError: malformed body, missing or wrong signature.
    """
    try:
        event = json.loads(body)
        raw = _raw_member(body, "data")
    except (ValueError, IndexError):
        raise WebhookError("the webhook body is not a JSON object", vendor="boxnow") from None
    if not isinstance(event, dict) or raw is None:
        raise WebhookError("the webhook has no data", vendor="boxnow")
    given = str(event.get("datasignature") or "")
    key = secret.get_secret_value().encode()
    expected = hmac.new(key, raw, hashlib.sha256).hexdigest()
    if not given or not hmac.compare_digest(expected, given.lower()):
        raise WebhookError("the webhook signature does not match", vendor="boxnow")
    return event


class BoxNow(CarrierBase):
    """BOX NOW lockers through the ``ShippingCarrier`` Protocol, sync and async.

    Tokens: pass ``auth=boxnow_auth(config, store)`` so that they live in the host's
    token store and are renewed once across processes. Without ``auth``, the adapter
    fetches its token as one more request of the operation (so it goes through the
    driver: its transport, budgets and retries, a sandbox's in-process transport too) and
    keeps it in memory for this adapter object only. That fallback stays because a
    ``TokenManager`` calls the token endpoint on a client of its own, outside the
    operation, which only the host can point at the right transport.
    """

    name = "boxnow"
    capabilities = frozenset(
        {
            Capability.RATES,
            Capability.LABELS,
            Capability.TRACKING,
            Capability.CANCELLATION,
            Capability.LOCKERS,
            Capability.COD,
            Capability.WEBHOOKS,
            Capability.IDEMPOTENCY_KEYS,
        }
    )
    rules = _RULES
    label_formats = frozenset({LabelFormat.PDF_A4, LabelFormat.PDF_THERMAL, LabelFormat.ZPL})

    def __init__(
        self,
        config: BoxNowConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.config = config
        register_secret(config.client_secret.get_secret_value())
        if config.webhook_secret is not None:
            register_secret(config.webhook_secret.get_secret_value())
        self.endpoint = Endpoint(
            vendor="boxnow", base_url=config.base_url, tenant=tenant, auth=auth, classify=classify
        )
        self.time_scale = time_scale
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    def __repr__(self) -> str:
        return f"BoxNow(tenant={self.endpoint.tenant!r}, client_id={self.config.client_id!r})"

    # -- auth ------------------------------------------------------------------------
    def _cached_token(self) -> str | None:
        with self._lock:
            if self._token is None or self._token[1] <= time.monotonic():
                return None
            return self._token[0]

    def _login(self) -> Generator[httpx.Request, httpx.Response, str]:
        response = yield self.endpoint.request(
            "POST",
            "/api/v1/auth-sessions",
            operation="boxnow.auth",
            json={
                "grant_type": "client_credentials",
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret.get_secret_value(),
            },
            idempotent=True,
        )
        body = response.json()
        token = str(body.get("access_token") or "")
        if not token:
            raise AuthError("BOX NOW issued no access token", vendor="boxnow")
        register_secret(token)
        # Renew a minute early; expires_in is vendor seconds, scaled like everything else.
        lifetime = max(0.0, float(body.get("expires_in") or 3600) - 60) * self.time_scale
        with self._lock:
            self._token = (token, time.monotonic() + lifetime)
        return token

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token is not None and self._token[0] == token:
                self._token = None

    def _call(
        self, build: Callable[[dict[str, str]], httpx.Request]
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        if self.endpoint.auth is not None:
            # The host's auth adds the bearer token and renews it once on a 401.
            return (yield build({}))
        token = self._cached_token()
        if token is None:
            token = yield from self._login()
        try:
            response = yield build({"Authorization": f"Bearer {token}"})
        except AuthError:
            # The token died early (revoked, clock skew): fetch one more, once.
            self._forget(token)
            token = yield from self._login()
            response = yield build({"Authorization": f"Bearer {token}"})
        return response

    def _get(
        self, path: str, operation: str, params: dict[str, str] | None = None
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        return (
            yield from self._call(
                lambda h: self.endpoint.request(
                    "GET", path, operation=operation, params=params, headers=h
                )
            )
        )

    def _parcel_pages(
        self,
        operation: str,
        params: Mapping[str, str],
        wanted: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Generator[httpx.Request, httpx.Response, list[dict[str, Any]]]:
        """Parcels of ``GET /api/v1/parcels`` over every page (``pageToken``), or up to the
        first one ``wanted`` accepts. A token seen twice stops with a ``TransientError``
        rather than looping."""
        parcels: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            page_params = dict(params) if token is None else {**params, "pageToken": token}
            response = yield from self._get("/api/v1/parcels", operation, page_params)
            page, token = parse_parcels_page(response.json())
            if wanted is not None:
                hit = next((p for p in page if wanted(p)), None)
                if hit is not None:
                    return [hit]
            else:
                parcels.extend(page)
            if token is None:
                return parcels
            if token in seen:
                raise TransientError("BOX NOW sent the same pageToken twice", vendor="boxnow")
            seen.add(token)

    def parcels(self) -> Operation[list[Tracking]]:
        """Every parcel of the account with its events, following ``pageToken`` to the
        last page: one walk instead of one call per parcel when polling many."""
        found = yield from self._parcel_pages("boxnow.parcels", {})
        return [_parcel_tracking(p) for p in found]

    # -- Protocol ----------------------------------------------------------------------
    def check(self) -> Operation[HealthStatus]:
        """``GET /api/v1/origins``: credentials good, warehouse known."""
        response = yield from self._get("/api/v1/origins", "boxnow.origins")
        ids = {str(o.get("id")) for o in response.json().get("data") or []}
        ok = self.config.origin_location_id in ids
        detail = "origin found" if ok else "origin_location_id is not one of your origins"
        return HealthStatus(name="boxnow", ok=ok, detail=detail)

    def quote(self, request: ShipmentRequest) -> Operation[list[Quote]]:
        """BOX NOW publishes no rate API: quotes come from the configured rate table."""
        return (yield from self._table_quotes(self.config.rate_table, request))

    def _extra_checks(self, request: ShipmentRequest) -> list[FieldError]:
        errors = []
        for i, parcel in enumerate(request.parcels):
            if parcel.height_cm is not None and parcel.height_cm > _MAX_HEIGHT:
                errors.append(
                    FieldError(
                        ("parcels", i, "height_cm"),
                        "above the 36 cm of BOX NOW's large compartment",
                        code="size",
                    )
                )
            for side, limit in (("length_cm", 60), ("width_cm", 45)):
                size = getattr(parcel, side)
                if size is not None and size > limit:
                    errors.append(
                        FieldError(
                            ("parcels", i, side),
                            f"above the {limit} cm compartment footprint",
                            code="size",
                        )
                    )
        if not request.sender.email and not request.sender.phone and not request.sender.mobile:
            errors.append(
                FieldError(("sender", "email"), "BOX NOW needs a sender contact", code="missing")
            )
        return errors

    def create_shipment(self, request: ShipmentRequest) -> Operation[Shipment]:
        """``POST /api/v1/delivery-requests``; a duplicate ``orderNumber`` finds the parcel."""
        self.validate(request)
        content = json_bytes(delivery_request_body(request, self.config))
        key = idempotency_key(self.endpoint.tenant, "boxnow.delivery_request", request.reference)
        try:
            response = yield from self._call(
                lambda h: self.endpoint.request(
                    "POST",
                    "/api/v1/delivery-requests",
                    operation="boxnow.create",
                    content=content,
                    headers={**h, "Content-Type": "application/json"},
                    idempotency_key=key,
                )
            )
        except Conflict:
            # Our earlier attempt landed (its answer was lost): find the parcel it made.
            data = yield from self._parcel_pages(
                "boxnow.find",
                {"orderNumber": request.reference},
                lambda p: str(p.get("orderNumber")) == request.reference,
            )
            if not data:
                raise
            body = {"id": data[0].get("deliveryRequestId"), "parcels": data}
            return parse_delivery_request(body, request, datetime.now(UTC))
        return parse_delivery_request(response.json(), request, datetime.now(UTC))

    def label(self, shipment: Shipment, fmt: LabelFormat) -> Operation[Label]:
        """``GET /api/v1/parcels/{id}/label.pdf`` or ``label.zpl``."""
        self._check_label_format(fmt)
        suffix = "zpl" if fmt is LabelFormat.ZPL else "pdf"
        response = yield from self._get(
            f"/api/v1/parcels/{shipment.tracking_number}/label.{suffix}", "boxnow.label"
        )
        content = response.content
        if fmt is not LabelFormat.ZPL and not content.startswith(b"%PDF"):
            raise TransientError("BOX NOW returned no PDF", vendor="boxnow")
        return Label(tracking_number=shipment.tracking_number, format=fmt, content=content)

    def cancel(self, shipment: Shipment) -> Operation[Shipment]:
        """``POST /api/v1/parcels/{id}:cancel``: BOX NOW allows it while the parcel is new."""
        require_cancellable(shipment, "boxnow")
        yield from self._call(
            lambda h: self.endpoint.request(
                "POST",
                f"/api/v1/parcels/{shipment.tracking_number}:cancel",
                operation="boxnow.cancel",
                headers=h,
                idempotent=True,
            )
        )
        return shipment.model_copy(update={"cancellable": False})

    def track(self, tracking_number: str) -> Operation[Tracking]:
        """The parcel's events from ``GET /api/v1/parcels?parcelId=``, paging on
        (``pageToken``) should BOX NOW list other parcels first."""
        found = yield from self._parcel_pages(
            "boxnow.track",
            {"parcelId": tracking_number},
            lambda p: str(p.get("id")) == tracking_number,
        )
        if not found:
            raise NotFound(f"BOX NOW knows no parcel {tracking_number}", vendor="boxnow")
        return _parcel_tracking(found[0])

    def finalise(self, shipments: Sequence[Shipment]) -> Operation[Manifest]:
        """BOX NOW has no end-of-day step: parcels are dropped at a locker or collected."""
        return unsupported("finalise", "boxnow", "BOX NOW has no pickup list or manifest")

    def pickup_points(self, near: Address | None = None) -> Operation[list[PickupPoint]]:
        """All lockers, or the nearest to ``near`` (``checkAddressDelivery``)."""
        if near is None:
            response = yield from self._get("/api/v1/destinations", "boxnow.destinations")
            return parse_destinations(response.json())
        body = {
            "street": near.street,
            "postalCode": near.postcode,
            "city": near.city,
            "region": "el-GR",
        }
        response = yield from self._call(
            lambda h: self.endpoint.request(
                "POST",
                "/api/v2/delivery-requests:checkAddressDelivery",
                operation="boxnow.nearest",
                json=body,
                headers=h,
                idempotent=True,
            )
        )
        return parse_destinations(response.json())

    def read_webhook(
        self, request: WebhookRequest, options: Mapping[str, Any]
    ) -> list[ShipmentStatusChanged]:
        """Verify and read a delivery as it arrived; see :meth:`parse_webhook`."""
        return [self.parse_webhook(request.body)]

    def parse_webhook(self, body: bytes) -> ShipmentStatusChanged:
        """Verify a webhook with the configured secret and read the parcel's new status.

        Raises:
            WebhookError: no secret configured, or the signature does not match.
        """
        if self.config.webhook_secret is None:
            raise WebhookError("no webhook_secret is configured", vendor="boxnow")
        event = verify_webhook(body, self.config.webhook_secret)
        data = event.get("data") or {}
        kind = str(data.get("event") or data.get("type") or "")
        return ShipmentStatusChanged(
            event_id=f"boxnow:{event.get('id')}" if event.get("id") else "",
            carrier="boxnow",
            tracking_number=str(data.get("parcelId") or ""),
            status=BOXNOW_EVENTS.status_of(kind),
            raw_code=kind or None,
            at=_at(data.get("time") or event.get("time")),
            tenant=self.endpoint.tenant,
        )
