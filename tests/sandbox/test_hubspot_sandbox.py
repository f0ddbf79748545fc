"""The HubSpot emulator on the wire, independently of the adapter (raw httpx calls)."""

from __future__ import annotations

import httpx
import pytest

from dixis_integrations.sandbox.hubspot import HubSpotSandbox
from dixis_integrations.sandbox.serve import serve

BASE = "http://hubspot.test"


@pytest.fixture
def box() -> HubSpotSandbox:
    emulator = HubSpotSandbox()
    emulator.bind(BASE)
    return emulator


@pytest.fixture
def client(box: HubSpotSandbox) -> httpx.Client:
    return httpx.Client(
        transport=box.transport(),
        base_url=BASE,
        headers={"Authorization": f"Bearer {box.access_token}"},
    )


def upsert(client: httpx.Client, *emails: str, **props: str) -> httpx.Response:
    inputs = [
        {"idProperty": "email", "id": e, "objectWriteTraceId": f"t{i}", "properties": props}
        for i, e in enumerate(emails)
    ]
    return client.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs})


def test_batch_upsert_answers_200_with_new_flags(client: httpx.Client) -> None:
    first = upsert(client, "a@example.gr", "b@example.gr", firstname="A")
    assert first.status_code == 200
    assert [r["new"] for r in first.json()["results"]] == [True, True]
    again = upsert(client, "a@example.gr", firstname="B")
    body = again.json()
    assert body["status"] == "COMPLETE"
    assert body["results"][0]["new"] is False
    assert body["results"][0]["properties"]["firstname"] == "B"


def test_batch_upsert_partial_failure_is_207_with_errors(client: httpx.Client) -> None:
    resp = client.post(
        "/crm/v3/objects/contacts/batch/upsert",
        json={
            "inputs": [
                {"idProperty": "email", "id": "ok@example.gr", "properties": {}},
                {
                    "idProperty": "email",
                    "id": "bad@example.gr",
                    "objectWriteTraceId": "row-2",
                    "properties": {"no_such_property": "x"},
                },
            ]
        },
    )
    assert resp.status_code == 207
    body = resp.json()
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "VALIDATION_ERROR"
    assert body["errors"][0]["objectWriteTraceId"] == "row-2"
    assert len(body["results"]) == 1


def test_batch_over_100_inputs_is_refused(client: httpx.Client) -> None:
    resp = upsert(client, *(f"p{i}@example.gr" for i in range(101)))
    assert resp.status_code == 400
    assert resp.json()["category"] == "VALIDATION_ERROR"


def test_idproperty_must_be_unique(client: httpx.Client) -> None:
    resp = client.post(
        "/crm/v3/objects/contacts/batch/upsert",
        json={"inputs": [{"idProperty": "firstname", "id": "x", "properties": {}}]},
    )
    assert resp.status_code == 207
    assert "unique" in resp.json()["errors"][0]["message"]


def test_missing_token_is_401(box: HubSpotSandbox) -> None:
    with httpx.Client(transport=box.transport(), base_url=BASE) as anon:
        resp = anon.get("/crm/v3/objects/contacts")
    assert resp.status_code == 401
    assert resp.json()["category"] == "INVALID_AUTHENTICATION"


def test_rate_limit_headers_and_429_policy_name(client: httpx.Client) -> None:
    box_headers = client.get("/crm/v3/objects/contacts").headers
    assert box_headers["X-HubSpot-RateLimit-Daily"] == "650000"
    assert box_headers["X-HubSpot-RateLimit-Daily-Remaining"] == "649999"
    assert box_headers["X-HubSpot-RateLimit-Max"] == "190"
    for _ in range(189):
        client.get("/crm/v3/objects/contacts")
    throttled = client.get("/crm/v3/objects/contacts")
    assert throttled.status_code == 429
    assert throttled.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert float(throttled.headers["Retry-After"]) > 0


def test_search_has_its_own_per_second_limit(client: httpx.Client) -> None:
    codes = [
        client.post("/crm/v3/objects/contacts/search", json={"limit": 1}).status_code
        for _ in range(6)
    ]
    assert codes == [200] * 5 + [429]


def test_search_refuses_paging_past_ten_thousand(client: httpx.Client) -> None:
    resp = client.post("/crm/v3/objects/contacts/search", json={"limit": 100, "after": 9950})
    assert resp.status_code == 400


def test_creating_an_existing_email_is_a_409_naming_its_id(client: httpx.Client) -> None:
    created = client.post("/crm/v3/objects/contacts", json={"properties": {"email": "a@b.gr"}})
    assert created.status_code == 201
    again = client.post("/crm/v3/objects/contacts", json={"properties": {"email": "a@b.gr"}})
    assert again.status_code == 409
    assert again.json()["message"] == f"Contact already exists. Existing ID: {created.json()['id']}"


def test_gdpr_delete_by_email_removes_for_good(client: httpx.Client, box: HubSpotSandbox) -> None:
    upsert(client, "gone@example.gr")
    resp = client.post(
        "/crm/v3/objects/contacts/gdpr-delete",
        json={"objectId": "gone@example.gr", "idProperty": "email"},
    )
    assert resp.status_code == 204
    assert box.contacts == {}
    listed = client.get("/crm/v3/objects/contacts", params={"archived": "true"})
    assert listed.json()["results"] == []


def test_properties_need_their_required_fields(client: httpx.Client) -> None:
    resp = client.post("/crm/v3/properties/contacts", json={"name": "x", "label": "X"})
    assert resp.status_code == 400
    ok = client.post(
        "/crm/v3/properties/contacts",
        json={"name": "x", "label": "X", "type": "string", "fieldType": "text",
              "groupName": "contactinformation"},
    )  # fmt: skip
    assert ok.status_code == 201
    dup = client.post(
        "/crm/v3/properties/contacts",
        json={"name": "x", "label": "X", "type": "string", "fieldType": "text",
              "groupName": "contactinformation"},
    )  # fmt: skip
    assert dup.status_code == 409


def test_served_over_http_with_the_same_behaviour(box: HubSpotSandbox) -> None:
    with serve(box.handle) as served:
        url = served.base_url
        box.bind(url)
        headers = {"Authorization": f"Bearer {box.access_token}"}
        with httpx.Client(base_url=url, headers=headers) as client:
            resp = upsert(client, "served@example.gr")
            assert resp.status_code == 200
            assert "X-HubSpot-RateLimit-Remaining" in resp.headers
