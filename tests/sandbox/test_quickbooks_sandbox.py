"""The QuickBooks Online emulator against Intuit's documented behaviour (raw httpx)."""

from __future__ import annotations

import json
import queue
import threading
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dixis_integrations.sandbox import quickbooks as qbo_sandbox
from dixis_integrations.sandbox.quickbooks import QuickBooksSandbox
from dixis_integrations.sandbox.serve import serve


@pytest.fixture
def sandbox() -> QuickBooksSandbox:
    return QuickBooksSandbox()


def _client(sandbox: QuickBooksSandbox, token: str | None = None) -> httpx.Client:
    creds = sandbox.credentials()
    return httpx.Client(
        transport=sandbox.transport(),
        base_url=f"http://sandbox.invalid/v3/company/{creds['realm_id']}",
        headers={
            "Authorization": f"Bearer {token or creds['access_token']}",
            "Accept": "application/json",
        },
        params={"minorversion": "75"},
    )


def _customer(client: httpx.Client, name: str = "Γιώργος") -> dict[str, Any]:
    response = client.post("/customer", json={"DisplayName": name})
    assert response.status_code == 200
    return dict(response.json()["Customer"])


def _item(client: httpx.Client, name: str = "OIL") -> dict[str, Any]:
    response = client.post(
        "/item", json={"Name": name, "Type": "Service", "IncomeAccountRef": {"value": "1"}}
    )
    return dict(response.json()["Item"])


def _invoice(customer: str, item: str, **extra: Any) -> dict[str, Any]:
    return {
        "CustomerRef": {"value": customer},
        "GlobalTaxCalculation": "TaxInclusive",
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": 10.97,
                "SalesItemLineDetail": {
                    "ItemRef": {"value": item},
                    "TaxCodeRef": {"value": "2"},
                    "TaxInclusiveAmt": 12.40,
                },
            }
        ],
        **extra,
    }


def test_no_token_is_401_and_another_companys_token_is_403(sandbox: QuickBooksSandbox) -> None:
    plain = httpx.Client(transport=sandbox.transport())
    realm = sandbox.realm_id
    assert plain.get(f"http://sandbox.invalid/v3/company/{realm}/invoice/1").status_code == 401
    other = list(sandbox.tokens.values())[1]
    assert _client(sandbox, token=other).get("/invoice/1").status_code == 403


def test_tax_inclusive_invoice_totals(sandbox: QuickBooksSandbox) -> None:
    client = _client(sandbox)
    body = _invoice(_customer(client)["Id"], _item(client)["Id"], DocNumber="A-1")
    invoice = json.loads(client.post("/invoice", json=body).content, parse_float=Decimal)["Invoice"]
    assert invoice["TotalAmt"] == Decimal("12.40")
    assert invoice["TxnTaxDetail"]["TotalTax"] == Decimal("1.43")
    assert invoice["SyncToken"] == "0"


def test_duplicate_display_name_is_fault_6240(sandbox: QuickBooksSandbox) -> None:
    client = _client(sandbox)
    _customer(client)
    response = client.post("/customer", json={"DisplayName": "Γιώργος"})
    assert response.status_code == 400
    assert response.json()["Fault"]["Error"][0]["code"] == "6240"


def test_duplicate_doc_number_is_6140_and_long_doc_number_is_refused(
    sandbox: QuickBooksSandbox,
) -> None:
    client = _client(sandbox)
    body = _invoice(_customer(client)["Id"], _item(client)["Id"], DocNumber="A-1")
    client.post("/invoice", json=body)
    assert client.post("/invoice", json=body).json()["Fault"]["Error"][0]["code"] == "6140"
    long = {**body, "DocNumber": "X" * 22}
    assert client.post("/invoice", json=long).status_code == 400


def test_stale_sync_token_is_5010_and_sparse_update_keeps_fields(
    sandbox: QuickBooksSandbox,
) -> None:
    client = _client(sandbox)
    customer = _customer(client)
    ok = client.post(
        "/customer", json={"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Notes": "vip"}
    ).json()["Customer"]
    assert (ok["SyncToken"], ok["DisplayName"], ok["Notes"]) == ("1", "Γιώργος", "vip")
    stale = client.post(
        "/customer", json={"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Notes": "x"}
    )
    assert stale.json()["Fault"]["Error"][0]["code"] == "5010"


def test_unknown_property_is_2010(sandbox: QuickBooksSandbox) -> None:
    response = _client(sandbox).post("/customer", json={"DisplayName": "A", "Nickname": "x"})
    assert response.json()["Fault"]["Error"][0]["code"] == "2010"


