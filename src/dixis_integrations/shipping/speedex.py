"""Speedex: SOAP ``accesspoint.asmx``, with a session reused and renewed, built on ElementTree.

``CreateSession`` returns a ``sessionId`` that every call carries as ``sessionID``; it is
cached and renewed once when Speedex reports the session invalid. Every answer carries a
``returnCode`` (1 OK, 100 bad credentials) that becomes a typed error. ``CreateBOL`` takes
at most 10 vouchers a call: :meth:`Speedex.create_shipments` batches larger lists.
Speedex publishes no status code list, so tracking is normalised by keywords in
``StatusDesc``, with the raw code kept. No lookup by our reference (``Comments_2853_1``)
is documented (``GetTraceByVoucher`` takes a voucher), so there is no ``find_shipment``:
a crash may leave a second BOL to cancel.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from collections.abc import Generator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from dixis_integrations.errors import (
    AuthError,
    FieldError,
    InvalidInput,
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
    street_and_number,
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
    "MAX_BOLS_PER_CALL",
    "SPEEDEX_STATUSES",
    "Speedex",
    "SpeedexConfig",
    "bol",
    "classify",
    "parse_bols",
    "parse_trace",
    "soap_call",
]

MAX_BOLS_PER_CALL = 10
_SESSION_CODES = frozenset({"300", "301"})

SPEEDEX_STATUSES = StatusMap(
    keywords=(
        ("ΑΚΥΡΩ", TrackingStatus.CANCELLED),
        ("ΕΠΙΣΤΡΑΦΗΚΕ", TrackingStatus.RETURNED),
        ("ΕΠΙΣΤΡΟΦΗ", TrackingStatus.RETURNING),
        ("ΠΑΡΑΔΟΘΗΚΕ", TrackingStatus.DELIVERED),
        ("ΣΕ ΔΙΑΝΟΜΗ", TrackingStatus.OUT_FOR_DELIVERY),
        ("ΠΡΟΣ ΠΑΡΑΔΟΣΗ", TrackingStatus.OUT_FOR_DELIVERY),
        ("ΑΠΩΝ", TrackingStatus.DELIVERY_FAILED),
        ("ΑΠΟΥΣΙΑ", TrackingStatus.DELIVERY_FAILED),
        ("ΑΡΝΗΣΗ", TrackingStatus.DELIVERY_FAILED),
        ("ΛΑΘΟΣ ΔΙΕΥΘΥΝΣΗ", TrackingStatus.DELIVERY_FAILED),
        ("ΔΙΑΘΕΣΙΜΟ", TrackingStatus.AVAILABLE_FOR_PICKUP),
        ("ΠΑΡΑΛΗΦΘΗΚΕ", TrackingStatus.ACCEPTED),
        ("ΠΑΡΑΛΑΒΗ", TrackingStatus.ACCEPTED),
    )
)


class SpeedexConfig(BaseModel):
    """Credentials and agreement (``agreement_id`` 6 characters, ``customer_id`` 8)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    username: str
    password: SecretStr
    customer_id: str
    agreement_id: str
    base_url: str = "https://spdxws.gr/accesspoint.asmx"
    namespace: str = "http://tempuri.org/"
    session_lifetime_seconds: float = 20 * 60
    rate_table: RateTable = default_rate_table("3.10", "4.40", "5.60", "0.70")


_RULES = CarrierRules(
    vendor="speedex",
    max_weight_kg=Decimal(50),
    max_parcels=99,
    cod_methods=frozenset({CodMethod.CASH, CodMethod.CHEQUE}),
    insurance_max=Decimal(3000),
    services=frozenset({Service.STANDARD, Service.NEXT_DAY, Service.TIME_DEFINITE}),
    saturday=True,
    content_type_for=frozenset(),
    time_window=True,
)


class _SessionExpired(AuthError):
    """Speedex no longer knows the session: open a new one and repeat the call once."""

    code = "session_expired"


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """SOAP faults, HTTP errors, and ``returnCode``/``returnMessage`` inside 200."""
    if response.status_code >= 400 and b"Fault" not in response.content:
        return default_classify(response, endpoint)
    try:
        result = parse_body(response, "speedex")
    except ProviderError as exc:
        return exc
    code = child_text(result, "returnCode")
    message = child_text(result, "returnMessage") or f"returnCode {code}"
    if not code or code == "1":
        return None
    if code == "100":
        return AuthError(message, vendor="speedex", vendor_code=code)
    if code in _SESSION_CODES or "session" in message.lower():
        return _SessionExpired(message, vendor="speedex", vendor_code=code)
    if "not found" in message.lower() or "δεν βρέθηκ" in message.lower():
        return NotFound(message, vendor="speedex", vendor_code=code)
    return ValidationRejected(message, vendor="speedex", vendor_code=code)


