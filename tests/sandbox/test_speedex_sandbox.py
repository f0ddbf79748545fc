"""The Speedex emulator, with raw SOAP calls (no adapter)."""

from __future__ import annotations

import httpx

from dixis_integrations.sandbox.speedex import SpeedexSandbox

NS = "http://tempuri.org/"


def soap(client: httpx.Client, operation: str, inner: str) -> str:
    body = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<{operation} xmlns="{NS}">{inner}</{operation}></soap:Body></soap:Envelope>'
    )
    return client.post(
        "/accesspoint.asmx",
        content=body.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}{operation}"'},
    ).text


BOL = (
    "<BOL><SND_Customer_Id>DEMO0001</SND_Customer_Id><Snd_agreement_id>003001</Snd_agreement_id>"
    "<RCV_Name>Μαρία</RCV_Name><RCV_Addr1>Ερμού 25</RCV_Addr1><RCV_Zip_Code>10563</RCV_Zip_Code>"
    "<Voucher_Weight>{weight}</Voucher_Weight></BOL>"
)


def session(client: httpx.Client) -> str:
    text = soap(
        client,
        "CreateSession",
        "<username>DEMO</username><password>sandbox-speedex-pass</password>",
    )
    assert "<returnCode>1</returnCode>" in text
    return text.split("<sessionId>")[1].split("</sessionId>")[0]


def test_bad_credentials_are_return_code_100() -> None:
    with httpx.Client(transport=SpeedexSandbox().transport(), base_url="http://s") as client:
        text = soap(client, "CreateSession", "<username>DEMO</username><password>x</password>")
    assert "<returnCode>100</returnCode>" in text


def test_at_most_ten_bols_per_call_and_minimum_weight() -> None:
    with httpx.Client(transport=SpeedexSandbox().transport(), base_url="http://s") as client:
        sid = session(client)
        eleven = soap(
            client,
            "CreateBOL",
            f"<sessionID>{sid}</sessionID><inListPod>{BOL.format(weight='1') * 11}</inListPod>",
        )
        light = soap(
            client,
            "CreateBOL",
            f"<sessionID>{sid}</sessionID><inListPod>{BOL.format(weight='0.2')}</inListPod>",
        )
        ten = soap(
            client,
            "CreateBOL",
            f"<sessionID>{sid}</sessionID><inListPod>{BOL.format(weight='1') * 10}</inListPod>",
        )
    assert "1 to 10" in eleven
    assert "at least 0.5" in light
    assert ten.count("<voucher_code>") == 10


def test_expired_sessions_answer_300() -> None:
    sandbox = SpeedexSandbox()
    with httpx.Client(transport=sandbox.transport(), base_url="http://s") as client:
        sid = session(client)
        sandbox.expire_sessions()
        text = soap(client, "GetBranches", f"<sessionID>{sid}</sessionID><zip>10431</zip>")
    assert "<returnCode>300</returnCode>" in text
