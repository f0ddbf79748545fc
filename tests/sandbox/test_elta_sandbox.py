"""The ELTA emulator, with raw SOAP READ calls (no adapter)."""

from __future__ import annotations

import httpx

from dixis_integrations.sandbox.elta import ELTASandbox

CREDS = (
    "<pel_user_code>9999999</pel_user_code><pel_user_pass>sandbox-elta-pass</pel_user_pass>"
    "<pel_apost_code>999999999</pel_apost_code>"
)


def read(client: httpx.Client, service: str, inner: str) -> str:
    body = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<READ xmlns="urn:x">{inner}</READ></soap:Body></soap:Envelope>'
    )
    return client.post(
        f"/{service}", content=body.encode(), headers={"Content-Type": "text/xml"}
    ).text


def test_create_gives_a_13_character_awb_and_refuses_pudo_without_a_point() -> None:
    with httpx.Client(transport=ELTASandbox().transport(), base_url="http://e") as client:
        recipient = (
            "<pel_paral_name>Μαρία</pel_paral_name><pel_paral_address>Ερμού 25</pel_paral_address>"
            "<pel_paral_area>Αθήνα</pel_paral_area><pel_paral_tk>10563</pel_paral_tk>"
            "<pel_baros>2</pel_baros>"
        )
        ok = read(client, "CREATEAWB02", CREDS + recipient + "<pel_service>1</pel_service>")
        pudo = read(client, "CREATEAWB02", CREDS + recipient + "<pel_service>7</pel_service>")
    code = ok.split("<vg_code>")[1].split("</vg_code>")[0]
    assert len(code) == 13
    assert "<st_flag>0</st_flag>" in ok
    assert "<st_flag>3</st_flag>" in pudo


def test_wrong_credentials_and_no_cancel_service() -> None:
    with httpx.Client(transport=ELTASandbox().transport(), base_url="http://e") as client:
        denied = read(client, "GETPUDODETAILS", "<pel_user_code>1</pel_user_code>")
        cancel = client.post("/CANCELAWB", content=b"<x/>")
    assert "<st_flag>1</st_flag>" in denied
    assert cancel.status_code == 404
