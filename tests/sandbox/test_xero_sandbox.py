"""The Xero emulator against Xero's documented behaviour, with raw httpx (no adapter)."""

from __future__ import annotations

import json
import queue
import threading
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dixis_integrations.sandbox import xero as xero_sandbox
from dixis_integrations.sandbox.kit import sign_hmac_sha256
from dixis_integrations.sandbox.serve import serve
from dixis_integrations.sandbox.xero import XeroSandbox

API = "/api.xro/2.0"


@pytest.fixture
def sandbox() -> XeroSandbox:
    return XeroSandbox()


def _client(sandbox: XeroSandbox, tenant: str | None = None) -> httpx.Client:
    creds = sandbox.credentials()
    return httpx.Client(
        transport=sandbox.transport(),
        base_url="http://sandbox.invalid",
        headers={
            "Authorization": f"Bearer {creds['access_token']}",
            "xero-tenant-id": tenant or creds["tenant_id"],
            "Accept": "application/json",
        },
    )


def _invoice(number: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "Type": "ACCREC",
        "Contact": {"Name": "Γιώργος"},
        "InvoiceNumber": number,
        "LineAmountTypes": "Inclusive",
        "Status": "AUTHORISED",
        "LineItems": [
            {
                "Description": "oil",
                "Quantity": 2,
                "UnitAmount": 6.2,
                "TaxType": "TAX002",
                "AccountCode": "200",
            }
        ],
    }
    data.update(overrides)
    return data


def test_requests_without_a_valid_token_get_401(sandbox: XeroSandbox) -> None:
    response = httpx.Client(transport=sandbox.transport()).get(
        "http://sandbox.invalid" + API + "/Invoices"
    )
    assert response.status_code == 401


def test_connections_list_the_organisations(sandbox: XeroSandbox) -> None:
    body = _client(sandbox).get("/connections").json()
    assert [c["tenantType"] for c in body] == ["ORGANISATION", "ORGANISATION"]
    assert body[0]["tenantId"] == sandbox.tenant_id


def test_an_unknown_tenant_is_forbidden(sandbox: XeroSandbox) -> None:
    response = _client(sandbox, tenant="00000000-0000-0000-0000-000000000000").get(
        API + "/Invoices"
    )
    assert response.status_code == 403


def test_inclusive_invoice_totals_and_every_response_has_limit_headers(
    sandbox: XeroSandbox,
) -> None:
    response = _client(sandbox).put(API + "/Invoices", json={"Invoices": [_invoice("A-1")]})
    assert response.status_code == 200
    (invoice,) = json.loads(response.content, parse_float=Decimal)["Invoices"]
    assert invoice["Total"] == Decimal("12.40")
    assert invoice["TotalTax"] == Decimal("1.43")  # 12.40 * 13 / 113, to the cent
    assert invoice["SubTotal"] == Decimal("10.97")
    assert invoice["Date"].startswith("/Date(")
    assert response.headers["X-MinLimit-Remaining"] == "59"
    assert response.headers["X-DayLimit-Remaining"] == "4999"
    assert response.headers["X-AppMinLimit-Remaining"] == "9999"


def test_summarize_errors_false_returns_200_with_mixed_results(sandbox: XeroSandbox) -> None:
    client = _client(sandbox)
    client.put(API + "/Invoices", json={"Invoices": [_invoice("A-1")]})
    response = client.put(
        API + "/Invoices",
        params={"summarizeErrors": "false"},
        json={"Invoices": [_invoice("A-2"), _invoice("A-1")]},
    )
    assert response.status_code == 200
    first, second = response.json()["Invoices"]
    assert first["StatusAttributeString"] == "OK"
    assert second["HasErrors"] is True
    assert second["ValidationErrors"] == [{"Message": "Invoice # must be unique."}]


