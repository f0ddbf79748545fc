"""HubSpot adapter: exact payloads, parsed documented answers, and runs against the sandbox."""

from __future__ import annotations

import json
from collections import deque
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tests.crm.conftest import Runner

from dixis_integrations.auth import (
    MemoryTokenStore,
    OAuth2Auth,
    TokenManager,
    authorization_url,
    code_from_callback,
    exchange_code,
)
from dixis_integrations.crm.hubspot import (
    HubSpot,
    HubSpotConfig,
    build_contact_properties,
    build_lead_properties,
    build_upsert_batch,
    classify,
    encode_upsert_batch,
    oauth_config,
    parse_upsert_batch,
    verify_webhook,
)
from dixis_integrations.crm.leads import LeadBook
from dixis_integrations.errors import InvalidInput, RateLimited, ValidationRejected, WebhookError
from dixis_integrations.http import Driver
from dixis_integrations.models import AcquisitionSource, ConsentStatus, MarketingConsent, Money
from dixis_integrations.models.crm import (
    CRMContact,
    CRMEventKind,
    Lead,
    LeadStatus,
    UpsertStatus,
)
from dixis_integrations.sandbox.hubspot import HubSpotSandbox
from dixis_integrations.sandbox.kit import Fault, FaultPlan

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def contact(i: int = 1, **overrides: Any) -> CRMContact:
    data: dict[str, Any] = {
        "reference": f"cus_{i}",
        "email": f"buyer{i}@example.gr",
        "first_name": "Μαρία",
        "last_name": "Παπαδοπούλου",
        "phone": "210 1234567",
        "total_orders": 3,
        "total_spent": Money.of("45.60"),
        "last_order_date": date(2026, 3, 1),
        "segment": "loyal",
        "acquisition": AcquisitionSource(channel="organic", campaign="spring"),
        "consent": MarketingConsent(status=ConsentStatus.GRANTED),
    }
    data.update(overrides)
    return CRMContact(**data)


def adapter_for(sandbox: HubSpotSandbox, **config: Any) -> HubSpot:
    creds = sandbox.credentials()
    return HubSpot(
        HubSpotConfig(
            access_token=SecretStr(creds["access_token"]),
            client_secret=SecretStr(creds["client_secret"]),
            base_url=creds["base_url"],
            **config,
        )
    )


