"""Courier Center: REST/JSON with the credentials in a ``Context`` object in every body.

Success is ``Result: "Success"``; anything else carries ``Errors[0].Message`` and becomes a
typed error even inside HTTP 200. Next-day (211) and same-day within 3 or 5 hours (031,
051), domestic cash COD, BOX NOW locker delivery and return AWBs. The day's manifest
(``POST /Manifest``) is the finalisation step.
No lookup by our reference (``Reference1``) is documented (``GetShipmentDetails`` takes
the AWB), so there is no ``find_shipment``: a crash may leave a second AWB to void.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from dixis_integrations.errors import (
    AuthError,
    NotFound,
    ProviderError,
    TransientError,
    ValidationRejected,
)
from dixis_integrations.http.driver import Operation, unsupported
from dixis_integrations.http.endpoint import Endpoint, default_classify
from dixis_integrations.http.redact import register_secret
from dixis_integrations.models.address import Address
from dixis_integrations.models.shipping import (
    CodMethod,
    DeliveryType,
    Label,
    LabelFormat,
    Manifest,
    PickupPoint,
    Quote,
    Service,
    Shipment,
    ShipmentRequest,
    Tracking,
    TrackingEvent,
    TrackingStatus,
)
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.shipping._base import (
    ATHENS,
    CarrierBase,
    default_rate_table,
    json_bytes,
    national_phone,
    require_cancellable,
    street_and_number,
    today_in_athens,
)
from dixis_integrations.shipping.rates import RateTable
from dixis_integrations.shipping.tracking import StatusMap, build_tracking
from dixis_integrations.shipping.validation import CarrierRules

__all__ = [
    "COURIER_CENTER_STATUSES",
    "CourierCenter",
    "CourierCenterConfig",
    "basic_service",
    "classify",
    "parse_details",
    "parse_shipment",
    "shipment_body",
]

COURIER_CENTER_STATUSES = StatusMap(
    codes={
        "29": TrackingStatus.DELIVERED,
        "87": TrackingStatus.DELIVERED,  # collected at a Clever Point
        "25": TrackingStatus.RETURNED,
        "99": TrackingStatus.CANCELLED,
        "14": TrackingStatus.CANCELLED,
        "95": TrackingStatus.EXCEPTION,  # compensated: the parcel is lost
    },
    keywords=(
        ("ΑΚΥΡΩ", TrackingStatus.CANCELLED),
        ("ΕΠΙΣΤΡΑΦΗΚΕ", TrackingStatus.RETURNED),
        ("ΕΠΙΣΤΡΟΦΗ", TrackingStatus.RETURNING),
        ("ΠΑΡΑΔΟΘΗΚΕ", TrackingStatus.DELIVERED),
        ("ΣΕ ΔΙΑΝΟΜΗ", TrackingStatus.OUT_FOR_DELIVERY),
        ("ΑΠΩΝ", TrackingStatus.DELIVERY_FAILED),
        ("ΑΡΝΗΣΗ", TrackingStatus.DELIVERY_FAILED),
        ("LOCKER", TrackingStatus.AVAILABLE_FOR_PICKUP),
        ("ΠΑΡΑΛΑΒΗ", TrackingStatus.ACCEPTED),
        ("ΚΑΤΑΧΩΡΗΘΗΚΕ", TrackingStatus.PENDING),
    ),
)


class CourierCenterConfig(BaseModel):
    """The ``Context`` credentials and the billing account shipments are charged to."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    user_alias: str
    credential_value: SecretStr
    api_key: SecretStr
    billing_account: str
    base_url: str = "https://funship.cc.qualco.eu/ccservice/api"
    rate_table: RateTable = default_rate_table("3.00", "4.30", "5.50", "0.60")


