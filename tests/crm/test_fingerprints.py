"""Fingerprints: unchanged contacts are reported without being sent."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import SecretStr
from tests.crm.conftest import Runner

from dixis_integrations.crm import (
    ContactFingerprints,
    SQLiteContactFingerprints,
    fingerprint,
    sync_contacts,
)
from dixis_integrations.crm.hubspot import HubSpot, HubSpotConfig
from dixis_integrations.models import Money
from dixis_integrations.models.crm import CRMContact, UpsertStatus
from dixis_integrations.sandbox.hubspot import HubSpotSandbox


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
