"""ELTA Courier: SOAP services with one ``READ`` operation each, built with ElementTree.

``CREATEAWB02`` creates an AWB (door, office or PUDO delivery; cash COD; insurance;
Saturday as surcharge 3), ``PELB64VG`` returns the label as base64, ``PELTT03`` the
tracking (free-text statuses, normalised by keyword) and ``GETPUDODETAILS`` the PUDO
points. Every answer has ``st_flag`` (0 OK) and ``st_title``. ELTA's public interface has
no cancellation: :meth:`ELTA.cancel` raises ``NotSupported`` and it is not a capability.
``PELTT03`` also answers by our reference (``wpel_ref``, ``wpel_flag`` 2): that is
:meth:`ELTA.find_shipment`, so a create lost in a crash is found instead of repeated.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from dixis_integrations.errors import (
    AuthError,
    Conflict,
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
    national_phone,
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
from dixis_integrations.shipping.validation import CarrierRules, latin

__all__ = [
    "ELTA",
    "ELTA_STATUSES",
    "ELTAConfig",
    "awb_params",
    "classify",
    "parse_awb",
    "parse_found",
    "parse_tracking",
    "soap_call",
]

ELTA_STATUSES = StatusMap(
    keywords=(
        ("ΕΠΙΣΤΡΑΦΗΚΕ", TrackingStatus.RETURNED),
        ("ΕΠΙΣΤΡΟΦΗ", TrackingStatus.RETURNING),
        ("ΕΠΙΔΟΘΗΚΕ", TrackingStatus.DELIVERED),
        ("ΠΑΡΑΔΟΘΗΚΕ", TrackingStatus.DELIVERED),
        ("ΠΡΟΣ ΕΠΙΔΟΣΗ", TrackingStatus.OUT_FOR_DELIVERY),
        ("ΣΕ ΔΙΑΝΟΜΗ", TrackingStatus.OUT_FOR_DELIVERY),
        ("ΑΠΩΝ", TrackingStatus.DELIVERY_FAILED),
        ("ΑΠΟΥΣΙΑ", TrackingStatus.DELIVERY_FAILED),
        ("ΑΡΝΗΣΗ", TrackingStatus.DELIVERY_FAILED),
        ("ΑΝΕΠΑΡΚΗΣ ΔΙΕΥΘΥΝΣΗ", TrackingStatus.DELIVERY_FAILED),
        ("ΠΑΡΑΜΕΝΕΙ ΣΤΟ ΚΑΤΑΣΤΗΜΑ", TrackingStatus.AVAILABLE_FOR_PICKUP),
        ("ΠΡΟΣ ΠΑΡΑΛΑΒΗ", TrackingStatus.AVAILABLE_FOR_PICKUP),
        ("PUDO", TrackingStatus.AVAILABLE_FOR_PICKUP),
        ("ΠΑΡΑΛΑΒΗ", TrackingStatus.ACCEPTED),
    ),
    reasons={},
)
_SERVICE_CODE = {DeliveryType.DOOR: 1, DeliveryType.BRANCH: 2, DeliveryType.PICKUP_POINT: 7}


class ELTAConfig(BaseModel):
    """The three ELTA codes (user 7 digits, password, sender/contract ``apost_code``).

    ``latin_only`` transliterates names and addresses (ELOT 743) for accounts set up
    without Greek script. ``namespace`` is the services' XML namespace; ``{service}`` is
    replaced by the service name (``CREATEAWB02``...).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    user_code: str
    password: SecretStr
    apost_code: str
    base_url: str = "https://customers.elta-courier.gr"
    namespace: str = "urn:elta-courier:{service}"
    latin_only: bool = False
    rate_table: RateTable = default_rate_table("3.40", "4.40", "5.40", "0.60")


_RULES = CarrierRules(
    vendor="elta",
    max_weight_kg=Decimal(35),
    max_parcels=99,
    cod_methods=frozenset({CodMethod.CASH}),
    insurance_max=Decimal(2000),
    saturday=True,
    delivery_types=frozenset({DeliveryType.DOOR, DeliveryType.BRANCH, DeliveryType.PICKUP_POINT}),
    mobile_for_lockers=True,
    content_type_for=frozenset(),
)


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """SOAP faults, HTTP errors, and ``st_flag`` other than 0 inside 200."""
    if response.status_code >= 400 and b"Fault" not in response.content:
        return default_classify(response, endpoint)
    try:
        result = parse_body(response, "elta")
    except ProviderError as exc:
        return exc
    flag = child_text(result, "st_flag")
    if not flag or flag == "0":
        return None
    title = child_text(result, "st_title") or f"st_flag {flag}"
    lowered = title.lower()
    if any(w in lowered for w in ("user", "password", "κωδικ", "χρηστ")):
        return AuthError(title, vendor="elta", vendor_code=flag)
    if "not found" in lowered or "δεν βρ" in lowered:
        return NotFound(title, vendor="elta", vendor_code=flag)
    return ValidationRejected(title, vendor="elta", vendor_code=flag)