def test_request_id_replays_the_original_response_whatever_the_body(
    sandbox: QuickBooksSandbox,
) -> None:
    client = _client(sandbox)
    first = client.post("/customer", params={"requestid": "r1"}, json={"DisplayName": "A"})
    again = client.post("/customer", params={"requestid": "r1"}, json={"DisplayName": "A"})
    assert again.json()["Customer"]["Id"] == first.json()["Customer"]["Id"]
    other = client.post("/customer", params={"requestid": "r1"}, json={"DisplayName": "B"})
    assert other.json() == first.json()  # Intuit: the same response, not an error
    assert (sandbox.replayed, sandbox.replayed_other_request) == (2, 1)
    assert len(sandbox.companies[sandbox.realm_id].table("Customer")) == 1


def test_query_and_batch_with_bids(sandbox: QuickBooksSandbox) -> None:
    client = _client(sandbox)
    customer = _customer(client)["Id"]
    item = _item(client)["Id"]
    batch = {
        "BatchItemRequest": [
            {"bId": "a", "operation": "create", "Invoice": _invoice(customer, item, DocNumber="1")},
            {"bId": "b", "operation": "create", "Invoice": _invoice("999", item)},
            {"bId": "c", "Query": "select * from Invoice where DocNumber = '1'"},
        ]
    }
    answers = client.post("/batch", json=batch).json()["BatchItemResponse"]
    assert [a["bId"] for a in answers] == ["a", "b", "c"]
    assert "Invoice" in answers[0]
    assert answers[1]["Fault"]["Error"][0]["code"] == "2500"
    assert answers[2]["QueryResponse"]["Invoice"][0]["DocNumber"] == "1"
    too_big = {
        "BatchItemRequest": [{"bId": str(n), "Query": "select * from Item"} for n in range(31)]
    }
    assert client.post("/batch", json=too_big).json()["Fault"]["Error"][0]["code"] == "1040"
    query = client.post(
        "/query",
        content=b"select * from Item where Name in ('OIL', 'X')",
        headers={"Content-Type": "application/text"},
    )
    assert [i["Name"] for i in query.json()["QueryResponse"]["Item"]] == ["OIL"]


def test_throttle_answers_xml_429() -> None:
    sandbox = QuickBooksSandbox(minute_limit=1)
    client = _client(sandbox)
    client.get("/invoice/1")
    throttled = client.get("/invoice/1")
    assert throttled.status_code == 429
    assert throttled.headers["content-type"] == "application/xml"
    assert b"ThrottleExceeded" in throttled.content
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60  # whole seconds, as Intuit sends


def test_on_scaled_time_retry_after_is_what_the_scaled_batch_window_still_lasts() -> None:
    sandbox = QuickBooksSandbox(batch_minute_limit=1, time_scale=0.01)  # a minute lasts 0.6 s
    client = _client(sandbox)
    body = {"BatchItemRequest": [{"bId": "1", "Query": "select * from Item"}]}
    assert client.post("/batch", json=body).status_code == 200
    throttled = client.post("/batch", json=body)
    assert throttled.status_code == 429
    assert 0 < float(throttled.headers["Retry-After"]) <= 0.6


def test_batch_calls_have_their_own_minute() -> None:
    sandbox = QuickBooksSandbox(batch_minute_limit=1)
    client = _client(sandbox)
    body = {"BatchItemRequest": [{"bId": "1", "Query": "select * from Item"}]}
    assert client.post("/batch", json=body).status_code == 200
    assert client.post("/batch", json=body).status_code == 429
    assert client.get("/invoice/1").status_code == 400  # plain calls still go through


def test_cdc_lists_changes_since(sandbox: QuickBooksSandbox) -> None:
    client = _client(sandbox)
    _customer(client)
    body = client.get(
        "/cdc", params={"entities": "Customer,Invoice", "changedSince": "2026-11-01T00:00:00Z"}
    ).json()
    blocks = body["CDCResponse"][0]["QueryResponse"]
    assert len(blocks[0]["Customer"]) == 1
    assert blocks[1]["Invoice"] == []


def test_discovery_document_and_token_refresh(sandbox: QuickBooksSandbox) -> None:
    with serve(sandbox.handle) as served:
        sandbox.bind(served.base_url)
        creds = sandbox.credentials()
        discovery = httpx.get(creds["discovery_url"]).json()
        token = httpx.post(
            discovery["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": creds["refresh_token"]},
            auth=(creds["client_id"], creds["client_secret"]),
        )
    assert token.status_code == 200
    assert token.json()["expires_in"] == 3600
    assert token.json()["x_refresh_token_expires_in"] == 8640000


def test_an_eleventh_call_in_progress_is_throttled(sandbox: QuickBooksSandbox) -> None:
    sandbox._inflight[sandbox.realm_id] = 10  # ten calls of this realm in progress
    refused = _client(sandbox).get("/invoice/1")
    assert refused.status_code == 429
    assert b"ThrottleExceeded" in refused.content
    sandbox._inflight[sandbox.realm_id] = 9
    assert _client(sandbox).get("/invoice/1").status_code == 400  # no such invoice


