"""The Mailchimp emulator against Mailchimp's documented behaviour, with raw httpx calls."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import httpx
import pytest

from dixis_integrations.sandbox.mailchimp import MailchimpSandbox
from dixis_integrations.sandbox.serve import serve


def _hash(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


@pytest.fixture
def box() -> MailchimpSandbox:
    sandbox = MailchimpSandbox()
    sandbox.bind("http://mc.test")
    return sandbox


def client(box: MailchimpSandbox, key: str | None = None) -> httpx.Client:
    c = box.credentials()
    return httpx.Client(
        transport=box.transport(), base_url=c["base_url"], auth=("any", key or c["api_key"])
    )


def member_url(box: MailchimpSandbox, email: str) -> str:
    return f"/lists/{box.list_id}/members/{_hash(email)}"


def test_ping_needs_the_api_key(box: MailchimpSandbox) -> None:
    with client(box) as http:
        assert http.get("/ping").json() == {"health_status": "Everything's Chimpy!"}
    with client(box, key="wrong-us21") as http:
        answer = http.get("/ping")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "API Key Invalid"


def test_put_adds_with_status_if_new_and_updates_without_changing_status(
    box: MailchimpSandbox,
) -> None:
    url = member_url(box, "A@Example.gr")
    with client(box) as http:
        missing = http.put(url, json={"email_address": "a@example.gr"})
        assert missing.status_code == 400
        assert missing.json()["errors"][0]["field"] == "status_if_new"
        created = http.put(
            url, json={"email_address": "A@Example.gr", "status_if_new": "subscribed"}
        )
        assert created.json()["status"] == "subscribed"
        assert created.json()["id"] == _hash("a@example.gr")
        http.patch(url, json={"status": "unsubscribed"})
        again = http.put(
            url,
            json={
                "email_address": "a@example.gr",
                "status_if_new": "subscribed",
                "merge_fields": {"FNAME": "A"},
            },
        )
    assert again.json()["status"] == "unsubscribed"  # status_if_new ignored for a member
    assert again.json()["merge_fields"] == {"FNAME": "A"}


def test_hash_must_match_the_address(box: MailchimpSandbox) -> None:
    with client(box) as http:
        answer = http.put(
            member_url(box, "other@example.gr"),
            json={"email_address": "a@example.gr", "status_if_new": "subscribed"},
        )
    assert answer.status_code == 400
    assert answer.json()["title"] == "Invalid Resource"


def test_pending_sends_a_confirmation_and_the_click_subscribes(box: MailchimpSandbox) -> None:
    with client(box) as http:
        http.put(
            member_url(box, "b@example.gr"),
            json={"email_address": "b@example.gr", "status_if_new": "pending"},
        )
    assert box.confirmations == ["b@example.gr"]
    box.confirm("b@example.gr")
    assert box.member("b@example.gr")["status"] == "subscribed"  # type: ignore[index]


def test_unsubscribed_member_cannot_be_resubscribed_by_the_api(box: MailchimpSandbox) -> None:
    url = member_url(box, "c@example.gr")
    with client(box) as http:
        http.put(url, json={"email_address": "c@example.gr", "status_if_new": "subscribed"})
        http.patch(url, json={"status": "unsubscribed"})
        answer = http.put(url, json={"email_address": "c@example.gr", "status": "subscribed"})
        assert answer.json()["title"] == "Member In Compliance State"
        pending = http.put(url, json={"email_address": "c@example.gr", "status": "pending"})
    assert pending.json()["status"] == "pending"


def test_marketing_permissions_must_be_the_audiences(box: MailchimpSandbox) -> None:
    body: dict[str, Any] = {"email_address": "d@example.gr", "status_if_new": "subscribed"}
    with client(box) as http:
        bad = http.put(
            member_url(box, "d@example.gr"),
            json={
                **body,
                "marketing_permissions": [{"marketing_permission_id": "nope", "enabled": True}],
            },
        )
        assert bad.status_code == 400
        good = http.put(
            member_url(box, "d@example.gr"),
            json={
                **body,
                "marketing_permissions": [
                    {"marketing_permission_id": box.marketing_permission_id, "enabled": True}
                ],
            },
        )
    assert good.json()["marketing_permissions"][0]["enabled"] is True


def test_tags_add_and_remove(box: MailchimpSandbox) -> None:
    url = member_url(box, "e@example.gr")
    with client(box) as http:
        http.put(url, json={"email_address": "e@example.gr", "status_if_new": "subscribed"})
        ok = http.post(
            f"{url}/tags",
            json={
                "tags": [{"name": "vip", "status": "active"}, {"name": "new", "status": "active"}]
            },
        )
        assert ok.status_code == 204
        http.post(f"{url}/tags", json={"tags": [{"name": "new", "status": "inactive"}]})
    assert [t["name"] for t in box.member("e@example.gr")["tags"]] == ["vip"]  # type: ignore[index]


def test_delete_permanent_forgets_and_blocks_reimport(box: MailchimpSandbox) -> None:
    url = member_url(box, "f@example.gr")
    with client(box) as http:
        http.put(url, json={"email_address": "f@example.gr", "status_if_new": "subscribed"})
        assert http.post(f"{url}/actions/delete-permanent").status_code == 204
        assert http.get(url).status_code == 404
        again = http.put(url, json={"email_address": "f@example.gr", "status_if_new": "subscribed"})
        assert again.json()["title"] == "Forgotten Email Not Subscribed"
        assert http.post(f"{url}/actions/delete-permanent").status_code == 404


def test_batches_run_operations_and_report_errors(box: MailchimpSandbox) -> None:
    ops = [
        {
            "method": "PUT",
            "path": f"/lists/{box.list_id}/members/{_hash('g@example.gr')}",
            "operation_id": "g",
            "body": json.dumps({"email_address": "g@example.gr", "status_if_new": "subscribed"}),
        },
        {
            "method": "PATCH",
            "path": f"/lists/{box.list_id}/members/{_hash('zz@example.gr')}",
            "operation_id": "zz",
            "body": json.dumps({"status": "unsubscribed"}),
        },
    ]
    with client(box) as http:
        created = http.post("/batches", json={"operations": ops}).json()
        assert created["status"] == "pending"
        assert created["total_operations"] == 2
        done = http.get(f"/batches/{created['id']}").json()
    assert (done["status"], done["finished_operations"], done["errored_operations"]) == (
        "finished",
        2,
        1,
    )
    assert [r["status_code"] for r in box.batch_results(created["id"])] == [200, 404]


def test_more_than_ten_concurrent_connections_get_429() -> None:
    box = MailchimpSandbox()
    gate = threading.Event()
    original = box.ping

    def slow_ping(request: httpx.Request) -> httpx.Response:
        gate.wait(5)
        return original(request)

    box.ping = slow_ping  # type: ignore[method-assign]
    statuses: list[int] = []
    with serve(box.handle) as served:
        box.bind(served.base_url)
        # one client shared by the threads: its pool opens a connection per request
        http = httpx.Client(
            base_url=f"{served.base_url}/3.0",
            auth=("x", box.api_key),
            limits=httpx.Limits(max_connections=20),
            timeout=10,
        )

        def call() -> None:
            statuses.append(http.get("/ping").status_code)

        threads = [threading.Thread(target=call) for _ in range(12)]
        for t in threads:
            t.start()
        for _ in range(250):
            if box.rejected_concurrent >= 2:
                break
            threading.Event().wait(0.02)
        gate.set()
        for t in threads:
            t.join()
        http.close()
    assert sorted(statuses) == [200] * 10 + [429] * 2


def test_webhooks_are_called_form_encoded_for_user_unsubscribes() -> None:
    bodies: list[bytes] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(200)

    box = MailchimpSandbox(webhook_client=httpx.Client(transport=httpx.MockTransport(receiver)))
    box.bind("http://mc.test")
    with client(box) as http:
        bad = http.post(f"/lists/{box.list_id}/webhooks", json={"url": "not a url"})
        assert bad.status_code == 400
        http.post(
            f"/lists/{box.list_id}/webhooks",
            json={
                "url": "https://dixis.test/hook",
                "events": {"unsubscribe": True},
                "sources": {"user": True},
            },
        )
        http.put(
            member_url(box, "k@example.gr"),
            json={"email_address": "k@example.gr", "status_if_new": "subscribed"},
        )
    box.unsubscribe_click("k@example.gr")
    assert box.member("k@example.gr")["status"] == "unsubscribed"  # type: ignore[index]
    (body,) = bodies
    assert body.startswith(b"type=unsubscribe&fired_at=")
    assert b"data%5Bemail%5D=k%40example.gr" in body
    assert box.webhook_deliveries[0].headers["content-type"] == "application/x-www-form-urlencoded"
