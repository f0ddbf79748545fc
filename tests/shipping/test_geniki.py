"""Geniki: the exact SOAP we send, documented answers parsed, key reuse, ΕΨ, retractions."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dixis_integrations.errors import (
    AuthError,
    InvalidInput,
    NotFound,
    RateLimited,
    TransientError,
    ValidationRejected,
)
from dixis_integrations.http import Endpoint
from dixis_integrations.models.money import Money
from dixis_integrations.models.shipping import (
    CashOnDelivery,
    CodMethod,
    DeliveryType,
    LabelFormat,
    Service,
    ShippingOptions,
    TrackingStatus,
)
from dixis_integrations.sandbox.geniki import GenikiSandbox
from dixis_integrations.shipping._soap import parse_body
from dixis_integrations.shipping.geniki import (
    Geniki,
    GenikiConfig,
    classify,
    error_for_result,
    job_record,
    parse_job,
    parse_track_and_trace,
    services_of,
    soap_call,
)

from .conftest import recipient, shipment_request

URL = "http://geniki.sandbox/JobServicesV2.asmx"
NS = "http://tempuri.org/"


def config(**changes: Any) -> GenikiConfig:
    return GenikiConfig(**{"base_url": URL, **GenikiSandbox().credentials(), **changes})


def _answer(operation: str, inner: str) -> httpx.Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope '
        'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<{operation}Response xmlns="{NS}"><{operation}Result>{inner}</{operation}Result>'
        f"</{operation}Response></soap:Body></soap:Envelope>"
    )
    return httpx.Response(200, content=body.encode(), request=httpx.Request("POST", URL))


def test_services_cover_cod_insurance_saturday_same_day_and_cold_chain() -> None:
    request = shipment_request(
        service=Service.SAME_DAY,
        options=ShippingOptions(
            cod=CashOnDelivery(amount=Money.of("12"), method=CodMethod.CHEQUE),
            insurance=Money.of("100"),
            saturday=True,
            refrigerated=True,
        ),
    )
    assert services_of(request) == ["ΑΝ", "ΑΣ", "5Σ", "3Σ", "ΕΨ"]


def test_create_job_envelope_is_exactly_what_geniki_documents() -> None:
    request = shipment_request(
        weight="3.5",
        options=ShippingOptions(cod=CashOnDelivery(amount=Money.of("18.90")), refrigerated=True),
    )
    endpoint = Endpoint(vendor="geniki", base_url=URL)
    sent = soap_call(
        endpoint,
        NS,
        "CreateJob",
        {"sAuthKey": "K1", "oVoucher": job_record(request), "eType": "Voucher"},
    )
    assert sent.headers["SOAPAction"] == '"http://tempuri.org/CreateJob"'
    assert sent.headers["Content-Type"] == "text/xml; charset=utf-8"
    expected = (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        '<soap:Envelope xmlns:ns1="http://tempuri.org/" '
        'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ns1:CreateJob>'
        "<ns1:sAuthKey>K1</ns1:sAuthKey><ns1:oVoucher>"
        "<ns1:OrderId>ORD-1001</ns1:OrderId><ns1:Name>Μαρία Κωνσταντίνου</ns1:Name>"
        "<ns1:Address>Ερμού 25</ns1:Address><ns1:City>Αθήνα</ns1:City>"
        "<ns1:Telephone>6912345678</ns1:Telephone><ns1:Zip>10563</ns1:Zip>"
        "<ns1:Email>maria@example.gr</ns1:Email><ns1:Weight>3.5</ns1:Weight>"
        "<ns1:Pieces>1</ns1:Pieces><ns1:Comments /><ns1:Services>ΑΜ,ΕΨ</ns1:Services>"
        "<ns1:CodAmount>18.90</ns1:CodAmount><ns1:InsAmount>0</ns1:InsAmount>"
        "<ns1:ReceivedDate>2026-11-02</ns1:ReceivedDate></ns1:oVoucher>"
        "<ns1:eType>Voucher</ns1:eType></ns1:CreateJob></soap:Body></soap:Envelope>"
    )
    assert sent.content.decode() == expected


def test_parse_job_reads_voucher_job_and_sub_vouchers() -> None:
    result = parse_body(
        _answer(
            "CreateJob",
            "<Result>0</Result><JobId>1001</JobId><Voucher>4601000001</Voucher>"
            "<SubVouchers><string>460100000102</string></SubVouchers>",
        ),
        "geniki",
    )
    shipment = parse_job(result, shipment_request(), datetime(2026, 11, 2, tzinfo=UTC))
    assert shipment.tracking_number == "4601000001"
    assert shipment.parcel_numbers == ("4601000001", "460100000102")
    assert shipment.carrier_data == {"job_id": "1001"}


@pytest.mark.parametrize(
    ("result", "error"),
    [
        (1, AuthError),
        (3, NotFound),
        (9, NotFound),
        (14, TransientError),
        (15, RateLimited),
        (701, ValidationRejected),
        (4, ValidationRejected),
    ],
)
def test_result_codes_become_typed_errors(result: int, error: type[Exception]) -> None:
    assert isinstance(error_for_result(result), error)
    found = classify(
        _answer("X", f"<Result>{result}</Result>"), Endpoint(vendor="geniki", base_url=URL)
    )
    assert isinstance(found, error)
    assert error_for_result(0) is None


def test_error_11_is_an_auth_error_the_adapter_recovers_from() -> None:
    error = error_for_result(11)
    assert isinstance(error, AuthError)
    assert error.code == "key_expired"


def test_soap_fault_and_garbage_are_typed() -> None:
    fault = httpx.Response(
        500,
        content=b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b"<soap:Fault><faultcode>soap:Server</faultcode><faultstring>boom</faultstring></soap:Fault>"
        b"</soap:Body></soap:Envelope>",
        request=httpx.Request("POST", URL),
    )
    endpoint = Endpoint(vendor="geniki", base_url=URL)
    found = classify(fault, endpoint)
    assert isinstance(found, TransientError)
    assert found.message == "boom"
    junk = httpx.Response(200, content=b"<html>proxy", request=httpx.Request("POST", URL))
    assert isinstance(classify(junk, endpoint), TransientError)


def test_track_and_trace_drops_retracted_checkpoints() -> None:
    checkpoints = "".join(
        f"<Checkpoint><StatusCode>{code}</StatusCode><Status>{text}</Status>"
        f"<StatusDate>2026-11-0{day}T10:00:00</StatusDate><Shop>ΑΘΗΝΑ</Shop></Checkpoint>"
        for code, text, day in [
            ("C_NW", "ΝΕΑ", 2),
            ("C_H1", "ΚΕΝΤΡΟ", 3),
            ("C_A3", "ΣΕ ΔΙΑΝΟΜΗ", 4),
            ("C_K9", "ΑΚΥΡΩΣΗ ΣΗΜΕΙΟΥ", 5),
            ("C_EA_AS", "ΑΠΩΝ", 6),
        ]
    )
    result = parse_body(
        _answer(
            "TrackAndTrace",
            f"<Result>0</Result><Checkpoints>{checkpoints}</Checkpoints>"
            "<Status>IN TRANSIT</Status>",
        ),
        "geniki",
    )
    tracking = parse_track_and_trace(result, "4601000001")
    assert [e.raw_code for e in tracking.events] == ["C_NW", "C_H1", "C_EA_AS"]
    assert tracking.status is TrackingStatus.DELIVERY_FAILED
    assert tracking.events[-1].reason == "recipient absent"
    assert tracking.events[0].at == datetime(2026, 11, 2, 8, tzinfo=UTC)


def test_bad_input_is_refused_before_any_call(make_runner: Any) -> None:
    sandbox = GenikiSandbox()
    run = make_runner(sandbox.handle)
    far = shipment_request(
        service=Service.SAME_DAY, to=recipient(postcode="54621", city="Θεσσαλονίκη")
    )
    with pytest.raises(InvalidInput) as info:
        run(Geniki(config()).create_shipment(far))
    assert [e.path for e in info.value.errors] == ["service"]
    with pytest.raises(InvalidInput):
        run(Geniki(config()).create_shipment(shipment_request(weight="41")))
    assert sandbox.requests == []


@pytest.mark.parametrize(
    ("options", "paths"),
    [
        (
            ShippingOptions(delivery_type=DeliveryType.LOCKER, pickup_point_id="L001"),
            ["options.delivery_type", "options.pickup_point_id"],
        ),
        (
            ShippingOptions(delivery_type=DeliveryType.BRANCH, pickup_point_id="ATH01"),
            ["options.delivery_type", "options.pickup_point_id"],
        ),
        (ShippingOptions(pickup_point_id="ATH01"), ["options.pickup_point_id"]),
    ],
)
def test_delivery_to_a_shop_or_locker_is_refused_naming_the_field(
    options: ShippingOptions, paths: list[str], make_runner: Any
) -> None:
    sandbox = GenikiSandbox()
    run = make_runner(sandbox.handle)
    with pytest.raises(InvalidInput) as info:
        run(Geniki(config()).create_shipment(shipment_request(options=options)))
    assert [e.path for e in info.value.errors] == paths
    refusal = info.value.errors[-1]
    assert refusal.code == "unsupported_option"
    assert "no field for a shop or locker" in refusal.message
    assert sandbox.requests == []


def test_geniki_shops_and_lockers_are_listed_for_collection(make_runner: Any) -> None:
    run = make_runner(GenikiSandbox().handle)
    points = run(Geniki(config()).pickup_points(recipient()))
    kinds = {p.kind for p in points}
    assert kinds == {DeliveryType.BRANCH, DeliveryType.LOCKER}
    assert all(p.carrier == "geniki" and p.id for p in points)


def test_full_lifecycle_with_one_key_and_cold_chain(make_runner: Any) -> None:
    sandbox = GenikiSandbox()
    run = make_runner(sandbox.handle)
    geniki = Geniki(config())
    request = shipment_request(options=ShippingOptions(refrigerated=True), parcels=2)
    shipment = run(geniki.create_shipment(request))
    assert sandbox.by_voucher[shipment.tracking_number].record["Services"] == "ΕΨ"
    assert len(shipment.parcel_numbers) == 2
    pdf = run(geniki.label(shipment, LabelFormat.PDF_A4))
    assert pdf.content.startswith(b"%PDF-1.4")
    zpl = run(geniki.label(shipment, LabelFormat.ZPL))
    assert zpl.content.startswith(b"^XA")
    manifest = run(geniki.finalise([shipment]))
    assert manifest.tracking_numbers == (shipment.tracking_number,)
    assert sandbox.authentications == 1  # one key for five calls
    sandbox.advance(15 * 3600)  # the key expired meanwhile: error 11, then a new key
    assert run(geniki.track(shipment.tracking_number)).status is TrackingStatus.OUT_FOR_DELIVERY
    assert sandbox.authentications == 2


def test_an_expired_key_is_renewed_once_and_the_call_repeated(make_runner: Any) -> None:
    sandbox = GenikiSandbox()
    run = make_runner(sandbox.handle)
    geniki = Geniki(config())
    run(geniki.pickup_points())
    sandbox.expire_keys()
    points = run(geniki.pickup_points(recipient(postcode="54621", city="Θεσσαλονίκη")))
    assert points[0].id == "ΘΕ01"
    assert sandbox.authentications == 2


def test_an_expired_key_on_the_pdf_label_is_renewed_once(make_runner: Any) -> None:
    sandbox = GenikiSandbox()
    run = make_runner(sandbox.handle)
    geniki = Geniki(config())
    shipment = run(geniki.create_shipment(shipment_request()))
    sandbox.expire_keys()
    label = run(geniki.label(shipment, LabelFormat.PDF_A4))
    assert label.content.startswith(b"%PDF-1.4")
    assert sandbox.authentications == 2
    pdf_keys = [
        r.url.params["authKey"] for r in sandbox.requests if r.url.path.endswith("GetVouchersPdf")
    ]
    assert len(pdf_keys) == 2
    assert pdf_keys[0] != pdf_keys[1]


def test_wrong_password_is_an_auth_error(make_runner: Any) -> None:
    run = make_runner(GenikiSandbox().handle)
    with pytest.raises(AuthError):
        run(Geniki(config(password="nope")).check())


def test_cancel_works_until_close_pending_jobs(make_runner: Any) -> None:
    sandbox = GenikiSandbox()
    run = make_runner(sandbox.handle)
    geniki = Geniki(config())
    first = run(geniki.create_shipment(shipment_request(reference="A")))
    second = run(geniki.create_shipment(shipment_request(reference="B")))
    run(geniki.cancel(first))
    assert run(geniki.track(first.tracking_number)).status is TrackingStatus.CANCELLED
    run(geniki.finalise([second]))
    with pytest.raises(ValidationRejected):  # Geniki refuses: the job is closed
        run(geniki.cancel(second))


def test_a_retraction_in_the_sandbox_history_is_not_reported(make_runner: Any) -> None:
    sandbox = GenikiSandbox()
    run = make_runner(sandbox.handle)
    geniki = Geniki(config())
    shipment = run(geniki.create_shipment(shipment_request()))
    sandbox.set_outcome(shipment.tracking_number, "retracted")
    run(geniki.finalise([shipment]))
    sandbox.advance(16 * 3600)
    tracking = run(geniki.track(shipment.tracking_number))
    assert [e.raw_code for e in tracking.events] == ["C_NW", "C_H1"]
    assert tracking.status is TrackingStatus.IN_TRANSIT


def test_sandbox_cod_mismatch_is_rejected_with_its_code(make_runner: Any) -> None:
    sandbox = GenikiSandbox()
    run = make_runner(sandbox.handle)
    geniki = Geniki(config())
    # Reach the sandbox with a record our own checks would never build.
    key = run(geniki._authenticate())
    endpoint = geniki.endpoint
    record = {**job_record(shipment_request()), "CodAmount": Decimal("5")}

    def op() -> Any:
        yield soap_call(
            endpoint, NS, "CreateJob", {"sAuthKey": key, "oVoucher": record, "eType": "Voucher"}
        )

    with pytest.raises(ValidationRejected) as info:
        run(op())
    assert info.value.vendor_code == "701"


def test_envelope_is_well_formed_xml() -> None:
    endpoint = Endpoint(vendor="geniki", base_url=URL)
    sent = soap_call(
        endpoint, NS, "TrackAndTrace", {"authKey": "a&b", "voucherNo": "1", "language": "el"}
    )
    root = ET.fromstring(sent.content)  # noqa: S314 - our own bytes
    assert root.tag.endswith("Envelope")
    assert b"a&amp;b" in sent.content


def test_over_real_http_against_the_served_sandbox() -> None:
    from dixis_integrations.http import CallRecord, Driver
    from dixis_integrations.sandbox.serve import serve

    # Over real sockets on a loaded machine a connection can fail before the request
    # leaves (refused, reset while opening): the driver retries only those, so its
    # backoff is real here, not the no-op sleep of in-process tests. The client ignores
    # the environment (no proxy or .netrc between the test and 127.0.0.1), and every
    # call is recorded, so that a failure names the call, its status and its attempts.
    sandbox = GenikiSandbox()
    calls: list[CallRecord] = []
    with serve(sandbox.handle) as served, httpx.Client(trust_env=False) as client:
        geniki = Geniki(config(base_url=served.base_url + "/JobServicesV2.asmx"))
        driver = Driver(client, on_call=calls.append)
        shipment = driver.run(geniki.create_shipment(shipment_request()))
        label = driver.run(geniki.label(shipment, LabelFormat.PDF_THERMAL))
    assert [(c.operation, c.status_code) for c in calls] == [
        ("geniki.Authenticate", 200),
        ("geniki.CreateJob", 200),
        ("geniki.GetVouchersPdf", 200),
    ], calls
    assert [r.url.path for r in sandbox.requests] == [
        "/JobServicesV2.asmx",
        "/JobServicesV2.asmx",
        "/JobServicesV2.asmx/GetVouchersPdf",
    ]
    assert label.content.startswith(b"%PDF-1.4")
    assert "authKey=" not in repr(label)


def test_a_return_voucher_makes_a_send_and_return_job(make_runner: Any) -> None:
    sandbox = GenikiSandbox()
    run = make_runner(sandbox.handle)
    run(
        Geniki(config()).create_shipment(
            shipment_request(options=ShippingOptions(return_voucher=True))
        )
    )
    assert b"<ns1:eType>SendAndReturn</ns1:eType>" in sandbox.requests[-1].content
