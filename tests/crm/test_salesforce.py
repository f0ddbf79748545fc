"""Salesforce adapter: exact payloads, parsed documented answers, and runs against the sandbox."""

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
from dixis_integrations.crm.salesforce import (
    Salesforce,
    SalesforceConfig,
    build_contact_record,
    build_lead_record,
    build_upsert_collection,
    classify,
    encode_upsert_collection,
    parse_api_usage,
    parse_upsert_collection,
)
from dixis_integrations.errors import InvalidInput, RateLimited, ValidationRejected
from dixis_integrations.models import ConsentStatus, MarketingConsent, Money
from dixis_integrations.models.crm import CRMContact, Lead, LeadStatus, UpsertStatus
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.sandbox.salesforce import SalesforceSandbox

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def contact(i: int = 1, **overrides: Any) -> CRMContact:
    data: dict[str, Any] = {
        "reference": f"cus_{i}",
        "email": f"buyer{i}@example.gr",
        "first_name": "Γιώργος",
        "last_name": "Ιωάννου",
        "total_orders": 2,
        "total_spent": Money.of("19.90"),
        "last_order_date": date(2026, 2, 28),
        "consent": MarketingConsent(status=ConsentStatus.GRANTED),
    }
    data.update(overrides)
    return CRMContact(**data)


def lead(**overrides: Any) -> Lead:
    data: dict[str, Any] = {
        "id": "lead-1",
        "email": "farmer@example.gr",
        "last_name": "Παππάς",
        "company": "Κτήμα Παππά",
        "source": "fair",
        "created_at": NOW,
    }
    data.update(overrides)
    return Lead(**data)


@pytest.fixture
def sandbox() -> SalesforceSandbox:
    box = SalesforceSandbox()
    box.bind("http://salesforce.test")
    return box


def adapter_for(sandbox: SalesforceSandbox, **config: Any) -> Salesforce:
    creds = sandbox.credentials()
    return Salesforce(
        SalesforceConfig(
            base_url=creds["base_url"],
            client_id=creds["client_id"],
            username=creds["username"],
            private_key=SecretStr(creds["private_key"]),
            **config,
        )
    )


def classify_body(status: int, body: Any) -> Any:
    adapter = Salesforce(SalesforceConfig(access_token=SecretStr("00Dx")))
    req = httpx.Request("PATCH", "https://x.my.salesforce.com/services/data/v59.0/x")
    return classify(httpx.Response(status, json=body, request=req), adapter.endpoint)


# -- pure ------------------------------------------------------------------------------------


def test_contact_record_is_keyed_by_external_id_with_exact_money() -> None:
    assert build_contact_record(contact(), "Dixis_Customer_Id__c") == {
        "attributes": {"type": "Contact"},
        "Dixis_Customer_Id__c": "cus_1",
        "LastName": "Ιωάννου",
        "FirstName": "Γιώργος",
        "Email": "buyer1@example.gr",
        "Dixis_Total_Orders__c": 2,
        "Dixis_Total_Spent__c": Decimal("19.90"),
        "Dixis_Last_Order_Date__c": "2026-02-28",
        "Dixis_Segment__c": None,
        "Dixis_Acquisition_Source__c": None,
        "Dixis_Marketing_Consent__c": "granted",
        "HasOptedOutOfEmail": False,
    }
    body = build_upsert_collection([contact()], "Dixis_Customer_Id__c")
    assert body["allOrNone"] is False
    assert len(body["records"]) == 1


def test_collection_bytes_are_exactly_the_built_collection() -> None:
    from dixis_integrations.models import AcquisitionSource

    varied = [
        contact(1),
        contact(2, first_name=None, phone=None, last_order_date=None, segment=None),
        contact(3, phone="+306912345678", segment="loyal", total_spent=Money.of("1234567.5")),
        contact(4, first_name='Ο "Γιώργος" \\ \u0000 \n', last_name=None, total_orders=0),
        contact(5, acquisition=AcquisitionSource(channel="fair", campaign="x")),
        contact(6, total_spent=Money.of("0.005"), consent=MarketingConsent()),
        contact(7, total_spent=Money.of("99999999999999.99"), segment='", "Phone": "x'),
    ]
    for field in ("Dixis_Customer_Id__c", 'Odd"Field__c'):
        wire = json.loads(encode_upsert_collection(varied, field), parse_float=Decimal)
        built = json.loads(json.dumps(build_upsert_collection(varied, field), default=str))
        for record in built["records"]:
            record["Dixis_Total_Spent__c"] = Decimal(record["Dixis_Total_Spent__c"])
        assert wire == built
    assert b'"Dixis_Total_Spent__c":0.01,' in encode_upsert_collection(varied[5:6], "x")