def request_for(response_status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    adapter = HubSpot(HubSpotConfig(access_token=SecretStr("pat-x")))
    req = httpx.Request("POST", "https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert")
    resp = httpx.Response(response_status, json=body, headers=headers or {}, request=req)
    return classify(resp, adapter.endpoint)


@pytest.fixture
def sandbox() -> HubSpotSandbox:
    box = HubSpotSandbox()
    box.bind("http://hubspot.test")
    return box


# -- pure request building ------------------------------------------------------------------


def test_batch_bytes_are_exactly_the_built_batch() -> None:
    varied = [
        contact(1),
        contact(2, first_name=None, last_name=None, phone=None, segment=None, acquisition=None),
        contact(3, total_orders=0, last_order_date=None, total_spent=Money.of("0.005")),
        contact(4, first_name='Ο "Γιώργος" \\ \u0000 \n', segment='", "email": "x'),
        contact(5, acquisition=AcquisitionSource(channel="fair"), total_spent=Money.of("1e3")),
        contact(6, reference='cus_"6"', consent=MarketingConsent()),
    ]
    assert json.loads(encode_upsert_batch(varied)) == build_upsert_batch(varied)
    assert encode_upsert_batch([]) == b'{"inputs":[]}'


def test_contact_properties_carry_the_aggregates_as_hubspot_strings() -> None:
    checked = contact().model_copy(update={"phone": "+302101234567"})
    assert build_contact_properties(checked) == {
        "email": "buyer1@example.gr",
        "dixis_reference": "cus_1",
        "dixis_total_orders": "3",
        "dixis_total_spent": "45.60",
        "dixis_currency": "EUR",
        "dixis_marketing_consent": "granted",
        "firstname": "Μαρία",
        "lastname": "Παπαδοπούλου",
        "phone": "+302101234567",
        "dixis_last_order_date": "2026-03-01",
        "dixis_segment": "loyal",
        "dixis_acquisition_source": "organic",
        "dixis_acquisition_campaign": "spring",
        "lifecyclestage": "customer",
    }


def test_upsert_batch_is_keyed_by_email_with_reference_as_trace_id() -> None:
    body = build_upsert_batch([contact(1, phone=None, segment=None, acquisition=None)])
    assert body == {
        "inputs": [
            {
                "idProperty": "email",
                "id": "buyer1@example.gr",
                "objectWriteTraceId": "cus_1",
                "properties": {
                    "email": "buyer1@example.gr",
                    "dixis_reference": "cus_1",
                    "dixis_total_orders": "3",
                    "dixis_total_spent": "45.60",
                    "dixis_currency": "EUR",
                    "dixis_marketing_consent": "granted",
                    "firstname": "Μαρία",
                    "lastname": "Παπαδοπούλου",
                    "dixis_last_order_date": "2026-03-01",
                    "lifecyclestage": "customer",
                },
            }
        ]
    }


def test_a_contact_without_orders_gets_no_lifecycle_stage() -> None:
    props = build_contact_properties(contact(total_orders=0, total_spent=Money.of("0")))
    assert "lifecyclestage" not in props
    assert props["dixis_total_spent"] == "0.00"


def test_lead_is_a_contact_in_lifecycle_stage_lead() -> None:
    lead = Lead(id="l1", email="a@b.gr", first_name="Νίκος", source="fair", created_at=NOW)
    assert build_lead_properties(lead) == {
        "email": "a@b.gr",
        "lifecyclestage": "lead",
        "hs_lead_status": "NEW",
        "firstname": "Νίκος",
        "dixis_acquisition_source": "fair",
    }


# -- pure response parsing ------------------------------------------------------------------


def test_207_results_are_matched_back_to_input_order() -> None:
    contacts = [contact(1), contact(2), contact(3)]
    body = {
        "status": "COMPLETE",
        "results": [
            {"id": "203", "new": False, "properties": {"email": "buyer3@example.gr"}},
            {"id": "201", "new": True, "properties": {"email": "buyer1@example.gr"}},
        ],
        "numErrors": 1,
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": '"gold" is not a valid option for dixis_segment',
                "objectWriteTraceId": "cus_2",
                "context": {"propertyName": ["dixis_segment"]},
            }
        ],
    }
    results = parse_upsert_batch(contacts, body)
    assert [(r.reference, r.status, r.external_id, r.error_code) for r in results] == [
        ("cus_1", UpsertStatus.CREATED, "201", None),
        ("cus_2", UpsertStatus.REJECTED, None, "VALIDATION_ERROR"),
        ("cus_3", UpsertStatus.UPDATED, "203", None),
    ]
    assert results[1].reason == '"gold" is not a valid option for dixis_segment'


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1], [1, 2, 0]])
def test_a_full_200_answer_is_matched_by_email_in_any_order(order: list[int]) -> None:
    contacts = [contact(1), contact(2), contact(3)]
    items = [
        {"id": "301", "new": True, "properties": {"email": "buyer1@example.gr"}},
        {"id": "302", "new": False, "properties": {"email": "BUYER2@example.gr"}},
        {"id": "303", "new": True, "properties": {"email": "buyer3@example.gr"}},
    ]
    results = parse_upsert_batch(contacts, {"results": [items[i] for i in order]})
    assert [(r.reference, r.status, r.external_id) for r in results] == [
        ("cus_1", UpsertStatus.CREATED, "301"),
        ("cus_2", UpsertStatus.UPDATED, "302"),
        ("cus_3", UpsertStatus.CREATED, "303"),
    ]


def test_ten_secondly_429_is_a_short_rate_limit() -> None:
    error = request_for(
        429,
        {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": "c-1",
            "policyName": "TEN_SECONDLY_ROLLING",
            "groupName": "api-calls",
        },
    )
    assert isinstance(error, RateLimited)
    assert error.vendor_code == "TEN_SECONDLY_ROLLING"
    assert error.request_id == "c-1"
    assert error.scope == "burst"
    wait = error.seconds_to_wait()
    assert wait is not None
    assert 9 < wait <= 10


def test_daily_429_waits_until_midnight() -> None:
    error = request_for(429, {"policyName": "DAILY", "message": "daily"}, {"Retry-After": "1"})
    assert isinstance(error, RateLimited)
    assert error.scope == "daily"
    assert error.retry_at is not None
    assert error.retry_at.hour == 0
    assert error.retry_at.minute == 0


