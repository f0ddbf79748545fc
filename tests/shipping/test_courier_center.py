"""Courier Center: the exact Context body, documented answers, manifest, sandbox flow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dixis_integrations.errors import (
    AuthError,
    InvalidInput,
    NotFound,
    NotSupported,
    ValidationRejected,
)
from dixis_integrations.http import Endpoint
from dixis_integrations.models.shipping import (
    DeliveryType,
    LabelFormat,
    Service,
    ShippingOptions,
    TrackingStatus,
)
from dixis_integrations.protocols import Capability
from dixis_integrations.sandbox.courier_center import CourierCenterSandbox
from dixis_integrations.shipping.courier_center import (
    CourierCenter,
    CourierCenterConfig,
    basic_service,
    classify,
    parse_details,
    parse_shipment,
    shipment_body,
)

from .conftest import cod, recipient, shipment_request

URL = "http://cc.sandbox/ccservice/api"


def config(**changes: Any) -> CourierCenterConfig:
    return CourierCenterConfig(base_url=URL, **{**CourierCenterSandbox().credentials(), **changes})


def test_shipment_body_is_exactly_the_plugin_shape() -> None:
    request = shipment_request(options=cod("19.90"), weight="1.5")
    assert shipment_body(request, config()) == {
        "Context": {
            "UserAlias": "CourierCenterAPITestUser",
            "CredentialValue": "sandbox-cc-credential",
            "ApiKey": "CourierCenterAPITestKey",
        },
        "ShipmentDate": "2026-11-02",
        "Requestor": {"CarrierBillingAccount": "2100000001"},
        "BillTo": "Requestor",
        "Reference1": "ORD-1001",
        "Shipper": {
            "CompanyName": "Dixis Fresh",
            "ContactName": "Κτήμα Παπαδόπουλου",
            "Address": "Λεωφόρος Συγγρού 120",
            "City": "Αθήνα",
            "Area": "Αθήνα",
            "ZipCode": "11745",
            "Country": "GR",
            "Mobile1": "2101234567",
            "Email": "shipping@dixis.example",
        },
        "Consignee": {
            "CompanyName": "Μαρία Κωνσταντίνου",
            "ContactName": "Μαρία Κωνσταντίνου",
            "Address": "Ερμού 25",
            "City": "Αθήνα",
            "Area": "Αθήνα",
            "ZipCode": "10563",
            "Country": "GR",
            "Mobile1": "6912345678",
            "Email": "maria@example.gr",
        },
        "BasicService": "211",
        "NoOfItems": 1,
        "Items": [{"GoodsType": "NoDocs", "Weight": {"Unit": "kg", "Value": Decimal("1.5")}}],
        "CODs": [{"Type": "Cash", "Amount": {"Currency": "EUR", "Value": Decimal("19.90")}}],
    }


def test_same_day_within_three_or_five_hours() -> None:
    three = shipment_request(service=Service.SAME_DAY, options=ShippingOptions(time_window="3h"))
    assert basic_service(three) == "031"
    assert basic_service(shipment_request(service=Service.SAME_DAY)) == "051"


def test_errors_inside_200_are_typed() -> None:
    endpoint = Endpoint(vendor="courier_center", base_url=URL)

    def answer(body: Any) -> httpx.Response:
        return httpx.Response(200, json=body, request=httpx.Request("POST", URL))

    failure = {"Result": "Failure", "Errors": [{"Code": "VAL", "Message": "ZipCode invalid"}]}
    rejected = classify(answer(failure), endpoint)
    assert isinstance(rejected, ValidationRejected)
    assert rejected.vendor_code == "VAL"
    auth = {"Result": "Failure", "Errors": [{"Message": "Invalid credentials"}]}
    assert isinstance(classify(answer(auth), endpoint), AuthError)
    assert classify(answer({"Result": "Success"}), endpoint) is None


def test_parse_shipment_and_details_with_final_codes() -> None:
    shipment = parse_shipment(
        {"Result": "Success", "ShipmentNumber": "5500000001", "ReturnShipmentNumber": "5500000002"},
        shipment_request(),
        datetime(2026, 11, 2, tzinfo=UTC),
    )
    assert shipment.carrier_data == {"return_awb": "5500000002"}
    details = {
        "Result": "Success",
        "ShipmentInfo": {
            "ShipmentStatus": "87",
            "ShipmentStatusDesc": "ΠΑΡΑΛΗΦΘΗΚΕ ΑΠΟ CLEVER POINT",
            "History": [
                {"Status": "1", "StatusDesc": "ΚΑΤΑΧΩΡΗΘΗΚΕ", "Date": "2026-11-02T10:00:00"},
                {"Status": "11", "StatusDesc": "ΣΕ ΔΙΑΝΟΜΗ", "Date": "2026-11-03T09:00:00"},
            ],
        },
    }
    tracking = parse_details(details, "5500000001")
    assert tracking.status is TrackingStatus.DELIVERED
    assert [e.raw_code for e in tracking.events] == ["1", "11", "87"]
    with pytest.raises(NotFound):
        parse_details({"Result": "Success"}, "1")


def test_cod_abroad_and_saturday_are_refused_before_sending(make_runner: Any) -> None:
    sandbox = CourierCenterSandbox()
    run = make_runner(sandbox.handle)
    with pytest.raises(InvalidInput) as info:
        run(
            CourierCenter(config()).create_shipment(
                shipment_request(options=ShippingOptions(saturday=True))
            )
        )
    assert [e.path for e in info.value.errors] == ["options.saturday"]
    assert sandbox.requests == []


def test_full_lifecycle_with_manifest(make_runner: Any) -> None:
    sandbox = CourierCenterSandbox()
    run = make_runner(sandbox.handle)
    cc = CourierCenter(config())
    locker = ShippingOptions(
        delivery_type=DeliveryType.LOCKER, pickup_point_id="4", return_voucher=True
    )
    shipment = run(cc.create_shipment(shipment_request(options=locker)))
    sent = json.loads(sandbox.requests[-1].content)
    assert sent["LockerDeliveryInfo"] == {"Prefix": "ATH", "Code": "4"}
    assert "return_awb" in shipment.carrier_data
    label = run(cc.label(shipment, LabelFormat.PDF_THERMAL))
    assert label.content.startswith(b"%PDF-1.4")
    manifest = run(cc.finalise([shipment]))
    assert manifest.document is not None
    assert manifest.document.startswith(b"%PDF")
    with pytest.raises(ValidationRejected, match="manifest"):
        run(cc.cancel(shipment))  # Courier Center refuses, even if we forgot to mark it
    sandbox.advance(19 * 3600)
    assert run(cc.track(shipment.tracking_number)).status is TrackingStatus.DELIVERED
    with pytest.raises(NotSupported):
        run(cc.pickup_points())


def test_lockers_are_not_declared_and_not_listed_without_a_call(make_runner: Any) -> None:
    sandbox = CourierCenterSandbox()
    run = make_runner(sandbox.handle)
    assert Capability.LOCKERS not in CourierCenter.capabilities
    with pytest.raises(NotSupported, match="boxnow"):
        run(CourierCenter(config()).pickup_points())
    assert sandbox.requests == []


def test_void_before_the_manifest(make_runner: Any) -> None:
    run = make_runner(CourierCenterSandbox().handle)
    cc = CourierCenter(config())
    shipment = run(cc.create_shipment(shipment_request()))
    assert not run(cc.cancel(shipment)).cancellable
    assert run(cc.track(shipment.tracking_number)).status is TrackingStatus.CANCELLED


def test_bad_credentials_are_an_auth_error(make_runner: Any) -> None:
    run = make_runner(CourierCenterSandbox().handle)
    with pytest.raises(AuthError):
        run(CourierCenter(config(api_key="wrong")).check())
    assert run(CourierCenter(config()).check()).ok


def test_cyprus_is_refused_by_our_rules() -> None:
    request = shipment_request(to=recipient(country="CY", postcode="1010", mobile="+35799123456"))
    with pytest.raises(InvalidInput):
        CourierCenter(config()).validate(request)


def test_throttling_and_server_errors_keep_their_http_meaning() -> None:
    from dixis_integrations.errors import RateLimited, TransientError

    endpoint = Endpoint(vendor="courier_center", base_url=URL)
    request = httpx.Request("POST", URL)
    throttled = httpx.Response(
        429, json={"error": "rate limited"}, headers={"Retry-After": "1"}, request=request
    )
    assert isinstance(classify(throttled, endpoint), RateLimited)
    down = httpx.Response(503, json={"error": "down"}, request=request)
    assert isinstance(classify(down, endpoint), TransientError)


def test_a_locker_delivery_without_an_id_asks_for_the_nearest_box_now_locker(
    make_runner: Any,
) -> None:
    sandbox = CourierCenterSandbox()
    run = make_runner(sandbox.handle)
    nearest = ShippingOptions(delivery_type=DeliveryType.LOCKER)
    run(CourierCenter(config()).create_shipment(shipment_request(options=nearest)))
    sent = json.loads(sandbox.requests[-1].content)
    assert sent["LockerDeliveryInfo"] == {"Prefix": "BOXNOW"}


def test_a_locker_delivery_still_needs_the_recipients_mobile(make_runner: Any) -> None:
    sandbox = CourierCenterSandbox()
    run = make_runner(sandbox.handle)
    nearest = ShippingOptions(delivery_type=DeliveryType.LOCKER)
    request = shipment_request(options=nearest, to=recipient(mobile=None, phone="2101234567"))
    with pytest.raises(InvalidInput) as info:
        run(CourierCenter(config()).create_shipment(request))
    assert [e.path for e in info.value.errors] == ["recipient.mobile"]
    assert sandbox.requests == []