def test_lead_record_carries_the_required_fields() -> None:
    assert build_lead_record(lead()) == {
        "LastName": "Παππάς",
        "Company": "Κτήμα Παππά",
        "Email": "farmer@example.gr",
        "Status": "Open - Not Contacted",
        "LeadSource": "fair",
    }


def test_collection_results_with_http_200_keep_input_order() -> None:
    body = [
        {"id": "003R00000000001", "success": True, "errors": [], "created": True},
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "DUPLICATES_DETECTED",
                    "message": "Use one of these records?",
                    "fields": [],
                }
            ],
        },
        {"id": "003R00000000003", "success": True, "errors": [], "created": False},
    ]
    results = parse_upsert_collection([contact(1), contact(2), contact(3)], body)
    assert [(r.status, r.external_id, r.error_code) for r in results] == [
        (UpsertStatus.CREATED, "003R00000000001", None),
        (UpsertStatus.REJECTED, None, "DUPLICATES_DETECTED"),
        (UpsertStatus.UPDATED, "003R00000000003", None),
    ]


def test_request_limit_exceeded_403_is_throttling_not_permission() -> None:
    error = classify_body(
        403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    )
    assert isinstance(error, RateLimited)
    assert error.scope == "daily"
    assert error.vendor_code == "REQUEST_LIMIT_EXCEEDED"


def test_required_field_error_names_the_field() -> None:
    error = classify_body(
        400,
        [
            {
                "message": "Required fields are missing: [Company]",
                "errorCode": "REQUIRED_FIELD_MISSING",
                "fields": ["Company"],
            }
        ],
    )
    assert isinstance(error, ValidationRejected)
    assert [e.path for e in error.errors] == ["Company"]


def test_limit_info_header_is_parsed() -> None:
    assert parse_api_usage("api-usage=10018/100000") == (10018, 100000)
    assert parse_api_usage("per-app-api-usage=1/2") is None


# -- against the sandbox ---------------------------------------------------------------------


