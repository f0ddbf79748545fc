"""Brevo adapter: exact payloads, parsed answers, and consent runs against the sandbox."""

from __future__ import annotations

import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tests.marketing._drive import Runner, run, run_sync

from dixis_integrations.errors import (
    AuthError,
    ConfigurationError,
    Conflict,
    InvalidInput,
    RateLimited,
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http import Driver
from dixis_integrations.marketing.brevo import (
    Brevo,
    BrevoConfig,
    build_contact_body,
    build_doi_body,
    build_email_body,
    build_event_body,
    build_webhook_body,
    classify,
    parse_webhook,
    send_key,
)
from dixis_integrations.models.crm import UpsertStatus
from dixis_integrations.models.customer import ConsentStatus, DoubleOptIn, MarketingConsent
from dixis_integrations.models.email import EmailMessage, MarketingEvent, Subscriber
from dixis_integrations.protocols import EmailProvider
from dixis_integrations.sandbox.brevo import BrevoSandbox
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.testing.conformance import EmailProviderSuite

__all__ = ["run"]

AT = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
GRANTED = MarketingConsent(status=ConsentStatus.GRANTED, source="checkout", timestamp=AT)
DOI = GRANTED.model_copy(update={"double_opt_in": DoubleOptIn.PENDING})
WITHDRAWN = GRANTED.model_copy(update={"status": ConsentStatus.WITHDRAWN})
KEY = "6f1c1a52-0000-4000-8000-000000000001"
CONFIG = BrevoConfig(
    api_key=SecretStr("xkeysib-abc"),
    list_ids=(2,),
    tag_lists={"champions": 3},
    doi_template_id=7,
    redirection_url="https://dixis.gr/welcome",
    sender_email="orders@dixis.gr",
    sender_name="Dixis Fresh",
)


def sub(consent: MarketingConsent = GRANTED, **overrides: Any) -> Subscriber:
    data: dict[str, Any] = {
        "email": "Eleni@Example.gr",
        "first_name": "Ελένη",
        "last_name": "Νικολάου",
        "consent": consent,
    }
    data.update(overrides)
    return Subscriber(**data)


def message(**overrides: Any) -> EmailMessage:
    data: dict[str, Any] = {
        "to": "eleni@example.gr",
        "subject": "Η παραγγελία σας",
        "html": "<p>Ευχαριστούμε</p>",
        "params": {"order": "D-1001"},
        "idempotency_key": KEY,
        "tags": ("order",),
        "transactional": True,
    }
    data.update(overrides)
    return EmailMessage(**data)


@pytest.fixture
def sandbox() -> BrevoSandbox:
    box = BrevoSandbox()
    box.bind("http://brevo.test")
    return box


def adapter_for(box: BrevoSandbox, **overrides: Any) -> Brevo:
    c = box.credentials()
    data: dict[str, Any] = {
        "api_key": SecretStr(c["api_key"]),
        "base_url": c["base_url"],
        "list_ids": c["list_ids"],
        "tag_lists": {"champions": 3},
        "doi_template_id": int(c["doi_template_id"]),
        "redirection_url": "https://dixis.gr/welcome",
        "sender_email": "orders@dixis.gr",
    }
    data.update(overrides)
    return Brevo(BrevoConfig(**data))


# -- pure ------------------------------------------------------------------------------------


def test_contact_body_is_an_upsert_on_the_lists_and_tag_lists() -> None:
    assert build_contact_body(sub(tags=("champions", "other")), CONFIG) == {
        "email": "eleni@example.gr",
        "attributes": {"FIRSTNAME": "Ελένη", "LASTNAME": "Νικολάου"},
        "listIds": [2, 3],
        "emailBlacklisted": False,
        "updateEnabled": True,
    }


def test_double_opt_in_body() -> None:
    assert build_doi_body(sub(DOI), CONFIG) == {
        "email": "eleni@example.gr",
        "attributes": {"FIRSTNAME": "Ελένη", "LASTNAME": "Νικολάου"},
        "includeListIds": [2],
        "templateId": 7,
        "redirectionUrl": "https://dixis.gr/welcome",
    }
    bare = CONFIG.model_copy(update={"doi_template_id": None})
    with pytest.raises(ConfigurationError, match="doi_template_id"):
        build_doi_body(sub(DOI), bare)


def test_transactional_body_carries_the_idempotency_key() -> None:
    assert build_email_body(message(), CONFIG) == {
        "to": [{"email": "eleni@example.gr"}],
        "sender": {"email": "orders@dixis.gr", "name": "Dixis Fresh"},
        "subject": "Η παραγγελία σας",
        "htmlContent": "<p>Ευχαριστούμε</p>",
        "params": {"order": "D-1001"},
        "tags": ["order"],
        "headers": {"idempotencyKey": KEY},
    }
    templated = build_email_body(message(html=None, template_id="12"), CONFIG)
    assert templated["templateId"] == 12
    assert "htmlContent" not in templated


def test_a_key_that_is_not_a_uuid_becomes_a_stable_uuid() -> None:
    key = send_key("journey:welcome:c1")
    assert uuid.UUID(key)
    assert key == send_key("journey:welcome:c1")
    assert send_key(KEY) == KEY


def test_bad_message_names_its_fields() -> None:
    with pytest.raises(InvalidInput) as info:
        build_email_body(message(to="x@", html=None, template_id="welcome"), CONFIG)
    assert [e.path for e in info.value.errors] == ["to", "template_id"]


def test_event_body() -> None:
    event = MarketingEvent(
        email="Eleni@Example.gr",
        name="order_delivered",
        occurred_at=AT,
        properties={"order": "D-1001", "items": 3},
    )
    assert build_event_body(event) == {
        "event_name": "order_delivered",
        "event_date": "2026-03-14T09:30:00.000Z",
        "identifiers": {"email_id": "eleni@example.gr"},
        "event_properties": {"order": "D-1001", "items": 3},
    }


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    req = httpx.Request("POST", "https://api.brevo.com/v3/contacts")
    h = {"content-type": "application/json", **(headers or {})}
    return httpx.Response(status, content=body, headers=h, request=req)


def test_documented_errors_are_typed() -> None:
    endpoint = Brevo(CONFIG).endpoint("contacts")
    dup = classify(
        _response(400, b'{"code":"duplicate_parameter","message":"Contact already exist"}'),
        endpoint,
    )
    assert isinstance(dup, Conflict)
    invalid = classify(
        _response(400, b'{"code":"invalid_parameter","message":"Invalid email address"}'), endpoint
    )
    assert isinstance(invalid, ValidationRejected)
    assert invalid.vendor_code == "invalid_parameter"
    assert isinstance(
        classify(_response(401, b'{"code":"unauthorized","message":"Key not found"}'), endpoint),
        AuthError,
    )
    throttled = classify(
        _response(
            429, b'{"code":"too_many_requests","message":"x"}', {"x-sib-ratelimit-reset": "30"}
        ),
        endpoint,
    )
    assert isinstance(throttled, RateLimited)
    assert throttled.retry_at is not None
    assert 25 < throttled.seconds_to_wait() <= 30  # type: ignore[operator]


def test_the_key_never_shows_in_repr() -> None:
    assert "xkeysib" not in repr(Brevo(CONFIG)) + repr(CONFIG)


def test_each_endpoint_family_has_its_own_budget() -> None:
    adapter = Brevo(CONFIG)
    smtp, events = adapter.endpoint("smtp"), adapter.endpoint("events")
    assert smtp.tenant != events.tenant
    assert smtp.limits.windows[0].limit == 1000
    assert events.limits.windows[0].limit == 10


# -- against the sandbox -----------------------------------------------------------------------


def test_brevo_is_an_email_provider() -> None:
    assert isinstance(Brevo(CONFIG), EmailProvider)


def test_granted_consent_upserts_the_contact_on_its_lists(
    sandbox: BrevoSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    created = run(sandbox, adapter.upsert_subscriber(sub(tags=("champions",))))
    assert created.status is UpsertStatus.CREATED
    assert created.external_id == "1"
    contact = sandbox.contacts["eleni@example.gr"]
    assert contact["listIds"] == [2, 3]
    assert contact["attributes"] == {"FIRSTNAME": "Ελένη", "LASTNAME": "Νικολάου"}
    again = run(sandbox, adapter.upsert_subscriber(sub(first_name="Έλενα")))
    assert again.status is UpsertStatus.UPDATED
    assert contact["attributes"]["FIRSTNAME"] == "Έλενα"


def test_double_opt_in_joins_the_list_only_after_the_click(
    sandbox: BrevoSandbox, run: Runner
) -> None:
    result = run(sandbox, adapter_for(sandbox).upsert_subscriber(sub(DOI)))
    assert result.status is UpsertStatus.CREATED
    assert sandbox.doi_emails == [("eleni@example.gr", 7, "https://dixis.gr/welcome")]
    assert sandbox.contacts == {}
    sandbox.confirm("eleni@example.gr")
    assert sandbox.contacts["eleni@example.gr"]["listIds"] == [2]


def test_no_consent_sends_nothing(sandbox: BrevoSandbox, run: Runner) -> None:
    result = run(sandbox, adapter_for(sandbox).upsert_subscriber(sub(MarketingConsent())))
    assert result.error_code == "no_consent"
    assert sandbox.requests == []


def test_withdrawal_blacklists_and_unlinks_but_never_creates(
    sandbox: BrevoSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    stranger = run(sandbox, adapter.upsert_subscriber(sub(WITHDRAWN, email="x@example.gr")))
    assert stranger.status is UpsertStatus.UNCHANGED
    assert sandbox.contacts == {}
    run(sandbox, adapter.upsert_subscriber(sub()))
    result = run(sandbox, adapter.upsert_subscriber(sub(WITHDRAWN)))
    assert result.status is UpsertStatus.UPDATED
    contact = sandbox.contacts["eleni@example.gr"]
    assert contact["emailBlacklisted"] is True
    assert contact["listIds"] == []


def test_a_send_repeated_with_its_key_is_sent_once(sandbox: BrevoSandbox, run: Runner) -> None:
    # sent once; sent again (a redelivery), the repeat meets a 503 first, then is retried
    adapter = adapter_for(sandbox)
    first = run(sandbox, adapter.send(message()))
    sandbox.faults = FaultPlan(script=deque([Fault.SERVER_ERROR]))
    second = run(sandbox, adapter.send(message()))
    assert second.message_id == first.message_id
    assert len(sandbox.emails) == 1
    sent = sandbox.requests[-1]
    assert b'"idempotencyKey":"' + KEY.encode() in sent.content
    assert sandbox.emails[0]["headers"] == {"idempotencyKey": KEY}


def test_gdpr_erase_deletes_the_contact(sandbox: BrevoSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_subscriber(sub()))
    assert run(sandbox, adapter.erase("eleni@example.gr")).erased
    assert sandbox.contacts == {}
    assert run(sandbox, adapter.erase("eleni@example.gr")).detail == "not present"


def test_events_and_segment_lists(sandbox: BrevoSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_subscriber(sub()))
    event = MarketingEvent(
        email="eleni@example.gr",
        name="segment_entered",
        occurred_at=AT,
        properties={"segment": "Champions"},
    )
    run(sandbox, adapter.track(event))
    assert sandbox.events[0]["identifiers"] == {"email_id": "eleni@example.gr"}
    emails = ["eleni@example.gr"] + [f"p{i}@example.gr" for i in range(200)]
    pushed = run(sandbox, adapter.add_to_list(3, emails))
    assert pushed["success"] == ["eleni@example.gr"]
    assert len(pushed["failure"]) == 200  # not contacts: they never consented
    assert [r.url.path for r in sandbox.requests].count("/v3/contacts/lists/3/contacts/add") == 2


def test_bad_input_is_refused_before_anything_is_sent(sandbox: BrevoSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    with pytest.raises(InvalidInput):
        run(sandbox, adapter.upsert_subscriber(sub(email="nope")))
    with pytest.raises(InvalidInput):
        run(sandbox, adapter.send(message(to="nope")))
    assert sandbox.requests == []


def test_throttling_waits_for_the_reset_header(sandbox: BrevoSandbox, run: Runner) -> None:
    sandbox.faults = FaultPlan(script=deque([Fault.RATE_LIMIT]), retry_after=0.01)
    assert run(sandbox, adapter_for(sandbox).check()).detail == "Dixis Fresh"
    assert len(sandbox.requests) == 2


def test_the_hourly_limit_of_other_endpoints_is_enforced(sandbox: BrevoSandbox) -> None:
    adapter = adapter_for(sandbox)
    sandbox.windows["other"].limit = 2
    run_sync(sandbox, adapter.check())
    run_sync(sandbox, adapter.check())
    with pytest.raises(RateLimited) as info:
        run_sync(sandbox, adapter.check())
    assert info.value.retry_at is not None  # an hour away: raised, not slept through


def test_a_wrong_key_is_an_auth_error(sandbox: BrevoSandbox, run: Runner) -> None:
    with pytest.raises(AuthError):
        run(sandbox, adapter_for(sandbox, api_key=SecretStr("xkeysib-wrong")).check())


def test_list_ids_accept_a_comma_separated_setting() -> None:
    config = BrevoConfig(api_key=SecretStr("k"), list_ids="2, 3")  # type: ignore[arg-type]
    assert config.list_ids == (2, 3)
    with pytest.raises(ValueError, match="list_ids"):
        BrevoConfig(api_key=SecretStr("k"), list_ids="")  # type: ignore[arg-type]


class TestBrevoConformance(EmailProviderSuite):
    """The EmailProvider contract, run against the Brevo sandbox."""

    @pytest.fixture
    def box(self) -> BrevoSandbox:
        sandbox = BrevoSandbox()
        sandbox.bind("http://brevo.test")
        return sandbox

    @pytest.fixture
    def email_provider(self, box: BrevoSandbox) -> Brevo:
        return adapter_for(box)

    @pytest.fixture
    def driver(self, box: BrevoSandbox) -> Driver:
        return Driver(httpx.Client(transport=box.transport()), sleep=lambda _s: None)


# -- webhooks: consent changed at Brevo ---------------------------------------------------
# The documented marketing "unsubscribe" example (developers.brevo.com/docs/marketing-webhooks).
UNSUBSCRIBE_EVENT = b"""{
  "id": 123456, "camp_id": 12, "email": "Eleni@Example.gr", "campaign name": "My First Campaign",
  "date_sent": "2020-10-09 00:00:00", "date_event": "2020-10-09 00:00:00",
  "event": "unsubscribe", "tag": "", "ts_sent": 1604933619, "ts_event": 1604933737,
  "ts": 1604937337, "list_id": [2, 3]
}"""
LIST_ADDITION_EVENT = (
    b'{"id": 123456, "email": "eleni@example.gr", "key": "4f1e", "list_id": [2],'
    b' "date": "2020-10-09 00:00:00", "ts": 1604933619, "event": "list_addition"}'
)


def test_webhook_body_subscribes_to_consent_events() -> None:
    assert build_webhook_body("https://dixis.test/hooks/brevo?secret=s") == {
        "url": "https://dixis.test/hooks/brevo?secret=s",
        "description": "dixis: consent changes",
        "events": ["unsubscribed", "listAddition", "contactUpdated", "contactDeleted"],
        "type": "marketing",
    }


def test_unsubscribe_webhook_is_a_withdrawal_at_the_utc_event_time() -> None:
    change = parse_webhook(UNSUBSCRIBE_EVENT)
    assert change is not None
    assert (change.provider, change.email, change.status, change.reason) == (
        "brevo",
        "eleni@example.gr",
        ConsentStatus.WITHDRAWN,
        "unsubscribe link",
    )
    assert change.at == datetime.fromtimestamp(1604933737, UTC)  # ts_event, not ts (CET)


def test_list_addition_to_a_marketing_list_is_consent_granted() -> None:
    change = parse_webhook(LIST_ADDITION_EVENT, list_ids=(2,))
    assert change is not None
    assert (change.email, change.status) == ("eleni@example.gr", ConsentStatus.GRANTED)
    assert change.at == datetime.fromtimestamp(1604933619, UTC)
    assert parse_webhook(LIST_ADDITION_EVENT, list_ids=(3,)) is None  # a segment list


def test_other_brevo_webhooks_are_ignored_and_bad_ones_refused() -> None:
    updated = b'{"id": 1, "email": "a@b.gr", "event": "contact_updated", "ts": 1604933619}'
    assert parse_webhook(updated) is None
    assert parse_webhook(b'{"event": "opened", "email": "a@b.gr", "ts_event": 1}') is None
    with pytest.raises(WebhookError):
        parse_webhook(UNSUBSCRIBE_EVENT, secret=SecretStr("s3cret"), given_secret="guess")
    with pytest.raises(WebhookError):
        parse_webhook(b"event=unsubscribe")
    with pytest.raises(WebhookError):
        parse_webhook(b'[{"event": "unsubscribe"}]')
    with pytest.raises(WebhookError):
        parse_webhook(b'{"event": "unsubscribe", "email": "not an address", "ts_event": 1}')
    with pytest.raises(WebhookError):
        parse_webhook(b'{"event": "unsubscribe", "email": "a@b.gr"}')


def test_sandbox_calls_the_registered_webhook_on_unsubscribe_and_confirmation(
    run: Runner,
) -> None:
    received = []

    def receiver(request: httpx.Request) -> httpx.Response:
        change = parse_webhook(
            request.content,
            list_ids=CONFIG.list_ids,
            secret=SecretStr("s3cret"),
            given_secret=request.url.params.get("secret"),
        )
        if change is not None:
            received.append(change)
        return httpx.Response(200)

    box = BrevoSandbox(webhook_client=httpx.Client(transport=httpx.MockTransport(receiver)))
    box.bind("http://brevo.test")
    adapter = adapter_for(box)
    hook_id = run(box, adapter.register_webhook("https://dixis.test/hooks/brevo?secret=s3cret"))
    assert hook_id == box.webhooks[0]["id"]
    run(box, adapter.upsert_subscriber(sub(DOI)))
    box.confirm("eleni@example.gr")
    box.unsubscribe_click("eleni@example.gr")
    assert [(c.email, c.status) for c in received] == [
        ("eleni@example.gr", ConsentStatus.GRANTED),
        ("eleni@example.gr", ConsentStatus.WITHDRAWN),
    ]
    assert [d.status for d in box.webhook_deliveries] == [200, 200]
