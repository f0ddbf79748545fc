"""Pre-flight checks: what each carrier can take, checked before anything is sent.

A carrier declares its :class:`CarrierRules`; :func:`check_request` lists every problem
as a :class:`~dixis_integrations.errors.FieldError` with its path in the request, and
:func:`raise_if_invalid` turns them into one :class:`~dixis_integrations.errors.InvalidInput`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from dixis_integrations.errors import FieldError, InvalidInput
from dixis_integrations.models.address import Address, is_greek_mobile
from dixis_integrations.models.shipping import (
    CodMethod,
    DeliveryType,
    Service,
    ShipmentRequest,
)
from dixis_integrations.models.text import transliterate_elot743

__all__ = [
    "CarrierRules",
    "check_request",
    "latin",
    "parse_shipment_request",
    "raise_if_invalid",
]


@dataclass(frozen=True)
class CarrierRules:
    """What one carrier accepts. Weights in kg, sizes in cm, money in the request currency.

    Attributes:
        vendor: the carrier's adapter name.
        max_weight_kg: the heaviest single parcel.
        max_parcels: most pieces in one shipment.
        max_side_cm: the longest side any parcel may have (``None``: not checked).
        countries: recipient countries served.
        cod_methods: how COD may be collected (empty: the carrier takes no COD).
        cod_countries: recipient countries where COD is offered.
        cod_max: the largest COD amount (``None``: no limit known).
        insurance_max: the largest insured value (``None``: the carrier offers none).
        services: the services offered.
        saturday, refrigerated: whether those options exist.
        delivery_types: door, locker, pickup point, branch.
        mobile_for_lockers: a locker or pickup-point delivery needs a Greek mobile.
        nearest_locker: a locker delivery without ``pickup_point_id`` goes to the
            locker the carrier finds nearest the recipient (otherwise the id is required).
        content_type_for: countries where ``options.content_type`` is required (Cyprus).
        sender_countries: countries a shipment may leave from.
        return_voucher: whether a return voucher can be issued with the shipment.
        time_window: whether ``options.time_window`` means anything to this carrier
            (an option the carrier would ignore is refused, never dropped silently).
    """

    vendor: str
    max_weight_kg: Decimal
    max_parcels: int = 99
    max_side_cm: Decimal | None = None
    countries: frozenset[str] = frozenset({"GR"})
    cod_methods: frozenset[CodMethod] = frozenset()
    cod_countries: frozenset[str] = frozenset({"GR"})
    cod_max: Decimal | None = None
    insurance_max: Decimal | None = None
    services: frozenset[Service] = frozenset({Service.STANDARD})
    saturday: bool = False
    refrigerated: bool = False
    delivery_types: frozenset[DeliveryType] = frozenset({DeliveryType.DOOR})
    mobile_for_lockers: bool = True
    nearest_locker: bool = False
    content_type_for: frozenset[str] = frozenset({"CY"})
    sender_countries: frozenset[str] = field(default_factory=lambda: frozenset({"GR"}))
    return_voucher: bool = False
    time_window: bool = False


def _address_errors(address: Address, where: str) -> list[FieldError]:
    errors: list[FieldError] = []
    # Address validates these on construction; model_construct() skips that, so look again.
    for name in ("name", "street", "city", "postcode"):
        value = getattr(address, name, None)
        if not isinstance(value, str) or not value.strip():
            errors.append(FieldError((where, name), "is required", code="missing"))
    return errors


def check_request(request: ShipmentRequest, rules: CarrierRules) -> list[FieldError]:
    """Every reason ``rules``' carrier cannot take ``request`` (empty when it can)."""
    errors = _address_errors(request.sender, "sender") + _address_errors(
        request.recipient, "recipient"
    )
    recipient = request.recipient
    options = request.options
    country = recipient.country
    if country not in rules.countries:
        errors.append(
            FieldError(
                ("recipient", "country"),
                f"{rules.vendor} delivers to {', '.join(sorted(rules.countries))} only",
                code="unsupported_country",
            )
        )
    if request.sender.country not in rules.sender_countries:
        errors.append(
            FieldError(("sender", "country"), "not a sending country", code="unsupported_country")
        )
    if len(request.parcels) > rules.max_parcels:
        errors.append(
            FieldError(
                ("parcels",),
                f"at most {rules.max_parcels} parcels per shipment",
                code="too_many_parcels",
            )
        )
    for i, parcel in enumerate(request.parcels):
        if parcel.weight_kg <= 0:
            errors.append(FieldError(("parcels", i, "weight_kg"), "must be above 0", code="weight"))
        elif parcel.weight_kg > rules.max_weight_kg:
            errors.append(
                FieldError(
                    ("parcels", i, "weight_kg"),
                    f"{parcel.weight_kg} kg is above {rules.vendor}'s maximum of "
                    f"{rules.max_weight_kg} kg",
                    code="weight",
                )
            )
        if rules.max_side_cm is not None:
            for side in ("length_cm", "width_cm", "height_cm"):
                size = getattr(parcel, side)
                if size is not None and size > rules.max_side_cm:
                    errors.append(
                        FieldError(
                            ("parcels", i, side),
                            f"{size} cm is above the {rules.max_side_cm} cm limit",
                            code="size",
                        )
                    )
    if request.service not in rules.services:
        errors.append(
            FieldError(
                ("service",),
                f"{rules.vendor} does not offer {request.service.value}",
                code="unsupported_service",
            )
        )
    cod = options.cod
    if cod is not None:
        if not rules.cod_methods:
            errors.append(
                FieldError(("options", "cod"), f"{rules.vendor} takes no COD", code="no_cod")
            )
        elif cod.method not in rules.cod_methods:
            errors.append(
                FieldError(
                    ("options", "cod", "method"),
                    f"{rules.vendor} collects COD by "
                    f"{', '.join(sorted(m.value for m in rules.cod_methods))} only",
                    code="cod_method",
                )
            )
        elif country not in rules.cod_countries:
            errors.append(FieldError(("options", "cod"), f"no COD to {country}", code="no_cod"))
        if not cod.amount.is_positive:
            errors.append(
                FieldError(("options", "cod", "amount"), "must be above 0", code="amount")
            )
        elif rules.cod_max is not None and cod.amount.amount > rules.cod_max:
            errors.append(
                FieldError(
                    ("options", "cod", "amount"),
                    f"above the {rules.cod_max} COD limit",
                    code="amount",
                )
            )
    if options.insurance is not None:
        if rules.insurance_max is None:
            errors.append(
                FieldError(
                    ("options", "insurance"), f"{rules.vendor} offers no insurance", code="option"
                )
            )
        elif not options.insurance.is_positive or options.insurance.amount > rules.insurance_max:
            errors.append(
                FieldError(
                    ("options", "insurance"),
                    f"must be above 0 and at most {rules.insurance_max}",
                    code="amount",
                )
            )
    if options.saturday and not rules.saturday:
        errors.append(
            FieldError(
                ("options", "saturday"), f"{rules.vendor} has no Saturday delivery", "option"
            )
        )
    if options.refrigerated and not rules.refrigerated:
        errors.append(
            FieldError(
                ("options", "refrigerated"),
                f"{rules.vendor} has no refrigerated service",
                code="option",
            )
        )
    if options.delivery_type not in rules.delivery_types:
        errors.append(
            FieldError(
                ("options", "delivery_type"),
                f"{rules.vendor} does not deliver to a {options.delivery_type.value}",
                code="option",
            )
        )
    elif options.delivery_type in (DeliveryType.LOCKER, DeliveryType.PICKUP_POINT):
        nearest = rules.nearest_locker and options.delivery_type is DeliveryType.LOCKER
        if not options.pickup_point_id and not nearest:
            errors.append(
                FieldError(
                    ("options", "pickup_point_id"),
                    "is required for a locker or pickup-point delivery",
                    code="missing",
                )
            )
        if rules.mobile_for_lockers and not (
            recipient.mobile and (country != "GR" or is_greek_mobile(recipient.mobile))
        ):
            errors.append(
                FieldError(
                    ("recipient", "mobile"),
                    "a locker or pickup-point delivery needs the recipient's mobile",
                    code="missing",
                )
            )
    if options.return_voucher and not rules.return_voucher:
        errors.append(
            FieldError(
                ("options", "return_voucher"),
                f"{rules.vendor} issues no return voucher with a shipment",
                code="option",
            )
        )
    if options.time_window and not rules.time_window:
        errors.append(
            FieldError(
                ("options", "time_window"),
                f"{rules.vendor} takes no delivery time window",
                code="option",
            )
        )
    if country in rules.content_type_for and not options.content_type:
        errors.append(
            FieldError(
                ("options", "content_type"),
                f"is required for shipments to {country}",
                code="missing",
            )
        )
    return errors


