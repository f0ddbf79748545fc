"""Geniki Taxydromiki: SOAP ``JobServicesV2.asmx``, built and read with ElementTree.

``Authenticate`` returns a key that is reused until Geniki answers error 11 (expired);
then the call is made again once with a new key. Every answer carries a ``Result`` code
(0 success) that becomes a typed error. Cold-chain produce goes as service ``ΕΨ``;
tracking drops the checkpoints Geniki retracts (C_E2, C_L2, C_K9). ``ClosePendingJobs``
finalises the day: after it, jobs cannot be cancelled.
No lookup by our reference (``OrderId``) is documented (``TrackAndTrace`` takes a voucher),
so there is no ``find_shipment``: a crash may leave a second job to cancel.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Generator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from dixis_integrations.errors import (
    AuthError,
    FieldError,
    NotFound,
    ProviderError,
    RateLimited,
    TransientError,
    ValidationRejected,
)
from dixis_integrations.http.driver import Operation
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
    TrackingStatus,
)
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.shipping._base import (
    ATHENS,
    CarrierBase,
    SessionCache,
    default_rate_table,
    national_phone,
    require_cancellable,
    today_in_athens,
)
from dixis_integrations.shipping._soap import (
    Value,
    child_text,
    children,
    envelope,
    parse_body,
    to_dict,
)
from dixis_integrations.shipping.rates import RateTable
from dixis_integrations.shipping.tracking import StatusMap, build_tracking
from dixis_integrations.shipping.validation import CarrierRules

__all__ = [
    "GENIKI_CHECKPOINTS",
    "RETRACTIONS",
    "Geniki",
    "GenikiConfig",
    "classify",
    "error_for_result",
    "job_record",
    "parse_job",
    "parse_track_and_trace",
    "services_of",
    "soap_call",
]

RETRACTIONS = frozenset({"C_E2", "C_L2", "C_K9"})
"""Codes that cancel the checkpoint before them rather than report a new status."""

GENIKI_CHECKPOINTS = StatusMap(
    codes={
        "C_NW": TrackingStatus.PENDING,
        "C_H1": TrackingStatus.IN_TRANSIT,
        "C_H2": TrackingStatus.IN_TRANSIT,
        "C_A3": TrackingStatus.OUT_FOR_DELIVERY,
        "C_W2": TrackingStatus.DELIVERED,
        "C_E1": TrackingStatus.RETURNING,
        "C_P4": TrackingStatus.CANCELLED,
        "C_D2": TrackingStatus.AVAILABLE_FOR_PICKUP,
        "C_EA_AS": TrackingStatus.DELIVERY_FAILED,
        "C_EA_AP": TrackingStatus.DELIVERY_FAILED,
        "C_EA_LD": TrackingStatus.DELIVERY_FAILED,
    },
    keywords=(
        ("ΑΚΥΡΩ", TrackingStatus.CANCELLED),
        ("ΕΠΙΣΤΡΑΦΗΚΕ", TrackingStatus.RETURNED),
        ("ΕΠΙΣΤΡΟΦΗ", TrackingStatus.RETURNING),
        ("RETURN", TrackingStatus.RETURNING),
        ("ΠΑΡΑΔΟΘΗΚΕ", TrackingStatus.DELIVERED),
        ("DELIVERED", TrackingStatus.DELIVERED),
        ("ΠΑΡΑΛΑΒΗ", TrackingStatus.ACCEPTED),
    ),
    reasons={
        "C_EA_AS": "recipient absent",
        "C_EA_AP": "refused by the recipient",
        "C_EA_LD": "wrong address",
    },
)

_ERRORS = {
    1: "authentication failed",
    3: "no data",
    4: "invalid operation",
    9: "not found",
    11: "authentication key expired",
    14: "service busy",
    15: "too many requests",
}


class GenikiConfig(BaseModel):
    """Credentials for JobServicesV2 (live ones come after Geniki certifies the integration).

    ``namespace`` is the service's XML namespace as its WSDL declares it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    username: str
    password: SecretStr
    application_key: SecretStr
    base_url: str = "https://voucher.taxydromiki.gr/JobServicesV2.asmx"
    namespace: str = "http://tempuri.org/"
    key_lifetime_seconds: float = 8 * 3600
    rate_table: RateTable = default_rate_table("3.20", "4.60", "5.80", "0.70")


_RULES = CarrierRules(
    vendor="geniki",
    max_weight_kg=Decimal(40),
    max_parcels=99,
    cod_methods=frozenset({CodMethod.CASH, CodMethod.CHEQUE}),
    insurance_max=Decimal(5000),
    services=frozenset({Service.STANDARD, Service.NEXT_DAY, Service.SAME_DAY}),
    saturday=True,
    refrigerated=True,
    delivery_types=frozenset({DeliveryType.DOOR}),
    content_type_for=frozenset(),
    return_voucher=True,
)


