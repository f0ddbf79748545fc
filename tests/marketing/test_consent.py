"""Consent decisions, and the GDPR erase across every provider with a result per provider."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dixis_integrations.http import AsyncDriver, Driver, Operation
from dixis_integrations.marketing.brevo import Brevo, BrevoConfig
from dixis_integrations.marketing.consent import (
    Erasable,
    ListAction,
    aerase_everywhere,
    erase_everywhere,
    list_action,
)
from dixis_integrations.marketing.mailchimp import Mailchimp, MailchimpConfig
from dixis_integrations.marketing.smtp import SMTP, SMTPConfig
from dixis_integrations.models.crm import ErasureResult
from dixis_integrations.models.customer import (
    ConsentStatus,
    DoubleOptIn,
    LegalBasis,
    MarketingConsent,
)
from dixis_integrations.models.email import Subscriber
from dixis_integrations.sandbox.brevo import BrevoSandbox
from dixis_integrations.sandbox.kit import Emulator, Fault, FaultPlan
from dixis_integrations.sandbox.mailchimp import MailchimpSandbox

AT = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "doi", "expected"),
    [
        (ConsentStatus.GRANTED, DoubleOptIn.NOT_REQUIRED, ListAction.SUBSCRIBE),
        (ConsentStatus.GRANTED, DoubleOptIn.CONFIRMED, ListAction.SUBSCRIBE),
        (ConsentStatus.GRANTED, DoubleOptIn.PENDING, ListAction.CONFIRM),
        (ConsentStatus.PENDING, DoubleOptIn.PENDING, ListAction.CONFIRM),
        (ConsentStatus.PENDING, DoubleOptIn.NOT_REQUIRED, ListAction.CONFIRM),
        (ConsentStatus.DENIED, DoubleOptIn.NOT_REQUIRED, ListAction.UNSUBSCRIBE),
        (ConsentStatus.WITHDRAWN, DoubleOptIn.CONFIRMED, ListAction.UNSUBSCRIBE),
        (ConsentStatus.UNKNOWN, DoubleOptIn.NOT_REQUIRED, ListAction.SKIP),
    ],
)
def test_list_action_per_consent(
    status: ConsentStatus, doi: DoubleOptIn, expected: ListAction
) -> None:
    consent = MarketingConsent(status=status, double_opt_in=doi, source="form", timestamp=AT)
    assert list_action(consent) is expected


def test_only_subscribe_means_marketing_is_allowed() -> None:
    for status in ConsentStatus:
        for doi in DoubleOptIn:
            consent = MarketingConsent(status=status, double_opt_in=doi)
            assert consent.allows_marketing() == (list_action(consent) is ListAction.SUBSCRIBE)


def test_legitimate_interest_does_not_subscribe_without_granted_consent() -> None:
    consent = MarketingConsent(legal_basis=LegalBasis.LEGITIMATE_INTEREST)
    assert list_action(consent) is ListAction.SKIP


# -- erase everywhere ----------------------------------------------------------------------


def _providers() -> tuple[MailchimpSandbox, BrevoSandbox, Mailchimp, Brevo, SMTP]:
    mc_box, br_box = MailchimpSandbox(), BrevoSandbox()
    mc_box.bind("http://mc.test")
    br_box.bind("http://brevo.test")
    m, b = mc_box.credentials(), br_box.credentials()
    mailchimp = Mailchimp(
        MailchimpConfig(
            api_key=SecretStr(m["api_key"]), list_id=m["list_id"], base_url=m["base_url"]
        )
    )
    brevo = Brevo(
        BrevoConfig(api_key=SecretStr(b["api_key"]), base_url=b["base_url"], list_ids=(2,))
    )
    smtp = SMTP(SMTPConfig(host="127.0.0.1", sender="orders@dixis.gr", security="none"))
    return mc_box, br_box, mailchimp, brevo, smtp


def _subscribe_everywhere(
    mc_box: MailchimpSandbox, br_box: BrevoSandbox, mc: Mailchimp, br: Brevo
) -> None:
    person = Subscriber(
        email="eleni@example.gr",
        consent=MarketingConsent(status=ConsentStatus.GRANTED, source="form", timestamp=AT),
    )
    for box, adapter in ((mc_box, mc), (br_box, br)):
        with httpx.Client(transport=box.transport()) as client:
            Driver(client).run(adapter.upsert_subscriber(person))


def test_erase_removes_the_person_from_every_provider_and_reports_each() -> None:
    mc_box, br_box, mailchimp, brevo, smtp = _providers()
    _subscribe_everywhere(mc_box, br_box, mailchimp, brevo)
    boxes: dict[str, Emulator] = {"mailchimp": mc_box, "brevo": br_box}

    def run(provider: Erasable, operation: Operation[ErasureResult]) -> ErasureResult:
        box = boxes.get(provider.name)
        transport = box.transport() if box else httpx.MockTransport(lambda r: httpx.Response(500))
        with httpx.Client(transport=transport) as client:
            return Driver(client, sleep=lambda _s: None).run(operation)

    results = erase_everywhere("Eleni@Example.gr", [mailchimp, brevo, smtp], run)
    assert [(r.provider, r.erased) for r in results] == [
        ("mailchimp", True),
        ("brevo", True),
        ("smtp", True),
    ]
    assert mc_box.members == {}
    assert br_box.contacts == {}


def test_a_failing_provider_is_reported_and_the_others_still_erase() -> None:
    mc_box, br_box, mailchimp, brevo, _ = _providers()
    _subscribe_everywhere(mc_box, br_box, mailchimp, brevo)
    mc_box.faults = FaultPlan(script=deque([Fault.SERVER_ERROR] * 10))
    boxes: dict[str, Emulator] = {"mailchimp": mc_box, "brevo": br_box}

    def run(provider: Erasable, operation: Operation[ErasureResult]) -> ErasureResult:
        with httpx.Client(transport=boxes[provider.name].transport()) as client:
            return Driver(client, sleep=lambda _s: None).run(operation)

    results = erase_everywhere("eleni@example.gr", [mailchimp, brevo], run)
    assert [(r.provider, r.erased, r.detail) for r in results] == [
        ("mailchimp", False, "failed: transient"),
        ("brevo", True, None),
    ]
    assert br_box.contacts == {}
    assert mc_box.member("eleni@example.gr") is not None


def test_async_erase_runs_the_providers_concurrently() -> None:
    mc_box, br_box, mailchimp, brevo, _ = _providers()
    _subscribe_everywhere(mc_box, br_box, mailchimp, brevo)
    boxes: dict[str, Emulator] = {"mailchimp": mc_box, "brevo": br_box}

    async def main() -> list[ErasureResult]:
        async def run(provider: Erasable, operation: Operation[ErasureResult]) -> Any:
            async with httpx.AsyncClient(transport=boxes[provider.name].transport()) as client:
                return await AsyncDriver(client).run(operation)

        return await aerase_everywhere("eleni@example.gr", [mailchimp, brevo], run)

    assert [r.erased for r in asyncio.run(main())] == [True, True]
    assert mc_box.members == {}
    assert br_box.contacts == {}
