"""Lookups by our reference (``find_shipment``): a create lost in a crash is found again.

ELTA documents a tracking call by the sender's reference (``PELTT03``, ``wpel_flag`` 2).
ACS, Courier Center, Geniki and Speedex document no lookup by our reference, so they
have no ``find_shipment``: these tests pin that too, so the engine never assumes one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from dixis_integrations.errors import Conflict
from dixis_integrations.http import Endpoint
from dixis_integrations.sandbox.elta import ELTASandbox
from dixis_integrations.shipping._soap import parse_body
from dixis_integrations.shipping.elta import ELTA, ELTAConfig, parse_found, soap_call
from dixis_integrations.sync.steps import can_find_shipments

from .conftest import shipment_request

URL = "http://elta.sandbox"


def _elta() -> ELTA:
    return ELTA(ELTAConfig(base_url=URL, **ELTASandbox().credentials()))


def _result(inner: str) -> ET.Element:
    body = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f"<READResponse><READResult>{inner}</READResult></READResponse></soap:Body></soap:Envelope>"
    )
    response = httpx.Response(200, content=body.encode(), request=httpx.Request("POST", URL))
    return parse_body(response, "elta")


def test_elta_lookup_by_reference_sends_wpel_ref_with_flag_2() -> None:
    elta = _elta()
    op = elta.find_shipment("ORD-7")
    request = next(op)
    op.close()
    expected = soap_call(
        Endpoint(vendor="elta", base_url=URL),
        elta.config.namespace,
        "PELTT03",
        {
            "wpel_code": "999999999",
            "wpel_user": "9999999",
            "wpel_pass": "sandbox-elta-pass",
            "wpel_ref": "ORD-7",
            "wpel_flag": 2,
        },
    )
    assert request.url.path == "/PELTT03"
    assert request.content == expected.content


def test_elta_parse_found_takes_the_awb_and_first_checkpoint_time() -> None:
    result = _result(
        "<st_flag>0</st_flag><st_title>OK</st_title><vg_code>ZH000000042GR</vg_code>"
        "<web_status><web_date>02/11/2026</web_date><web_time>13:00</web_time>"
        "<web_station>ΑΘΗΝΑ</web_station><web_status_title>ΠΑΡΑΛΑΒΗ</web_status_title>"
        "</web_status>"
    )
    found = parse_found(result, "ORD-7", datetime(2026, 11, 3, tzinfo=UTC))
    assert found.tracking_number == "ZH000000042GR"
    assert found.reference == "ORD-7"
    assert found.created_at == datetime(2026, 11, 2, 11, 0, tzinfo=UTC)


def test_elta_answer_without_an_awb_is_a_conflict_not_a_miss() -> None:
    result = _result("<st_flag>0</st_flag><st_title>OK</st_title>")
    with pytest.raises(Conflict):
        parse_found(result, "ORD-7", datetime(2026, 11, 3, tzinfo=UTC))


def test_elta_create_then_find_by_reference_gives_the_same_awb(make_runner: Any) -> None:
    sandbox = ELTASandbox()
    run = make_runner(sandbox.handle)
    elta = _elta()
    created = run(elta.create_shipment(shipment_request(reference="ORD-55")))
    found = run(elta.find_shipment("ORD-55"))
    assert found is not None
    assert found.tracking_number == created.tracking_number
    assert found.reference == "ORD-55"
    assert len(sandbox.awbs) == 1


def test_elta_unknown_reference_is_none(make_runner: Any) -> None:
    sandbox = ELTASandbox()
    run = make_runner(sandbox.handle)
    elta = _elta()
    run(elta.create_shipment(shipment_request(reference="ORD-55")))
    assert run(elta.find_shipment("ORD-56")) is None
    assert run(elta.find_shipment("ORD-5")) is None


def test_elta_offers_the_lookup_to_the_engine() -> None:
    assert can_find_shipments(_elta())


@pytest.mark.parametrize(
    ("module", "cls"),
    [
        ("acs", "ACS"),
        ("courier_center", "CourierCenter"),
        ("geniki", "Geniki"),
        ("speedex", "Speedex"),
    ],
)
def test_carriers_without_a_documented_lookup_offer_none(module: str, cls: str) -> None:
    import importlib

    carrier = getattr(importlib.import_module(f"dixis_integrations.shipping.{module}"), cls)
    assert not callable(getattr(carrier, "find_shipment", None))


def test_elta_sandbox_tracks_by_reference_with_raw_soap() -> None:
    wcreds = (
        "<wpel_code>999999999</wpel_code><wpel_user>9999999</wpel_user>"
        "<wpel_pass>sandbox-elta-pass</wpel_pass>"
    )
    creds = (
        "<pel_user_code>9999999</pel_user_code><pel_user_pass>sandbox-elta-pass</pel_user_pass>"
        "<pel_apost_code>999999999</pel_apost_code>"
    )
    recipient = (
        "<pel_paral_name>Μαρία</pel_paral_name><pel_paral_address>Ερμού 25</pel_paral_address>"
        "<pel_paral_area>Αθήνα</pel_paral_area><pel_paral_tk>10563</pel_paral_tk>"
        "<pel_baros>2</pel_baros><pel_service>1</pel_service><pel_ref_no>R-1</pel_ref_no>"
    )

    def read(client: httpx.Client, service: str, inner: str) -> str:
        body = (
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            f'<READ xmlns="urn:x">{inner}</READ></soap:Body></soap:Envelope>'
        )
        return client.post(f"/{service}", content=body.encode()).text

    with httpx.Client(transport=ELTASandbox().transport(), base_url="http://e") as client:
        created = read(client, "CREATEAWB02", creds + recipient)
        hit = read(client, "PELTT03", wcreds + "<wpel_ref>R-1</wpel_ref><wpel_flag>2</wpel_flag>")
        miss = read(client, "PELTT03", wcreds + "<wpel_ref>R-2</wpel_ref><wpel_flag>2</wpel_flag>")
    code = created.split("<vg_code>")[1].split("</vg_code>")[0]
    assert f"<vg_code>{code}</vg_code>" in hit
    assert "<st_flag>0</st_flag>" in hit
    assert "<st_flag>5</st_flag>" in miss
