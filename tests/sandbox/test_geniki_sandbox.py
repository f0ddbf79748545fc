"""The Geniki emulator against its Web API (V2), with raw SOAP calls (no adapter)."""

from __future__ import annotations

from collections import deque

import httpx

from dixis_integrations.sandbox.geniki import GenikiSandbox
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.sandbox.serve import serve

NS = "http://tempuri.org/"


def soap(client: httpx.Client, operation: str, inner: str) -> httpx.Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope '
        'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<{operation} xmlns="{NS}">{inner}</{operation}></soap:Body></soap:Envelope>'
    )
    return client.post(
        "/JobServicesV2.asmx",
        content=body.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}{operation}"'},
    )


def key_of(client: httpx.Client) -> str:
    answer = soap(
        client,
        "Authenticate",
        "<sUsrName>dixis</sUsrName><sUsrPwd>sandbox-geniki-pass</sUsrPwd>"
        "<applicationKey>sandbox-geniki-app-key</applicationKey>",
    )
    text = answer.text
    assert "<Result>0</Result>" in text
    return text.split("<Key>")[1].split("</Key>")[0]


RECORD = (
    "<oVoucher><OrderId>1</OrderId><Name>Μαρία</Name><Address>Ερμού 25</Address>"
    "<City>Αθήνα</City><Zip>10563</Zip><Weight>2</Weight><Pieces>1</Pieces>"
    "<Services>{services}</Services><CodAmount>{cod}</CodAmount></oVoucher><eType>Voucher</eType>"
)


def test_authenticate_create_and_error_codes() -> None:
    sandbox = GenikiSandbox()
    with httpx.Client(transport=sandbox.transport(), base_url="http://g") as client:
        key = key_of(client)
        ok = soap(
            client,
            "CreateJob",
            f"<sAuthKey>{key}</sAuthKey>" + RECORD.format(services="ΕΨ", cod="0"),
        )
        mismatch = soap(
            client, "CreateJob", f"<sAuthKey>{key}</sAuthKey>" + RECORD.format(services="", cod="5")
        )
        unknown_key = soap(client, "GetShopsList", "<sAuthKey>nope</sAuthKey>")
    assert "<Result>0</Result>" in ok.text
    assert "<Voucher>" in ok.text
    assert "<Result>701</Result>" in mismatch.text
    assert "<Result>1</Result>" in unknown_key.text


def test_keys_expire_with_error_11() -> None:
    sandbox = GenikiSandbox(key_lifetime=60)
    with httpx.Client(transport=sandbox.transport(), base_url="http://g") as client:
        key = key_of(client)
        sandbox.advance(61)
        answer = soap(client, "GetShopsList", f"<sAuthKey>{key}</sAuthKey>")
    assert "<Result>11</Result>" in answer.text


def test_pdf_over_get_and_wrong_soap_action_is_a_fault() -> None:
    sandbox = GenikiSandbox()
    with httpx.Client(transport=sandbox.transport(), base_url="http://g") as client:
        key = key_of(client)
        created = soap(
            client, "CreateJob", f"<sAuthKey>{key}</sAuthKey>" + RECORD.format(services="", cod="0")
        )
        voucher = created.text.split("<Voucher>")[1].split("</Voucher>")[0]
        pdf = client.get(
            "/JobServicesV2.asmx/GetVouchersPdf",
            params={"authKey": key, "voucherNumbers": voucher, "format": "Sticker"},
        )
        fault = client.post(
            "/JobServicesV2.asmx",
            content=b"<x/>",
            headers={"Content-Type": "text/xml", "SOAPAction": '"wrong"'},
        )
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-1.4")
    assert fault.status_code == 400
    assert "soap:Client" in fault.text


def test_injected_server_fault_is_a_soap_fault_served_over_http() -> None:
    sandbox = GenikiSandbox(faults=FaultPlan(script=deque([Fault.SERVER_ERROR])))
    with serve(sandbox.handle) as served, httpx.Client(base_url=served.base_url) as client:
        first = soap(client, "Authenticate", "")
        assert first.status_code == 500
        assert "soap:Server" in first.text
        assert "<Result>1</Result>" in soap(client, "Authenticate", "").text


def test_the_pdf_over_get_tells_an_expired_key_from_an_unknown_one() -> None:
    sandbox = GenikiSandbox()
    with httpx.Client(transport=sandbox.transport(), base_url="http://g") as client:
        key = key_of(client)
        sandbox.expire_keys()
        expired = client.get(
            "/JobServicesV2.asmx/GetVouchersPdf",
            params={"authKey": key, "voucherNumbers": "1", "format": "Flyer"},
        )
        unknown = client.get(
            "/JobServicesV2.asmx/GetVouchersPdf",
            params={"authKey": "nope", "voucherNumbers": "1", "format": "Flyer"},
        )
    assert "<Result>11</Result>" in expired.text
    assert "<Result>1</Result>" in unknown.text