def soap_call(
    endpoint: Endpoint, namespace: str, service: str, params: Mapping[str, Value]
) -> httpx.Request:
    """The ``READ`` operation of ``service`` (each ELTA service is its own endpoint)."""
    ns = namespace.format(service=service)
    return endpoint.request(
        "POST",
        f"/{service}",
        operation=f"elta.{service}",
        content=envelope("READ", params, ns),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ns}/READ"'},
        idempotent=service != "CREATEAWB02",
    )


def _text(value: str | None, latin_only: bool) -> str:
    return latin(value) if latin_only else (value or "")


def awb_params(request: ShipmentRequest, config: ELTAConfig) -> dict[str, Value]:
    """``CREATEAWB02`` ``READ`` parameters for ``request``."""
    recipient, options = request.recipient, request.options
    street, number = street_and_number(recipient)
    return {
        "pel_user_code": config.user_code,
        "pel_user_pass": config.password.get_secret_value(),
        "pel_apost_code": config.apost_code,
        "pel_paral_name": _text(recipient.name, config.latin_only),
        "pel_paral_address": _text(f"{street} {number}".strip(), config.latin_only),
        "pel_paral_area": _text(recipient.city, config.latin_only),
        "pel_paral_tk": recipient.postcode,
        "pel_paral_thl_1": national_phone(recipient.mobile or recipient.phone),
        "pel_service": _SERVICE_CODE[options.delivery_type],
        "pel_pudo_code": options.pickup_point_id or "",
        "pel_temaxia": len(request.parcels),
        "pel_baros": request.total_weight_kg,
        "pel_sur_1": "",
        "pel_sur_2": "",
        "pel_sur_3": "1" if options.saturday else "",
        "pel_ant_poso": options.cod.amount.amount if options.cod else Decimal(0),
        "pel_asf_poso": options.insurance.amount if options.insurance else Decimal(0),
        "pel_ref_no": request.reference,
    }


def parse_awb(result: ET.Element, request: ShipmentRequest, now: datetime) -> Shipment:
    """The :class:`Shipment` from ``CREATEAWB02`` (``vg_code``, 13 characters)."""
    code = child_text(result, "vg_code")
    if len(code) != 13:
        raise TransientError(f"ELTA returned an AWB of {len(code)} characters", vendor="elta")
    return Shipment(
        carrier="elta",
        reference=request.reference,
        tracking_number=code,
        created_at=now,
        service=request.service,
        cancellable=False,
        cod=request.options.cod,
        pickup_point_id=request.options.pickup_point_id,
    )


def _when(day: str, clock: str) -> datetime:
    parsed = datetime.strptime(f"{day} {clock or '00:00'}", "%d/%m/%Y %H:%M")
    return parsed.replace(tzinfo=ATHENS).astimezone(UTC)


def parse_tracking(result: ET.Element, awb: str) -> Tracking:
    """``PELTT03``: its ``web_status`` records, and the proof of delivery if present."""
    events: list[TrackingEvent] = []
    for fields in (to_dict(r) for r in children(result, "web_status")):
        events.append(
            ELTA_STATUSES.event(
                code=None,
                at=_when(fields.get("web_date", ""), fields.get("web_time", "")),
                description=fields.get("web_status_title"),
                location=fields.get("web_station"),
            )
        )
    pod_date = child_text(result, "pod_date")
    if pod_date and not (events and events[-1].status is TrackingStatus.DELIVERED):
        events.append(
            TrackingEvent(
                status=TrackingStatus.DELIVERED,
                at=_when(pod_date, child_text(result, "pod_time")),
                raw_code="pod",
                description=f"received by {child_text(result, 'pod_name')}".strip(),
            )
        )
    return build_tracking("elta", awb, events)


def parse_found(result: ET.Element, reference: str, now: datetime) -> Shipment:
    """The :class:`Shipment` that ``PELTT03`` by reference (``wpel_flag`` 2) names.

    Raises:
        Conflict: ELTA knows the reference but its answer names no 13-character AWB, so
            the shipment exists and must not be created again.
    """
    code = child_text(result, "vg_code")
    if len(code) != 13:
        raise Conflict(
            f"ELTA has a shipment for reference {reference} but did not name its AWB",
            vendor="elta",
        )
    records = [to_dict(r) for r in children(result, "web_status")]
    created = now
    if records and records[0].get("web_date"):
        created = _when(records[0]["web_date"], records[0].get("web_time", ""))
    return Shipment(
        carrier="elta",
        reference=reference,
        tracking_number=code,
        created_at=created,
        cancellable=False,
    )