def test_bulk_upsert_by_external_id_in_chunks_of_200(
    sandbox: SalesforceSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    contacts = [contact(i) for i in range(450)]
    results = run(sandbox, adapter.upsert_contacts(contacts))
    assert [r.reference for r in results] == [c.reference for c in contacts]
    assert {r.status for r in results} == {UpsertStatus.CREATED}
    calls = [r for r in sandbox.requests if r.url.path.endswith("/Dixis_Customer_Id__c")]
    assert [len(json.loads(r.content)["records"]) for r in calls] == [200, 200, 50]
    assert calls[0].url.host == "salesforce.test"
    assert b'"Dixis_Total_Spent__c":19.90,' in calls[0].content
    again = run(sandbox, adapter.upsert_contacts(contacts[:3]))
    assert {r.status for r in again} == {UpsertStatus.UPDATED}
    assert adapter.api_usage is not None
    assert sandbox.jwt_grants == 1


def test_duplicate_rule_rejects_one_row_and_the_rest_land(
    sandbox: SalesforceSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    clash = contact(2, email="buyer1@example.gr")
    results = run(sandbox, adapter.upsert_contacts([contact(1), clash, contact(3)]))
    assert [r.status for r in results] == [
        UpsertStatus.CREATED,
        UpsertStatus.REJECTED,
        UpsertStatus.CREATED,
    ]
    assert results[1].error_code == "DUPLICATES_DETECTED"
    allowing = adapter_for(sandbox, allow_duplicates=True)
    saved = run(sandbox, allowing.upsert_contact(clash))
    assert saved.status is UpsertStatus.CREATED


def test_lead_without_company_is_refused_before_anything_is_sent(
    sandbox: SalesforceSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    with pytest.raises(InvalidInput) as info:
        run(sandbox, adapter.create_lead(lead(company=None, last_name=" ")))
    assert [e.path for e in info.value.errors] == ["last_name", "company"]
    assert sandbox.requests == []


def test_contact_without_last_name_is_refused_before_anything_is_sent(
    sandbox: SalesforceSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    with pytest.raises(InvalidInput) as info:
        run(sandbox, adapter.upsert_contact(contact(last_name=None)))
    assert [e.path for e in info.value.errors] == ["last_name"]
    assert sandbox.requests == []


def test_lead_is_created_and_converted(sandbox: SalesforceSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    book = LeadBook()
    created = run(sandbox, book.create(lead(), adapter))
    assert created.crm_id in sandbox.records["Lead"]
    converted = run(sandbox, book.convert("lead-1", adapter))
    assert converted.status is LeadStatus.CONVERTED
    assert sandbox.records["Lead"][created.crm_id]["IsConverted"] is True
    kept = book.store.get("lead-1")
    assert kept is not None
    assert kept.status is LeadStatus.CONVERTED


def test_erase_deletes_contacts_and_leads_with_the_email(
    sandbox: SalesforceSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_contact(contact(1, email="farmer@example.gr")))
    run(sandbox, adapter.create_lead(lead()))
    result = run(sandbox, adapter.erase("Farmer@Example.gr"))
    assert result.erased
    assert result.detail == "2 rows"
    assert sandbox.records["Contact"] == {}
    assert sandbox.records["Lead"] == {}


def test_daily_allocation_spent_surfaces_as_rate_limited(run: Runner) -> None:
    box = SalesforceSandbox(daily_api_requests=1)
    box.bind("http://salesforce.test")
    adapter = adapter_for(box)
    run(box, adapter.upsert_contact(contact(1)))
    with pytest.raises(RateLimited) as info:
        run(box, adapter.upsert_contact(contact(2)))
    assert info.value.vendor_code == "REQUEST_LIMIT_EXCEEDED"


def test_transient_failures_on_the_upsert_are_retried(
    sandbox: SalesforceSandbox, run: Runner
) -> None:
    sandbox.faults = FaultPlan(script=deque([None, Fault.SERVER_ERROR, Fault.RESET]))
    adapter = adapter_for(sandbox)
    results = run(sandbox, adapter.upsert_contacts([contact(1)]))
    assert results[0].status is UpsertStatus.CREATED


def test_check_reports_missing_custom_fields(run: Runner) -> None:
    box = SalesforceSandbox(custom_fields=False)
    box.bind("http://salesforce.test")
    status = run(box, adapter_for(box).check())
    assert not status.ok
    assert "Dixis_Total_Spent__c" in status.detail
    ready = SalesforceSandbox()
    ready.bind("http://salesforce.test")
    assert run(ready, adapter_for(ready).check()).ok


@pytest.mark.parametrize("plain", [False, True], ids=["SalesforceOAuth", "OAuth2Auth"])
def test_web_server_flow_token_sends_calls_to_its_instance_url(
    sandbox: SalesforceSandbox, run: Runner, plain: bool
) -> None:
    # the hub hands adapters a plain OAuth2Auth (tokens from `connect`): same result
    from dixis_integrations.auth import (
        MemoryTokenStore,
        OAuth2Auth,
        TokenManager,
        authorization_url,
        code_from_callback,
        exchange_code,
    )
    from dixis_integrations.crm.salesforce import SalesforceOAuth, oauth_config

    config = oauth_config(
        sandbox.client_id,
        SecretStr(sandbox.client_secret),
        "http://127.0.0.1/callback",
        login_url="http://salesforce.test",
    )
    request = authorization_url(config)
    with httpx.Client(transport=sandbox.transport()) as client:
        consent = client.get(request.url)
        token = exchange_code(
            config, code_from_callback(request, consent.headers["location"]), request, client
        )
    assert token.extra["instance_url"] == "http://salesforce.test"
    store = MemoryTokenStore()
    store.save("salesforce", "default", token)
    manager = TokenManager(
        config,
        "default",
        store,
        client_factory=lambda: httpx.Client(transport=sandbox.transport()),
        async_client_factory=lambda: httpx.AsyncClient(transport=sandbox.transport()),
    )
    auth = OAuth2Auth(manager) if plain else SalesforceOAuth(manager)
    adapter = Salesforce(SalesforceConfig(base_url="https://login.salesforce.com"), auth=auth)
    results = run(sandbox, adapter.upsert_contacts([contact(1)]))
    assert results[0].status is UpsertStatus.CREATED
    assert sandbox.requests[-1].url.host == "salesforce.test"


def test_changes_report_updated_and_deleted_contacts(
    sandbox: SalesforceSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    created = run(sandbox, adapter.upsert_contacts([contact(1), contact(2)]))
    first = run(sandbox, adapter.changes())
    assert sorted(c.email or "" for c in first.changes) == [
        "buyer1@example.gr",
        "buyer2@example.gr",
    ]
    assert not first.has_more
    assert first.cursor is not None
    run(sandbox, adapter.erase("buyer2@example.gr"))
    second = run(sandbox, adapter.changes(first.cursor))
    assert [(c.external_id, c.deleted) for c in second.changes] == [(created[1].external_id, True)]


def test_changes_page_is_parsed_from_documented_answers() -> None:
    from dixis_integrations.crm.salesforce import parse_changes

    page = parse_changes(
        [
            {
                "attributes": {"type": "Contact"},
                "Id": "003A",
                "Email": "a@b.gr",
                "SystemModstamp": "2026-03-14T09:30:00.000+0000",
            }
        ],
        [{"id": "003B", "deletedDate": "2026-03-14T10:00:00.000+0000"}],
        "2026-03-14T10:05:00.000+0000",
    )
    assert [(c.external_id, c.deleted, c.changed_at.hour) for c in page.changes] == [
        ("003A", False, 9),
        ("003B", True, 10),
    ]
    assert page.cursor == "2026-03-14T10:05:00.000+0000"


def test_outbound_message_from_our_org_is_parsed(sandbox: SalesforceSandbox, run: Runner) -> None:
    from dixis_integrations.crm.salesforce import verify_outbound_message
    from dixis_integrations.models.crm import CRMEventKind

    adapter = adapter_for(sandbox)
    saved = run(sandbox, adapter.upsert_contact(contact(1)))
    body = sandbox.outbound_message("Contact", saved.external_id or "")
    events = verify_outbound_message(body, organization_id=sandbox.organization_id)
    assert [(e.kind, e.object_type, e.object_id) for e in events] == [
        (CRMEventKind.UPDATED, "Contact", saved.external_id)
    ]


def test_outbound_message_from_another_org_or_with_a_dtd_is_refused(
    sandbox: SalesforceSandbox, run: Runner
) -> None:
    from dixis_integrations.crm.salesforce import verify_outbound_message
    from dixis_integrations.errors import WebhookError

    adapter = adapter_for(sandbox)
    saved = run(sandbox, adapter.upsert_contact(contact(1)))
    body = sandbox.outbound_message("Contact", saved.external_id or "")
    with pytest.raises(WebhookError, match="another"):
        verify_outbound_message(body, organization_id="00D000000000009")
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(WebhookError, match="DTD"):
        verify_outbound_message(bomb, organization_id=sandbox.organization_id)


def test_jwt_assertion_claims_and_signature(sandbox: SalesforceSandbox) -> None:
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from dixis_integrations.crm.salesforce import SalesforceJWTAuth

    auth = SalesforceJWTAuth(
        client_id="3MVGclient",
        username="u@dixis.example",
        private_key=SecretStr(sandbox.private_key_pem),
        login_url="https://dixis.my.salesforce.com",
        audience="https://login.salesforce.com",
    )
    head, body, sig = auth.assertion(now=1_800_000_000).split(".")

    def unb64(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    assert json.loads(unb64(head)) == {"alg": "RS256", "typ": "JWT"}
    assert json.loads(unb64(body)) == {
        "iss": "3MVGclient",
        "sub": "u@dixis.example",
        "aud": "https://login.salesforce.com",
        "exp": 1_800_000_180,
    }
    key = serialization.load_pem_public_key(sandbox.public_key_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(unb64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert "PRIVATE" not in repr(auth)


def test_upsert_into_an_org_without_the_fields_is_a_configuration_error(run: Runner) -> None:
    from dixis_integrations.errors import ConfigurationError

    box = SalesforceSandbox(custom_fields=False)
    box.bind("http://salesforce.test")
    with pytest.raises(ConfigurationError, match="external_id_field"):
        run(box, adapter_for(box).upsert_contacts([contact(1)]))


def test_jwt_threads_share_one_token_and_call_its_instance_url(sandbox: SalesforceSandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from dixis_integrations.crm.salesforce import SalesforceJWTAuth
    from dixis_integrations.http import Budgets, Driver

    creds = sandbox.credentials()
    auth = SalesforceJWTAuth(
        client_id=creds["client_id"],
        username=creds["username"],
        private_key=SecretStr(creds["private_key"]),
        login_url=creds["base_url"],
    )
    # the configured host is only the login host: calls must go to the token's instance_url
    adapter = Salesforce(SalesforceConfig(base_url="https://login.salesforce.com"), auth=auth)
    budgets = Budgets()

    def one(i: int) -> Any:
        with httpx.Client(transport=sandbox.transport()) as client:
            return Driver(client, budgets=budgets).run(adapter.upsert_contacts([contact(i)]))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [r for part in pool.map(one, range(8)) for r in part]
    assert [r.status for r in results] == [UpsertStatus.CREATED] * 8
    assert sandbox.jwt_grants == auth.token_requests == 1
    assert {r.url.host for r in sandbox.requests} == {"salesforce.test"}


def test_expired_jwt_session_is_signed_again(sandbox: SalesforceSandbox, run: Runner) -> None:
    from dixis_integrations.sandbox.kit import Fault

    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_contact(contact(1)))
    sandbox.faults = FaultPlan(script=deque([Fault.EXPIRED_TOKEN]))
    result = run(sandbox, adapter.upsert_contact(contact(2)))
    assert result.status is UpsertStatus.CREATED
    assert sandbox.jwt_grants == 2


def test_a_failed_lead_create_is_not_sent_again_blindly(
    sandbox: SalesforceSandbox, run: Runner
) -> None:
    from dixis_integrations.errors import TransientError

    adapter = adapter_for(sandbox)
    sandbox.faults = FaultPlan(script=deque([Fault.SERVER_ERROR]))
    with pytest.raises(TransientError):
        run(sandbox, adapter.create_lead(lead()))
    posts = [r for r in sandbox.requests if r.url.path.endswith("/sobjects/Lead")]
    assert [r.method for r in posts] == ["POST"]  # a POST without a key is never replayed


def test_the_allocation_left_is_read_from_sforce_limit_info(run: Runner) -> None:
    box = SalesforceSandbox(daily_api_requests=50)
    box.bind("http://salesforce.test")
    adapter = adapter_for(box)
    run(box, adapter.upsert_contacts([contact(1), contact(2)]))
    assert adapter.api_usage == (1, 50)
    status = run(box, adapter.check())
    assert adapter.api_usage == (2, 50)
    assert status.quota_remaining == 48


def test_a_failed_sign_in_leaves_no_lock_behind(sandbox: SalesforceSandbox) -> None:
    import threading

    from dixis_integrations.crm.salesforce import SalesforceJWTAuth

    creds = sandbox.credentials()
    auth = SalesforceJWTAuth(
        client_id=creds["client_id"],
        username=creds["username"],
        private_key=SecretStr(creds["private_key"]),
        login_url=creds["base_url"],
    )
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("down", request=request)
        return sandbox.handle(request)

    url = f"{creds['base_url']}/services/data/v59.0/limits"
    outcome: list[int] = []

    def twice() -> None:
        with httpx.Client(transport=httpx.MockTransport(flaky), auth=auth) as client:
            with pytest.raises(httpx.ConnectError):
                client.get(url)
            outcome.append(client.get(url).status_code)  # would block on a leaked lock

    worker = threading.Thread(target=twice, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert outcome == [200]
    assert auth.token_requests == 1