class _KeyExpired(AuthError):
    """Geniki error 11: authenticate again and repeat the call once."""

    code = "key_expired"


def error_for_result(result: int, text: str = "") -> ProviderError | None:
    """The typed error of a Geniki ``Result`` code (``None`` for 0, success)."""
    if result == 0:
        return None
    message = text or _ERRORS.get(result, f"error {result}")
    code = str(result)
    if result == 11:
        return _KeyExpired(message, vendor="geniki", vendor_code=code)
    if result == 1:
        return AuthError(message, vendor="geniki", vendor_code=code)
    if result in (3, 9):
        return NotFound(message, vendor="geniki", vendor_code=code)
    if result == 14:
        return TransientError(message, vendor="geniki", vendor_code=code)
    if result == 15:
        return RateLimited(
            message,
            retry_at=datetime.now(UTC) + timedelta(seconds=1),
            vendor="geniki",
            vendor_code=code,
        )
    if result in (701, 702):
        message = f"{message} (COD amount and COD service disagree)"
    return ValidationRejected(message, vendor="geniki", vendor_code=code)


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """SOAP faults, HTTP errors, and the ``Result`` code inside a 200 answer."""
    if response.headers.get("content-type", "").startswith("application/pdf"):
        return None
    if response.status_code >= 400 and b"Fault" not in response.content:
        return default_classify(response, endpoint)
    try:
        result = parse_body(response, "geniki")
    except ProviderError as exc:
        return exc
    code = child_text(result, "Result")
    if not code:
        return None
    try:
        number = int(code)
    except ValueError:
        return TransientError(f"Geniki sent Result {code!r}", vendor="geniki")
    return error_for_result(number, child_text(result, "Message"))


def soap_call(
    endpoint: Endpoint, namespace: str, operation: str, params: Mapping[str, Value]
) -> httpx.Request:
    """One SOAP 1.1 POST to JobServicesV2 (``SOAPAction`` = namespace + operation)."""
    return endpoint.request(
        "POST",
        "",
        operation=f"geniki.{operation}",
        content=envelope(operation, params, namespace),
        headers={
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{namespace}{operation}"',
        },
        idempotent=operation not in ("CreateJob",),
    )


def services_of(request: ShipmentRequest) -> list[str]:
    """Geniki service codes: ΑΜ/ΑΝ COD, ΑΣ insurance, 5Σ Saturday, 3Σ same day, ΕΨ cold."""
    options = request.options
    codes = []
    if options.cod is not None:
        codes.append("ΑΝ" if options.cod.method is CodMethod.CHEQUE else "ΑΜ")
    if options.insurance is not None:
        codes.append("ΑΣ")
    if options.saturday:
        codes.append("5Σ")
    if request.service is Service.SAME_DAY:
        codes.append("3Σ")
    if options.refrigerated:
        codes.append("ΕΨ")
    return codes


def job_record(request: ShipmentRequest) -> dict[str, Value]:
    """The ``Record`` of ``CreateJob`` for ``request``."""
    recipient, options = request.recipient, request.options
    address = " ".join(p for p in (recipient.street, recipient.number or "") if p)
    return {
        "OrderId": request.reference,
        "Name": recipient.name,
        "Address": address,
        "City": recipient.city,
        "Telephone": national_phone(recipient.mobile or recipient.phone),
        "Zip": recipient.postcode,
        "Email": recipient.email or "",
        "Weight": request.total_weight_kg,
        "Pieces": len(request.parcels),
        "Comments": request.notes or "",
        "Services": ",".join(services_of(request)),
        "CodAmount": options.cod.amount.amount if options.cod else Decimal(0),
        "InsAmount": options.insurance.amount if options.insurance else Decimal(0),
        "ReceivedDate": (request.ship_date or today_in_athens()).isoformat(),
    }


def parse_job(result: ET.Element, request: ShipmentRequest, now: datetime) -> Shipment:
    """The :class:`Shipment` from a ``CreateJobResult`` (``JobId``, ``Voucher``, sub-vouchers)."""
    voucher = child_text(result, "Voucher")
    job = child_text(result, "JobId")
    if not voucher or not job:
        raise TransientError("Geniki created no voucher", vendor="geniki")
    subs = tuple(
        (s.text or "").strip() for s in children(result, "string") if (s.text or "").strip()
    )
    return Shipment(
        carrier="geniki",
        reference=request.reference,
        tracking_number=voucher,
        parcel_numbers=(voucher, *subs),
        created_at=now,
        service=request.service,
        cod=request.options.cod,
        carrier_data={"job_id": job},
    )


def _when(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ATHENS)
    return parsed.astimezone(UTC)