def raise_if_invalid(vendor: str, errors: Sequence[FieldError]) -> None:
    """Raise one :class:`InvalidInput` listing ``errors``, if there are any."""
    if errors:
        raise InvalidInput(f"{vendor} cannot take this shipment", errors=errors, vendor=vendor)


def parse_shipment_request(data: Mapping[str, Any]) -> ShipmentRequest:
    """Build a :class:`ShipmentRequest` from plain data, with our typed error on bad input.

    Raises:
        InvalidInput: one :class:`FieldError` per problem, located by field path
            (``recipient.postcode``, ``parcels[0].weight_kg``).
    """
    try:
        return ShipmentRequest.model_validate(data)
    except ValidationError as exc:
        found = [
            FieldError(tuple(err["loc"]), err["msg"], code=str(err["type"]))
            for err in exc.errors(include_url=False)
        ]
        # A tuple whose item failed is also reported "too short": keep the inner cause.
        errors = [
            e
            for e in found
            if not any(o.loc[: len(e.loc)] == e.loc and len(o.loc) > len(e.loc) for o in found)
        ]
        raise InvalidInput("invalid shipment request", errors=errors) from None


def latin(text: str | None) -> str:
    """``text`` in Latin letters (ELOT 743), for carriers that want no Greek script."""
    return transliterate_elot743(text) if text else ""
