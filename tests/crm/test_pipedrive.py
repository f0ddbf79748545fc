"""Pipedrive adapter: exact payloads, parsed answers, budgets, and runs against the sandbox."""

from __future__ import annotations

import json
from collections import deque
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tests.crm.conftest import Runner

from dixis_integrations.crm.leads import LeadBook
from dixis_integrations.crm.pipedrive import (
    Pipedrive,
    PipedriveConfig,
    TokenBudget,
    build_lead_body,
    build_person_body,
    classify,
    find_open_lead,
)
from dixis_integrations.errors import (
    InvalidInput,
    RateLimited,
    TransientError,
    ValidationRejected,
)
from dixis_integrations.models import Money
from dixis_integrations.models.crm import CRMContact, Lead, LeadStatus, UpsertStatus
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.sandbox.pipedrive import PipedriveSandbox

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
KEYS = {
    "reference": "k_ref",
    "total_orders": "k_orders",
    "total_spent": "k_spent",
    "last_order_date": "k_last",
    "segment": "k_segment",
    "acquisition_source": "k_source",
    "marketing_consent": "k_consent",
}


def contact(i: int = 1, **overrides: Any) -> CRMContact:
    data: dict[str, Any] = {
        "reference": f"cus_{i}",
        "email": f"buyer{i}@example.gr",
        "first_name": "Ελένη",
        "last_name": "Νικολάου",
        "phone": "6912345678",
        "total_orders": 5,
        "total_spent": Money.of("120.5"),
        "last_order_date": date(2026, 3, 2),
    }
    data.update(overrides)
    return CRMContact(**data)


@pytest.fixture
def sandbox() -> PipedriveSandbox:
    box = PipedriveSandbox()
    box.bind("http://pipedrive.test")
    return box


def adapter_for(sandbox: PipedriveSandbox, **kwargs: Any) -> Pipedrive:
    creds = sandbox.credentials()
    config = PipedriveConfig(api_token=SecretStr(creds["api_token"]), base_url=creds["base_url"])
    return Pipedrive(config, **kwargs)


# -- pure ------------------------------------------------------------------------------------


def test_person_body_puts_our_figures_in_custom_fields_by_key() -> None:
    checked = contact().model_copy(update={"phone": "+306912345678"})
    assert build_person_body(checked, KEYS) == {
        "name": "Ελένη Νικολάου",
        "emails": [{"value": "buyer1@example.gr", "primary": True, "label": "work"}],
        "phones": [{"value": "+306912345678", "primary": True, "label": "mobile"}],
        "custom_fields": {
            "k_ref": "cus_1",
            "k_orders": 5,
            "k_spent": {"value": Decimal("120.50"), "currency": "EUR"},
            "k_last": "2026-03-02",
            "k_segment": None,
            "k_source": None,
            "k_consent": "unknown",
        },
    }


def test_lead_body_has_a_title_and_its_person() -> None:
    lead = Lead(id="l", email="a@b.gr", last_name="Ζ", company="Μέλι Α.Ε.", created_at=NOW)
    assert build_lead_body(lead, 7) == {"title": "Μέλι Α.Ε. - Ζ", "person_id": 7}


def test_cloudflare_403_page_is_throttling() -> None:
    adapter = Pipedrive(PipedriveConfig(api_token=SecretStr("t")))
    req = httpx.Request("GET", "https://api.pipedrive.com/api/v2/persons/search")
    resp = httpx.Response(
        403, content=b"<html>Cloudflare</html>", headers={"content-type": "text/html"}, request=req
    )
    error = classify(resp, adapter.endpoint)
    assert isinstance(error, RateLimited)
    assert error.scope == "cloudflare"


def test_failure_body_is_a_validation_error_with_its_info() -> None:
    adapter = Pipedrive(PipedriveConfig(api_token=SecretStr("t")))
    req = httpx.Request("POST", "https://api.pipedrive.com/api/v2/persons")
    resp = httpx.Response(
        400,
        json={"success": False, "error": "Name must be given", "error_info": "name"},
        request=req,
    )
    error = classify(resp, adapter.endpoint)
    assert isinstance(error, ValidationRejected)
    assert error.message == "Name must be given (name)"