def parse_track_and_trace(result: ET.Element, voucher: str) -> Tracking:
    """The :class:`Tracking` of a ``TrackAndTraceResult``, retracted checkpoints dropped."""
    events = [
        GENIKI_CHECKPOINTS.event(
            code=fields.get("StatusCode"),
            at=_when(fields.get("StatusDate", "")),
            description=fields.get("Status"),
            location=fields.get("Shop"),
        )
        for fields in (to_dict(c) for c in children(result, "Checkpoint"))
    ]
    return build_tracking("geniki", voucher, events, retracting=RETRACTIONS)


def _distance(zipcode: str, near: str | None) -> int:
    if near is None or not zipcode.isdigit() or not near.isdigit():
        return 0
    return abs(int(zipcode) - int(near))


def parse_points(
    result: ET.Element, tag: str, kind: DeliveryType, near: str | None = None
) -> list[PickupPoint]:
    """Shops (``Shop``) or lockers (``Locker``) from ``GetShopsList``/``GetLockersList``.

    With ``near`` (a postcode), the closest postcodes come first.
    """
    points = []
    rows = [to_dict(c) for c in children(result, tag)]
    rows.sort(key=lambda f: _distance(f.get("Zip", ""), near))
    for fields in rows:
        lat, lon = fields.get("Latitude"), fields.get("Longitude")
        points.append(
            PickupPoint(
                carrier="geniki",
                id=fields.get("Code", ""),
                name=fields.get("Name", ""),
                kind=kind,
                latitude=Decimal(lat) if lat else None,
                longitude=Decimal(lon) if lon else None,
            )
        )
    return points