def soap_call(
    endpoint: Endpoint, namespace: str, operation: str, params: Mapping[str, Value]
) -> httpx.Request:
    """One SOAP 1.1 POST to accesspoint.asmx (``SOAPAction`` = namespace + operation)."""
    return endpoint.request(
        "POST",
        "",
        operation=f"speedex.{operation}",
        content=envelope(operation, params, namespace),
        headers={
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{namespace}{operation}"',
        },
        idempotent=operation != "CreateBOL",
    )


def bol(request: ShipmentRequest, config: SpeedexConfig) -> dict[str, Value]:
    """One ``BOL`` of ``CreateBOL`` for ``request`` (agreement data, ``_cust_Flag`` 0)."""
    recipient, options = request.recipient, request.options
    street, number = street_and_number(recipient)
    cod = options.cod
    return {
        "_cust_Flag": 0,
        "SND_Customer_Id": config.customer_id,
        "Snd_agreement_id": config.agreement_id,
        "Comments_2853_1": request.reference,
        "Comments_2853_2": "",
        "Comments_2853_3": "",
        "Paratiriseis_2853_1": request.notes or "",
        "Paratiriseis_2853_2": "",
        "Paratiriseis_2853_3": "",
        "Items": len(request.parcels),
        "Voucher_Weight": max(Decimal("0.5"), request.total_weight_kg),
        "PayCode_Flag": 1,
        "Pod_Amount_Cash": cod.amount.amount if cod else Decimal(0),
        "Pod_Amount_Description": ("E" if cod.method is CodMethod.CHEQUE else "M") if cod else "",
        "RCV_Name": recipient.name,
        "RCV_Addr1": f"{street} {number}".strip(),
        "RCV_City": recipient.city,
        "RCV_Zip_Code": recipient.postcode,
        "RCV_Country": recipient.country,
        "RCV_Tel1": national_phone(recipient.mobile or recipient.phone),
        "Saturday_Delivery": 1 if options.saturday else 0,
        "Security_Value": options.insurance.amount if options.insurance else Decimal(0),
        "Time_Limit": (options.time_window or "")
        if request.service is Service.TIME_DEFINITE
        else "",
    }


def parse_bols(
    result: ET.Element, requests: Sequence[ShipmentRequest], now: datetime
) -> list[Shipment]:
    """Shipments from ``CreateBOL``'s ``outListPod``, in the order of ``requests``."""
    codes = [child_text(b, "voucher_code") for b in children(result, "BOL")]
    if len(codes) != len(requests) or not all(codes):
        raise TransientError(
            f"Speedex returned {len(codes)} vouchers for {len(requests)} BOLs", vendor="speedex"
        )
    return [
        Shipment(
            carrier="speedex",
            reference=request.reference,
            tracking_number=code,
            created_at=now,
            service=request.service,
            cod=request.options.cod,
        )
        for code, request in zip(codes, requests, strict=True)
    ]


def _when(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ATHENS)
    return parsed.astimezone(UTC)


def parse_trace(result: ET.Element, voucher: str) -> Tracking:
    """The :class:`Tracking` of ``GetTraceByVoucher`` (keywords on ``StatusDesc``)."""
    events = [
        SPEEDEX_STATUSES.event(
            code=fields.get("StatusCode") or None,
            at=_when(fields.get("CheckpointDate", "")),
            description=fields.get("StatusDesc"),
            location=fields.get("Branch"),
        )
        for fields in (to_dict(c) for c in children(result, "Checkpoint"))
    ]
    return build_tracking("speedex", voucher, events)


