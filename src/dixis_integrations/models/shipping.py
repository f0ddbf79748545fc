"""Shipping domain models: parcels, options, quotes, shipments, labels and tracking.

Carrier wire formats never appear here; every carrier maps to and from these types.
Weights are kilograms and sizes centimetres, as Decimals.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dixis_integrations.models._types import WireStrEnum
from dixis_integrations.models.address import Address
from dixis_integrations.models.money import Money

__all__ = [
    "CashOnDelivery",
    "CodMethod",
    "CodPayout",
    "CompartmentSize",
    "DeliveryType",
    "Label",
    "LabelFormat",
    "Manifest",
    "Parcel",
    "PickupPoint",
    "Quote",
    "Service",
    "Shipment",
    "ShipmentRequest",
    "ShippingOptions",
    "Tracking",
    "TrackingEvent",
    "TrackingStatus",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class TrackingStatus(WireStrEnum):
    """The normalised status set every carrier's codes map onto."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_FAILED = "delivery_failed"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERED = "delivered"
    RETURNING = "returning"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    EXCEPTION = "exception"


class Service(WireStrEnum):
    """The delivery service asked for."""

    STANDARD = "standard"
    NEXT_DAY = "next_day"
    SAME_DAY = "same_day"
    TIME_DEFINITE = "time_definite"
    ECONOMY = "economy"


class DeliveryType(WireStrEnum):
    """Where the parcel is handed over."""

    DOOR = "door"
    LOCKER = "locker"
    PICKUP_POINT = "pickup_point"
    BRANCH = "branch"


class CodMethod(WireStrEnum):
    """How the recipient pays on delivery."""

    CASH = "cash"
    CARD = "card"
    CHEQUE = "cheque"


class CompartmentSize(WireStrEnum):
    """Locker compartment sizes (BOX NOW sizes 1-3 map to these)."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class LabelFormat(WireStrEnum):
    """Label outputs carriers offer."""

    PDF_A4 = "pdf_a4"
    PDF_THERMAL = "pdf_thermal"
    ZPL = "zpl"


class CashOnDelivery(BaseModel):
    """An amount to collect on delivery, and how."""

    model_config = _FROZEN
    amount: Money
    method: CodMethod = CodMethod.CASH


class Parcel(BaseModel):
    """One physical piece."""

    model_config = _FROZEN
    weight_kg: Decimal = Field(gt=0)
    length_cm: Decimal | None = Field(default=None, gt=0)
    width_cm: Decimal | None = Field(default=None, gt=0)
    height_cm: Decimal | None = Field(default=None, gt=0)
    description: str | None = None


class ShippingOptions(BaseModel):
    """Everything beyond "take this box there"."""

    model_config = _FROZEN
    cod: CashOnDelivery | None = None
    insurance: Money | None = None
    saturday: bool = False
    refrigerated: bool = False
    delivery_type: DeliveryType = DeliveryType.DOOR
    pickup_point_id: str | None = None
    compartment_size: CompartmentSize | None = None
    return_voucher: bool = False
    time_window: str | None = None
    content_type: str | None = None


class ShipmentRequest(BaseModel):
    """A parcel (or several) to send, from a sender to a recipient."""

    model_config = _FROZEN
    reference: str = Field(min_length=1, max_length=64)
    sender: Address
    recipient: Address
    parcels: tuple[Parcel, ...] = Field(min_length=1)
    service: Service = Service.STANDARD
    options: ShippingOptions = ShippingOptions()
    declared_value: Money | None = None
    notes: str | None = None
    ship_date: date | None = None

    @property
    def total_weight_kg(self) -> Decimal:
        """The weight of all parcels together."""
        return sum((p.weight_kg for p in self.parcels), Decimal(0))


class Quote(BaseModel):
    """One carrier's price for one service, comparable across carriers."""

    model_config = _FROZEN
    carrier: str
    service: Service
    price_excl_vat: Money
    price_incl_vat: Money
    estimated_delivery: date | None = None
    transit_days: int | None = None
    source: str = "api"


class Shipment(BaseModel):
    """A created shipment: the carrier's voucher (tracking number) and its state."""

    model_config = _FROZEN
    carrier: str
    reference: str
    tracking_number: str
    parcel_numbers: tuple[str, ...] = ()
    created_at: AwareDatetime
    service: Service = Service.STANDARD
    finalised: bool = False
    cancellable: bool = True
    cod: CashOnDelivery | None = None
    pickup_point_id: str | None = None
    carrier_data: dict[str, str] = Field(default_factory=dict)

    def handed_over(self) -> Shipment:
        """This shipment once finalised: on the carrier's list, no longer cancellable."""
        return self.model_copy(update={"finalised": True, "cancellable": False})


class Label(BaseModel):
    """A printable label."""

    model_config = _FROZEN
    tracking_number: str
    format: LabelFormat
    content: bytes

    @property
    def media_type(self) -> str:
        """``application/pdf`` or ``application/zpl``."""
        return "application/zpl" if self.format is LabelFormat.ZPL else "application/pdf"


class TrackingEvent(BaseModel):
    """One checkpoint of a parcel's journey; ``raw_code`` keeps the carrier's own code."""

    model_config = _FROZEN
    status: TrackingStatus
    at: AwareDatetime
    raw_code: str | None = None
    description: str | None = None
    location: str | None = None
    reason: str | None = None


class Tracking(BaseModel):
    """The history of one shipment, oldest first, and its current status."""

    model_config = _FROZEN
    carrier: str
    tracking_number: str
    status: TrackingStatus
    events: tuple[TrackingEvent, ...] = ()


class PickupPoint(BaseModel):
    """A locker, shop or branch where a parcel can be collected or dropped."""

    model_config = _FROZEN
    carrier: str
    id: str
    name: str
    kind: DeliveryType
    address: Address | None = None
    latitude: Decimal | None = None
    longitude: Decimal | None = None


class Manifest(BaseModel):
    """A finalisation: the pickup list / closed jobs / manifest handed to the driver."""

    model_config = _FROZEN
    carrier: str
    id: str
    tracking_numbers: tuple[str, ...]
    created_at: datetime
    document: bytes | None = None


class CodPayout(BaseModel):
    """Cash on delivery a carrier paid out to the shop, one voucher per line.

    ``amount`` is what was collected for the voucher; ``cash`` and ``card`` split it by
    how the recipient paid, when the carrier says so. ``references`` are the shop's own
    keys given at creation (order references), for matching payouts to orders.
    """

    model_config = _FROZEN
    carrier: str
    tracking_number: str
    paid_on: date
    amount: Money
    cash: Money | None = None
    card: Money | None = None
    references: tuple[str, ...] = ()
    picked_up_on: date | None = None
    delivered_on: date | None = None
