"""Pre-flight validation: every problem named by its field path, before anything is sent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dixis_integrations.errors import InvalidInput
from dixis_integrations.models.money import Money
from dixis_integrations.models.shipping import (
    CashOnDelivery,
    CodMethod,
    DeliveryType,
    Service,
    ShippingOptions,
)
from dixis_integrations.shipping.validation import (
    CarrierRules,
    check_request,
    latin,
    parse_shipment_request,
    raise_if_invalid,
)

from .conftest import recipient, sender, shipment_request

RULES = CarrierRules(
    vendor="test",
    max_weight_kg=Decimal(20),
    max_parcels=2,
    max_side_cm=Decimal(60),
    cod_methods=frozenset({CodMethod.CASH}),
    insurance_max=Decimal(500),
    delivery_types=frozenset({DeliveryType.DOOR, DeliveryType.LOCKER}),
)


def paths(request: object) -> list[str]:
    return [e.path for e in check_request(request, RULES)]  # type: ignore[arg-type]


def test_a_plain_domestic_parcel_passes() -> None:
    assert check_request(shipment_request(), RULES) == []


def test_weight_above_the_carrier_maximum_names_the_parcel() -> None:
    assert paths(shipment_request(weight="20.5")) == ["parcels[0].weight_kg"]


def test_too_many_parcels_and_a_long_side_are_both_reported() -> None:
    from dixis_integrations.models.shipping import Parcel

    request = shipment_request(parcels=3).model_copy(
        update={
            "parcels": (*shipment_request(parcels=2).parcels, Parcel(weight_kg="1", length_cm="80"))
        }
    )
    assert paths(request) == ["parcels", "parcels[2].length_cm"]


def test_cod_on_a_carrier_without_cod_is_refused() -> None:
    rules = CarrierRules(vendor="nocod", max_weight_kg=Decimal(20))
    request = shipment_request(options=ShippingOptions(cod=CashOnDelivery(amount=Money.of("10"))))
    errors = check_request(request, rules)
    assert [(e.path, e.code) for e in errors] == [("options.cod", "no_cod")]


def test_cod_by_card_where_only_cash_is_taken_names_the_method() -> None:
    request = shipment_request(
        options=ShippingOptions(cod=CashOnDelivery(amount=Money.of("10"), method=CodMethod.CARD))
    )
    assert paths(request) == ["options.cod.method"]


def test_zero_cod_and_excess_insurance_are_refused() -> None:
    request = shipment_request(
        options=ShippingOptions(cod=CashOnDelivery(amount=Money.of("0")), insurance=Money.of("501"))
    )
    assert paths(request) == ["options.cod.amount", "options.insurance"]


def test_locker_delivery_needs_a_point_and_a_greek_mobile() -> None:
    request = shipment_request(
        options=ShippingOptions(delivery_type=DeliveryType.LOCKER),
        to=recipient(mobile=None, phone="2101234567"),
    )
    assert paths(request) == ["options.pickup_point_id", "recipient.mobile"]


def test_a_carrier_that_finds_the_nearest_locker_needs_no_point_id() -> None:
    import dataclasses

    nearest = dataclasses.replace(
        RULES,
        nearest_locker=True,
        delivery_types=frozenset({DeliveryType.LOCKER, DeliveryType.PICKUP_POINT}),
    )
    locker = ShippingOptions(delivery_type=DeliveryType.LOCKER)
    assert check_request(shipment_request(options=locker), nearest) == []
    pudo = ShippingOptions(delivery_type=DeliveryType.PICKUP_POINT)
    assert [e.path for e in check_request(shipment_request(options=pudo), nearest)] == [
        "options.pickup_point_id"
    ]


def test_unsupported_options_services_and_countries_are_named() -> None:
    request = shipment_request(
        service=Service.SAME_DAY,
        options=ShippingOptions(
            saturday=True, refrigerated=True, delivery_type=DeliveryType.BRANCH, content_type="x"
        ),
        to=recipient(country="CY", postcode="1010", mobile="+35799123456"),
    )
    assert paths(request) == [
        "recipient.country",
        "service",
        "options.saturday",
        "options.refrigerated",
        "options.delivery_type",
    ]


def test_cyprus_needs_a_content_type() -> None:
    rules = CarrierRules(vendor="cy", max_weight_kg=Decimal(20), countries=frozenset({"GR", "CY"}))
    request = shipment_request(to=recipient(country="CY", postcode="1010", mobile="+35799123456"))
    assert [e.path for e in check_request(request, rules)] == ["options.content_type"]


def test_missing_postcode_built_without_validation_is_still_caught() -> None:
    bad = recipient().model_construct(**{**recipient().model_dump(), "postcode": ""})
    request = shipment_request().model_copy(update={"recipient": bad})
    assert paths(request) == ["recipient.postcode"]


def test_raise_if_invalid_lists_every_error_in_one_typed_exception() -> None:
    errors = check_request(shipment_request(weight="25", parcels=3), RULES)
    with pytest.raises(InvalidInput) as info:
        raise_if_invalid("test", errors)
    assert info.value.vendor == "test"
    assert len(info.value.errors) == 4
    raise_if_invalid("test", [])  # nothing to raise


def test_parse_shipment_request_turns_pydantic_errors_into_field_paths() -> None:
    data = {
        "reference": "R1",
        "sender": sender().model_dump(),
        "recipient": {**recipient().model_dump(), "postcode": ""},
        "parcels": [{"weight_kg": "0"}],
    }
    with pytest.raises(InvalidInput) as info:
        parse_shipment_request(data)
    assert [e.path for e in info.value.errors] == ["recipient.postcode", "parcels[0].weight_kg"]


def test_latin_transliterates_greek_per_elot_743() -> None:
    assert latin("Θεσσαλονίκη") == "Thessaloniki"
    assert latin(None) == ""


def test_options_a_carrier_would_ignore_are_refused_not_dropped() -> None:
    request = shipment_request(options=ShippingOptions(return_voucher=True, time_window="3h"))
    assert paths(request) == ["options.return_voucher", "options.time_window"]
    able = CarrierRules(
        vendor="able", max_weight_kg=Decimal(20), return_voucher=True, time_window=True
    )
    assert check_request(request, able) == []
