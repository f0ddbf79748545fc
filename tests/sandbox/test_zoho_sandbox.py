"""The Zoho Inventory emulator against the documented behaviour, with raw httpx calls."""

from __future__ import annotations

import hashlib
import hmac
import threading

import httpx
import pytest

from dixis_integrations.sandbox.serve import serve
from dixis_integrations.sandbox.zoho import ZohoSandbox

BASE = "http://zoho.test"


@pytest.fixture
def box() -> ZohoSandbox:
    sandbox = ZohoSandbox(time_scale=0.001)
    sandbox.bind(BASE)
    sandbox.add_item("FETA-1", stock=10)
    return sandbox


def _client(box: ZohoSandbox) -> httpx.Client:
    token = box.oauth.issue_token()["access_token"]
    return httpx.Client(
        transport=box.transport(),
        base_url=BASE + "/inventory/v1",
        headers={"Authorization": f"Zoho-oauthtoken {token}"},
        params={"organization_id": box.organization_id},
    )


def test_a_bearer_header_or_a_missing_organization_is_refused(box: ZohoSandbox) -> None:
    token = box.oauth.issue_token()["access_token"]
    with httpx.Client(transport=box.transport(), base_url=BASE + "/inventory/v1") as raw:
        bearer = raw.get(
            "/items",
            params={"organization_id": box.organization_id},
            headers={"Authorization": f"Bearer {token}"},
        )
        no_org = raw.get("/items", headers={"Authorization": f"Zoho-oauthtoken {token}"})
    assert (bearer.status_code, bearer.json()["code"]) == (401, 57)
    assert no_org.status_code == 400
    assert no_org.json()["code"] != 0


def test_refresh_tokens_do_not_rotate(box: ZohoSandbox) -> None:
    issued = box.oauth.issue_token()
    creds = box.credentials()
    with httpx.Client(transport=box.transport()) as raw:
        for _ in range(2):
            answer = raw.post(
                creds["token_url"],
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": issued["refresh_token"],
                    "client_id": creds["client_id"],
                    "client_secret": creds["client_secret"],
                },
            )
            assert answer.status_code == 200


def test_pages_hold_at_most_200_items(box: ZohoSandbox) -> None:
    for i in range(250):
        box.add_item(f"S{i}")
    with _client(box) as client:
        first = client.get("/items", params={"page": 1, "per_page": 200}).json()
        second = client.get("/items", params={"page": 2, "per_page": 200}).json()
        too_big = client.get("/items", params={"per_page": 201})
    assert (len(first["items"]), first["page_context"]["has_more_page"]) == (200, True)
    assert (len(second["items"]), second["page_context"]["has_more_page"]) == (51, False)
    assert too_big.status_code == 400


def test_the_101st_call_in_a_minute_is_throttled(box: ZohoSandbox) -> None:
    box.clock.scale = 1.0  # real minutes: the window cannot roll over during the test
    with _client(box) as client:
        codes = [client.get("/organizations").status_code for _ in range(101)]
    assert codes[:100] == [200] * 100
    assert codes[100] == 429


def test_adjustments_change_stock_and_refuse_going_negative(box: ZohoSandbox) -> None:
    item_id = next(iter(box.items))
    body = {
        "date": "2026-11-20",
        "reason": "count",
        "adjustment_type": "quantity",
        "line_items": [{"item_id": item_id, "quantity_adjusted": -4}],
    }
    with _client(box) as client:
        assert client.post("/inventoryadjustments", json=body).status_code == 201
        body["line_items"][0]["quantity_adjusted"] = -7  # type: ignore[index]
        refused = client.post("/inventoryadjustments", json=body)
        item = client.get(f"/items/{item_id}").json()["item"]
    assert refused.status_code == 400
    assert item["stock_on_hand"] == 6
    assert item["warehouses"][0]["warehouse_stock_on_hand"] == 6


def test_a_purchase_order_number_is_unique(box: ZohoSandbox) -> None:
    vendor = box.add_vendor("Coop")
    body = {
        "vendor_id": vendor,
        "purchaseorder_number": "PO-1",
        "line_items": [{"item_id": next(iter(box.items)), "quantity": 5}],
    }
    params = {"ignore_auto_number_generation": "true"}
    with _client(box) as client:
        assert client.post("/purchaseorders", json=body, params=params).status_code == 201
        again = client.post("/purchaseorders", json=body, params=params)
    assert (again.status_code, again.json()["code"]) == (400, 1001)


def test_stock_changes_send_a_signed_webhook_over_real_http(box: ZohoSandbox) -> None:
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        request.read()
        received.append(request)
        return httpx.Response(200)

    with serve(receiver) as hooks, serve(box.handle) as api:
        box.subscribe(hooks.base_url + "/hooks/zoho")
        box.set_stock("FETA-1", 3)
        token = box.oauth.issue_token()["access_token"]
        served = httpx.get(
            api.base_url + "/inventory/v1/items",
            params={"organization_id": box.organization_id},
            headers={"Authorization": f"Zoho-oauthtoken {token}"},
        )
    assert served.json()["items"][0]["stock_on_hand"] == 3
    assert len(received) == 1
    stamp, signature = (
        p.split("=", 1)[1] for p in received[0].headers["x-zoho-webhook-signature"].split(",")
    )
    expected = hmac.new(
        box.webhook_secret.encode(), stamp.encode() + b"." + received[0].content, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(expected, signature)


def test_seed_stock_creates_missing_skus_and_sets_levels(box: ZohoSandbox) -> None:
    box.seed_stock({"FETA-1": 3, "HON-450": 25})
    with _client(box) as client:
        items = {i["sku"]: i["stock_on_hand"] for i in client.get("/items").json()["items"]}
    assert items == {"FETA-1": 3, "HON-450": 25}


def test_the_daily_cap_is_enforced_when_given() -> None:
    box = ZohoSandbox(time_scale=0.001, daily_limit=3)
    box.bind(BASE)
    with _client(box) as client:
        codes = [client.get("/items").status_code for _ in range(4)]
        body = client.get("/items").json()
    assert codes == [200, 200, 200, 429]
    assert body["code"] == 45


def test_calls_beyond_the_concurrency_limit_are_refused() -> None:
    box = ZohoSandbox(time_scale=1.0, concurrency_limit=5, latency=0.5)
    box.bind(BASE)
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        with _client(box) as client:
            status = client.get("/items").status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(429) == box.concurrency_rejected >= 1
    assert statuses.count(200) >= 5
    with _client(box) as client:  # nothing in progress: admitted again
        assert client.get("/items").status_code == 200