def test_400_names_the_property_in_its_field_errors() -> None:
    error = request_for(
        400,
        {
            "status": "error",
            "message": "Property values were not valid",
            "correlationId": "c-2",
            "category": "VALIDATION_ERROR",
            "errors": [{"message": "bad number", "code": "INVALID_INTEGER", "in": "dixis_x"}],
        },
    )
    assert isinstance(error, ValidationRejected)
    assert [e.path for e in error.errors] == ["properties.dixis_x"]
    assert error.vendor_code == "VALIDATION_ERROR"


# -- against the sandbox -------------------------------------------------------------------


def test_bulk_upsert_creates_properties_once_and_then_updates(
    sandbox: HubSpotSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    contacts = [contact(i) for i in range(250)]
    first = run(sandbox, adapter.upsert_contacts(contacts))
    assert [r.reference for r in first] == [c.reference for c in contacts]
    assert {r.status for r in first} == {UpsertStatus.CREATED}
    upserts = [r for r in sandbox.requests if r.url.path.endswith("/batch/upsert")]
    assert len(upserts) == 3
    assert "dixis_total_spent" in sandbox.properties
    stored = sandbox._by_email("buyer7@example.gr")
    assert stored is not None
    assert stored["properties"]["dixis_total_spent"] == "45.60"
    assert stored["properties"]["phone"] == "+302101234567"
    again = run(sandbox, adapter.upsert_contacts(contacts[:5]))
    assert {r.status for r in again} == {UpsertStatus.UPDATED}
    path = "/crm/v3/properties/contacts/batch/create"
    creates = [r for r in sandbox.requests if r.url.path == path]
    assert len(creates) == 1


def test_vendor_rejection_is_a_per_item_result(sandbox: HubSpotSandbox, run: Runner) -> None:
    sandbox.groups["dixis"] = {"name": "dixis", "label": "Dixis"}
    sandbox.properties["dixis_segment"] = {
        "name": "dixis_segment",
        "type": "enumeration",
        "groupName": "dixis",
        "options": [{"value": "loyal"}, {"value": "new"}],
    }
    adapter = adapter_for(sandbox)
    results = run(sandbox, adapter.upsert_contacts([contact(1), contact(2, segment="gold")]))
    assert [r.status for r in results] == [UpsertStatus.CREATED, UpsertStatus.REJECTED]
    assert results[1].error_code == "VALIDATION_ERROR"
    assert "dixis_segment" in (results[1].reason or "")


def test_invalid_email_is_refused_before_anything_is_sent(
    sandbox: HubSpotSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    with pytest.raises(InvalidInput) as info:
        run(sandbox, adapter.upsert_contact(contact(email="not-an-email")))
    assert [e.path for e in info.value.errors] == ["email"]
    assert sandbox.requests == []


def test_unnormalisable_phone_is_refused_before_anything_is_sent(
    sandbox: HubSpotSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    with pytest.raises(InvalidInput) as info:
        run(sandbox, adapter.upsert_contact(contact(phone="12ab")))
    assert [e.path for e in info.value.errors] == ["phone"]
    assert sandbox.requests == []


def test_bulk_reports_bad_and_repeated_contacts_without_sending_them(
    sandbox: HubSpotSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    batch = [contact(1), contact(2, email="bad@"), contact(3, email="BUYER1@example.gr")]
    results = run(sandbox, adapter.upsert_contacts(batch))
    assert [r.status for r in results] == [
        UpsertStatus.CREATED,
        UpsertStatus.REJECTED,
        UpsertStatus.REJECTED,
    ]
    assert results[1].reason is not None
    assert results[1].reason.startswith("email:")
    assert results[2].error_code == "duplicate_in_batch"
    assert len(sandbox.contacts) == 1


def test_throttled_upsert_is_retried_because_it_is_idempotent(
    sandbox: HubSpotSandbox, run: Runner
) -> None:
    sandbox.faults = FaultPlan(script=deque([None, None, Fault.RATE_LIMIT, Fault.SERVER_ERROR]))
    adapter = adapter_for(sandbox)
    results = run(sandbox, adapter.upsert_contacts([contact(1)]))
    assert results[0].status is UpsertStatus.CREATED


def test_daily_limit_surfaces_as_rate_limited(run: Runner) -> None:
    box = HubSpotSandbox(tier="free")
    box.bind("http://hubspot.test")
    box.daily.limit = 1
    adapter = adapter_for(box, tier="free")
    with pytest.raises(RateLimited) as info:
        run(box, adapter.upsert_contacts([contact(1)]))
    assert info.value.vendor_code == "DAILY"


def test_lead_is_created_kept_and_converted(sandbox: HubSpotSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    book = LeadBook()
    lead = Lead(id="lead-1", email="New@Example.gr", last_name="Κ.", source="fair", created_at=NOW)
    created = run(sandbox, book.create(lead, adapter))
    assert created.crm_id is not None
    assert created.email == "new@example.gr"
    stored = sandbox.contacts[created.crm_id]["properties"]
    assert stored["lifecyclestage"] == "lead"
    assert book.store.get("lead-1") == created
    converted = run(sandbox, book.convert("lead-1", adapter))
    assert converted.status is LeadStatus.CONVERTED
    assert sandbox.contacts[created.crm_id]["properties"]["lifecyclestage"] == "customer"
    kept = book.store.get("lead-1")
    assert kept is not None
    assert kept.status is LeadStatus.CONVERTED


def test_lead_for_an_existing_contact_reuses_its_id(sandbox: HubSpotSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    first = run(sandbox, adapter.upsert_contact(contact(1)))
    lead = Lead(id="l", email="buyer1@example.gr", created_at=NOW)
    created = run(sandbox, adapter.create_lead(lead))
    assert created.crm_id == first.external_id
    assert sandbox.contacts[first.external_id]["properties"]["lifecyclestage"] == "customer"


def test_erase_deletes_permanently_and_twice_is_harmless(
    sandbox: HubSpotSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_contact(contact(1)))
    result = run(sandbox, adapter.erase("buyer1@example.gr"))
    assert result.erased
    assert sandbox.contacts == {}
    assert sandbox.archived == {}
    again = run(sandbox, adapter.erase("buyer1@example.gr"))
    assert again.erased
    assert again.detail == "not present"


def test_changes_are_pulled_incrementally_with_deletions(
    sandbox: HubSpotSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_contacts([contact(i) for i in range(3)]))

    def pull(cursor: str | None) -> tuple[list[Any], str | None]:
        seen: list[Any] = []
        while True:
            page = run(sandbox, adapter.changes(cursor))
            seen.extend(page.changes)
            cursor = page.cursor
            if not page.has_more:
                return seen, cursor

    first, cursor = pull(None)
    assert sorted(c.email for c in first) == [f"buyer{i}@example.gr" for i in range(3)]
    assert not any(c.deleted for c in first)
    victim = first[0].external_id
    sandbox.handle(
        httpx.Request(
            "DELETE",
            f"http://hubspot.test/crm/v3/objects/contacts/{victim}",
            headers={"Authorization": f"Bearer {sandbox.access_token}"},
        )
    )
    run(sandbox, adapter.upsert_contact(contact(1, segment="vip")))
    second, _ = pull(cursor)
    assert {(c.external_id, c.deleted) for c in second} == {
        (victim, True),
        (sandbox._by_email("buyer1@example.gr")["id"], False),  # type: ignore[index]
    }


def test_oauth_public_app_talks_with_a_refreshed_bearer(
    sandbox: HubSpotSandbox, run: Runner
) -> None:
    config = oauth_config(
        sandbox.client_id,
        SecretStr(sandbox.client_secret),
        "http://127.0.0.1/callback",
        auth_base="http://hubspot.test",
        api_base="http://hubspot.test",
    )
    request = authorization_url(config)
    with httpx.Client(transport=sandbox.transport()) as client:
        consent = client.get(request.url)
        code = code_from_callback(request, consent.headers["location"])
        token = exchange_code(config, code, request, client)
    store = MemoryTokenStore()
    store.save("hubspot", "default", token)
    manager = TokenManager(
        config,
        "default",
        store,
        client_factory=lambda: httpx.Client(transport=sandbox.transport()),
        async_client_factory=lambda: httpx.AsyncClient(transport=sandbox.transport()),
    )
    adapter = HubSpot(HubSpotConfig(base_url="http://hubspot.test"), auth=OAuth2Auth(manager))
    results = run(sandbox, adapter.upsert_contacts([contact(1)]))
    assert results[0].status is UpsertStatus.CREATED
    assert sandbox.oauth.token_requests["authorization_code"] == 1


def test_check_reports_daily_calls_left(sandbox: HubSpotSandbox, run: Runner) -> None:
    status = run(sandbox, adapter_for(sandbox).check())
    assert status.ok
    assert status.quota_remaining == sandbox.daily_limit - 1


# -- webhooks -------------------------------------------------------------------------------


def test_signed_webhook_is_verified_and_parsed(sandbox: HubSpotSandbox) -> None:
    url = "https://shop.example.gr/hooks/hubspot?x=1"
    event = sandbox.contact_event(
        "contact.propertyChange", "123", propertyName="email", propertyValue="a@b.gr"
    )
    deleted = sandbox.contact_event("contact.deletion", "9")
    body, headers = sandbox.signed_webhook(url, [event, deleted])
    events = verify_webhook(
        method="POST",
        uri=url,
        body=body,
        headers=headers,
        client_secret=SecretStr(sandbox.client_secret),
    )
    assert [(e.kind, e.object_id, e.property_name) for e in events] == [
        (CRMEventKind.UPDATED, "123", "email"),
        (CRMEventKind.DELETED, "9", None),
    ]


def test_tampered_webhook_is_refused(sandbox: HubSpotSandbox) -> None:
    url = "https://shop.example.gr/hooks/hubspot"
    body, headers = sandbox.signed_webhook(url, [sandbox.contact_event("contact.creation", "1")])
    with pytest.raises(WebhookError, match="signature"):
        verify_webhook(
            method="POST",
            uri=url,
            body=body.replace(b'"1"', b'"2"').replace(b":1,", b":2,"),
            headers=headers,
            client_secret=SecretStr(sandbox.client_secret),
        )


def test_webhook_older_than_five_minutes_is_refused(sandbox: HubSpotSandbox) -> None:
    url = "https://shop.example.gr/hooks/hubspot"
    old = int((datetime.now(UTC) - timedelta(minutes=6)).timestamp() * 1000)
    body, headers = sandbox.signed_webhook(
        url, [sandbox.contact_event("contact.creation", "1")], timestamp_ms=old
    )
    with pytest.raises(WebhookError, match="5-minute"):
        verify_webhook(
            method="POST",
            uri=url,
            body=body,
            headers=headers,
            client_secret=SecretStr(sandbox.client_secret),
        )


def test_total_spent_is_sent_exactly(sandbox: HubSpotSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_contact(contact(1, total_spent=Money.of(Decimal("0.1") * 3))))
    stored = sandbox._by_email("buyer1@example.gr")
    assert stored is not None
    assert stored["properties"]["dixis_total_spent"] == "0.30"


def test_changes_window_past_the_search_cap_without_loss_or_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dixis_integrations.crm.hubspot as adapter_module
    import dixis_integrations.sandbox.hubspot as sandbox_module

    # a cap of 8 results per query and pages of 2 stand for HubSpot's 10,000 and 100
    monkeypatch.setattr(adapter_module, "_SEARCH_PAGE", 2)
    monkeypatch.setattr(adapter_module, "_SEARCH_CAP", 8)
    monkeypatch.setattr(sandbox_module, "_SEARCH_CAP", 8)
    box = HubSpotSandbox(time_scale=0.01)  # five searches per 10 ms
    box.bind("http://hubspot.test")
    creds = box.credentials()
    adapter = HubSpot(
        HubSpotConfig(access_token=SecretStr(creds["access_token"]), base_url=creds["base_url"]),
        time_scale=0.01,
    )
    with Driver(httpx.Client(transport=box.transport())) as driver:  # one budget, real waits
        driver.run(adapter.upsert_contacts([contact(i) for i in range(13)]))
        # HubSpot stamps a batch with one millisecond: give pairs the same stamp
        for n, c in enumerate(sorted(box.contacts.values(), key=lambda c: int(c["id"]))):
            c["properties"]["lastmodifieddate"] = f"2026-03-14T09:30:00.{n // 2:03d}Z"
        seen: list[str] = []
        cursor = None
        for _ in range(40):
            page = driver.run(adapter.changes(cursor))
            seen.extend(c.external_id for c in page.changes)
            cursor = page.cursor
            if not page.has_more:
                break
        assert sorted(seen, key=int) == sorted(box.contacts, key=int)
        assert len(seen) == len(set(seen)) == 13
        again = driver.run(adapter.changes(cursor))
    assert again.changes == ()
    assert box.rate_limited == 0
