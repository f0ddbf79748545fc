"""Pushing segments to CRMs (the ``segment`` property) and email providers (tags, lists),
end to end against the HubSpot, Mailchimp and Brevo sandboxes, sync and async."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tests.marketing._drive import Runner, run, run_sync

from dixis_integrations.crm.hubspot import HubSpot, HubSpotConfig
from dixis_integrations.errors import InvalidInput
from dixis_integrations.http import AsyncDriver, Operation
from dixis_integrations.marketing.brevo import Brevo, BrevoConfig
from dixis_integrations.marketing.mailchimp import Mailchimp, MailchimpConfig
from dixis_integrations.marketing.push import apush_segments, push_segments, segment_tags
from dixis_integrations.marketing.segmentation import SegmentOrder, segment_customers
from dixis_integrations.models.crm import CRMContact, UpsertStatus
from dixis_integrations.models.customer import ConsentStatus, MarketingConsent
from dixis_integrations.models.money import Money
from dixis_integrations.sandbox.brevo import BrevoSandbox
from dixis_integrations.sandbox.hubspot import HubSpotSandbox
from dixis_integrations.sandbox.kit import Emulator, Fault, FaultPlan
from dixis_integrations.sandbox.mailchimp import MailchimpSandbox

__all__ = ["run"]

AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
GRANTED = MarketingConsent(status=ConsentStatus.GRANTED, source="checkout", timestamp=AS_OF)


def _orders() -> list[SegmentOrder]:
    """c1 buys often and much recently (Champions); c2 bought once long ago (Hibernating...)."""
    rows = []
    for n in range(6):
        rows.append(
            SegmentOrder("c1", datetime(2025, 12, 1 + n, tzinfo=UTC), Decimal("250.00"), "paid")
        )
    rows.append(SegmentOrder("c2", datetime(2024, 3, 1, tzinfo=UTC), Decimal("10.00"), "paid"))
    rows.append(SegmentOrder("c3", datetime(2025, 11, 1, tzinfo=UTC), Decimal("30.00"), "paid"))
    return rows


def _people(*, with_c3: bool = True) -> dict[str, CRMContact]:
    def contact(ref: str, email: str, consent: MarketingConsent) -> CRMContact:
        return CRMContact(
            reference=ref,
            email=email,
            first_name="Ελένη",
            total_orders=1,
            total_spent=Money.of("10.00"),
            last_order_date=date(2025, 12, 1),
            consent=consent,
        )

    people = {
        "c1": contact("c1", "eleni@example.gr", GRANTED),
        "c2": contact("c2", "nikos@example.gr", MarketingConsent()),  # no consent known
    }
    if with_c3:
        people["c3"] = contact("c3", "maria@example.gr", GRANTED)
    return people


class _World:
    def __init__(self) -> None:
        self.hubspot = HubSpotSandbox()
        self.hubspot.bind("http://hubspot.test")
        self.mailchimp = MailchimpSandbox()
        self.mailchimp.bind("http://mailchimp.test")
        self.brevo = BrevoSandbox()
        self.brevo.bind("http://brevo.test")
        hc, mc, bc = (
            self.hubspot.credentials(),
            self.mailchimp.credentials(),
            self.brevo.credentials(),
        )
        self.crm = HubSpot(
            HubSpotConfig(access_token=SecretStr(hc["access_token"]), base_url=hc["base_url"])
        )
        self.chimp = Mailchimp(
            MailchimpConfig(
                api_key=SecretStr(mc["api_key"]),
                list_id=mc["list_id"],
                base_url=mc["base_url"],
                marketing_permission_id=mc["marketing_permission_id"],
            )
        )
        self.blue = Brevo(
            BrevoConfig(
                api_key=SecretStr(bc["api_key"]),
                base_url=bc["base_url"],
                list_ids=bc["list_ids"],
                tag_lists={"Champions": 3},
            )
        )
        self.boxes: dict[int, Emulator] = {
            id(self.crm): self.hubspot,
            id(self.chimp): self.mailchimp,
            id(self.blue): self.brevo,
        }

    def runner(self, run: Runner) -> Any:
        return lambda provider, op: run(self.boxes[id(provider)], op)


def test_segment_tags_name_the_segment_then_the_true_flags() -> None:
    champion = next(r for r in segment_customers(_orders(), AS_OF) if r.customer_id == "c1")
    assert champion.segment == "Champions"
    assert segment_tags(champion) == ["Champions"]
    assert segment_tags(champion, prefix="rfm:", flags=True) == [
        "rfm:Champions",
        "rfm:high_value",
        "rfm:frequent_buyer",
    ]


def test_segments_reach_the_crm_property_and_the_email_tags_and_lists(run: Runner) -> None:
    world = _World()
    run(world.hubspot, world.crm.ensure_properties())
    results = segment_customers(_orders(), AS_OF)
    segments = {r.customer_id: r.segment for r in results}
    pushed = push_segments(
        results,
        _people(),
        world.runner(run),
        crm=[world.crm],
        email=[world.chimp, world.blue],
    )
    assert pushed.missing == []
    # CRM: every known customer, consent or not, carries its segment as a property
    assert [r.status for r in pushed.crm["hubspot"]] == [UpsertStatus.CREATED] * 3
    by_email = {
        c["properties"]["email"]: c["properties"].get("dixis_segment")
        for c in world.hubspot.contacts.values()
    }
    assert by_email == {
        "eleni@example.gr": segments["c1"],
        "nikos@example.gr": segments["c2"],
        "maria@example.gr": segments["c3"],
    }
    # Email: the person without consent is never sent; the others are tagged / listed
    for name in ("mailchimp", "brevo"):
        statuses = [r.status for r in pushed.email[name]]
        assert statuses[1] is UpsertStatus.REJECTED
        assert pushed.email[name][1].error_code == "no_consent"
        assert statuses[0] is statuses[2] is UpsertStatus.CREATED
    member = world.mailchimp.member("eleni@example.gr")
    assert member is not None
    assert [t["name"] for t in member["tags"]] == ["Champions"]
    assert world.mailchimp.member("nikos@example.gr") is None
    assert world.brevo.contacts["eleni@example.gr"]["listIds"] == [2, 3]
    assert world.brevo.contacts["maria@example.gr"]["listIds"] == [2]
    assert "nikos@example.gr" not in world.brevo.contacts


def test_unknown_customers_are_reported_and_a_failing_provider_does_not_stop_the_others() -> None:
    world = _World()
    world.brevo.faults = FaultPlan(rate=1.0, kinds=(Fault.SERVER_ERROR,))
    pushed = push_segments(
        segment_customers(_orders(), AS_OF),
        _people(with_c3=False),
        world.runner(run_sync),
        email=[world.blue, world.chimp],
    )
    assert pushed.missing == ["c3"]
    assert [r.error_code for r in pushed.email["brevo"]] == ["transient", "no_consent"]
    assert [r.status for r in pushed.email["mailchimp"]] == [
        UpsertStatus.CREATED,
        UpsertStatus.REJECTED,
    ]


def test_async_push_gives_the_same_outcome_in_crm_batches() -> None:
    world = _World()
    run_sync(world.hubspot, world.crm.ensure_properties())

    async def main() -> Any:
        async def no_sleep(_s: float) -> None:
            return None

        clients = {k: httpx.AsyncClient(transport=b.transport()) for k, b in world.boxes.items()}

        async def arun(provider: Any, op: Operation[Any]) -> Any:
            return await AsyncDriver(clients[id(provider)], sleep=no_sleep).run(op)

        try:
            return await apush_segments(
                segment_customers(_orders(), AS_OF),
                _people(),
                arun,
                crm=[world.crm],
                email=[world.blue],
                crm_batch=2,
            )
        finally:
            for c in clients.values():
                await c.aclose()

    pushed = asyncio.run(main())
    assert len(pushed.crm["hubspot"]) == 3
    assert [r.status for r in pushed.email["brevo"]] == [
        UpsertStatus.CREATED,
        UpsertStatus.REJECTED,
        UpsertStatus.CREATED,
    ]
    assert world.brevo.contacts["eleni@example.gr"]["listIds"] == [2, 3]


def test_a_crm_batch_below_one_is_refused_before_anything_is_sent() -> None:
    world = _World()
    with pytest.raises(InvalidInput) as caught:
        push_segments([], {}, world.runner(run_sync), crm=[world.crm], crm_batch=0)
    assert caught.value.errors[0].loc == ("crm_batch",)
    assert world.hubspot.requests == []
