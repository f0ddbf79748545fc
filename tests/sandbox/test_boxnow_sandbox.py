"""The BOX NOW emulator against the partner API, with raw HTTP calls (no adapter)."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from dixis_integrations.sandbox.boxnow import BoxNowSandbox
from dixis_integrations.sandbox.serve import serve

ORDER = {
    "orderNumber": "123_00000",
    "invoiceValue": "25.00",
    "paymentMode": "cod",
    "amountToBeCollected": "25.00",
    "allowReturn": True,
    "origin": {"contactNumber": "+302101234567", "contactEmail": "a@b.gr", "locationId": "2"},
    "destination": {
        "contactNumber": "+306912345678",
        "contactEmail": "c@d.gr",
        "contactName": "Μαρία",
        "locationId": "4",
    },
    "items": [{"value": "25.00", "weight": 1.2, "compartmentSize": 2}],
}


def login(client: httpx.Client, sandbox: BoxNowSandbox) -> dict[str, str]:
    creds = sandbox.credentials()
    token = client.post(
        "/api/v1/auth-sessions",
        json={
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
        },
    ).json()
    assert token["expires_in"] == 3600
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_tokens_are_required_and_expire_with_the_clock() -> None:
    sandbox = BoxNowSandbox()
    with httpx.Client(transport=sandbox.transport(), base_url="http://b") as client:
        assert client.get("/api/v1/origins").status_code == 401
        headers = login(client, sandbox)
        assert client.get("/api/v1/origins", headers=headers).status_code == 200
        sandbox.advance(3601)
        assert client.get("/api/v1/origins", headers=headers).status_code == 401


def test_create_label_and_cancel_only_while_new() -> None:
    sandbox = BoxNowSandbox()
    with httpx.Client(transport=sandbox.transport(), base_url="http://b") as client:
        headers = login(client, sandbox)
        created = client.post("/api/v1/delivery-requests", json=ORDER, headers=headers).json()
        parcel = created["parcels"][0]["id"]
        pdf = client.get(f"/api/v1/parcels/{parcel}/label.pdf", headers=headers)
        zpl = client.get(f"/api/v1/parcels/{parcel}/label.zpl", headers=headers)
        duplicate = client.post("/api/v1/delivery-requests", json=ORDER, headers=headers)
        second = client.post(
            "/api/v1/delivery-requests", json={**ORDER, "orderNumber": "124"}, headers=headers
        ).json()["parcels"][0]["id"]
        assert client.post(f"/api/v1/parcels/{parcel}:cancel", headers=headers).status_code == 204
        sandbox.advance(3 * 3600)
        headers = login(client, sandbox)  # the first token has expired meanwhile
        late = client.post(f"/api/v1/parcels/{second}:cancel", headers=headers)
    assert pdf.content.startswith(b"%PDF-1.4")
    assert zpl.text.startswith("^XA")
    assert duplicate.status_code == 409
    assert late.status_code == 400
    assert late.json()["code"] == "P420"


def test_validation_errors_name_the_field() -> None:
    sandbox = BoxNowSandbox()
    with httpx.Client(transport=sandbox.transport(), base_url="http://b") as client:
        headers = login(client, sandbox)
        bad = dict(ORDER, items=[{"value": "1", "weight": 1, "compartmentSize": 4}])
        answer = client.post("/api/v1/delivery-requests", json=bad, headers=headers)
    assert answer.status_code == 400
    assert "compartmentSize" in answer.json()["message"]


def test_webhooks_are_signed_over_the_raw_data_member() -> None:
    received: list[bytes] = []

    def hook(request: httpx.Request) -> httpx.Response:
        received.append(request.content)
        return httpx.Response(200)

    hook_client = httpx.Client(transport=httpx.MockTransport(hook))
    sandbox = BoxNowSandbox(webhook_client=hook_client)
    sandbox.subscribe("https://shop.example/hook", secret="whsec")
    with httpx.Client(transport=sandbox.transport(), base_url="http://b") as client:
        headers = login(client, sandbox)
        client.post("/api/v1/delivery-requests", json=ORDER, headers=headers)
    sandbox.advance(3 * 3600)
    event = json.loads(received[-1])
    raw = received[-1].split(b'"data":', 1)[1].split(b',"datasignature"', 1)[0]
    expected = hmac.new(b"whsec", raw, hashlib.sha256).hexdigest()
    assert event["datasignature"] == expected
    assert event["data"]["event"] == "accepted-to-locker"
    assert event["specversion"] == "1.0"


def test_served_over_real_http() -> None:
    sandbox = BoxNowSandbox()
    with serve(sandbox.handle) as served, httpx.Client(base_url=served.base_url) as client:
        headers = login(client, sandbox)
        lockers = client.get("/api/v1/destinations", headers=headers).json()["data"]
    assert {locker["id"] for locker in lockers} == {"4", "9", "17"}


def test_parcels_are_listed_a_page_at_a_time_with_page_tokens() -> None:
    sandbox = BoxNowSandbox(page_size=2)
    with httpx.Client(transport=sandbox.transport(), base_url="http://b") as client:
        headers = login(client, sandbox)
        for i in range(3):
            order = {**ORDER, "orderNumber": f"ORD-{i}"}
            assert client.post("/api/v1/delivery-requests", json=order, headers=headers).is_success
        first = client.get("/api/v1/parcels", headers=headers).json()
        token = first["pagination"]["nextPageToken"]
        second = client.get("/api/v1/parcels", params={"pageToken": token}, headers=headers)
        bad = client.get("/api/v1/parcels", params={"pageToken": "%%%"}, headers=headers)
    assert [p["orderNumber"] for p in first["data"]] == ["ORD-0", "ORD-1"]
    assert token
    assert [p["orderNumber"] for p in second.json()["data"]] == ["ORD-2"]
    assert second.json()["pagination"]["nextPageToken"] is None
    assert bad.status_code == 400
