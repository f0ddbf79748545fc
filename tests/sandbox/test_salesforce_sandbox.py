"""The Salesforce emulator on the wire, independently of the adapter (raw httpx calls)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from dixis_integrations.sandbox.salesforce import SalesforceSandbox

BASE = "http://salesforce.test"
V = "/services/data/v59.0"


def _jwt(claims: dict[str, Any], pem: str) -> str:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    head = b64(json.dumps({"alg": "RS256"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64(sig)}"


@pytest.fixture
def box() -> SalesforceSandbox:
    emulator = SalesforceSandbox()
    emulator.bind(BASE)
    return emulator


def token_for(box: SalesforceSandbox, **claims: Any) -> httpx.Response:
    data = {"iss": box.client_id, "sub": box.username, "aud": BASE, "exp": int(time.time()) + 60}
    data.update(claims)
    with httpx.Client(transport=box.transport()) as c:
        return c.post(
            f"{BASE}/services/oauth2/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": _jwt(data, box.private_key_pem),
            },
        )


@pytest.fixture
def client(box: SalesforceSandbox) -> httpx.Client:
    token = token_for(box).json()
    return httpx.Client(
        transport=box.transport(),
        base_url=token["instance_url"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )


def record(ref: str, **fields: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Contact"},
        "Dixis_Customer_Id__c": ref,
        "LastName": "X",
        **fields,
    }


def test_jwt_bearer_grant_returns_instance_url_and_no_refresh_token(box: SalesforceSandbox) -> None:
    body = token_for(box).json()
    assert body["instance_url"] == BASE
    assert "refresh_token" not in body


def test_jwt_for_another_user_or_expired_is_refused(box: SalesforceSandbox) -> None:
    assert token_for(box, sub="someone@else").json()["error"] == "invalid_grant"
    assert token_for(box, exp=int(time.time()) - 10).status_code == 400
    assert token_for(box, iss="other").json()["error"] == "invalid_client_id"


def test_collection_upsert_is_200_with_rows_in_order(client: httpx.Client) -> None:
    resp = client.patch(
        f"{V}/composite/sobjects/Contact/Dixis_Customer_Id__c",
        json={"allOrNone": False, "records": [
            record("c1", Email="a@b.gr"), {"attributes": {"type": "Contact"},
                                           "Dixis_Customer_Id__c": "c2"},
            record("c3")]},
    )  # fmt: skip
    assert resp.status_code == 200
    rows = resp.json()
    assert [r["success"] for r in rows] == [True, False, True]
    assert rows[0]["created"] is True
    assert rows[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    again = client.patch(
        f"{V}/composite/sobjects/Contact/Dixis_Customer_Id__c",
        json={"records": [record("c1", FirstName="Β")]},
    )
    assert again.json()[0] == {"id": rows[0]["id"], "success": True, "errors": [],
                               "created": False}  # fmt: skip
    assert "api-usage=" in again.headers["Sforce-Limit-Info"]


def test_all_or_none_rolls_every_row_back(client: httpx.Client) -> None:
    resp = client.patch(
        f"{V}/composite/sobjects/Contact/Dixis_Customer_Id__c",
        json={"allOrNone": True, "records": [record("c1"), record("c2", Email="bad")]},
    )
    codes = [r["errors"][0]["statusCode"] for r in resp.json()]
    assert codes == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_EMAIL_ADDRESS"]


def test_more_than_200_records_is_refused(client: httpx.Client) -> None:
    resp = client.patch(
        f"{V}/composite/sobjects/Contact/Dixis_Customer_Id__c",
        json={"records": [record(f"c{i}") for i in range(201)]},
    )
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_duplicate_rule_and_the_allow_save_header(client: httpx.Client) -> None:
    url = f"{V}/composite/sobjects/Contact/Dixis_Customer_Id__c"
    client.patch(url, json={"records": [record("c1", Email="same@b.gr")]})
    dup = client.patch(url, json={"records": [record("c2", Email="same@b.gr")]})
    assert dup.json()[0]["errors"][0]["statusCode"] == "DUPLICATES_DETECTED"
    saved = client.patch(
        url,
        json={"records": [record("c2", Email="same@b.gr")]},
        headers={"Sforce-Duplicate-Rule-Header": "allowSave=true"},
    )
    assert saved.json()[0]["success"] is True


def test_lead_requires_last_name_and_company(client: httpx.Client) -> None:
    resp = client.post(f"{V}/sobjects/Lead", json={"LastName": "X"})
    assert resp.status_code == 400
    assert resp.json() == [
        {
            "message": "Required fields are missing: [Company]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["Company"],
        }
    ]


def test_daily_allocation_is_403_request_limit_exceeded() -> None:
    box = SalesforceSandbox(daily_api_requests=1)
    box.bind(BASE)
    token = token_for(box).json()["access_token"]
    with httpx.Client(transport=box.transport(), base_url=BASE,
                      headers={"Authorization": f"Bearer {token}"}) as c:  # fmt: skip
        assert c.get(f"{V}/limits").status_code == 200
        resp = c.get(f"{V}/limits")
    assert resp.status_code == 403
    assert resp.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert "retry-after" not in resp.headers


def test_bad_session_is_invalid_session_id(box: SalesforceSandbox) -> None:
    with httpx.Client(transport=box.transport(), base_url=BASE) as anon:
        resp = anon.get(f"{V}/limits", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401
    assert resp.json()[0]["errorCode"] == "INVALID_SESSION_ID"
