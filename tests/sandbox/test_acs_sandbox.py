"""The ACS emulator against ACS's documented behaviour, with raw HTTP calls (no adapter)."""

from __future__ import annotations

import base64
from collections import deque
from typing import Any

import httpx

from dixis_integrations.sandbox.acs import ACSSandbox
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.sandbox.serve import serve

PATH = "/ACSRestServices/api/ACSAutoRest"


def call(client: httpx.Client, sandbox: ACSSandbox, alias: str, **params: Any) -> httpx.Response:
    creds = sandbox.credentials()
    body = {
        "ACSAlias": alias,
        "ACSInputParameters": {
            "Company_ID": creds["company_id"],
            "Company_Password": creds["company_password"],
            "User_ID": creds["user_id"],
            "User_Password": creds["user_password"],
            **params,
        },
    }
    return client.post(PATH, json=body, headers={"AcsApiKey": creds["api_key"]})


def client_for(sandbox: ACSSandbox) -> httpx.Client:
    return httpx.Client(transport=sandbox.transport(), base_url="http://acs.test")


VOUCHER = {
    "Pickup_Date": "2026-11-02",
    "Recipient_Name": "Μαρία",
    "Recipient_Address": "Ερμού",
    "Recipient_Address_Number": "25",
    "Recipient_Zipcode": "10563",
    "Billing_Code": "2ΑΘ999999",
    "Weight": "0.5",
    "Item_Quantity": 1,
    "Cod_Ammount": "50.5",
    "Acs_Delivery_Products": "COD",
}


def test_documented_envelope_and_voucher_number() -> None:
    sandbox = ACSSandbox()
    with client_for(sandbox) as client:
        answer = call(client, sandbox, "ACS_Create_Voucher", **VOUCHER).json()
    assert answer["ACSExecution_HasError"] is False
    assert answer["ACSOutputResponce"]["ACSValueOutput"][0]["Voucher_No"].isdigit()


def test_bad_api_key_is_403_and_bad_password_is_an_execution_error() -> None:
    sandbox = ACSSandbox()
    with client_for(sandbox) as client:
        assert client.post(PATH, json={}, headers={"AcsApiKey": "nope"}).status_code == 403
        body = {"ACSAlias": "ACS_Stations", "ACSInputParameters": {"Company_ID": "x"}}
        answer = client.post(PATH, json=body, headers={"AcsApiKey": "sandbox-acs-api-key"})
    assert answer.status_code == 200
    assert answer.json()["ACSExecution_HasError"] is True


def test_validation_errors_hide_in_error_message_with_http_200() -> None:
    sandbox = ACSSandbox()
    with client_for(sandbox) as client:
        answer = call(
            client, sandbox, "ACS_Create_Voucher", **{**VOUCHER, "Acs_Delivery_Products": "SAT,REC"}
        )
    assert answer.status_code == 200
    body = answer.json()
    assert body["ACSExecution_HasError"] is False
    assert "SAT and REC" in body["ACSOutputResponce"]["ACSValueOutput"][0]["Error_Message"]


def test_eleventh_call_in_a_second_is_406() -> None:
    sandbox = ACSSandbox()
    with client_for(sandbox) as client:
        codes = [call(client, sandbox, "ACS_Stations").status_code for _ in range(11)]
    assert codes[:10] == [200] * 10
    assert codes[10] == 406


def test_print_returns_a_real_pdf_and_pickup_list_needs_printing() -> None:
    sandbox = ACSSandbox()
    with client_for(sandbox) as client:
        number = call(client, sandbox, "ACS_Create_Voucher", **VOUCHER).json()["ACSOutputResponce"][
            "ACSValueOutput"
        ][0]["Voucher_No"]
        refused = call(client, sandbox, "ACS_Issue_Pickup_List").json()
        printed = call(client, sandbox, "ACS_Print_Voucher", Voucher_No=number, Print_Type=2)
        listed = call(client, sandbox, "ACS_Issue_Pickup_List").json()
        deleted = call(client, sandbox, "ACS_Delete_Voucher", Voucher_No=number).json()
    assert "Unprinted" in refused["ACSOutputResponce"]["ACSValueOutput"][0]["Error_Message"]
    pdf = base64.b64decode(printed.json()["ACSOutputResponce"]["ACSObjectOutput"][0]["voucher"])
    assert pdf.startswith(b"%PDF-1.4")
    assert b"startxref" in pdf
    assert listed["ACSOutputResponce"]["ACSValueOutput"][0]["PickupList_No"].startswith("PL")
    assert "cannot delete" in deleted["ACSOutputResponce"]["ACSValueOutput"][0]["Error_Message"]


def test_returned_parcels_carry_the_delivery_flag_trap() -> None:
    sandbox = ACSSandbox()
    with client_for(sandbox) as client:
        number = call(client, sandbox, "ACS_Create_Voucher", **VOUCHER).json()["ACSOutputResponce"][
            "ACSValueOutput"
        ][0]["Voucher_No"]
        call(client, sandbox, "ACS_Print_Voucher", Voucher_No=number)
        call(client, sandbox, "ACS_Issue_Pickup_List")
        sandbox.set_outcome(number, "returned")
        sandbox.advance(17 * 3600)
        summary = call(client, sandbox, "ACS_Trackingsummary", Voucher_No=number).json()
    row = summary["ACSOutputResponce"]["ACSTableOutput"]["Table_Data"][0]
    assert (row["delivery_flag"], row["returned_flag"], row["shipment_status"]) == ("1", "1", "7")


def test_injected_rate_limit_is_acs_shaped_and_served_over_http() -> None:
    sandbox = ACSSandbox(faults=FaultPlan(script=deque([Fault.RATE_LIMIT])))
    with serve(sandbox.handle) as served, httpx.Client(base_url=served.base_url) as client:
        assert call(client, sandbox, "ACS_Stations").status_code == 406
        assert call(client, sandbox, "ACS_Stations").status_code == 200


def test_cod_beneficiary_info_lists_a_delivered_cod_voucher_on_its_payout_day() -> None:
    sandbox = ACSSandbox()
    with client_for(sandbox) as client:
        created = call(client, sandbox, "ACS_Create_Voucher", **{**VOUCHER, "Cod_Ammount": "42.10"})
        number = created.json()["ACSOutputResponce"]["ACSValueOutput"][0]["Voucher_No"]
        call(client, sandbox, "ACS_Print_Voucher", Voucher_No=number, Print_Type=2)
        call(client, sandbox, "ACS_Issue_Pickup_List", Pickup_Date="2026-11-02")
        before = call(client, sandbox, "ACS_COD_Beneficiary_Info", COD_Payment_Date="2026-11-05")
        sandbox.advance(17 * 3600)
        rows = [
            call(client, sandbox, "ACS_COD_Beneficiary_Info", COD_Payment_Date=day).json()[
                "ACSOutputResponce"
            ]["ACSTableOutput"]["Table_Data"]
            for day in ("2026-11-04", "2026-11-05")
        ]
        bad = call(client, sandbox, "ACS_COD_Beneficiary_Info", COD_Payment_Date="05/11/2026")
    assert before.json()["ACSOutputResponce"]["ACSTableOutput"]["Table_Data"] == []
    assert rows[0] == []
    (row,) = rows[1]
    assert row["POD"] == number
    assert row["Parcel_COD_Amount"] == 42.1
    assert row["COD_Amount_Cach"] == 42.1
    assert row["Parcel_Delivery_Date"] == "2026-11-03T00:00:00"
    assert bad.json()["ACSOutputResponce"]["ACSValueOutput"][0]["Error_msg"]
