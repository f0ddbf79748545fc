"""ACS Courier: the JSON ``ACSAutoRest`` envelope, with ACS's errors inside HTTP 200 typed.

Every call is ``POST .../ACSAutoRest`` with ``{"ACSAlias", "ACSInputParameters"}``, the
``AcsApiKey`` header and the company/user credentials in the body. ACS reports failures
in ``ACSExecution_HasError`` *and* silently in ``ACSValueOutput[0].Error_Message``; both
become typed errors, as do HTTP 403 (bad key) and 406 (over 10 calls a second).
Vouchers are unknown to ACS until a pickup list is issued (:meth:`ACS.finalise`); after
that they cannot be deleted.
No lookup by our reference (``Reference_Key1``) is documented, so there is no
``find_shipment``: a create lost in a crash may leave a second voucher to delete by hand.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

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
from dixis_integrations.http.endpoint import (
    Endpoint,
    Limits,
    Window,
    default_classify,
)
from dixis_integrations.http.redact import register_secret
from dixis_integrations.models.address import Address
from dixis_integrations.models.money import Money
from dixis_integrations.models.shipping import (
    CodMethod,
    CodPayout,
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
    national_phone,
    require_cancellable,
    street_and_number,
    today_in_athens,
)
from dixis_integrations.shipping.rates import GREEK_VAT, RateTable, add_vat, business_days_after
from dixis_integrations.shipping.tracking import StatusMap
from dixis_integrations.shipping.validation import CarrierRules

__all__ = [
    "ACS",
    "ACS_CHECKPOINTS",
    "ACSConfig",
    "build_call",
    "classify",
    "cod_payout_params",
    "parse_cod_payouts",
    "parse_label",
    "parse_pickup_list",
    "parse_price",
    "parse_stations",
    "parse_tracking",
    "parse_voucher",
    "price_params",
    "voucher_params",
]

_PATH = "/ACSAutoRest"
_LOCKER_KIND = "7"  # ACS_Stations kind of Smartpoint lockers


class ACSConfig(BaseModel):
    """Credentials and account settings for ACS.

    ``origin_station`` is the ACS station that collects from you (the two letters after
    the billing category in the billing code, e.g. ``2ΑΘ999999`` -> ``ΑΘ``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    api_key: SecretStr
    company_id: str
    company_password: SecretStr
    user_id: str
    user_password: SecretStr
    billing_code: str
    origin_station: str = ""
    base_url: str = "https://webservices.acscourier.net/ACSRestServices/api"
    language: str = "GR"
    charge_type: int = 2
    calls_per_second: int = 10
    cyprus_rate_table: RateTable = default_rate_table("3.50", "5.00", "6.00", "0.80", cyprus="9.00")

    def station_of_origin(self) -> str:
        """``origin_station``, or the station read from the billing code."""
        return self.origin_station or self.billing_code[1:3]


_RULES = CarrierRules(
    vendor="acs",
    max_weight_kg=Decimal(999),
    max_parcels=99,
    countries=frozenset({"GR", "CY"}),
    cod_methods=frozenset({CodMethod.CASH, CodMethod.CHEQUE}),
    cod_countries=frozenset({"GR", "CY"}),
    insurance_max=Decimal(3000),
    services=frozenset({Service.STANDARD, Service.NEXT_DAY, Service.TIME_DEFINITE}),
    saturday=True,
    delivery_types=frozenset({DeliveryType.DOOR, DeliveryType.LOCKER, DeliveryType.BRANCH}),
    return_voucher=True,
)

# ACS_TrackingDetails gives a free-text checkpoint_action; the summary's shipment_status
# and non_delivery_reason_code are the codes (see parse_tracking).
ACS_CHECKPOINTS = StatusMap(
    keywords=(
        ("ΑΚΥΡΩ", TrackingStatus.CANCELLED),
        ("ΕΠΙΣΤΡΑΦΗΚΕ", TrackingStatus.RETURNED),
        ("ΕΠΙΣΤΡΟΦΗ", TrackingStatus.RETURNING),
        ("ΠΑΡΑΔΟΘΗΚΕ", TrackingStatus.DELIVERED),
        ("ΠΑΡΑΔΟΣΗ ΣΕ ΠΑΡΑΛΗΠΤΗ", TrackingStatus.DELIVERED),
        ("ΠΡΟΣ ΠΑΡΑΔΟΣΗ", TrackingStatus.OUT_FOR_DELIVERY),
        ("ΣΕ ΔΙΑΝΟΜΗ", TrackingStatus.OUT_FOR_DELIVERY),
        ("SMARTPOINT", TrackingStatus.AVAILABLE_FOR_PICKUP),
        ("ΔΙΑΘΕΣΙΜΟ", TrackingStatus.AVAILABLE_FOR_PICKUP),
        ("ΑΠΟΥΣΙΑ", TrackingStatus.DELIVERY_FAILED),
        ("ΑΡΝΗΣΗ", TrackingStatus.DELIVERY_FAILED),
        ("ΠΑΡΑΛΑΒΗ", TrackingStatus.ACCEPTED),
    ),
    reasons={
        "ΑΣ1": "recipient absent",
        "ΑΠ1": "refused by the recipient",
        "ΑΠ2": "refused by the recipient",
        "ΑΠ3": "refused by the recipient",
        "ΛΣ1": "wrong or incomplete address",
        "ΛΣ3": "wrong or incomplete address",
        "ΠΑ2": "delivery rescheduled",
        "ΠΑ4": "delivery redirected",
    },
)
_SUMMARY_STATUS = {
    "1": TrackingStatus.DELIVERY_FAILED,  # refused (ΑΠ1-3)
    "2": TrackingStatus.DELIVERY_FAILED,  # bad address (ΛΣ1/3)
    "3": TrackingStatus.DELIVERY_FAILED,  # absent (ΑΣ1)
    "4": TrackingStatus.DELIVERED,
    "5": TrackingStatus.IN_TRANSIT,  # rescheduled or redirected (ΠΑ2/4, ΔΔ1)
    "6": TrackingStatus.RETURNING,
    "7": TrackingStatus.RETURNED,
}


# -- the envelope --------------------------------------------------------------------


def _wire(value: Any) -> Any:
    # Exact amounts go out as decimal strings ("50.50"), as ACS's PHP clients send them:
    # never through a binary float.
    return format(value, "f") if isinstance(value, Decimal) else value


def build_call(
    alias: str, params: Mapping[str, Any], config: ACSConfig, *, language: bool = True
) -> dict[str, Any]:
    """The JSON body of one ACS call: credentials first, then ``params``.

    Decimals become decimal strings (``Decimal("50.5")`` -> ``"50.5"``). ``language=False``
    leaves out ``Language`` for the aliases whose documented parameters have none.
    """
    credentials: dict[str, Any] = {
        "Company_ID": config.company_id,
        "Company_Password": config.company_password.get_secret_value(),
        "User_ID": config.user_id,
        "User_Password": config.user_password.get_secret_value(),
    }
    if language:
        credentials["Language"] = config.language
    return {
        "ACSAlias": alias,
        "ACSInputParameters": {
            **credentials,
            **{key: _wire(value) for key, value in params.items()},
        },
    }


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _values(body: Any) -> list[dict[str, Any]]:
    out = (body or {}).get("ACSOutputResponce") or {}
    values = out.get("ACSValueOutput") or []
    return [v for v in values if isinstance(v, dict)]


def _table(body: Any) -> list[dict[str, Any]]:
    out = (body or {}).get("ACSOutputResponce") or {}
    table = out.get("ACSTableOutput") or {}
    rows = table.get("Table_Data") or [] if isinstance(table, dict) else []
    return [r for r in rows if isinstance(r, dict)]


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """ACS failures: 403 bad key, 406 throttled, and the two kinds of error inside 200."""
    status = response.status_code
    if status == 403:
        return AuthError("ACS refused the API key", vendor="acs", status_code=status)
    if status == 406:
        return RateLimited(
            "ACS allows 10 calls a second",
            retry_at=datetime.now(UTC) + timedelta(seconds=endpoint.limits.time_scale),
            vendor="acs",
            status_code=status,
        )
    if status >= 400:
        return default_classify(response, endpoint)
    body = _json(response)
    if not isinstance(body, dict) or "ACSExecution_HasError" not in body:
        return TransientError("ACS answered without its envelope", vendor="acs", status_code=status)
    if body.get("ACSExecution_HasError"):
        message = str(body.get("ACSExecutionErrorMessage") or "ACS execution error")
        lowered = message.lower()
        if any(word in lowered for word in ("password", "credential", "κωδικ", "user")):
            return AuthError(message, vendor="acs", status_code=status)
        return ValidationRejected(message, vendor="acs", status_code=status)
    for value in _values(body):
        # ACS_COD_Beneficiary_Info names it Error_msg.
        silent = value.get("Error_Message") or value.get("Error_Messages") or value.get("Error_msg")
        if silent:
            return ValidationRejected(str(silent), vendor="acs", status_code=status)
    return None


# -- request mapping -------------------------------------------------------------------


def _products(request: ShipmentRequest) -> list[str]:
    options = request.options
    products = []
    if options.cod is not None:
        products.append("COD")
    if options.insurance is not None:
        products.append("INS")
    if options.saturday:
        products.append("SAT")
    if request.service is Service.TIME_DEFINITE:
        products.append("TDD")
    if options.delivery_type is DeliveryType.BRANCH:
        products.append("REC")
    return products


def _dimensions(request: ShipmentRequest) -> dict[str, Any]:
    first = request.parcels[0]
    out = {}
    for name, value in (
        ("Dimension_X_In_Cm", first.length_cm),
        ("Dimension_Y_In_Cm", first.width_cm),
        ("Dimension_Z_In_Cm", first.height_cm),
    ):
        if value is not None:
            out[name] = value
    return out


def _weight(request: ShipmentRequest) -> Decimal:
    # ACS charges at least 0.5 kg; lighter parcels are sent as 0.5 rather than refused.
    return max(Decimal("0.5"), request.total_weight_kg)


def voucher_params(request: ShipmentRequest, config: ACSConfig) -> dict[str, Any]:
    """``ACS_Create_Voucher`` parameters for ``request`` (credentials not included)."""
    recipient = request.recipient
    options = request.options
    street, number = street_and_number(recipient)
    cod = options.cod
    params: dict[str, Any] = {
        "Pickup_Date": (request.ship_date or today_in_athens()).isoformat(),
        "Sender": request.sender.company or request.sender.name,
        "Recipient_Name": recipient.name,
        "Recipient_Address": street,
        "Recipient_Address_Number": number,
        "Recipient_Zipcode": recipient.postcode,
        "Recipient_Region": recipient.city,
        "Recipient_Phone": national_phone(recipient.phone or recipient.mobile),
        "Recipient_Cell_Phone": national_phone(recipient.mobile),
        "Recipient_Floor": recipient.floor or "",
        "Recipient_Email": recipient.email or "",
        "Recipient_Country": recipient.country,
        "Billing_Code": config.billing_code,
        "Charge_Type": config.charge_type,
        "Item_Quantity": len(request.parcels),
        "Weight": _weight(request),
        **_dimensions(request),
        "Cod_Ammount": cod.amount.amount if cod else 0,
        "Cod_Payment_Way": 1 if cod and cod.method is CodMethod.CHEQUE else 0,
        "Insurance_Ammount": options.insurance.amount if options.insurance else 0,
        "Acs_Delivery_Products": ",".join(_products(request)),
        "Reference_Key1": request.reference,
        "Reference_Key2": "",
        "With_Return_Voucher": 1 if options.return_voucher else 0,
        "Content_Type_ID": options.content_type or "",
        "Delivery_Notes": request.notes or "",
    }
    if options.delivery_type in (DeliveryType.LOCKER, DeliveryType.BRANCH):
        params["Acs_Station_Branch_Destination"] = options.pickup_point_id or ""
    return params


def price_params(request: ShipmentRequest, config: ACSConfig, destination: str) -> dict[str, Any]:
    """``ACS_Price_Calculation`` parameters; ``destination`` is the recipient's station."""
    options = request.options
    return {
        "Billing_Code": config.billing_code,
        "Billing_Category": 2,
        "Acs_Station_Origin": config.station_of_origin(),
        "Acs_Station_Destination": destination,
        "Weight": _weight(request),
        "Pickup_Date": (request.ship_date or today_in_athens()).isoformat(),
        "Charge_Type": config.charge_type,
        "Item_Quantity": len(request.parcels),
        "Acs_Delivery_Products": ",".join(_products(request)),
        "Cod_Ammount": options.cod.amount.amount if options.cod else 0,
        "Insurance_Ammount": options.insurance.amount if options.insurance else 0,
        **_dimensions(request),
    }


# -- response parsing ------------------------------------------------------------------


def _first_value(body: Any, what: str) -> dict[str, Any]:
    values = _values(body)
    if not values:
        raise TransientError(f"ACS answered {what} without a value", vendor="acs")
    return values[0]


def _decimal(value: Any, what: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise TransientError(f"ACS sent a {what} that is not a number", vendor="acs") from None


def parse_voucher(body: Any, request: ShipmentRequest, now: datetime) -> Shipment:
    """The :class:`Shipment` from an ``ACS_Create_Voucher`` answer."""
    value = _first_value(body, "the voucher")
    voucher = str(value.get("Voucher_No") or "").strip()
    if not voucher:
        raise TransientError("ACS created no voucher number", vendor="acs")
    pieces = value.get("Voucher_No_Multi") or value.get("Voucher_No_Multipart") or ""
    parts = tuple(p.strip() for p in str(pieces).split(",") if p.strip())
    return Shipment(
        carrier="acs",
        reference=request.reference,
        tracking_number=voucher,
        parcel_numbers=parts,
        created_at=now,
        service=request.service,
        cod=request.options.cod,
        pickup_point_id=request.options.pickup_point_id,
    )


def parse_price(body: Any, request: ShipmentRequest, today: date) -> list[Quote]:
    """The quote from an ``ACS_Price_Calculation`` answer (ACS prices exclude VAT)."""
    value = _first_value(body, "the price")
    excl = _decimal(value.get("Total_Ammount"), "price").quantize(Decimal("0.01"))
    days = 1
    return [
        Quote(
            carrier="acs",
            service=request.service,
            price_excl_vat=Money.of(excl),
            price_incl_vat=Money.of(add_vat(excl, GREEK_VAT)),
            transit_days=days,
            estimated_delivery=business_days_after(today, days),
            source="api",
        )
    ]


def parse_station(body: Any, postcode: str) -> str:
    """The ACS station serving a postcode, from ``ACS_Area_Find_By_Zip_Code``."""
    rows = _table(body)
    station = str(rows[0].get("Station_ID") or "").strip() if rows else ""
    if not station:
        raise ValidationRejected(
            f"ACS serves no station for postcode {postcode}",
            errors=(FieldError(("recipient", "postcode"), "not served by ACS"),),
            vendor="acs",
        )
    return station


def parse_label(body: Any, voucher: str, fmt: LabelFormat) -> Label:
    """The PDF label from an ``ACS_Print_Voucher`` answer (base64 in ``ACSObjectOutput``)."""
    out = (body or {}).get("ACSOutputResponce") or {}
    objects = out.get("ACSObjectOutput") or []
    encoded = ""
    for item in objects if isinstance(objects, list) else [objects]:
        if isinstance(item, dict):
            encoded = str(item.get("voucher") or item.get(voucher) or "")
            if encoded:
                break
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        content = b""
    if not content.startswith(b"%PDF"):
        raise TransientError("ACS returned no PDF for the voucher", vendor="acs")
    return Label(tracking_number=voucher, format=fmt, content=content)


def parse_pickup_list(body: Any, vouchers: Sequence[str], now: datetime) -> Manifest:
    """The :class:`Manifest` from an ``ACS_Issue_Pickup_List`` answer."""
    value = _first_value(body, "the pickup list")
    number = str(value.get("PickupList_No") or "").strip()
    if not number:
        raise TransientError("ACS issued no pickup list number", vendor="acs")
    return Manifest(carrier="acs", id=number, tracking_numbers=tuple(vouchers), created_at=now)


def _when(text: Any) -> datetime:
    raw = str(text or "").strip()
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        parsed = datetime.strptime(raw, "%d/%m/%Y %H:%M")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ATHENS)
    return parsed.astimezone(UTC)


def cod_payout_params(day: date) -> dict[str, Any]:
    """The parameters of ``ACS_COD_Beneficiary_Info`` for the payouts of ``day``."""
    return {"User_locals": "GR", "COD_Payment_Date": day.isoformat()}


def _payout_money(value: Any, what: str) -> Money | None:
    if value is None or value == "":
        return None
    try:
        return Money.of(Decimal(str(value)).quantize(Decimal("0.01")))
    except (InvalidOperation, ValueError) as exc:
        raise TransientError(f"ACS sent {what} {value!r}", vendor="acs") from exc


def _payout_date(value: Any) -> date | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        return None


def parse_cod_payouts(body: Any, day: date) -> list[CodPayout]:
    """The :class:`CodPayout` lines of an ``ACS_COD_Beneficiary_Info`` answer.

    ``COD_Amount_Cach`` (ACS's spelling) and ``COD_Amount_CreditCard`` split the amount
    by how the recipient paid; a line without a voucher (``POD``) is skipped.
    """
    payouts = []
    for row in _table(body):
        voucher = str(row.get("POD") or "").strip()
        if not voucher:
            continue
        amount = _payout_money(row.get("Parcel_COD_Amount"), "Parcel_COD_Amount")
        cash = _payout_money(row.get("COD_Amount_Cach"), "COD_Amount_Cach")
        card = _payout_money(row.get("COD_Amount_CreditCard"), "COD_Amount_CreditCard")
        if amount is None:
            parts = [m for m in (cash, card) if m is not None]
            if not parts:
                raise TransientError(f"ACS sent no COD amount for {voucher}", vendor="acs")
            amount = sum(parts[1:], parts[0])
        references = tuple(
            str(row.get(key) or "").strip()
            for key in ("Customer_RefNo_1", "Customer_RefNo_2")
            if str(row.get(key) or "").strip()
        )
        payouts.append(
            CodPayout(
                carrier="acs",
                tracking_number=voucher,
                paid_on=day,
                amount=amount,
                cash=cash,
                card=card,
                references=references,
                picked_up_on=_payout_date(row.get("Parcel_Pickup_Date")),
                delivered_on=_payout_date(row.get("Parcel_Delivery_Date")),
            )
        )
    return payouts


def parse_tracking(summary: Any, details: Any, voucher: str) -> Tracking:
    """Merge ``ACS_TrackingDetails`` checkpoints with ``ACS_Trackingsummary``'s status.

    ACS's ``delivery_flag`` is also 1 on a returned parcel, so the summary's
    ``returned_flag`` and ``shipment_status`` decide, not the delivery flag.
    """
    rows = _table(summary)
    if not rows and not _table(details):
        raise NotFound(f"ACS knows no voucher {voucher}", vendor="acs")
    events = [
        ACS_CHECKPOINTS.event(
            code=None,
            at=_when(row.get("checkpoint_date_time")),
            description=str(row.get("checkpoint_action") or ""),
            location=str(row.get("checkpoint_location") or ""),
        )
        for row in _table(details)
    ]
    events.sort(key=lambda e: e.at)
    status = events[-1].status if events else TrackingStatus.PENDING
    if rows:
        head = rows[0]
        code = str(head.get("shipment_status") or "").strip()
        reason_code = str(head.get("non_delivery_reason_code") or "").strip() or None
        summary_status = _SUMMARY_STATUS.get(code)
        if str(head.get("returned_flag") or "0") == "1":
            summary_status = TrackingStatus.RETURNED
        if summary_status is not None and summary_status != status:
            at = events[-1].at if events else datetime.now(UTC)
            events.append(
                TrackingEvent(
                    status=summary_status,
                    at=at,
                    raw_code=f"shipment_status={code}" if code else "returned_flag=1",
                    description=reason_code,
                    reason=ACS_CHECKPOINTS.reason_of(reason_code),
                )
            )
            status = summary_status
    return Tracking(carrier="acs", tracking_number=voucher, status=status, events=tuple(events))


def parse_stations(body: Any) -> list[PickupPoint]:
    """Branches and Smartpoint lockers from ``ACS_Stations``."""
    points = []
    for row in _table(body):
        kind = str(row.get("station_kind") or row.get("Kind") or "")
        lat, lon = row.get("lat"), row.get("lon")
        points.append(
            PickupPoint(
                carrier="acs",
                id=str(row.get("station_id") or row.get("Station_ID") or ""),
                name=str(row.get("station_description") or row.get("Station_Description") or ""),
                kind=DeliveryType.LOCKER if kind == _LOCKER_KIND else DeliveryType.BRANCH,
                latitude=_decimal(lat, "latitude") if lat not in (None, "") else None,
                longitude=_decimal(lon, "longitude") if lon not in (None, "") else None,
            )
        )
    return points


# -- the adapter -------------------------------------------------------------------------


class ACS(CarrierBase):
    """ACS Courier through the ``ShippingCarrier`` Protocol, sync and async."""

    name = "acs"
    capabilities = frozenset(
        {
            Capability.RATES,
            Capability.LABELS,
            Capability.TRACKING,
            Capability.CANCELLATION,
            Capability.PICKUP_LIST,
            Capability.LOCKERS,
            Capability.COD,
            Capability.SATURDAY,
            Capability.INSURANCE,
            Capability.ADDRESS_VALIDATION,
        }
    )
    rules = _RULES
    label_formats = frozenset({LabelFormat.PDF_A4, LabelFormat.PDF_THERMAL})

    def __init__(
        self,
        config: ACSConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.config = config
        for secret in (config.api_key, config.company_password, config.user_password):
            register_secret(secret.get_secret_value())
        self.endpoint = Endpoint(
            vendor="acs",
            base_url=config.base_url,
            tenant=tenant,
            auth=auth,
            limits=Limits(
                windows=(Window(config.calls_per_second, 1.0, "acs-per-second"),),
            ).scaled(time_scale),
            classify=classify,
            headers={"AcsApiKey": config.api_key.get_secret_value()},
        )
        self._lock = threading.Lock()
        self._stations: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"ACS(tenant={self.endpoint.tenant!r}, company_id={self.config.company_id!r})"

    def _call(
        self,
        alias: str,
        params: Mapping[str, Any],
        *,
        key: str | None = None,
        safe: bool = False,
        language: bool = True,
    ) -> httpx.Request:
        return self.endpoint.request(
            "POST",
            _PATH,
            operation=f"acs.{alias}",
            json=build_call(alias, params, self.config, language=language),
            idempotency_key=key,
            idempotent=True if safe else None,
        )

    def _extra_checks(self, request: ShipmentRequest) -> list[FieldError]:
        errors = []
        options = request.options
        if options.saturday and options.delivery_type is DeliveryType.BRANCH:
            errors.append(
                FieldError(
                    ("options", "saturday"),
                    "ACS cannot combine Saturday delivery (SAT) with collection at a station (REC)",
                    code="incompatible",
                )
            )
        if (
            options.cod is not None
            and options.delivery_type in (DeliveryType.LOCKER, DeliveryType.BRANCH)
            and not request.recipient.email
        ):
            errors.append(
                FieldError(
                    ("recipient", "email"),
                    "ACS needs the recipient's email for COD to a pickup point",
                    code="missing",
                )
            )
        return errors

    def check(self) -> Operation[HealthStatus]:
        """One cheap call: the station of the sender's own postcode."""
        response = yield self._call(
            "ACS_Area_Find_By_Zip_Code",
            {"Zip_Code": "10431", "Show_Only_Inaccessible_Areas": 0},
            safe=True,
        )
        station = parse_station(response.json(), "10431")
        return HealthStatus(name="acs", ok=True, detail=f"station {station} reachable")

    def quote(self, request: ShipmentRequest) -> Operation[list[Quote]]:
        """Price from ``ACS_Price_Calculation`` (Greece) or the Cyprus rate table.

        The recipient's ACS station comes from ``ACS_Area_Find_By_Zip_Code`` the first
        time a postcode is seen, then from memory: a repeat quote is one call.
        """
        self.validate(request)
        if request.recipient.country == "CY":
            # ACS_Price_Calculation does not price Cyprus: use the contract's table.
            return (yield from self._table_quotes(self.config.cyprus_rate_table, request))
        postcode = request.recipient.postcode
        with self._lock:
            station = self._stations.get(postcode)
        if station is None:
            response = yield self._call(
                "ACS_Area_Find_By_Zip_Code",
                {"Zip_Code": postcode, "Show_Only_Inaccessible_Areas": 0},
                safe=True,
            )
            station = parse_station(response.json(), postcode)
            with self._lock:
                # Stations change rarely; keep a bounded memory of the postcodes seen.
                if len(self._stations) >= 4096:
                    self._stations.clear()
                self._stations[postcode] = station
        response = yield self._call(
            "ACS_Price_Calculation", price_params(request, self.config, station), safe=True
        )
        return parse_price(response.json(), request, request.ship_date or today_in_athens())

    def create_shipment(self, request: ShipmentRequest) -> Operation[Shipment]:
        """``ACS_Create_Voucher``; not retried blindly (ACS has no idempotency key)."""
        self.validate(request)
        response = yield self._call("ACS_Create_Voucher", voucher_params(request, self.config))
        return parse_voucher(response.json(), request, datetime.now(UTC))

    def label(self, shipment: Shipment, fmt: LabelFormat) -> Operation[Label]:
        """``ACS_Print_Voucher``: thermal (``Print_Type`` 1) or A4 (2) PDF."""
        self._check_label_format(fmt)
        response = yield self._call(
            "ACS_Print_Voucher",
            {
                "Voucher_No": shipment.tracking_number,
                "Print_Type": 1 if fmt is LabelFormat.PDF_THERMAL else 2,
                "Start_Position": 1,
            },
            safe=True,
        )
        return parse_label(response.json(), shipment.tracking_number, fmt)

    def cancel(self, shipment: Shipment) -> Operation[Shipment]:
        """``ACS_Delete_Voucher``, possible only before the pickup list."""
        require_cancellable(shipment, "acs")
        yield self._call("ACS_Delete_Voucher", {"Voucher_No": shipment.tracking_number}, safe=True)
        return shipment.model_copy(update={"cancellable": False})

    def track(self, tracking_number: str) -> Operation[Tracking]:
        """``ACS_TrackingDetails`` and ``ACS_Trackingsummary``, merged."""
        params = {"Voucher_No": tracking_number}
        details = yield self._call("ACS_TrackingDetails", params, safe=True)
        summary = yield self._call("ACS_Trackingsummary", params, safe=True)
        return parse_tracking(summary.json(), details.json(), tracking_number)

    def finalise(self, shipments: Sequence[Shipment]) -> Operation[Manifest]:
        """``ACS_Issue_Pickup_List`` for the day: after it, vouchers cannot be deleted.

        ACS refuses the list while any voucher is unprinted, so the given shipments are
        printed first (ten per call; printing again is harmless). Vouchers created
        elsewhere and never printed still make ACS refuse, with a typed error.
        """
        vouchers = [s.tracking_number for s in shipments]
        for start in range(0, len(vouchers), 10):
            yield self._call(
                "ACS_Print_Voucher",
                {
                    "Voucher_No": ",".join(vouchers[start : start + 10]),
                    "Print_Type": 2,
                    "Start_Position": 1,
                },
                safe=True,
            )
        day = today_in_athens()
        # Not retried blindly: a second list for the same day is refused by ACS.
        response = yield self._call(
            "ACS_Issue_Pickup_List", {"Pickup_Date": day.isoformat(), "MyData": 1}
        )
        return parse_pickup_list(response.json(), vouchers, datetime.now(UTC))

    def pickup_points(self, near: Address | None = None) -> Operation[list[PickupPoint]]:
        """ACS stations and Smartpoint lockers (``ACS_Stations``), near a postcode if given."""
        params: dict[str, Any] = {}
        if near is not None:
            params["Zip_Code"] = near.postcode
        response = yield self._call("ACS_Stations", params, safe=True)
        return parse_stations(response.json())

    def cod_payouts(self, day: date) -> Operation[list[CodPayout]]:
        """``ACS_COD_Beneficiary_Info``: the COD amounts ACS paid out on ``day``.

        That day only (ACS does not answer "since"), one line per voucher, with how the
        recipient paid (cash or card) and the references given at creation, so that a
        shop can close the orders ACS has paid for.
        """
        response = yield self._call(
            "ACS_COD_Beneficiary_Info", cod_payout_params(day), safe=True, language=False
        )
        # Amounts are JSON numbers: read them as decimals, never through a float.
        return parse_cod_payouts(json.loads(response.content, parse_float=Decimal), day)

    def validate_address(self, address: Address) -> Operation[bool]:
        """``ACS_Address_Validation`` (Greek script): whether ACS can resolve the address."""
        street, number = street_and_number(address)
        response = yield self._call(
            "ACS_Address_Validation",
            {"Address": f"{street} {number}, {address.postcode} {address.city}".strip()},
            safe=True,
        )
        rows = _table(response.json())
        return bool(rows) and str(rows[0].get("Resolved_As") or "") != ""
