"""The Brevo emulator against Brevo's documented behaviour, with raw httpx calls."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from dixis_integrations.sandbox.brevo import BrevoSandbox
from dixis_integrations.sandbox.serve import serve


@pytest.fixture
def box() -> BrevoSandbox:
    sandbox = BrevoSandbox()
    sandbox.bind("http://brevo.test")
    return sandbox


def client(box: BrevoSandbox, key: str | None = None) -> httpx.Client:
    c = box.credentials()
    return httpx.Client(
        transport=box.transport(), base_url=c["base_url"], headers={"api-key": key or c["api_key"]}
    )


def test_api_key_header_is_required(box: BrevoSandbox) -> None:
    with client(box, key="xkeysib-wrong") as http:
        answer = http.get("/account")
    assert answer.status_code == 401
    assert answer.json() == {"code": "unauthorized", "message": "Key not found"}


def test_create_then_duplicate_then_update_enabled(box: BrevoSandbox) -> None:
    body = {"email": "A@Example.gr", "attributes": {"FIRSTNAME": "A"}, "listIds": [2]}
    with client(box) as http:
        created = http.post("/contacts", json=body)
        assert created.status_code == 201
        assert created.json() == {"id": 1}
        dup = http.post("/contacts", json=body)
        assert dup.status_code == 400
        assert dup.json()["code"] == "duplicate_parameter"
        updated = http.post("/contacts", json={**body, "updateEnabled": True, "listIds": [3]})
        assert updated.status_code == 204
        contact = http.get("/contacts/a%40example.gr").json()
    assert contact["listIds"] == [2, 3]


def test_unknown_list_and_bad_email_are_refused(box: BrevoSandbox) -> None:
    with client(box) as http:
        assert (
            http.post("/contacts", json={"email": "b@example.gr", "listIds": [99]}).status_code
            == 404
        )
        bad = http.post("/contacts", json={"email": "not-an-email"})
    assert bad.json()["code"] == "invalid_parameter"


def test_double_opt_in_needs_a_doi_template_and_waits_for_the_click(box: BrevoSandbox) -> None:
    base = {"email": "c@example.gr", "includeListIds": [2], "redirectionUrl": "https://x.gr"}
    with client(box) as http:
        missing = http.post("/contacts/doubleOptinConfirmation", json=base)
        assert missing.json()["code"] == "missing_parameter"
        wrong = http.post("/contacts/doubleOptinConfirmation", json={**base, "templateId": 8})
        assert wrong.json()["code"] == "invalid_parameter"
        ok = http.post("/contacts/doubleOptinConfirmation", json={**base, "templateId": 7})
        assert ok.status_code == 201
        assert http.get("/contacts/c%40example.gr").status_code == 404
        box.confirm("c@example.gr")
        assert http.get("/contacts/c%40example.gr").json()["listIds"] == [2]


def test_put_blacklists_and_unlinks(box: BrevoSandbox) -> None:
    with client(box) as http:
        http.post("/contacts", json={"email": "d@example.gr", "listIds": [2, 3]})
        answer = http.put(
            "/contacts/d%40example.gr", json={"emailBlacklisted": True, "unlinkListIds": [2]}
        )
        assert answer.status_code == 204
        contact = http.get("/contacts/d%40example.gr").json()
        assert http.put("/contacts/zz%40example.gr", json={}).status_code == 404
    assert (contact["emailBlacklisted"], contact["listIds"], contact["listUnsubscribed"]) == (
        True,
        [3],
        [2],
    )


def test_transactional_email_is_processed_once_per_idempotency_key(box: BrevoSandbox) -> None:
    key = str(uuid.uuid4())
    body = {
        "sender": {"email": "orders@dixis.gr"},
        "to": [{"email": "e@example.gr"}],
        "subject": "s",
        "htmlContent": "<p>x</p>",
        "headers": {"idempotencyKey": key},
    }
    with client(box) as http:
        first = http.post("/smtp/email", json=body)
        second = http.post("/smtp/email", json=body)
        bad_key = http.post("/smtp/email", json={**body, "headers": {"idempotencyKey": "k"}})
        no_content = http.post("/smtp/email", json={**body, "htmlContent": None, "headers": {}})
        template = http.post(
            "/smtp/email", json={"to": [{"email": "e@example.gr"}], "templateId": 8}
        )
    assert first.status_code == 201
    assert first.json()["messageId"].endswith("@smtp-relay.mailin.fr>")
    assert second.json() == first.json()
    assert bad_key.status_code == 400
    assert no_content.json()["code"] == "missing_parameter"
    assert template.status_code == 201
    assert len(box.emails) == 2


def test_events_need_a_name_and_an_identifier(box: BrevoSandbox) -> None:
    with client(box) as http:
        assert http.post("/events", json={"event_name": "x"}).status_code == 400
        ok = http.post("/events", json={"event_name": "x", "identifiers": {"email_id": "a@b.gr"}})
    assert ok.status_code == 204
    assert len(box.events) == 1


def test_events_are_limited_to_ten_per_second_with_sib_headers() -> None:
    box = BrevoSandbox(time_scale=100.0)  # a second of Brevo time lasts 100 real seconds
    box.bind("http://brevo.test")
    body = {"event_name": "x", "identifiers": {"email_id": "a@b.gr"}}
    with client(box) as http:
        codes = [http.post("/events", json=body).status_code for _ in range(11)]
        last = http.post("/events", json=body)
    assert codes == [204] * 10 + [429]
    assert last.json()["code"] == "too_many_requests"
    assert last.headers["x-sib-ratelimit-limit"] == "10"
    assert "retry-after" not in last.headers


def test_list_add_takes_at_most_150_and_only_contacts(box: BrevoSandbox) -> None:
    with client(box) as http:
        http.post("/contacts", json={"email": "f@example.gr"})
        too_many = http.post(
            "/contacts/lists/3/contacts/add", json={"emails": [f"{i}@x.gr" for i in range(151)]}
        )
        ok = http.post(
            "/contacts/lists/3/contacts/add", json={"emails": ["f@example.gr", "g@x.gr"]}
        )
    assert too_many.json()["code"] == "out_of_range"
    assert ok.json() == {"contacts": {"success": ["f@example.gr"], "failure": ["g@x.gr"]}}


def test_delete_contact_and_served_over_http(box: BrevoSandbox) -> None:
    with serve(box.handle) as served:
        box.bind(served.base_url)
        c = box.credentials()
        with httpx.Client(base_url=c["base_url"], headers={"api-key": c["api_key"]}) as http:
            http.post("/contacts", json={"email": "h@example.gr"})
            assert http.delete("/contacts/h%40example.gr").status_code == 204
            assert http.delete("/contacts/h%40example.gr").status_code == 404


def test_marketing_webhooks_are_registered_and_called_with_json_events() -> None:
    seen: list[dict[str, object]] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        assert request.headers["content-type"] == "application/json"
        seen.append(json.loads(request.content))
        return httpx.Response(200)

    box = BrevoSandbox(webhook_client=httpx.Client(transport=httpx.MockTransport(receiver)))
    box.bind("http://brevo.test")
    with client(box) as http:
        bad = http.post("/webhooks", json={"url": "https://x.test/h", "events": ["nope"]})
        assert bad.status_code == 400
        assert bad.json()["code"] == "invalid_parameter"
        made = http.post(
            "/webhooks",
            json={"url": "https://x.test/h", "events": ["unsubscribed"], "type": "marketing"},
        )
        assert made.status_code == 201
        assert made.json() == {"id": 1}
        http.post("/contacts", json={"email": "eleni@example.gr", "listIds": [2]})
    box.unsubscribe_click("eleni@example.gr")
    assert box.contacts["eleni@example.gr"]["emailBlacklisted"] is True
    assert len(seen) == 1
    event = seen[0]
    assert (event["event"], event["email"], event["list_id"]) == (
        "unsubscribe",
        "eleni@example.gr",
        [2],
    )
    assert isinstance(event["ts_event"], int)