def test_a_validation_error_is_a_400_validation_exception_by_default(
    sandbox: XeroSandbox,
) -> None:
    bad = _invoice(
        "A-1", LineItems=[{"Description": "x", "Quantity": 1, "UnitAmount": 1, "TaxType": "NOPE"}]
    )
    response = _client(sandbox).put(API + "/Invoices", json={"Invoices": [bad]})
    assert response.status_code == 400
    body = response.json()
    assert (body["ErrorNumber"], body["Type"]) == (10, "ValidationException")
    assert "TaxType code 'NOPE'" in body["Elements"][0]["ValidationErrors"][0]["Message"]


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    sandbox: XeroSandbox,
) -> None:
    client = _client(sandbox)
    headers = {"Idempotency-Key": "k-1"}
    first = client.put(API + "/Invoices", json={"Invoices": [_invoice("A-1")]}, headers=headers)
    again = client.put(API + "/Invoices", json={"Invoices": [_invoice("A-1")]}, headers=headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert len(sandbox.tenants[sandbox.tenant_id].invoices) == 1
    other = client.put(API + "/Invoices", json={"Invoices": [_invoice("A-2")]}, headers=headers)
    assert other.status_code == 400


def test_minute_limit_answers_429_with_the_problem_and_retry_after() -> None:
    sandbox = XeroSandbox(minute_limit=2)
    client = _client(sandbox)
    for _ in range(2):
        assert client.get(API + "/Invoices").status_code == 200
    throttled = client.get(API + "/Invoices")
    assert throttled.status_code == 429
    assert throttled.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    # The other organisation has its own minute.
    assert (
        _client(sandbox, tenant=list(sandbox.tenants)[1]).get(API + "/Invoices").status_code == 200
    )


def test_on_scaled_time_retry_after_is_what_the_scaled_window_still_lasts() -> None:
    sandbox = XeroSandbox(minute_limit=1, time_scale=0.01)  # a minute lasts 0.6 s
    client = _client(sandbox)
    assert client.get(API + "/Invoices").status_code == 200
    throttled = client.get(API + "/Invoices")
    assert throttled.status_code == 429
    assert 0 < float(throttled.headers["Retry-After"]) <= 0.6


def test_daily_limit_names_the_day() -> None:
    sandbox = XeroSandbox(day_limit=1)
    client = _client(sandbox)
    client.get(API + "/Invoices")
    throttled = client.get(API + "/Invoices")
    assert throttled.headers["X-Rate-Limit-Problem"] == "day"
    assert int(throttled.headers["Retry-After"]) > 3600


def test_an_update_without_line_item_ids_replaces_the_lines(sandbox: XeroSandbox) -> None:
    client = _client(sandbox)
    two_lines = _invoice("A-1", Status="DRAFT")
    two_lines["LineItems"] = two_lines["LineItems"] * 2
    created = client.put(API + "/Invoices", json={"Invoices": [two_lines]}).json()["Invoices"][0]
    first_id = created["LineItems"][0]["LineItemID"]
    kept = client.post(
        API + f"/Invoices/{created['InvoiceID']}",
        json={
            "Invoices": [
                {
                    "LineItems": [
                        {
                            "LineItemID": first_id,
                            "Description": "oil",
                            "Quantity": 1,
                            "UnitAmount": 6.2,
                            "TaxType": "TAX002",
                        }
                    ]
                }
            ]
        },
    ).json()["Invoices"][0]
    assert [line["LineItemID"] for line in kept["LineItems"]] == [first_id]


def test_where_filters_and_paging(sandbox: XeroSandbox) -> None:
    client = _client(sandbox)
    client.put(
        API + "/Contacts",
        json={
            "Contacts": [
                {"Name": "A", "ContactNumber": "c-1"},
                {"Name": "B", "ContactNumber": "c-2"},
            ]
        },
    )
    found = client.get(API + "/Contacts", params={"where": 'ContactNumber=="c-2"'}).json()
    assert [c["Name"] for c in found["Contacts"]] == ["B"]
    client.put(API + "/Invoices", json={"Invoices": [_invoice(f"N-{i}") for i in range(3)]})
    page = client.get(API + "/Invoices", params={"page": "2", "pageSize": "2"}).json()
    assert page["pagination"] == {"page": 2, "pageSize": 2, "pageCount": 2, "itemCount": 3}
    assert "LineItems" in page["Invoices"][0]
    assert "LineItems" not in client.get(API + "/Invoices").json()["Invoices"][0]


def test_credit_note_allocation_reduces_the_amount_due(sandbox: XeroSandbox) -> None:
    client = _client(sandbox)
    invoice = client.put(API + "/Invoices", json={"Invoices": [_invoice("A-1")]}).json()
    invoice = invoice["Invoices"][0]
    note = client.put(
        API + "/CreditNotes",
        json={
            "CreditNotes": [
                {
                    "Type": "ACCRECCREDIT",
                    "Status": "AUTHORISED",
                    "Contact": {"ContactID": invoice["Contact"]["ContactID"]},
                    "LineAmountTypes": "Inclusive",
                    "LineItems": [
                        {"Description": "r", "Quantity": 1, "UnitAmount": 2.4, "TaxType": "TAX002"}
                    ],
                }
            ]
        },
    ).json()["CreditNotes"][0]
    allocation = client.put(
        API + f"/CreditNotes/{note['CreditNoteID']}/Allocations",
        json={
            "Allocations": [
                {
                    "Amount": 2.4,
                    "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                    "Date": "2026-03-14",
                }
            ]
        },
    )
    assert allocation.status_code == 200
    fetched = client.get(API + f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert Decimal(str(fetched["AmountDue"])) == Decimal("10.00")


def test_token_endpoint_issues_and_rotates_tokens(sandbox: XeroSandbox) -> None:
    creds = sandbox.credentials()
    client = httpx.Client(transport=sandbox.transport())
    response = client.post(
        creds["token_url"].replace(sandbox.base_url, "http://sandbox.invalid"),
        data={"grant_type": "refresh_token", "refresh_token": creds["refresh_token"]},
        auth=(creds["client_id"], creds["client_secret"]),
    )
    assert response.status_code == 200
    token = response.json()
    assert token["expires_in"] == 1800
    assert token["refresh_token"] != creds["refresh_token"]


def test_signed_webhooks_and_intent_to_receive(sandbox: XeroSandbox) -> None:
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        good = sign_hmac_sha256(sandbox.webhook_key, request.content)
        return httpx.Response(200 if request.headers["x-xero-signature"] == good else 401)

    sandbox._webhook_client = httpx.Client(transport=httpx.MockTransport(receiver))
    assert sandbox.intent_to_receive("https://hooks.example/xero") is True
    _client(sandbox).put(API + "/Invoices", json={"Invoices": [_invoice("A-1")]})
    assert sandbox.deliver_events("https://hooks.example/xero") == 200
    events = json.loads(received[-1].content)["events"]
    assert {e["eventCategory"] for e in events} == {"INVOICE", "CONTACT"}


def test_served_over_http(sandbox: XeroSandbox) -> None:
    with serve(sandbox.handle) as served:
        sandbox.bind(served.base_url)
        creds = sandbox.credentials()
        response = httpx.get(
            creds["base_url"] + "/Organisation",
            headers={
                "Authorization": f"Bearer {creds['access_token']}",
                "xero-tenant-id": creds["tenant_id"],
            },
        )
    assert response.status_code == 200
    assert response.json()["Organisations"][0]["CountryCode"] == "GR"


def test_a_sixth_call_in_progress_is_refused_as_concurrent(sandbox: XeroSandbox) -> None:
    sandbox._inflight[sandbox.tenant_id] = 5  # five calls of this tenant in progress
    refused = _client(sandbox).get(API + "/Invoices")
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "concurrent"
    sandbox._inflight[sandbox.tenant_id] = 4
    assert _client(sandbox).get(API + "/Invoices").status_code == 200
    assert sandbox.concurrency_rejected == 1


def test_calls_from_threads_in_process_past_the_limit_are_refused(
    sandbox: XeroSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 5 admitted calls are held in progress (as the network would hold them) until
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
            answers.put(client.get(API + "/Invoices").status_code)

    threads = [threading.Thread(target=call) for _ in range(5 + 3)]
    for thread in threads:
        thread.start()
    for _ in range(5):
        assert admitted.acquire(timeout=30)
    refused = [answers.get(timeout=30) for _ in range(3)]
    release.set()
    for thread in threads:
        thread.join(30)
    served = [answers.get(timeout=30) for _ in range(5)]
    assert refused == [429, 429, 429]
    assert served == [200] * 5
    assert sandbox.concurrency_rejected == 3


def test_latency_holds_each_call_for_the_scaled_time(monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = XeroSandbox(latency=0.4, time_scale=0.5)
    slept: list[float] = []
    monkeypatch.setattr(xero_sandbox.time, "sleep", slept.append)
    with _client(sandbox) as client:
        client.get(API + "/Invoices")
    assert slept == [0.2]


def test_items_payments_and_credit_notes_are_read_by_id(sandbox: XeroSandbox) -> None:
    client = _client(sandbox)
    made = client.put(API + "/Items", json={"Items": [{"Code": "OIL-1", "Name": "Λάδι"}]})
    item_id = made.json()["Items"][0]["ItemID"]
    by_id = client.get(API + f"/Items/{item_id}").json()["Items"]
    assert [i["Code"] for i in by_id] == ["OIL-1"]
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(API + f"/Payments/{missing}").status_code == 404
    assert client.get(API + f"/CreditNotes/{missing}").status_code == 404