def test_calls_from_threads_in_process_past_the_limit_are_refused(
    sandbox: QuickBooksSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10 admitted calls are held in progress (as the network would hold them) until
    # released; the 3 arriving meanwhile from other threads are refused.
    release = threading.Event()
    admitted = threading.Semaphore(0)

    def hold(request: httpx.Request) -> None:
        admitted.release()
        assert release.wait(30)

    monkeypatch.setattr(sandbox, "_hold", hold)
    answers: queue.Queue[int] = queue.Queue()

    def call() -> None:
        with _client(sandbox) as client:
            answers.put(client.get("/invoice/1").status_code)

    threads = [threading.Thread(target=call) for _ in range(10 + 3)]
    for thread in threads:
        thread.start()
    for _ in range(10):
        assert admitted.acquire(timeout=30)
    refused = [answers.get(timeout=30) for _ in range(3)]
    release.set()
    for thread in threads:
        thread.join(30)
    served = [answers.get(timeout=30) for _ in range(10)]
    assert refused == [429, 429, 429]
    assert served == [400] * 10
    assert sandbox.concurrency_rejected == 3


def test_latency_holds_each_call_for_the_scaled_time(monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = QuickBooksSandbox(latency=0.4, time_scale=0.5)
    slept: list[float] = []
    monkeypatch.setattr(qbo_sandbox.time, "sleep", slept.append)
    with _client(sandbox) as client:
        client.get("/invoice/1")
    assert slept == [0.2]


def test_customers_can_be_queried_by_primary_email_address(sandbox: QuickBooksSandbox) -> None:
    client = _client(sandbox)
    made = client.post(
        "/customer",
        json={"DisplayName": "Γιώργος", "PrimaryEmailAddr": {"Address": "giorgos@example.gr"}},
    ).json()["Customer"]
    _customer(client, "Άλλος")  # no e-mail address
    query = "select * from Customer where PrimaryEmailAddr = 'giorgos@example.gr'"
    found = client.get("/query", params={"query": query}).json()["QueryResponse"]
    missing = client.get("/query", params={"query": query.replace("giorgos", "nobody")})
    assert [c["Id"] for c in found["Customer"]] == [made["Id"]]
    assert missing.json()["QueryResponse"] == {}


def _receipt(item: str, **extra: Any) -> dict[str, Any]:
    body = _invoice("", item, DocNumber="R-1", **extra)
    del body["CustomerRef"]  # optional on a RefundReceipt
    return body


def test_refund_receipt_needs_a_bank_or_asset_deposit_account(sandbox: QuickBooksSandbox) -> None:
    client = _client(sandbox)
    item = _item(client)["Id"]
    missing = client.post("/refundreceipt", json=_receipt(item)).json()["Fault"]["Error"][0]
    assert (missing["code"], missing["element"]) == ("2020", "DepositToAccountRef")
    income = client.post(
        "/refundreceipt", json=_receipt(item, DepositToAccountRef={"value": "1"})
    ).json()["Fault"]["Error"][0]
    assert (income["code"], income["element"]) == ("2500", "DepositToAccountRef")
    unknown = client.post(
        "/refundreceipt", json=_receipt(item, DepositToAccountRef={"value": "4"}, InvoiceRef={})
    ).json()["Fault"]["Error"][0]
    assert unknown["code"] == "2010"  # InvoiceRef is CreditMemo's, not RefundReceipt's
    made = json.loads(
        client.post(
            "/refundreceipt", json=_receipt(item, DepositToAccountRef={"value": "4"})
        ).content,
        parse_float=Decimal,
    )["RefundReceipt"]
    assert (made["TotalAmt"], made["Balance"]) == (Decimal("12.40"), Decimal("0.00"))
    found = client.post(
        "/query",
        content=b"select * from RefundReceipt where DocNumber = 'R-1'",
        headers={"Content-Type": "application/text"},
    ).json()["QueryResponse"]["RefundReceipt"]
    assert [r["Id"] for r in found] == [made["Id"]]
    assert client.get(f"/refundreceipt/{made['Id']}").json()["RefundReceipt"]["DocNumber"] == "R-1"


def test_an_expired_token_fault_on_the_discovery_document_is_a_5xx() -> None:
    from collections import deque

    from dixis_integrations.sandbox.kit import Fault, FaultPlan

    sandbox = QuickBooksSandbox(faults=FaultPlan(script=deque([Fault.EXPIRED_TOKEN])))
    creds = sandbox.credentials()
    with httpx.Client(transport=sandbox.transport()) as client:
        first = client.get(creds["discovery_url"])  # no token to expire: unavailable
        second = client.get(creds["discovery_url"])
    assert first.status_code == 503
    assert second.status_code == 200
    assert "token_endpoint" in second.json()
