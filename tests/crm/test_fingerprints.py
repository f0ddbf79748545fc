"""Fingerprints: unchanged contacts are reported without being sent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr
from tests.crm.conftest import Runner

from dixis_integrations.crm import (
    ContactFingerprints,
    SQLiteContactFingerprints,
    fingerprint,
    sync_contacts,
)
from dixis_integrations.crm.hubspot import HubSpot, HubSpotConfig
from dixis_integrations.crm.pipedrive import Pipedrive, PipedriveConfig
from dixis_integrations.crm.salesforce import Salesforce, SalesforceConfig
from dixis_integrations.models import Money
from dixis_integrations.models.crm import CRMContact, UpsertStatus
from dixis_integrations.protocols import CRMProvider
from dixis_integrations.sandbox.hubspot import HubSpotSandbox
from dixis_integrations.sandbox.kit import Emulator
from dixis_integrations.sandbox.pipedrive import PipedriveSandbox
from dixis_integrations.sandbox.salesforce import SalesforceSandbox


def contact(i: int, **kw: object) -> CRMContact:
    data: dict[str, object] = {
        "reference": f"cus_{i}",
        "email": f"b{i}@example.gr",
        "last_name": "Κ",
        "total_orders": 1,
        "total_spent": Money.of("10"),
        "last_order_date": date(2026, 3, 1),
    }
    data.update(kw)
    return CRMContact(**data)  # type: ignore[arg-type]


def test_fingerprint_changes_with_any_field() -> None:
    assert fingerprint(contact(1)) == fingerprint(contact(1))
    assert fingerprint(contact(1)) != fingerprint(contact(1, total_orders=2))


def test_sqlite_fingerprints_persist(tmp_path: Path) -> None:
    store = SQLiteContactFingerprints(tmp_path / "fp.db")
    assert isinstance(store, ContactFingerprints)
    store.put_many("hubspot", {"a": "1", "b": "2"})
    store.put_many("hubspot", {"a": "3"})
    again = SQLiteContactFingerprints(tmp_path / "fp.db")
    assert again.get_many("hubspot", ["a", "b", "c"]) == {"a": "3", "b": "2"}
    assert again.get_many("salesforce", ["a"]) == {}
    again.forget("hubspot", ["a"])
    assert again.get_many("hubspot", ["a", "b"]) == {"b": "2"}


def test_only_changed_contacts_are_sent(run: Runner) -> None:
    box = HubSpotSandbox()
    box.bind("http://hubspot.test")
    crm = HubSpot(
        HubSpotConfig(access_token=SecretStr(box.access_token), base_url="http://hubspot.test")
    )
    store = SQLiteContactFingerprints()
    first = run(box, sync_contacts(crm, [contact(1), contact(2), contact(3, email="bad@")], store))
    assert [r.status for r in first] == [
        UpsertStatus.CREATED,
        UpsertStatus.CREATED,
        UpsertStatus.REJECTED,
    ]
    sent_before = len(box.requests)
    second = run(
        box, sync_contacts(crm, [contact(1), contact(2, total_orders=5), contact(3)], store)
    )
    assert [r.status for r in second] == [
        UpsertStatus.UNCHANGED,
        UpsertStatus.UPDATED,
        UpsertStatus.CREATED,
    ]
    upserts = [r for r in box.requests[sent_before:] if r.url.path.endswith("batch/upsert")]
    assert len(upserts) == 1
    assert upserts[0].content.count(b'"idProperty"') == 2
    third = run(box, sync_contacts(crm, [contact(1), contact(2, total_orders=5)], store))
    assert {r.status for r in third} == {UpsertStatus.UNCHANGED}


def _hubspot(store: ContactFingerprints) -> tuple[Emulator, CRMProvider]:
    box = HubSpotSandbox()
    box.bind("http://hubspot.test")
    config = HubSpotConfig(access_token=SecretStr(box.access_token), base_url=box.base_url)
    return box, HubSpot(config, fingerprints=store)


def _salesforce(store: ContactFingerprints) -> tuple[Emulator, CRMProvider]:
    box = SalesforceSandbox()
    box.bind("http://salesforce.test")
    creds = box.credentials()
    config = SalesforceConfig(
        base_url=creds["base_url"],
        client_id=creds["client_id"],
        username=creds["username"],
        private_key=SecretStr(creds["private_key"]),
    )
    return box, Salesforce(config, fingerprints=store)


def _pipedrive(store: ContactFingerprints) -> tuple[Emulator, CRMProvider]:
    box = PipedriveSandbox()
    box.bind("http://pipedrive.test")
    config = PipedriveConfig(api_token=SecretStr(box.api_token), base_url=box.base_url)
    return box, Pipedrive(config, fingerprints=store)


@pytest.mark.parametrize("make", [_hubspot, _salesforce, _pipedrive])
def test_adapter_with_fingerprints_reports_unchanged_from_upsert_contacts(
    make: Callable[[ContactFingerprints], tuple[Emulator, CRMProvider]], run: Runner
) -> None:
    store = SQLiteContactFingerprints()
    box, crm = make(store)
    first = run(box, crm.upsert_contacts([contact(1), contact(2), contact(3, email="bad@")]))
    assert [r.status for r in first] == [
        UpsertStatus.CREATED,
        UpsertStatus.CREATED,
        UpsertStatus.REJECTED,
    ]
    sent = len(box.requests)
    same = run(box, crm.upsert_contacts([contact(1), contact(2)]))
    assert [(r.reference, r.status) for r in same] == [
        ("cus_1", UpsertStatus.UNCHANGED),
        ("cus_2", UpsertStatus.UNCHANGED),
    ]
    assert len(box.requests) == sent  # nothing at all was sent
    changed = run(box, crm.upsert_contacts([contact(1), contact(2, total_orders=4)]))
    assert [r.status for r in changed] == [UpsertStatus.UNCHANGED, UpsertStatus.UPDATED]
    assert str(contact(1).email) not in b"".join(r.content for r in box.requests[sent:]).decode()


def test_fingerprints_are_kept_per_tenant(run: Runner) -> None:
    store = SQLiteContactFingerprints()
    box = HubSpotSandbox()
    box.bind("http://hubspot.test")
    config = HubSpotConfig(access_token=SecretStr(box.access_token), base_url=box.base_url)
    shop_a = HubSpot(config, tenant="a", fingerprints=store)
    shop_b = HubSpot(config, tenant="b", fingerprints=store)
    assert run(box, shop_a.upsert_contacts([contact(1)]))[0].status is UpsertStatus.CREATED
    assert run(box, shop_b.upsert_contacts([contact(1)]))[0].status is UpsertStatus.UPDATED
    assert run(box, shop_b.upsert_contacts([contact(1)]))[0].status is UpsertStatus.UNCHANGED
