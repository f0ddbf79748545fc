"""The Courier Center emulator, with raw JSON calls (no adapter)."""

from __future__ import annotations

import base64

import httpx

from dixis_integrations.sandbox.courier_center import CourierCenterSandbox

CONTEXT = {
    "UserAlias": "CourierCenterAPITestUser",
    "CredentialValue": "sandbox-cc-credential",
    "ApiKey": "CourierCenterAPITestKey",
}
SHIPMENT = {
    "Context": CONTEXT,
    "Requestor": {"CarrierBillingAccount": "2100000001"},
    "Consignee": {
        "ContactName": "Μαρία",
        "Address": "Ερμού 25",
        "City": "Αθήνα",
        "ZipCode": "10563",
        "Country": "GR",
    },
    "BasicService": "211",
    "NoOfItems": 1,
    "Items": [{"GoodsType": "NoDocs", "Weight": {"Unit": "kg", "Value": 1.2}}],
}


def test_errors_are_result_failure_inside_http_200() -> None:
    with httpx.Client(transport=CourierCenterSandbox().transport(), base_url="http://c") as client:
        wrong = client.post("/ccservice/api/Shipment", json={**SHIPMENT, "Context": {}})
        bad_service = client.post(
            "/ccservice/api/Shipment", json={**SHIPMENT, "BasicService": "999"}
        )
    assert wrong.status_code == 200
    assert wrong.json()["Result"] == "Failure"
    assert "authentication" in wrong.json()["Errors"][0]["Message"]
    assert "BasicService" in bad_service.json()["Errors"][0]["Message"]


def test_manifest_is_a_pdf_and_stops_voiding() -> None:
    with httpx.Client(transport=CourierCenterSandbox().transport(), base_url="http://c") as client:
        number = client.post("/ccservice/api/Shipment", json=SHIPMENT).json()["ShipmentNumber"]
        manifest = client.post(
            "/ccservice/api/Manifest", json={"Context": CONTEXT, "Date": "2026-11-02"}
        ).json()
        void = client.post(
            "/ccservice/api/Shipment/Void", json={"Context": CONTEXT, "ShipmentNumber": number}
        ).json()
        label = client.post(
            "/ccservice/api/voucher",
            json={"Context": CONTEXT, "Template": "cleanpdf", "ShipmentNumber": number},
        )
    assert base64.b64decode(manifest["Manifest"]).startswith(b"%PDF-1.4")
    assert void["Result"] == "Failure"
    assert label.content.startswith(b"%PDF-1.4")


def test_box_now_lockers_are_a_chosen_code_or_the_nearest() -> None:
    def create(locker: object) -> dict[str, object]:
        body = {**SHIPMENT, "LockerDeliveryInfo": locker}
        with httpx.Client(
            transport=CourierCenterSandbox().transport(), base_url="http://c"
        ) as client:
            answer: dict[str, object] = client.post("/ccservice/api/Shipment", json=body).json()
        return answer

    assert create({"Prefix": "ATH", "Code": "4"})["Result"] == "Success"
    assert create({"Prefix": "BOXNOW"})["Result"] == "Success"
    no_code = create({"Prefix": "ATH"})
    assert no_code["Result"] == "Failure"
    assert "LockerDeliveryInfo.Code" in str(no_code["Errors"])
    assert create({"Prefix": "LOCKER", "Code": "4"})["Result"] == "Failure"