def test_token_budget_refuses_the_call_that_would_overspend() -> None:
    budget = TokenBudget(100)
    budget.spend("search")
    budget.spend("search")
    assert budget.remaining == 20
    with pytest.raises(RateLimited) as info:
        budget.spend("search")
    assert info.value.scope == "daily"
    assert budget.spent == 80


# -- against the sandbox ---------------------------------------------------------------------


def test_upsert_searches_then_creates_then_updates(sandbox: PipedriveSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    results = run(sandbox, adapter.upsert_contacts([contact(1), contact(2)]))
    assert [r.status for r in results] == [UpsertStatus.CREATED, UpsertStatus.CREATED]
    assert len([f for f in sandbox.fields if f["name"].startswith("Dixis")]) == 7
    again = run(sandbox, adapter.upsert_contact(contact(1, total_orders=6)))
    assert again.status is UpsertStatus.UPDATED
    assert again.external_id == results[0].external_id
    person = sandbox.persons[int(again.external_id or 0)]
    orders_key = next(f["key"] for f in sandbox.fields if f["name"] == "Dixis total orders")
    assert person["custom_fields"][orders_key] == 6
    creates = [r for r in sandbox.requests if r.method == "POST" and r.url.path.endswith("persons")]
    assert b'"value":120.50' in creates[0].content
    assert [r.method for r in sandbox.requests[-2:]] == ["GET", "PATCH"]
    # tokens: fields list 20 + 7 field creates 70 + 3 searches 120 + 2 creates 20 + 1 update 10
    assert adapter.budget.spent == sandbox.tokens_spent == 240


def test_a_failed_create_is_not_sent_again_blindly(sandbox: PipedriveSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.ensure_fields())
    # search ok, create answered 503: the adapter searches again instead of re-posting
    sandbox.faults = FaultPlan(script=deque([None, Fault.SERVER_ERROR]))
    with pytest.raises(TransientError, match="unavailable"):
        run(sandbox, adapter.upsert_contact(contact(1)))
    tail = [f"{r.method} {r.url.path}" for r in sandbox.requests[-3:]]
    assert tail == [
        "GET /api/v2/persons/search",
        "POST /api/v2/persons",
        "GET /api/v2/persons/search",
    ]
    assert sandbox.persons == {}


def test_bad_email_and_phone_are_refused_before_anything_is_sent(
    sandbox: PipedriveSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    with pytest.raises(InvalidInput) as info:
        run(sandbox, adapter.upsert_contact(contact(email="x@y", phone="+0")))
    assert [e.path for e in info.value.errors] == ["email", "phone"]
    assert sandbox.requests == []


def test_spent_budget_stops_before_sending(run: Runner) -> None:
    box = PipedriveSandbox()
    box.bind("http://pipedrive.test")
    adapter = adapter_for(box, budget=TokenBudget(30))
    with pytest.raises(RateLimited):
        run(box, adapter.upsert_contact(contact(1)))
    # the field list (20 tokens) and one field create (10); the next create was not sent
    assert [r.method for r in box.requests] == ["GET", "POST"]
    assert adapter.budget.spent == 30


def test_lead_on_a_new_person_and_its_conversion(sandbox: PipedriveSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    book = LeadBook()
    lead = Lead(id="l1", email="bee@example.gr", last_name="Μελισσάς", created_at=NOW)
    created = run(sandbox, book.create(lead, adapter))
    assert created.crm_id in sandbox.leads
    assert sandbox.leads[created.crm_id]["person_id"] in sandbox.persons
    converted = run(sandbox, book.convert("l1", adapter))
    assert converted.status is LeadStatus.CONVERTED
    assert sandbox.leads[created.crm_id]["converted"] is True


def test_erase_deletes_the_person(sandbox: PipedriveSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_contact(contact(1)))
    result = run(sandbox, adapter.erase("buyer1@example.gr"))
    assert result.erased
    assert sandbox.persons == {}
    assert run(sandbox, adapter.erase("buyer1@example.gr")).detail == "not present"


def test_burst_429_is_waited_out_and_retried(sandbox: PipedriveSandbox, run: Runner) -> None:
    sandbox.faults = FaultPlan(script=deque([Fault.RATE_LIMIT]), retry_after=0.01)
    adapter = adapter_for(sandbox)
    status = run(sandbox, adapter.check())
    assert status.ok
    assert json.loads(sandbox.requests[0].url.params.get("api_token", "null")) is None
    assert sandbox.requests[0].headers["x-api-token"] == sandbox.api_token


def test_changes_report_updates_and_deletions(sandbox: PipedriveSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    created = run(sandbox, adapter.upsert_contacts([contact(1), contact(2)]))
    first = run(sandbox, adapter.changes())
    assert sorted(c.email or "" for c in first.changes) == [
        "buyer1@example.gr",
        "buyer2@example.gr",
    ]
    assert not first.has_more
    run(sandbox, adapter.erase("buyer2@example.gr"))
    second = run(sandbox, adapter.changes(first.cursor))
    assert [(c.external_id, c.deleted) for c in second.changes] == [(created[1].external_id, True)]


def test_recents_pages_resume_at_the_next_offset() -> None:
    from dixis_integrations.crm._wire import decode_cursor
    from dixis_integrations.crm.pipedrive import parse_recents

    body = {
        "success": True,
        "data": [
            {
                "item": "person",
                "id": 7,
                "data": {
                    "id": 7,
                    "name": "Α",
                    "emails": [{"value": "a@b.gr", "primary": True}],
                    "update_time": "2026-03-14 09:30:00",
                    "active_flag": True,
                },
            }
        ],
        "additional_data": {
            "since_timestamp": "2026-03-14 00:00:00",
            "last_timestamp_on_page": "2026-03-14 09:30:00",
            "pagination": {"start": 0, "limit": 1, "more_items_in_collection": True,
                           "next_start": 1},
        },
    }  # fmt: skip
    page = parse_recents(body, {"since": "2026-03-14 00:00:00", "start": 0})
    assert page.has_more
    assert [(c.external_id, c.email, c.deleted) for c in page.changes] == [("7", "a@b.gr", False)]
    assert decode_cursor(page.cursor or "", "pipedrive") == {
        "since": "2026-03-14 00:00:00",
        "start": 1,
    }
    body["additional_data"]["pagination"] = {"start": 0, "limit": 1}  # type: ignore[index]
    done = parse_recents(body, {"since": "2026-03-14 00:00:00", "start": 0})
    cursor = decode_cursor(done.cursor or "", "pipedrive")
    assert cursor == {"since": "2026-03-14 09:30:00", "start": 0, "seen": ["7:True"]}
    again = parse_recents(body, cursor)
    assert again.changes == ()


def test_webhook_with_the_right_basic_credentials_is_parsed(sandbox: PipedriveSandbox) -> None:
    from dixis_integrations.crm.pipedrive import verify_webhook
    from dixis_integrations.errors import WebhookError
    from dixis_integrations.models.crm import CRMEventKind

    body, headers = sandbox.webhook("delete", 42, user="hook", password="s3cret-pass")
    events = verify_webhook(
        body=body, headers=headers, username="hook", password=SecretStr("s3cret-pass")
    )
    assert [(e.kind, e.object_type, e.object_id) for e in events] == [
        (CRMEventKind.DELETED, "person", "42")
    ]
    with pytest.raises(WebhookError):
        verify_webhook(body=body, headers=headers, username="hook", password=SecretStr("nope"))


def test_oauth_app_calls_with_a_bearer_token(sandbox: PipedriveSandbox, run: Runner) -> None:
    from dixis_integrations.auth import (
        MemoryTokenStore,
        OAuth2Auth,
        TokenManager,
        authorization_url,
        code_from_callback,
        exchange_code,
    )
    from dixis_integrations.crm.pipedrive import oauth_config

    config = oauth_config(
        sandbox.client_id,
        SecretStr(sandbox.client_secret),
        "http://127.0.0.1/callback",
        oauth_base="http://pipedrive.test",
    )
    request = authorization_url(config)
    with httpx.Client(transport=sandbox.transport()) as client:
        consent = client.get(request.url)
        code = code_from_callback(request, consent.headers["location"])
        token = exchange_code(config, code, request, client)
    store = MemoryTokenStore()
    store.save("pipedrive", "default", token)
    manager = TokenManager(
        config,
        "default",
        store,
        client_factory=lambda: httpx.Client(transport=sandbox.transport()),
        async_client_factory=lambda: httpx.AsyncClient(transport=sandbox.transport()),
    )
    adapter = Pipedrive(
        PipedriveConfig(base_url="http://pipedrive.test", oauth=True), auth=OAuth2Auth(manager)
    )
    result = run(sandbox, adapter.upsert_contact(contact(1)))
    assert result.status is UpsertStatus.CREATED
    assert sandbox.requests[-1].headers["authorization"].startswith("Bearer ")
    assert "x-api-token" not in sandbox.requests[-1].headers


def test_open_lead_is_matched_by_person_and_title() -> None:
    body = {"title": "Κτήμα - Νίκος", "person_id": 7}
    answer = {
        "data": [
            {"id": "a", "title": "Κτήμα - Νίκος", "person_id": 7, "is_archived": True},
            {"id": "b", "title": "Άλλο", "person_id": 7, "is_archived": False},
            {"id": "c", "title": "Κτήμα - Νίκος", "person_id": 8, "is_archived": False},
            {"id": "d", "title": "Κτήμα - Νίκος", "person_id": 7, "is_archived": False},
        ]
    }
    assert find_open_lead(answer, body) == "d"
    assert find_open_lead({"data": answer["data"][:3]}, body) is None
    assert find_open_lead({"data": None}, body) is None


def test_budget_spent_mid_bulk_keeps_the_results_obtained(
    sandbox: PipedriveSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.ensure_fields())
    adapter.budget = TokenBudget(100)  # two contacts: a search (40) and a create (10) each
    results = run(sandbox, adapter.upsert_contacts([contact(i) for i in range(1, 5)]))
    assert [(r.reference, r.status, r.error_code) for r in results] == [
        ("cus_1", UpsertStatus.CREATED, None),
        ("cus_2", UpsertStatus.CREATED, None),
        ("cus_3", UpsertStatus.REJECTED, "rate_limited"),
        ("cus_4", UpsertStatus.REJECTED, "rate_limited"),
    ]
    assert results[0].external_id is not None
    assert results[2].retry_at is not None
    assert results[2].retry_at > datetime.now(UTC)
    assert results[1].retry_at is None
    assert len(sandbox.persons) == 2


def test_single_upsert_with_the_budget_spent_still_raises(
    sandbox: PipedriveSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.ensure_fields())
    adapter.budget = TokenBudget(10)
    with pytest.raises(RateLimited):
        run(sandbox, adapter.upsert_contact(contact(1)))


def test_lead_create_run_twice_makes_one_lead(sandbox: PipedriveSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    lead = Lead(id="l1", email="bee@example.gr", last_name="Μελισσάς", created_at=NOW)
    first = run(sandbox, adapter.create_lead(lead))
    again = run(sandbox, adapter.create_lead(lead))
    assert again.crm_id == first.crm_id
    assert list(sandbox.leads) == [first.crm_id]
    other = run(sandbox, adapter.create_lead(lead.model_copy(update={"company": "Κυψέλη"})))
    assert other.crm_id != first.crm_id
    assert len(sandbox.leads) == 2


def test_lead_on_a_known_person_is_created_once_then_found(
    sandbox: PipedriveSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_contact(contact(1)))
    lead = Lead(id="l2", email="buyer1@example.gr", last_name="Νικολάου", created_at=NOW)
    created = run(sandbox, adapter.create_lead(lead))
    person = sandbox.leads[created.crm_id or ""]["person_id"]
    assert len(sandbox.persons) == 1
    assert person in sandbox.persons
    sent = len(sandbox.requests)
    assert run(sandbox, adapter.create_lead(lead)).crm_id == created.crm_id
    assert [r.method for r in sandbox.requests[sent:]] == ["GET", "GET"]  # search, list