class Speedex(CarrierBase):
    """Speedex through the ``ShippingCarrier`` Protocol, sync and async."""

    name = "speedex"
    capabilities = frozenset(
        {
            Capability.RATES,
            Capability.LABELS,
            Capability.TRACKING,
            Capability.CANCELLATION,
            Capability.LOCKERS,
            Capability.COD,
            Capability.SATURDAY,
            Capability.INSURANCE,
            Capability.BATCH,
        }
    )
    rules = _RULES
    label_formats = frozenset({LabelFormat.PDF_A4, LabelFormat.PDF_THERMAL})

    def __init__(
        self,
        config: SpeedexConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.config = config
        register_secret(config.password.get_secret_value())
        self.endpoint = Endpoint(
            vendor="speedex", base_url=config.base_url, tenant=tenant, auth=auth, classify=classify
        )
        self.time_scale = time_scale
        self.sessions = SessionCache()

    def __repr__(self) -> str:
        return f"Speedex(tenant={self.endpoint.tenant!r}, username={self.config.username!r})"

    def _open_session(self) -> Generator[httpx.Request, httpx.Response, str]:
        response = yield soap_call(
            self.endpoint,
            self.config.namespace,
            "CreateSession",
            {"username": self.config.username, "password": self.config.password.get_secret_value()},
        )
        session = child_text(parse_body(response, "speedex"), "sessionId")
        if not session:
            raise AuthError("Speedex opened no session", vendor="speedex")
        register_secret(session)
        self.sessions.set(session, self.config.session_lifetime_seconds * self.time_scale)
        return session

    def _call(
        self, operation: str, params: Mapping[str, Value]
    ) -> Generator[httpx.Request, httpx.Response, ET.Element]:
        session = self.sessions.get()
        if session is None:
            session = yield from self._open_session()
        try:
            response = yield soap_call(
                self.endpoint, self.config.namespace, operation, {"sessionID": session, **params}
            )
        except _SessionExpired:
            self.sessions.forget(session)
            session = yield from self._open_session()
            response = yield soap_call(
                self.endpoint, self.config.namespace, operation, {"sessionID": session, **params}
            )
        return parse_body(response, "speedex")

    def close_session(self) -> Operation[None]:
        """``DestroySession`` for the cached session, if there is one."""
        session = self.sessions.get()
        if session is None:
            return None
        self.sessions.forget(session)
        yield soap_call(
            self.endpoint, self.config.namespace, "DestroySession", {"sessionID": session}
        )
        return None

    def check(self) -> Operation[HealthStatus]:
        """``CreateSession``: the credentials are accepted."""
        yield from self._open_session()
        return HealthStatus(name="speedex", ok=True, detail="session opened")

    def quote(self, request: ShipmentRequest) -> Operation[list[Quote]]:
        """Speedex has no rate API: quotes come from the configured rate table."""
        return (yield from self._table_quotes(self.config.rate_table, request))

    def create_shipment(self, request: ShipmentRequest) -> Operation[Shipment]:
        """``CreateBOL`` with one BOL."""
        self.validate(request)
        shipments = yield from self.create_shipments([request])
        return shipments[0]

    def create_shipments(self, requests: Sequence[ShipmentRequest]) -> Operation[list[Shipment]]:
        """``CreateBOL`` in calls of at most 10 BOLs; every request is checked first.

        Raises:
            InvalidInput: for the first invalid request, its index in the field path;
                nothing is sent if any request is invalid.
        """
        errors: list[FieldError] = []
        for i, request in enumerate(requests):
            try:
                self.validate(request)
            except InvalidInput as exc:
                errors.extend(
                    FieldError(("requests", i, *e.loc), e.message, e.code) for e in exc.errors
                )
        if errors:
            raise InvalidInput(
                "speedex cannot take these shipments", errors=errors, vendor="speedex"
            )
        made: list[Shipment] = []
        for start in range(0, len(requests), MAX_BOLS_PER_CALL):
            batch = list(requests[start : start + MAX_BOLS_PER_CALL])
            result = yield from self._call(
                "CreateBOL",
                {"inListPod": {"BOL": [bol(r, self.config) for r in batch]}, "tableFlag": 3},
            )
            made.extend(parse_bols(result, batch, datetime.now(UTC)))
        return made

    def label(self, shipment: Shipment, fmt: LabelFormat) -> Operation[Label]:
        """``GetBOLPdf``: A4 (``paperType`` 1) or a 10x15 label (2), base64 PDF."""
        self._check_label_format(fmt)
        result = yield from self._call(
            "GetBOLPdf",
            {
                "voucherIDs": {"string": [shipment.tracking_number]},
                "perVoucher": True,
                "paperType": 2 if fmt is LabelFormat.PDF_THERMAL else 1,
            },
        )
        encoded = child_text(result, "pdf")
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            content = b""
        if not content.startswith(b"%PDF"):
            raise TransientError("Speedex returned no PDF", vendor="speedex")
        return Label(tracking_number=shipment.tracking_number, format=fmt, content=content)

    def cancel(self, shipment: Shipment) -> Operation[Shipment]:
        """``CancelBOL`` (Speedex refuses once the parcel has been picked up)."""
        require_cancellable(shipment, "speedex")
        yield from self._call("CancelBOL", {"voucherID": shipment.tracking_number})
        return shipment.model_copy(update={"cancellable": False})

    def track(self, tracking_number: str) -> Operation[Tracking]:
        """``GetTraceByVoucher``, normalised by keywords."""
        result = yield from self._call("GetTraceByVoucher", {"VoucherID": tracking_number})
        return parse_trace(result, tracking_number)

    def finalise(self, shipments: Sequence[Shipment]) -> Operation[Manifest]:
        """Speedex needs no end-of-day list: vouchers are live when created."""
        return unsupported("finalise", "speedex", "Speedex has no pickup list or manifest")

    def pickup_points(self, near: Address | None = None) -> Operation[list[PickupPoint]]:
        """Speedex branches (``GetBranches``), for the postcode of ``near`` if given."""
        params: dict[str, Value] = {"zip": near.postcode if near is not None else ""}
        result = yield from self._call("GetBranches", params)
        return [
            PickupPoint(
                carrier="speedex",
                id=fields.get("BranchID", ""),
                name=fields.get("BranchName", ""),
                kind=DeliveryType.BRANCH,
            )
            for fields in (to_dict(b) for b in children(result, "Branch"))
        ]