_RULES = CarrierRules(
    vendor="courier_center",
    max_weight_kg=Decimal(35),
    max_parcels=50,
    cod_methods=frozenset({CodMethod.CASH}),
    services=frozenset({Service.STANDARD, Service.NEXT_DAY, Service.SAME_DAY}),
    delivery_types=frozenset({DeliveryType.DOOR, DeliveryType.LOCKER}),
    # Without a locker id, LockerDeliveryInfo {"Prefix": "BOXNOW"} asks for the nearest.
    nearest_locker=True,
    content_type_for=frozenset(),
    return_voucher=True,
    time_window=True,
)


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """``Result`` other than Success, with ``Errors[0].Message``, even inside HTTP 200."""
    if response.headers.get("content-type", "").startswith("application/pdf"):
        return None
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        if status >= 400:
            return default_classify(response, endpoint)
        return TransientError("Courier Center answered without JSON", vendor="courier_center")
    if not isinstance(body, dict):
        return TransientError("Courier Center answered oddly", vendor="courier_center")
    if status >= 500 or status == 429:
        return default_classify(response, endpoint)
    if body.get("Result") == "Success" and status < 400:
        return None
    errors = body.get("Errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    message = str(first.get("Message") or body.get("Result") or f"HTTP {status}")
    code = str(first.get("Code") or "") or None
    lowered = message.lower()
    if status == 401 or "credential" in lowered or "authenticat" in lowered:
        return AuthError(message, vendor="courier_center", status_code=status, vendor_code=code)
    if status == 404 or "not found" in lowered:
        return NotFound(message, vendor="courier_center", status_code=status, vendor_code=code)
    return ValidationRejected(
        message, vendor="courier_center", status_code=status, vendor_code=code
    )


def _context(config: CourierCenterConfig) -> dict[str, str]:
    return {
        "UserAlias": config.user_alias,
        "CredentialValue": config.credential_value.get_secret_value(),
        "ApiKey": config.api_key.get_secret_value(),
    }


def basic_service(request: ShipmentRequest) -> str:
    """211 next day; same day 031 (within 3 hours, ``time_window="3h"``) or 051 (5 hours)."""
    if request.service is Service.SAME_DAY:
        return "031" if request.options.time_window == "3h" else "051"
    return "211"


def _party(address: Address) -> dict[str, Any]:
    street, number = street_and_number(address)
    return {
        "CompanyName": address.company or address.name,
        "ContactName": address.name,
        "Address": f"{street} {number}".strip(),
        "City": address.city,
        "Area": address.region or address.city,
        "ZipCode": address.postcode,
        "Country": address.country,
        "Mobile1": national_phone(address.mobile or address.phone),
        "Email": address.email or "",
    }


def shipment_body(request: ShipmentRequest, config: CourierCenterConfig) -> dict[str, Any]:
    """``POST /Shipment`` body for ``request``."""
    options = request.options
    body: dict[str, Any] = {
        "Context": _context(config),
        "ShipmentDate": (request.ship_date or today_in_athens()).isoformat(),
        "Requestor": {"CarrierBillingAccount": config.billing_account},
        "BillTo": "Requestor",
        "Reference1": request.reference,
        "Shipper": _party(request.sender),
        "Consignee": _party(request.recipient),
        "BasicService": basic_service(request),
        "NoOfItems": len(request.parcels),
        "Items": [
            {"GoodsType": "NoDocs", "Weight": {"Unit": "kg", "Value": p.weight_kg}}
            for p in request.parcels
        ],
    }
    if options.cod is not None:
        amount = options.cod.amount
        body["CODs"] = [
            {"Type": "Cash", "Amount": {"Currency": amount.currency, "Value": amount.amount}}
        ]
    if options.delivery_type is DeliveryType.LOCKER:
        # As Courier Center's own plugin sends it: a locker chosen on BOX NOW's map is
        # {"Prefix": "ATH", "Code": id}; {"Prefix": "BOXNOW"} alone lets Courier Center
        # pick the locker nearest the consignee.
        if options.pickup_point_id:
            body["LockerDeliveryInfo"] = {"Prefix": "ATH", "Code": options.pickup_point_id}
        else:
            body["LockerDeliveryInfo"] = {"Prefix": "BOXNOW"}
    if options.return_voucher:
        body["GenerateReturnAWB"] = True
    if request.notes:
        body["Comments"] = request.notes
    return body


def parse_shipment(body: Any, request: ShipmentRequest, now: datetime) -> Shipment:
    """The :class:`Shipment` from ``POST /Shipment`` (``ShipmentNumber``, return AWB)."""
    number = str((body or {}).get("ShipmentNumber") or "")
    if not number:
        raise TransientError("Courier Center created no shipment number", vendor="courier_center")
    data = {}
    if body.get("ReturnShipmentNumber"):
        data["return_awb"] = str(body["ReturnShipmentNumber"])
    return Shipment(
        carrier="courier_center",
        reference=request.reference,
        tracking_number=number,
        created_at=now,
        service=request.service,
        cod=request.options.cod,
        pickup_point_id=request.options.pickup_point_id,
        carrier_data=data,
    )


def _when(text: Any) -> datetime:
    parsed = datetime.fromisoformat(str(text))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ATHENS)
    return parsed.astimezone(UTC)