class ELTA(CarrierBase):
    """ELTA Courier through the ``ShippingCarrier`` Protocol, sync and async."""

    name = "elta"
    capabilities = frozenset(
        {
            Capability.RATES,
            Capability.LABELS,
            Capability.TRACKING,
            Capability.LOCKERS,
            Capability.COD,
            Capability.SATURDAY,
            Capability.INSURANCE,
        }
    )
    rules = _RULES
    label_formats = frozenset({LabelFormat.PDF_A4, LabelFormat.PDF_THERMAL})

    def __init__(
        self,
        config: ELTAConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.config = config
        register_secret(config.password.get_secret_value())
        self.endpoint = Endpoint(
            vendor="elta", base_url=config.base_url, tenant=tenant, auth=auth, classify=classify
        )

    def __repr__(self) -> str:
        return f"ELTA(tenant={self.endpoint.tenant!r}, user_code={self.config.user_code!r})"

    def _credentials(self, prefix: str = "pel") -> dict[str, Value]:
        if prefix == "wpel":
            return {
                "wpel_code": self.config.apost_code,
                "wpel_user": self.config.user_code,
                "wpel_pass": self.config.password.get_secret_value(),
            }
        return {
            "pel_user_code": self.config.user_code,
            "pel_user_pass": self.config.password.get_secret_value(),
            "pel_apost_code": self.config.apost_code,
        }

    def _read(self, service: str, params: Mapping[str, Value]) -> Operation[ET.Element]:
        response = yield soap_call(self.endpoint, self.config.namespace, service, params)
        return parse_body(response, "elta")

    def check(self) -> Operation[HealthStatus]:
        """``GETPUDODETAILS``: the credentials are accepted."""
        yield from self._read("GETPUDODETAILS", self._credentials())
        return HealthStatus(name="elta", ok=True, detail="credentials accepted")

    def quote(self, request: ShipmentRequest) -> Operation[list[Quote]]:
        """ELTA publishes no rate API: quotes come from the configured rate table."""
        return (yield from self._table_quotes(self.config.rate_table, request))

    def create_shipment(self, request: ShipmentRequest) -> Operation[Shipment]:
        """``CREATEAWB02`` (never retried blindly; ELTA cannot cancel a duplicate)."""
        self.validate(request)
        result = yield from self._read("CREATEAWB02", awb_params(request, self.config))
        return parse_awb(result, request, datetime.now(UTC))

    def label(self, shipment: Shipment, fmt: LabelFormat) -> Operation[Label]:
        """``PELB64VG``: ``paper_size`` 0 A4, 1 A6 (thermal)."""
        self._check_label_format(fmt)
        result = yield from self._read(
            "PELB64VG",
            {
                **self._credentials(),
                "vg_code": shipment.tracking_number,
                "paper_size": 1 if fmt is LabelFormat.PDF_THERMAL else 0,
            },
        )
        try:
            content = base64.b64decode(child_text(result, "B64_STRING"), validate=True)
        except (binascii.Error, ValueError):
            content = b""
        if not content.startswith(b"%PDF"):
            raise TransientError("ELTA returned no PDF", vendor="elta")
        return Label(tracking_number=shipment.tracking_number, format=fmt, content=content)

    def cancel(self, shipment: Shipment) -> Operation[Shipment]:
        """Not offered: ELTA's public web services have no cancellation."""
        return unsupported("cancel", "elta", "ELTA's web services offer no cancellation")

    def track(self, tracking_number: str) -> Operation[Tracking]:
        """``PELTT03`` by AWB (``wpel_flag`` 1)."""
        result = yield from self._read(
            "PELTT03", {**self._credentials("wpel"), "wpel_vg": tracking_number, "wpel_flag": 1}
        )
        return parse_tracking(result, tracking_number)

    def find_shipment(self, reference: str) -> Operation[Shipment | None]:
        """``PELTT03`` by our reference (``wpel_ref``, ``wpel_flag`` 2); ``None`` if unknown."""
        try:
            result = yield from self._read(
                "PELTT03", {**self._credentials("wpel"), "wpel_ref": reference, "wpel_flag": 2}
            )
        except NotFound:
            return None
        return parse_found(result, reference, datetime.now(UTC))

    def finalise(self, shipments: Sequence[Shipment]) -> Operation[Manifest]:
        """Not offered: ELTA collects without an end-of-day list."""
        return unsupported("finalise", "elta", "ELTA has no pickup list or manifest")

    def pickup_points(self, near: Address | None = None) -> Operation[list[PickupPoint]]:
        """``GETPUDODETAILS``: ELTA's PUDO points, nearest postcode first if ``near``."""
        result = yield from self._read("GETPUDODETAILS", self._credentials())
        rows = [to_dict(r) for r in children(result, "pudo")]
        if near is not None and near.postcode.isdigit():
            target = int(near.postcode)
            rows.sort(key=lambda r: abs(int(r.get("tk") or 0) - target))
        return [
            PickupPoint(
                carrier="elta",
                id=r.get("pudo_code", ""),
                name=r.get("pudo_name", ""),
                kind=DeliveryType.PICKUP_POINT,
                latitude=Decimal(r["lat"]) if r.get("lat") else None,
                longitude=Decimal(r["lon"]) if r.get("lon") else None,
            )
            for r in rows
        ]
