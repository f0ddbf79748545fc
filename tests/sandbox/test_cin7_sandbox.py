"""The Cin7 Core emulator against the documented behaviour, with raw httpx calls."""

from __future__ import annotations

import httpx
import pytest

from dixis_integrations.sandbox.cin7 import Cin7Sandbox

BASE = "http://cin7.test/ExternalApi/v2"


@pytest.fixture
def box() -> Cin7Sandbox:
    sandbox = Cin7Sandbox()
    sandbox.bind("http://cin7.test")
    sandbox.add_product("OIL-5L", stock=10)
    return sandbox


def _client(box: Cin7Sandbox) -> httpx.Client:
    return httpx.Client(
        transport=box.transport(),
        base_url=BASE,
        headers={
            "api-auth-accountid": box.account_id,
            "api-auth-applicationkey": box.application_key,
        },
    )


def test_missing_keys_are_refused_with_the_error_array(box: Cin7Sandbox) -> None:
    with httpx.Client(transport=box.transport(), base_url=BASE) as raw:
        answer = raw.get("/me")
    assert answer.status_code == 403
    assert answer.json()[0]["Exception"] == "Incorrect credentials!"


@pytest.mark.parametrize("status", [503, 429])
def test_the_61st_call_in_a_minute_is_throttled(status: int) -> None:
    sandbox = Cin7Sandbox(throttle_status=status)  # type: ignore[arg-type]
    with _client(sandbox) as client:
        codes = [client.get("/me").status_code for _ in range(61)]
    assert codes[:60] == [200] * 60
    assert codes[60] == status


def test_availability_pages_report_the_total_and_refuse_limits_over_1000(box: Cin7Sandbox) -> None:
    for i in range(5):
        box.add_product(f"S{i}")
    with _client(box) as client:
        page = client.get("/ref/productavailability", params={"Page": 2, "Limit": 5}).json()
        too_big = client.get("/ref/productavailability", params={"Limit": 1001})
    assert page["Total"] == 12
    assert len(page["ProductAvailabilityList"]) == 5
    assert too_big.status_code == 400


def test_a_stock_adjustment_line_sets_the_new_quantity(box: Cin7Sandbox) -> None:
    product = next(iter(box.products))
    body = {
        "EffectiveDate": "2026-11-20T00:00:00Z",
        "Status": "COMPLETED",
        "Reference": "r",
        "Lines": [{"ProductID": product, "Quantity": 4, "Location": "Main Warehouse"}],
    }
    with _client(box) as client:
        assert client.post("/stockadjustment", json=body).status_code == 200
        row = client.get("/ref/productavailability", params={"Sku": "OIL-5L"}).json()
    assert row["ProductAvailabilityList"][0]["OnHand"] == 4


def test_a_webhook_is_switched_off_after_six_failed_deliveries() -> None:
    failing = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    box = Cin7Sandbox(webhook_client=failing)
    box.add_product("OIL-5L", stock=10)
    with _client(box) as client:
        client.post(
            "/webhooks",
            json={"Type": "Stock/AvailableStockLevelChanged", "ExternalURL": "http://hooks.test/x"},
        )
        for i in range(8):
            box.set_stock("OIL-5L", i)
        hooks = client.get("/webhooks").json()["Webhooks"]
    assert len(box.webhook_deliveries) == 6
    assert hooks[0]["IsActive"] is False
    body = box.webhook_deliveries[0].body
    assert body.startswith(b"[")


def test_seed_stock_creates_missing_skus_and_sets_levels(box: Cin7Sandbox) -> None:
    box.seed_stock({"OIL-5L": 2, "HON-450": 25})
    with _client(box) as client:
        rows = client.get("/ref/productavailability", params={"Location": "Main Warehouse"})
    assert {r["SKU"]: r["OnHand"] for r in rows.json()["ProductAvailabilityList"]} == {
        "OIL-5L": 2,
        "HON-450": 25,
    }


def test_receiving_a_purchase_moves_on_order_to_on_hand_and_records_the_lines(
    box: Cin7Sandbox,
) -> None:
    supplier = box.add_supplier("Kritsa coop")
    with _client(box) as client:
        task = client.post("/purchase", json={"SupplierID": supplier, "Note": "PO-X"}).json()
        product_id = client.get("/product").json()["Products"][0]["ID"]
        line = {"ProductID": product_id, "SKU": "OIL-5L", "Quantity": 6}
        client.post(
            "/purchase/order",
            json={"TaskID": task["ID"], "Status": "AUTHORISED", "Lines": [line]},
        )
        before = client.get("/purchase/stock", params={"TaskID": task["ID"]}).json()
        box.receive_purchase(task["ID"])
        stock = client.get("/purchase/stock", params={"TaskID": task["ID"]}).json()
        purchase = client.get("/purchase", params={"ID": task["ID"]}).json()
        level = client.get("/ref/productavailability", params={"Sku": "OIL-5L"}).json()
    assert (before["Status"], before["Lines"]) == ("NOT AVAILABLE", [])
    assert stock["Status"] == "AUTHORISED"
    assert [(x["SKU"], x["Quantity"]) for x in stock["Lines"]] == [("OIL-5L", 6)]
    assert (purchase["Note"], purchase["Status"]) == ("PO-X", "RECEIVED")
    row = level["ProductAvailabilityList"][0]
    assert (row["OnHand"], row["OnOrder"]) == (16, 0)
    with pytest.raises(ValueError, match="no authorised order"):
        box.receive_purchase(task["ID"])  # received once