def parse_details(body: Any, awb: str) -> Tracking:
    """``GetShipmentDetails``: its history, and the current ``ShipmentStatus``."""
    info = (body or {}).get("ShipmentInfo")
    if not isinstance(info, dict):
        raise NotFound(f"Courier Center knows no shipment {awb}", vendor="courier_center")
    events: list[TrackingEvent] = [
        COURIER_CENTER_STATUSES.event(
            code=str(h.get("Status") or "") or None,
            at=_when(h.get("Date")),
            description=h.get("StatusDesc"),
            location=h.get("Station"),
        )
        for h in info.get("History") or []
    ]
    tracking = build_tracking("courier_center", awb, events)
    code = str(info.get("ShipmentStatus") or "")
    current = COURIER_CENTER_STATUSES.status_of(code, info.get("ShipmentStatusDesc"))
    if code and events and events[-1].raw_code != code:
        # The summary is newer than the history: keep it as the latest event.
        extra = COURIER_CENTER_STATUSES.event(
            code=code, at=events[-1].at, description=info.get("ShipmentStatusDesc")
        )
        tracking = build_tracking("courier_center", awb, [*events, extra])
    elif not events and code:
        tracking = Tracking(carrier="courier_center", tracking_number=awb, status=current)
    return tracking


class CourierCenter(CarrierBase):
    """Courier Center through the ``ShippingCarrier`` Protocol, sync and async.

    Courier Center delivers to BOX NOW lockers but publishes no API that lists them, so
    ``Capability.LOCKERS`` is not declared and :meth:`pickup_points` is ``NotSupported``:
    list the lockers with the ``BoxNow`` adapter (or BOX NOW's map widget) and pass the
    chosen id as ``options.pickup_point_id``.
    """

    name = "courier_center"
    capabilities = frozenset(
        {
            Capability.RATES,
            Capability.LABELS,
            Capability.TRACKING,
            Capability.CANCELLATION,
            Capability.PICKUP_LIST,
            Capability.COD,
            Capability.SAME_DAY,
        }
    )
    rules = _RULES
    label_formats = frozenset({LabelFormat.PDF_A4, LabelFormat.PDF_THERMAL})

    def __init__(
        self,
        config: CourierCenterConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.config = config
        register_secret(config.credential_value.get_secret_value())
        register_secret(config.api_key.get_secret_value())
        self.endpoint = Endpoint(
            vendor="courier_center",
            base_url=config.base_url,
            tenant=tenant,
            auth=auth,
            classify=classify,
        )

    def __repr__(self) -> str:
        return f"CourierCenter(tenant={self.endpoint.tenant!r}, user={self.config.user_alias!r})"

    def _post(
        self, path: str, body: Mapping[str, Any], operation: str, *, safe: bool = True
    ) -> httpx.Request:
        return self.endpoint.request(
            "POST",
            path,
            operation=f"courier_center.{operation}",
            content=json_bytes(body),
            headers={"Content-Type": "application/json"},
            idempotent=safe,
        )

    def check(self) -> Operation[HealthStatus]:
        """A details call for a shipment that cannot exist: the credentials must pass."""
        # "Not found" proves the credentials passed: that is all this check needs.
        with contextlib.suppress(NotFound):
            yield self._post(
                "/Shipment/GetShipmentDetails",
                {"Context": _context(self.config), "Identifier": "0"},
                "check",
            )
        return HealthStatus(name="courier_center", ok=True, detail="credentials accepted")

    def quote(self, request: ShipmentRequest) -> Operation[list[Quote]]:
        """Courier Center publishes no rate API: quotes come from the configured rate table."""
        return (yield from self._table_quotes(self.config.rate_table, request))

    def create_shipment(self, request: ShipmentRequest) -> Operation[Shipment]:
        """``POST /Shipment`` (not retried blindly: it has no idempotency key)."""
        self.validate(request)
        response = yield self._post(
            "/Shipment", shipment_body(request, self.config), "create", safe=False
        )
        return parse_shipment(response.json(), request, datetime.now(UTC))

    def label(self, shipment: Shipment, fmt: LabelFormat) -> Operation[Label]:
        """``POST /voucher``: ``cleanpdf`` (A4) or ``single_100x150`` (thermal)."""
        self._check_label_format(fmt)
        response = yield self._post(
            "/voucher",
            {
                "Context": _context(self.config),
                "Template": "single_100x150" if fmt is LabelFormat.PDF_THERMAL else "cleanpdf",
                "ShipmentNumber": shipment.tracking_number,
            },
            "label",
        )
        content = response.content
        if not content.startswith(b"%PDF"):
            raise TransientError("Courier Center returned no PDF", vendor="courier_center")
        return Label(tracking_number=shipment.tracking_number, format=fmt, content=content)

    def cancel(self, shipment: Shipment) -> Operation[Shipment]:
        """``POST /Shipment/Void`` (refused once the shipment is on a manifest)."""
        require_cancellable(shipment, "courier_center")
        yield self._post(
            "/Shipment/Void",
            {"Context": _context(self.config), "ShipmentNumber": shipment.tracking_number},
            "void",
        )
        return shipment.model_copy(update={"cancellable": False})

    def track(self, tracking_number: str) -> Operation[Tracking]:
        """``POST /Shipment/GetShipmentDetails``."""
        response = yield self._post(
            "/Shipment/GetShipmentDetails",
            {"Context": _context(self.config), "Identifier": tracking_number},
            "details",
        )
        return parse_details(response.json(), tracking_number)

    def finalise(self, shipments: Sequence[Shipment]) -> Operation[Manifest]:
        """``POST /Manifest`` for today: the PDF to hand the driver."""
        day = today_in_athens()
        response = yield self._post(
            "/Manifest", {"Context": _context(self.config), "Date": day.isoformat()}, "manifest"
        )
        body = response.json()
        try:
            document = base64.b64decode(str(body.get("Manifest") or ""), validate=True)
        except (binascii.Error, ValueError):
            document = b""
        if not document.startswith(b"%PDF"):
            raise TransientError("Courier Center returned no manifest PDF", vendor="courier_center")
        return Manifest(
            carrier="courier_center",
            id=str(body.get("ManifestNumber") or day.isoformat()),
            tracking_numbers=tuple(s.tracking_number for s in shipments),
            created_at=datetime.now(UTC),
            document=document,
        )

    def pickup_points(self, near: Address | None = None) -> Operation[list[PickupPoint]]:
        """Not offered: Courier Center's locker deliveries go to BOX NOW lockers."""
        return unsupported(
            "pickup_points", "courier_center", "list BOX NOW lockers with the boxnow adapter"
        )
