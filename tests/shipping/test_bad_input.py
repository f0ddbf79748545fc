"""Bad input, carrier by carrier: a typed error naming the field, and nothing sent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from dixis_integrations.errors import InvalidInput
from dixis_integrations.http import Driver
from dixis_integrations.models.money import Money
from dixis_integrations.models.shipping import (
    CashOnDelivery,
    CodMethod,
    DeliveryType,
    Parcel,
    ShipmentRequest,
    ShippingOptions,
)

from ._six import six
from .conftest import recipient, shipment_request

NAMES = ["acs", "boxnow", "courier_center", "elta", "geniki", "speedex"]
LOCKER = {"delivery_type": DeliveryType.LOCKER, "pickup_point_id": "4"}


def base(name: str, **options: Any) -> ShipmentRequest:
    if name == "boxnow":
        options = {**LOCKER, **options}
    return shipment_request(options=ShippingOptions(**options))


def without_postcode(request: ShipmentRequest) -> ShipmentRequest:
    # Address() refuses an empty postcode; data that skipped validation must still be caught.
    bad = request.recipient.model_construct(**{**request.recipient.model_dump(), "postcode": ""})
    return request.model_copy(update={"recipient": bad})


def with_weight(request: ShipmentRequest, kg: str) -> ShipmentRequest:
    parcel = Parcel.model_construct(weight_kg=Decimal(kg))
    return request.model_copy(update={"parcels": (parcel,)})


CASES = {
    "no postcode": (without_postcode, "recipient.postcode"),
    "zero weight": (lambda r: with_weight(r, "0"), "parcels[0].weight_kg"),
    "too heavy": (lambda r: with_weight(r, "1000"), "parcels[0].weight_kg"),
    "cyprus without content type": (
        lambda r: r.model_copy(
            update={"recipient": recipient(country="CY", postcode="1010", mobile="+35799123456")}
        ),
        "recipient.country|options.content_type",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_a_typed_error_and_nothing_is_sent(name: str, case: str) -> None:
    wired = six()[name]
    change, paths = CASES[case]
    request = change(base(name))
    driver = Driver(httpx.Client(transport=wired.sandbox.transport()))
    for make in (wired.carrier.create_shipment, wired.carrier.quote):
        with pytest.raises(InvalidInput) as info:
            driver.run(make(request))
        found = {e.path for e in info.value.errors}
        assert found & set(paths.split("|")), found
    assert wired.sandbox.requests == []


@pytest.mark.parametrize("name", NAMES)
def test_cod_the_carrier_cannot_collect_is_refused_before_sending(name: str) -> None:
    wired = six()[name]
    driver = Driver(httpx.Client(transport=wired.sandbox.transport()))
    zero = base(name, cod=CashOnDelivery(amount=Money.of("0")))
    with pytest.raises(InvalidInput) as info:
        driver.run(wired.carrier.create_shipment(zero))
    assert "options.cod.amount" in [e.path for e in info.value.errors]
    if name in ("boxnow", "courier_center", "elta"):  # no COD by cheque at these three
        cheque = base(name, cod=CashOnDelivery(amount=Money.of("20"), method=CodMethod.CHEQUE))
        with pytest.raises(InvalidInput) as info:
            driver.run(wired.carrier.create_shipment(cheque))
        assert [e.path for e in info.value.errors] == ["options.cod.method"]
    assert wired.sandbox.requests == []
