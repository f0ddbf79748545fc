"""The Pipedrive emulator on the wire, independently of the adapter (raw httpx calls)."""

from __future__ import annotations

import httpx
import pytest

from dixis_integrations.sandbox.pipedrive import PipedriveSandbox

BASE = "http://pipedrive.test"


@pytest.fixture
def box() -> PipedriveSandbox:
    emulator = PipedriveSandbox(plan="lite")
    emulator.bind(BASE)
    return emulator


@pytest.fixture
def client(box: PipedriveSandbox) -> httpx.Client:
    return httpx.Client(
        transport=box.transport(), base_url=BASE, headers={"x-api-token": box.api_token}
    )


def person(client: httpx.Client, email: str) -> httpx.Response:
    return client.post(
        "/api/v2/persons", json={"name": "Π", "emails": [{"value": email, "primary": True}]}
    )


def test_search_by_exact_email_finds_the_person(client: httpx.Client) -> None:
    created = person(client, "Found@Example.gr").json()["data"]
    params = {"term": "found@example.gr", "fields": "email", "exact_match": "true"}
    items = client.get("/api/v2/persons/search", params=params).json()["data"]["items"]
    assert [i["item"]["id"] for i in items] == [created["id"]]


def test_person_needs_a_name_and_known_fields(client: httpx.Client) -> None:
    resp = client.post("/api/v2/persons", json={"emails": [{"value": "a@b.gr"}]})
    assert resp.status_code == 400
    assert resp.json()["success"] is False
    bad = client.post("/api/v2/persons", json={"name": "x", "custom_fields": {"nope": 1}})
    assert bad.status_code == 400


def test_token_budget_is_spent_at_the_published_cost(
    client: httpx.Client, box: PipedriveSandbox
) -> None:
    person(client, "a@b.gr")
    client.get("/api/v2/persons/search", params={"term": "a@b.gr"})
    client.get("/v1/personFields")
    assert box.tokens_spent == 10 + 40 + 20


def test_burst_limit_is_429_with_ratelimit_headers(client: httpx.Client) -> None:
    codes = [client.get("/v1/users/me").status_code for _ in range(21)]
    assert codes == [200] * 20 + [429]
    last = client.get("/v1/users/me")
    assert last.headers["x-ratelimit-limit"] == "20"
    assert last.headers["x-ratelimit-remaining"] == "0"


def test_searches_have_their_own_burst_limit(client: httpx.Client) -> None:
    codes = [
        client.get("/api/v2/persons/search", params={"term": "zz"}).status_code for _ in range(11)
    ]
    assert codes == [200] * 10 + [429]


def test_daily_budget_spent_is_429(box: PipedriveSandbox, client: httpx.Client) -> None:
    box.tokens_spent = box.daily_tokens - 1
    assert client.get("/v1/users/me").status_code == 429


def test_ignoring_429s_ends_in_cloudflares_403_page(client: httpx.Client) -> None:
    for _ in range(20 + 50):
        client.get("/v1/users/me")
    blocked = client.get("/v1/users/me")
    assert blocked.status_code == 403
    assert "html" in blocked.headers["content-type"]


def test_lead_needs_a_title_and_a_person(client: httpx.Client) -> None:
    assert client.post("/v1/leads", json={"title": "x"}).status_code == 400
    pid = person(client, "l@b.gr").json()["data"]["id"]
    lead = client.post("/v1/leads", json={"title": "x", "person_id": pid})
    assert lead.status_code == 201
    converted = client.post(f"/api/v2/leads/{lead.json()['data']['id']}/convert/deal", json={})
    assert converted.json()["data"]["conversion_id"]


def test_wrong_token_is_401(box: PipedriveSandbox) -> None:
    with httpx.Client(transport=box.transport(), base_url=BASE) as anon:
        resp = anon.get("/v1/users/me", headers={"x-api-token": "wrong"})
    assert resp.status_code == 401


def test_leads_are_listed_by_person_and_archived_status(client: httpx.Client) -> None:
    first = person(client, "a@example.gr").json()["data"]["id"]
    second = person(client, "b@example.gr").json()["data"]["id"]
    mine = client.post("/v1/leads", json={"title": "Μέλι", "person_id": first}).json()["data"]
    client.post("/v1/leads", json={"title": "Λάδι", "person_id": second})
    client.post(f"/api/v2/leads/{mine['id']}/convert/deal", json={})
    other = client.post("/v1/leads", json={"title": "Τυρί", "person_id": first}).json()["data"]

    def titles(**params: object) -> list[str]:
        answer = client.get("/v1/leads", params=params).json()
        assert answer["success"] is True
        return [row["title"] for row in answer["data"]]

    assert titles(person_id=first) == ["Μέλι", "Τυρί"]
    assert titles(person_id=first, archived_status="not_archived") == [other["title"]]
    assert titles(person_id=first, archived_status="archived") == ["Μέλι"]
    assert titles(limit=1, start=1) == ["Λάδι"]