class Geniki(CarrierBase):
    """Geniki Taxydromiki through the ``ShippingCarrier`` Protocol, sync and async."""

    name = "geniki"
    capabilities = frozenset(
        {
            Capability.RATES,
            Capability.LABELS,
            Capability.TRACKING,
            Capability.CANCELLATION,
            Capability.PICKUP_LIST,
            Capability.LOCKERS,
            Capability.COD,
            Capability.COLD_CHAIN,
            Capability.SATURDAY,
            Capability.SAME_DAY,
            Capability.INSURANCE,
        }
    )
    rules = _RULES
    label_formats = frozenset({LabelFormat.PDF_A4, LabelFormat.PDF_THERMAL, LabelFormat.ZPL})

    def __init__(
        self,
        config: GenikiConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.config = config
        register_secret(config.password.get_secret_value())
        register_secret(config.application_key.get_secret_value())
        self.endpoint = Endpoint(
            vendor="geniki", base_url=config.base_url, tenant=tenant, auth=auth, classify=classify
        )
        self.time_scale = time_scale
        self.keys = SessionCache()

    def __repr__(self) -> str:
        return f"Geniki(tenant={self.endpoint.tenant!r}, username={self.config.username!r})"

    def _extra_checks(self, request: ShipmentRequest) -> list[FieldError]:
        errors = []
        if request.service is Service.SAME_DAY and (
            request.sender.postcode[:2] != request.recipient.postcode[:2]
        ):
            errors.append(
                FieldError(
                    ("service",),
                    "Geniki's same-day service (3Σ) is within one city",
                    code="unsupported_service",
                )
            )
        options = request.options
        if options.pickup_point_id or options.delivery_type is not DeliveryType.DOOR:
            # GetShopsList/GetLockersList list where parcels can wait (C_D2), but the
            # CreateJob Record has no field that addresses a job to a shop or a locker:
            # sent anyway, the id would be dropped and the parcel would go to the door.
            errors.append(
                FieldError(
                    ("options", "pickup_point_id"),
                    "Geniki's CreateJob has no field for a shop or locker: "
                    "Geniki delivers to the door only",
                    code="unsupported_option",
                )
            )
        return errors

    def _authenticate(self) -> Generator[httpx.Request, httpx.Response, str]:
        response = yield soap_call(
            self.endpoint,
            self.config.namespace,
            "Authenticate",
            {
                "sUsrName": self.config.username,
                "sUsrPwd": self.config.password.get_secret_value(),
                "applicationKey": self.config.application_key.get_secret_value(),
            },
        )
        key = child_text(parse_body(response, "geniki"), "Key")
        if not key:
            raise AuthError("Geniki issued no key", vendor="geniki")
        register_secret(key)
        self.keys.set(key, self.config.key_lifetime_seconds * self.time_scale)
        return key

    def _key(self) -> Generator[httpx.Request, httpx.Response, str]:
        key = self.keys.get()
        if key is None:
            key = yield from self._authenticate()
        return key

    def _call(
        self, operation: str, params: Mapping[str, Value], key_name: str = "sAuthKey"
    ) -> Generator[httpx.Request, httpx.Response, ET.Element]:
        key = yield from self._key()
        try:
            response = yield soap_call(
                self.endpoint, self.config.namespace, operation, {key_name: key, **params}
            )
        except _KeyExpired:
            self.keys.forget(key)
            key = yield from self._authenticate()
            response = yield soap_call(
                self.endpoint, self.config.namespace, operation, {key_name: key, **params}
            )
        return parse_body(response, "geniki")

    def check(self) -> Operation[HealthStatus]:
        """``Authenticate``: the credentials and application key are accepted."""
        yield from self._authenticate()
        return HealthStatus(name="geniki", ok=True, detail="authenticated")

    def quote(self, request: ShipmentRequest) -> Operation[list[Quote]]:
        """Geniki has no rate API: quotes come from the configured rate table."""
        return (yield from self._table_quotes(self.config.rate_table, request))

    def create_shipment(self, request: ShipmentRequest) -> Operation[Shipment]:
        """``CreateJob`` of type Voucher, or SendAndReturn with a return voucher.

        Never retried blindly: it is not idempotent.
        """
        self.validate(request)
        # A job with a return voucher is Geniki's "SendAndReturn" type.
        kind = "SendAndReturn" if request.options.return_voucher else "Voucher"
        result = yield from self._call(
            "CreateJob", {"oVoucher": job_record(request), "eType": kind}
        )
        return parse_job(result, request, datetime.now(UTC))

    def label(self, shipment: Shipment, fmt: LabelFormat) -> Operation[Label]:
        """``GetVouchersPdf`` over GET (Flyer = A4, Sticker = thermal) or ``GetVoucherZPL``."""
        self._check_label_format(fmt)
        voucher = shipment.tracking_number
        if fmt is LabelFormat.ZPL:
            result = yield from self._call("GetVoucherZPL", {"voucherNo": voucher})
            zpl = child_text(result, "Zpl")
            if not zpl.startswith("^XA"):
                raise TransientError("Geniki returned no ZPL", vendor="geniki")
            return Label(tracking_number=voucher, format=fmt, content=zpl.encode())
        params = {
            "voucherNumbers": voucher,
            "format": "Sticker" if fmt is LabelFormat.PDF_THERMAL else "Flyer",
            "extraInfoFormat": "None",
        }
        key = yield from self._key()
        try:
            response = yield self._pdf_request(key, params)
        except _KeyExpired:
            # As for the SOAP calls: a key Geniki expired early is renewed once.
            self.keys.forget(key)
            key = yield from self._authenticate()
            response = yield self._pdf_request(key, params)
        if not response.content.startswith(b"%PDF"):
            raise TransientError("Geniki returned no PDF", vendor="geniki")
        return Label(tracking_number=voucher, format=fmt, content=response.content)

    def _pdf_request(self, key: str, params: Mapping[str, str]) -> httpx.Request:
        return self.endpoint.request(
            "GET",
            "/GetVouchersPdf",
            operation="geniki.GetVouchersPdf",
            params={"authKey": key, **params},
        )

    def cancel(self, shipment: Shipment) -> Operation[Shipment]:
        """``CancelJob`` (possible until ``ClosePendingJobs``)."""
        require_cancellable(shipment, "geniki")
        job = shipment.carrier_data.get("job_id", "")
        yield from self._call("CancelJob", {"nJobId": job, "bCancel": True})
        return shipment.model_copy(update={"cancellable": False})

    def track(self, tracking_number: str) -> Operation[Tracking]:
        """``TrackAndTrace`` in Greek, normalised, retractions applied."""
        result = yield from self._call(
            "TrackAndTrace", {"voucherNo": tracking_number, "language": "el"}, key_name="authKey"
        )
        return parse_track_and_trace(result, tracking_number)

    def finalise(self, shipments: Sequence[Shipment]) -> Operation[Manifest]:
        """``ClosePendingJobs``: hands every pending job over; none can be cancelled after."""
        yield from self._call("ClosePendingJobs", {})
        now = datetime.now(UTC)
        return Manifest(
            carrier="geniki",
            id=f"close-{today_in_athens().isoformat()}",
            tracking_numbers=tuple(s.tracking_number for s in shipments),
            created_at=now,
        )

    def pickup_points(self, near: Address | None = None) -> Operation[list[PickupPoint]]:
        """Geniki shops and lockers (``GetShopsList``, ``GetLockersList``).

        Where a recipient can collect a parcel Geniki holds for them (C_D2): jobs cannot
        be addressed to them, so a request with a ``pickup_point_id`` is refused.
        """
        shops = yield from self._call("GetShopsList", {})
        lockers = yield from self._call("GetLockersList", {})
        postcode = near.postcode if near is not None else None
        points = parse_points(shops, "Shop", DeliveryType.BRANCH, postcode) + parse_points(
            lockers, "Locker", DeliveryType.LOCKER, postcode
        )
        return points
