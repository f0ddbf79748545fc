"""Mailchimp adapter: exact payloads, parsed answers, and consent runs against the sandbox."""

from __future__ import annotations

import json
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
    InvalidInput,
    NotSupported,
    RateLimited,
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http import Driver
from dixis_integrations.marketing.consent import ListAction
from dixis_integrations.marketing.mailchimp import (
    Mailchimp,
    MailchimpConfig,
    build_batch_operations,
    build_member_body,
    classify,
    parse_batch,
    parse_webhook,
    subscriber_hash,
)
from dixis_integrations.models.crm import UpsertStatus
from dixis_integrations.models.customer import ConsentStatus, DoubleOptIn, MarketingConsent
from dixis_integrations.models.email import BatchState, ConsentChange, EmailMessage, Subscriber
from dixis_integrations.protocols import EmailProvider
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.sandbox.mailchimp import MailchimpSandbox
from dixis_integrations.testing.conformance import EmailProviderSuite

__all__ = ["run"]

AT = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
GRANTED = MarketingConsent(status=ConsentStatus.GRANTED, source="checkout", timestamp=AT)
DOI = GRANTED.model_copy(update={"double_opt_in": DoubleOptIn.PENDING})
WITHDRAWN = GRANTED.model_copy(update={"status": ConsentStatus.WITHDRAWN})
CONFIG = MailchimpConfig(
    api_key=SecretStr("0123abcd-us21"), list_id="L1", marketing_permission_id="P1"
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


@pytest.fixture
def sandbox() -> MailchimpSandbox:
    box = MailchimpSandbox()
    box.bind("http://mailchimp.test")
    return box


def adapter_for(box: MailchimpSandbox) -> Mailchimp:
    c = box.credentials()
    return Mailchimp(
        MailchimpConfig(
            api_key=SecretStr(c["api_key"]),
            list_id=c["list_id"],
            base_url=c["base_url"],
            marketing_permission_id=c["marketing_permission_id"],
        )
    )


# -- pure ------------------------------------------------------------------------------------


def test_subscriber_hash_is_md5_of_the_lowercased_address() -> None:
    assert subscriber_hash("Urist.McVankab@freddiesjokes.com") == (
        "62eeb292278cc15f5817cb78f7790b08"
    )


def test_base_url_comes_from_the_keys_data_centre() -> None:
    assert Mailchimp(CONFIG).endpoint.base_url == "https://us21.api.mailchimp.com/3.0"
    with pytest.raises(ConfigurationError, match="data centre"):
        Mailchimp(MailchimpConfig(api_key=SecretStr("nodc"), list_id="L1"))


def test_member_body_for_confirmed_consent() -> None:
    assert build_member_body(sub(attributes={"city": "Αθήνα"}), CONFIG, ListAction.SUBSCRIBE) == {
        "email_address": "eleni@example.gr",
        "status_if_new": "subscribed",
        "merge_fields": {"FNAME": "Ελένη", "LNAME": "Νικολάου", "CITY": "Αθήνα"},
        "language": "el",
        "timestamp_opt": "2026-03-14T09:30:00+00:00",
        "marketing_permissions": [{"marketing_permission_id": "P1", "enabled": True}],
    }


def test_member_body_for_double_opt_in_is_pending() -> None:
    body = build_member_body(sub(DOI), CONFIG, ListAction.CONFIRM)
    assert body["status_if_new"] == "pending"
    assert "status" not in body
    assert "timestamp_opt" not in body  # not opted in yet


def test_batch_refuses_unknown_consent_and_never_changes_an_existing_status() -> None:
    people = [
        sub(),
        sub(MarketingConsent(), email="nobody@example.gr"),
        sub(WITHDRAWN, email="gone@example.gr"),
        sub(email="bad@", consent=GRANTED),
        sub(DOI, email="new@example.gr", tags=("vip",)),
    ]
    operations, refused = build_batch_operations(people, CONFIG)
    assert [(o["method"], o["operation_id"]) for o in operations] == [
        ("PUT", "eleni@example.gr"),
        ("PATCH", "gone@example.gr"),
        ("PUT", "new@example.gr"),
        ("POST", "new@example.gr#tags"),
    ]
    assert all("status" not in json.loads(o["body"]) for o in operations if o["method"] == "PUT")
    assert json.loads(operations[1]["body"]) == {
        "status": "unsubscribed",
        "marketing_permissions": [{"marketing_permission_id": "P1", "enabled": False}],
    }
    assert operations[0]["path"] == f"/lists/L1/members/{subscriber_hash('eleni@example.gr')}"
    assert [(r.reference, r.error_code) for r in refused] == [
        ("nobody@example.gr", "no_consent"),
        ("bad@", "invalid_email"),
    ]


def test_batch_answer_is_parsed() -> None:
    documented = {
        "id": "9d2a1a8c7e",
        "status": "finished",
        "total_operations": 4,
        "finished_operations": 4,
        "errored_operations": 1,
        "submitted_at": "2026-03-14T09:30:00+00:00",
        "completed_at": "2026-03-14T09:31:00+00:00",
        "response_body_url": "https://mailchimp-api-batch.s3.amazonaws.com/9d2a1a8c7e.json",
    }
    parsed = parse_batch(documented)
    assert (parsed.batch_id, parsed.state, parsed.submitted, parsed.errored) == (
        "9d2a1a8c7e",
        BatchState.FINISHED,
        4,
        1,
    )
    assert parsed.result_url is not None


def _response(status: int, body: bytes, ctype: str = "application/problem+json") -> httpx.Response:
    req = httpx.Request("PUT", "https://us21.api.mailchimp.com/3.0/lists/L1/members/x")
    return httpx.Response(status, content=body, headers={"content-type": ctype}, request=req)


def test_documented_errors_are_typed() -> None:
    endpoint = Mailchimp(CONFIG).endpoint
    invalid = classify(
        _response(
            400,
            b'{"type":"https://mailchimp.com/developer/marketing/docs/errors/",'
            b'"title":"Invalid Resource","status":400,"detail":"The resource submitted could '
            b'not be validated.","instance":"a1b2","errors":[{"field":"email_address",'
            b'"message":"This value should be a valid email."}]}',
        ),
        endpoint,
    )
    assert isinstance(invalid, ValidationRejected)
    assert invalid.request_id == "a1b2"
    assert [e.path for e in invalid.errors] == ["email_address"]
    compliance = classify(
        _response(400, b'{"title":"Member In Compliance State","status":400,"detail":"x"}'),
        endpoint,
    )
    assert isinstance(compliance, ValidationRejected)
    assert compliance.vendor_code == "Member In Compliance State"
    assert isinstance(classify(_response(401, b'{"title":"API Key Invalid"}'), endpoint), AuthError)
    assert isinstance(classify(_response(403, b"", "text/html"), endpoint), RateLimited)
    assert isinstance(
        classify(_response(429, b'{"title":"Too Many Requests"}'), endpoint), RateLimited
    )


def test_the_key_never_shows_in_repr() -> None:
    assert "0123abcd" not in repr(Mailchimp(CONFIG)) + repr(CONFIG)


# -- against the sandbox -----------------------------------------------------------------------


def test_mailchimp_is_an_email_provider() -> None:
    assert isinstance(Mailchimp(CONFIG), EmailProvider)


def test_granted_consent_subscribes_with_the_gdpr_permission(
    sandbox: MailchimpSandbox, run: Runner
) -> None:
    result = run(sandbox, adapter_for(sandbox).upsert_subscriber(sub(tags=("champions",))))
    assert result.status is UpsertStatus.CREATED
    member = sandbox.member("eleni@example.gr")
    assert member is not None
    assert member["status"] == "subscribed"
    assert member["marketing_permissions"][0]["enabled"] is True
    assert member["timestamp_opt"] == "2026-03-14T09:30:00+00:00"
    assert [t["name"] for t in member["tags"]] == ["champions"]
    assert sandbox.confirmations == []
    again = run(sandbox, adapter_for(sandbox).upsert_subscriber(sub(first_name="Έλενα")))
    assert again.status is UpsertStatus.UPDATED
    assert sandbox.member("eleni@example.gr")["merge_fields"]["FNAME"] == "Έλενα"  # type: ignore[index]


def test_double_opt_in_is_pending_until_the_person_confirms(
    sandbox: MailchimpSandbox, run: Runner
) -> None:
    result = run(sandbox, adapter_for(sandbox).upsert_subscriber(sub(DOI)))
    assert result.status is UpsertStatus.CREATED
    assert result.reason == "member is pending"
    assert sandbox.confirmations == ["eleni@example.gr"]
    sandbox.confirm("eleni@example.gr")
    assert sandbox.member("eleni@example.gr")["status"] == "subscribed"  # type: ignore[index]


def test_no_consent_sends_nothing(sandbox: MailchimpSandbox, run: Runner) -> None:
    result = run(sandbox, adapter_for(sandbox).upsert_subscriber(sub(MarketingConsent())))
    assert result.status is UpsertStatus.REJECTED
    assert result.error_code == "no_consent"
    assert sandbox.requests == []


def test_withdrawal_unsubscribes_a_member_and_never_adds_one(
    sandbox: MailchimpSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    stranger = run(sandbox, adapter.upsert_subscriber(sub(WITHDRAWN, email="x@example.gr")))
    assert stranger.status is UpsertStatus.UNCHANGED
    assert sandbox.members == {}
    run(sandbox, adapter.upsert_subscriber(sub()))
    result = run(sandbox, adapter.upsert_subscriber(sub(WITHDRAWN)))
    assert result.status is UpsertStatus.UPDATED
    member = sandbox.member("eleni@example.gr")
    assert member is not None
    assert member["status"] == "unsubscribed"
    assert member["marketing_permissions"][0]["enabled"] is False


def test_resubscribing_after_an_unsubscribe_asks_for_confirmation(
    sandbox: MailchimpSandbox, run: Runner
) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_subscriber(sub()))
    run(sandbox, adapter.upsert_subscriber(sub(WITHDRAWN)))
    result = run(sandbox, adapter.upsert_subscriber(sub()))
    assert result.status is UpsertStatus.UPDATED
    assert sandbox.member("eleni@example.gr")["status"] == "pending"  # type: ignore[index]


def test_gdpr_erase_deletes_permanently(sandbox: MailchimpSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_subscriber(sub()))
    assert run(sandbox, adapter.erase("Eleni@Example.gr")).erased
    assert sandbox.members == {}
    assert "eleni@example.gr" in sandbox.forgotten
    assert run(sandbox, adapter.erase("eleni@example.gr")).detail == "not present"


def test_batch_upsert_then_status(sandbox: MailchimpSandbox, run: Runner) -> None:
    adapter = adapter_for(sandbox)
    people = [sub(email=f"p{i}@example.gr") for i in range(3)]
    people.append(sub(MarketingConsent(), email="nobody@example.gr"))
    submitted = run(sandbox, adapter.upsert_subscribers(people))
    assert submitted.state is BatchState.PENDING
    assert submitted.submitted == 3
    assert [r.reference for r in submitted.rejected] == ["nobody@example.gr"]
    status = run(sandbox, adapter.batch_status(submitted.batch_id))
    assert (status.state, status.finished, status.errored) == (BatchState.FINISHED, 3, 0)
    assert len(sandbox.members) == 3
    tagged = run(sandbox, adapter.tag_members("at_risk", ["p0@example.gr", "p1@example.gr"]))
    assert tagged.submitted == 2
    assert [t["name"] for t in sandbox.member("p1@example.gr")["tags"]] == ["at_risk"]  # type: ignore[index]


def test_bad_address_is_refused_before_anything_is_sent(
    sandbox: MailchimpSandbox, run: Runner
) -> None:
    with pytest.raises(InvalidInput) as info:
        run(sandbox, adapter_for(sandbox).upsert_subscriber(sub(email="not-an-email")))
    assert [e.path for e in info.value.errors] == ["email"]
    assert sandbox.requests == []


def test_send_is_not_supported() -> None:
    message = EmailMessage(to="a@b.gr", subject="s", text="t", idempotency_key="k")
    with pytest.raises(NotSupported):
        run_sync(MailchimpSandbox(), Mailchimp(CONFIG).send(message))


def test_throttling_and_outage_are_retried(sandbox: MailchimpSandbox, run: Runner) -> None:
    sandbox.faults = FaultPlan(script=deque([Fault.RATE_LIMIT, Fault.SERVER_ERROR]))
    status = run(sandbox, adapter_for(sandbox).check())
    assert status.ok
    assert status.detail == "Everything's Chimpy!"
    assert len(sandbox.requests) == 3


def test_a_wrong_key_is_an_auth_error(sandbox: MailchimpSandbox, run: Runner) -> None:
    c = sandbox.credentials()
    wrong = Mailchimp(
        MailchimpConfig(api_key=SecretStr("bad-us21"), list_id=c["list_id"], base_url=c["base_url"])
    )
    with pytest.raises(AuthError):
        run(sandbox, wrong.check())


class TestMailchimpConformance(EmailProviderSuite):
    """The EmailProvider contract, run against the Mailchimp sandbox."""

    @pytest.fixture
    def box(self) -> MailchimpSandbox:
        sandbox = MailchimpSandbox()
        sandbox.bind("http://mailchimp.test")
        return sandbox

    @pytest.fixture
    def email_provider(self, box: MailchimpSandbox) -> Mailchimp:
        return adapter_for(box)

    @pytest.fixture
    def driver(self, box: MailchimpSandbox) -> Driver:
        return Driver(httpx.Client(transport=box.transport()), sleep=lambda _s: None)

    def test_send_is_refused_before_any_call(
        self, email_provider: Mailchimp, driver: Driver, recorder: Any
    ) -> None:
        message = EmailMessage(to="a@b.gr", subject="s", text="t", idempotency_key="k")
        self.assert_not_supported(driver, recorder, lambda: email_provider.send(message))


# -- webhooks: consent changed at Mailchimp -----------------------------------------------------

UNSUBSCRIBE_BODY = (
    b"type=unsubscribe&fired_at=2009-03-26+21%3A40%3A57&data%5Baction%5D=unsub"
    b"&data%5Breason%5D=manual&data%5Bid%5D=8a25ff1d98&data%5Blist_id%5D=a6b5da1054"
    b"&data%5Bemail%5D=api%2Bunsub%40mailchimp.com&data%5Bemail_type%5D=html"
    b"&data%5Bmerges%5D%5BEMAIL%5D=api%2Bunsub%40mailchimp.com&data%5Bip_opt%5D=10.20.10.30"
)


def test_unsubscribe_webhook_is_a_withdrawal() -> None:
    change = parse_webhook(UNSUBSCRIBE_BODY, list_id="a6b5da1054")
    assert change is not None
    assert (change.provider, change.email, change.status, change.reason) == (
        "mailchimp",
        "api+unsub@mailchimp.com",
        ConsentStatus.WITHDRAWN,
        "manual",
    )
    assert change.at == datetime(2009, 3, 26, 21, 40, 57, tzinfo=UTC)


def test_other_webhooks_are_ignored_and_bad_ones_refused() -> None:
    assert (
        parse_webhook(b"type=profile&fired_at=2009-03-26+21%3A31%3A21&data%5Bemail%5D=a%40b.gr")
        is None
    )
    with pytest.raises(WebhookError, match="secret"):
        parse_webhook(UNSUBSCRIBE_BODY, secret=SecretStr("s3cret"), given_secret="guess")
    with pytest.raises(WebhookError, match="audience"):
        parse_webhook(UNSUBSCRIBE_BODY, list_id="other")
    with pytest.raises(WebhookError):
        parse_webhook(b"type=unsubscribe&fired_at=yesterday&data%5Bemail%5D=a%40b.gr")


def test_an_unsubscribe_click_reaches_us_as_a_consent_change(run: Runner) -> None:
    received: list[ConsentChange] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        given = request.url.params.get("secret")
        change = parse_webhook(
            request.content, secret=SecretStr("s3cret"), given_secret=given, list_id=sandbox.list_id
        )
        if change is not None:
            received.append(change)
        return httpx.Response(200)

    hooks = httpx.Client(transport=httpx.MockTransport(receiver))
    sandbox = MailchimpSandbox(webhook_client=hooks)
    sandbox.bind("http://mailchimp.test")
    adapter = adapter_for(sandbox)
    run(sandbox, adapter.upsert_subscriber(sub()))
    hook_id = run(
        sandbox, adapter.register_webhook("https://dixis.test/hooks/mailchimp?secret=s3cret")
    )
    assert hook_id == sandbox.webhooks[0]["id"]
    assert sandbox.webhooks[0]["sources"] == {"user": True, "admin": True, "api": False}
    sandbox.unsubscribe_click("eleni@example.gr")
    assert [(c.email, c.status) for c in received] == [
        ("eleni@example.gr", ConsentStatus.WITHDRAWN)
    ]
    assert sandbox.webhook_deliveries[0].status == 200
