"""ELTA: the exact READ parameters, documented answers, no cancellation, sandbox flow."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dixis_integrations.errors import AuthError, InvalidInput, NotFound, NotSupported
from dixis_integrations.http import Endpoint
from dixis_integrations.models.shipping import (
    DeliveryType,
    LabelFormat,
    ShippingOptions,
    TrackingStatus,
)
from dixis_integrations.protocols import Capability
from dixis_integrations.sandbox.elta import ELTASandbox
from dixis_integrations.shipping._soap import parse_body
from dixis_integrations.shipping.elta import (
    ELTA,
    ELTAConfig,
    awb_params,
    classify,
    parse_awb,
    parse_tracking,
    soap_call,
)

from .conftest import cod, recipient, shipment_request

URL = "http://elta.sandbox"


def config(**changes: Any) -> ELTAConfig:
    return ELTAConfig(base_url=URL, **{**ELTASandbox().credentials(), **changes})


def _answer(inner: str) -> httpx.Response:
    body = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f"<READResponse><READResult>{inner}</READResult></READResponse></soap:Body></soap:Envelope>"
    )
    return httpx.Response(200, content=body.encode(), request=httpx.Request("POST", URL))


def test_awb_params_for_a_pudo_cod_saturday_shipment() -> None:
    options = ShippingOptions(
        delivery_type=DeliveryType.PICKUP_POINT,
        pickup_point_id="P1001",
        saturday=True,
        cod=cod("22.00").cod,
    )
    assert awb_params(shipment_request(options=options), config()) == {
        "pel_user_code": "9999999",
        "pel_user_pass": "sandbox-elta-pass",
        "pel_apost_code": "999999999",
        "pel_paral_name": "Μαρία Κωνσταντίνου",
        "pel_paral_address": "Ερμού 25",
        "pel_paral_area": "Αθήνα",
        "pel_paral_tk": "10563",
        "pel_paral_thl_1": "6912345678",
        "pel_service": 7,
        "pel_pudo_code": "P1001",
        "pel_temaxia": 1,
        "pel_baros": Decimal("2.5"),
        "pel_sur_1": "",
        "pel_sur_2": "",
        "pel_sur_3": "1",
        "pel_ant_poso": Decimal("22.00"),
        "pel_asf_poso": Decimal(0),
        "pel_ref_no": "ORD-1001",
    }


def test_latin_only_accounts_get_elot_743_transliteration() -> None:
    params = awb_params(shipment_request(), config(latin_only=True))
    assert params["pel_paral_name"] == "Maria Konstantinou"
    assert params["pel_paral_address"] == "Ermou 25"
    assert params["pel_paral_area"] == "Athina"


def test_each_service_is_its_own_read_operation() -> None:
    request = soap_call(
        Endpoint(vendor="elta", base_url=URL), "urn:x:{service}", "PELTT03", {"wpel_vg": "1"}
    )
    assert request.url.path == "/PELTT03"
    assert request.headers["SOAPAction"] == '"urn:x:PELTT03/READ"'
    body = ET.fromstring(request.content)  # noqa: S314 - our own bytes
    assert body[0][0].tag == "{urn:x:PELTT03}READ"


def test_st_flag_errors_are_typed() -> None:
    endpoint = Endpoint(vendor="elta", base_url=URL)
    assert classify(_answer("<st_flag>0</st_flag>"), endpoint) is None
    auth = classify(
        _answer("<st_flag>1</st_flag><st_title>Λάθος κωδικός χρήστη</st_title>"), endpoint
    )
    assert isinstance(auth, AuthError)
    missing = classify(
        _answer("<st_flag>5</st_flag><st_title>Η αποστολή δεν βρέθηκε</st_title>"), endpoint
    )
    assert isinstance(missing, NotFound)


def test_parse_awb_and_free_text_tracking() -> None:
    result = parse_body(_answer("<st_flag>0</st_flag><vg_code>ZH000000001GR</vg_code>"), "elta")
    shipment = parse_awb(result, shipment_request(), datetime(2026, 11, 2, tzinfo=UTC))
    assert shipment.tracking_number == "ZH000000001GR"
    assert not shipment.cancellable
    track = parse_body(
        _answer(
            "<st_flag>0</st_flag>"
            "<web_status><web_date>02/11/2026</web_date><web_time>10:00</web_time>"
            "<web_station>ΑΘΗΝΑ</web_station>"
            "<web_status_title>Παραλαβή αποστολής</web_status_title></web_status>"
            "<web_status><web_date>03/11/2026</web_date><web_time>09:30</web_time>"
            "<web_station>ΠΑΤΡΑ</web_station>"
            "<web_status_title>Προς επίδοση</web_status_title></web_status>"
            "<pod_date>03/11/2026</pod_date><pod_time>13:05</pod_time>"
            "<pod_name>Μ. ΚΩΝΣΤΑΝΤΙΝΟΥ</pod_name>"
        ),
        "elta",
    )
    tracking = parse_tracking(track, "ZH000000001GR")
    assert [e.status for e in tracking.events] == [
        TrackingStatus.ACCEPTED,
        TrackingStatus.OUT_FOR_DELIVERY,
        TrackingStatus.DELIVERED,
    ]
    assert tracking.events[-1].raw_code == "pod"
    assert tracking.events[-1].at == datetime(2026, 11, 3, 11, 5, tzinfo=UTC)


def test_cancellation_is_not_supported_and_not_declared(make_runner: Any) -> None:
    sandbox = ELTASandbox()
    run = make_runner(sandbox.handle)
    elta = ELTA(config())
    assert Capability.CANCELLATION not in elta.capabilities
    shipment = run(elta.create_shipment(shipment_request()))
    with pytest.raises(NotSupported):
        run(elta.cancel(shipment))


def test_full_lifecycle_against_the_sandbox(make_runner: Any) -> None:
    sandbox = ELTASandbox()
    run = make_runner(sandbox.handle)
    elta = ELTA(config())
    points = run(elta.pickup_points(recipient(postcode="54352", city="Θεσσαλονίκη")))
    assert points[0].id == "P5401"
    options = ShippingOptions(delivery_type=DeliveryType.PICKUP_POINT, pickup_point_id=points[0].id)
    shipment = run(elta.create_shipment(shipment_request(options=options)))
    assert run(elta.label(shipment, LabelFormat.PDF_THERMAL)).content.startswith(b"%PDF-1.4")
    sandbox.advance(17 * 3600)
    assert run(elta.track(shipment.tracking_number)).status is TrackingStatus.OUT_FOR_DELIVERY
    sandbox.advance(4 * 3600)
    assert run(elta.track(shipment.tracking_number)).status is TrackingStatus.DELIVERED


def test_bad_input_and_bad_credentials(make_runner: Any) -> None:
    sandbox = ELTASandbox()
    run = make_runner(sandbox.handle)
    with pytest.raises(InvalidInput):
        run(ELTA(config()).create_shipment(shipment_request(weight="36")))
    assert sandbox.requests == []
    with pytest.raises(AuthError):
        run(ELTA(config(password="x")).check())
