"""Speedex: the exact BOL we send, documented answers parsed, session reuse, batches of 10."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dixis_integrations.errors import AuthError, InvalidInput, NotSupported, ValidationRejected
from dixis_integrations.http import Endpoint
from dixis_integrations.models.money import Money
from dixis_integrations.models.shipping import (
    CashOnDelivery,
    CodMethod,
    LabelFormat,
    ShippingOptions,
    TrackingStatus,
)
from dixis_integrations.sandbox.speedex import SpeedexSandbox
from dixis_integrations.shipping._soap import parse_body
from dixis_integrations.shipping.speedex import (
    Speedex,
    SpeedexConfig,
    bol,
    classify,
    parse_bols,
    parse_trace,
)

from .conftest import shipment_request

URL = "http://speedex.sandbox/accesspoint.asmx"
NS = "http://tempuri.org/"


def config(**changes: Any) -> SpeedexConfig:
    return SpeedexConfig(base_url=URL, **{**SpeedexSandbox().credentials(), **changes})


def _answer(operation: str, inner: str) -> httpx.Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope '
        'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<{operation}Response xmlns="{NS}"><{operation}Result>{inner}</{operation}Result>'
        f"</{operation}Response></soap:Body></soap:Envelope>"
    )
    return httpx.Response(200, content=body.encode(), request=httpx.Request("POST", URL))


def test_bol_maps_a_cod_cheque_saturday_shipment_exactly() -> None:
    request = shipment_request(
        weight="0.3",
        options=ShippingOptions(
            cod=CashOnDelivery(amount=Money.of("40.00"), method=CodMethod.CHEQUE),
            insurance=Money.of("200"),
            saturday=True,
        ),
        notes="Ευπαθές",
    )
    assert bol(request, config()) == {
        "_cust_Flag": 0,
        "SND_Customer_Id": "DEMO0001",
        "Snd_agreement_id": "003001",
        "Comments_2853_1": "ORD-1001",
        "Comments_2853_2": "",
        "Comments_2853_3": "",
        "Paratiriseis_2853_1": "Ευπαθές",
        "Paratiriseis_2853_2": "",
        "Paratiriseis_2853_3": "",
        "Items": 1,
        "Voucher_Weight": Decimal("0.5"),
        "PayCode_Flag": 1,
        "Pod_Amount_Cash": Decimal("40.00"),
        "Pod_Amount_Description": "E",
        "RCV_Name": "Μαρία Κωνσταντίνου",
        "RCV_Addr1": "Ερμού 25",
        "RCV_City": "Αθήνα",
        "RCV_Zip_Code": "10563",
        "RCV_Country": "GR",
        "RCV_Tel1": "6912345678",
        "Saturday_Delivery": 1,
        "Security_Value": Decimal("200"),
        "Time_Limit": "",
    }


def test_return_codes_are_typed() -> None:
    endpoint = Endpoint(vendor="speedex", base_url=URL)
    ok = _answer("X", "<returnCode>1</returnCode>")
    assert classify(ok, endpoint) is None
    bad_login = classify(_answer("X", "<returnCode>100</returnCode>"), endpoint)
    assert isinstance(bad_login, AuthError)
    expired = classify(
        _answer("X", "<returnCode>300</returnCode><returnMessage>Invalid session</returnMessage>"),
        endpoint,
    )
    assert isinstance(expired, AuthError)
    assert expired.code == "session_expired"
    refused = classify(
        _answer("X", "<returnCode>2</returnCode><returnMessage>no</returnMessage>"), endpoint
    )
    assert isinstance(refused, ValidationRejected)


def test_parse_bols_and_trace() -> None:
    result = parse_body(
        _answer(
            "CreateBOL",
            "<returnCode>1</returnCode><outListPod><BOL><voucher_code>700000000001</voucher_code>"
            "</BOL></outListPod>",
        ),
        "speedex",
    )
    (shipment,) = parse_bols(result, [shipment_request()], datetime(2026, 11, 2, tzinfo=UTC))
    assert shipment.tracking_number == "700000000001"
    trace = parse_body(
        _answer(
            "GetTraceByVoucher",
            "<returnCode>1</returnCode><checkpoints>"
            "<Checkpoint><StatusCode>1</StatusCode><StatusDesc>ΠΑΡΑΛΗΦΘΗΚΕ</StatusDesc>"
            "<Branch>ΑΘΗΝΑ</Branch><CheckpointDate>2026-11-02T10:00:00</CheckpointDate></Checkpoint>"
            "<Checkpoint><StatusCode>17</StatusCode>"
            "<StatusDesc>ΕΠΙΣΤΡΟΦΗ - ΑΡΝΗΣΗ ΠΑΡΑΛΑΒΗΣ</StatusDesc>"
            "<Branch>ΠΑΤΡΑ</Branch><CheckpointDate>2026-11-03T10:00:00</CheckpointDate></Checkpoint>"
            "</checkpoints>",
        ),
        "speedex",
    )
    tracking = parse_trace(trace, "700000000001")
    assert [e.status for e in tracking.events] == [
        TrackingStatus.ACCEPTED,
        TrackingStatus.RETURNING,
    ]
    assert [e.raw_code for e in tracking.events] == ["1", "17"]


def test_a_batch_of_23_goes_in_three_calls_of_at_most_ten(make_runner: Any) -> None:
    sandbox = SpeedexSandbox()
    run = make_runner(sandbox.handle)
    requests = [shipment_request(reference=f"ORD-{i}") for i in range(23)]
    shipments = run(Speedex(config()).create_shipments(requests))
    assert [s.reference for s in shipments] == [r.reference for r in requests]
    assert len({s.tracking_number for s in shipments}) == 23
    assert sandbox.create_calls == 3
    assert sandbox.sessions_opened == 1


def test_one_bad_request_in_a_batch_sends_nothing(make_runner: Any) -> None:
    sandbox = SpeedexSandbox()
    run = make_runner(sandbox.handle)
    requests = [shipment_request(), shipment_request(weight="60")]
    with pytest.raises(InvalidInput) as info:
        run(Speedex(config()).create_shipments(requests))
    assert [e.path for e in info.value.errors] == ["requests[1].parcels[0].weight_kg"]
    assert sandbox.requests == []


def test_full_lifecycle_and_session_renewal(make_runner: Any) -> None:
    sandbox = SpeedexSandbox()
    run = make_runner(sandbox.handle)
    speedex = Speedex(config())
    shipment = run(speedex.create_shipment(shipment_request()))
    label = run(speedex.label(shipment, LabelFormat.PDF_THERMAL))
    assert label.content.startswith(b"%PDF-1.4")
    sandbox.expire_sessions()
    sandbox.advance(16 * 3600)
    assert run(speedex.track(shipment.tracking_number)).status is TrackingStatus.OUT_FOR_DELIVERY
    assert sandbox.sessions_opened == 2
    with pytest.raises(NotSupported):
        run(speedex.finalise([shipment]))
    with pytest.raises(NotSupported):
        run(speedex.label(shipment, LabelFormat.ZPL))
    run(speedex.close_session())
    assert b"DestroySession" in sandbox.requests[-1].content
    assert len(sandbox.sessions) == 1  # only the expired one is left


def test_cancel_before_pickup_and_refusal_after(make_runner: Any) -> None:
    sandbox = SpeedexSandbox()
    run = make_runner(sandbox.handle)
    speedex = Speedex(config())
    early = run(speedex.create_shipment(shipment_request(reference="A")))
    late = run(speedex.create_shipment(shipment_request(reference="B")))
    run(speedex.cancel(early))
    assert run(speedex.track(early.tracking_number)).status is TrackingStatus.CANCELLED
    sandbox.advance(4 * 3600)
    with pytest.raises(ValidationRejected, match="picked up"):
        run(speedex.cancel(late))


def test_bad_password_is_an_auth_error(make_runner: Any) -> None:
    run = make_runner(SpeedexSandbox().handle)
    with pytest.raises(AuthError):
        run(Speedex(config(password="wrong")).check())


def test_branches_nearest_postcode_first(make_runner: Any) -> None:
    from .conftest import recipient

    run = make_runner(SpeedexSandbox().handle)
    points = run(Speedex(config()).pickup_points(recipient(postcode="54621", city="Θεσσαλονίκη")))
    assert points[0].id == "540"
