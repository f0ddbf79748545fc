"""The local lead store (SQLite) and GDPR erasure across CRMs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from tests.crm.conftest import Runner

from dixis_integrations.crm import LeadBook, LeadStore, SQLiteLeadStore, erase_everywhere
from dixis_integrations.crm.hubspot import HubSpot, HubSpotConfig
from dixis_integrations.crm.pipedrive import Pipedrive, PipedriveConfig
from dixis_integrations.errors import InvalidInput
from dixis_integrations.models.crm import Lead, LeadStatus
from dixis_integrations.sandbox.hubspot import HubSpotSandbox

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def lead(i: int, **kw: object) -> Lead:
    data: dict[str, object] = {
        "id": f"l{i}",
        "email": f"lead{i}@example.gr",
        "created_at": T0 + timedelta(minutes=i),
    }
    data.update(kw)
    return Lead(**data)  # type: ignore[arg-type]


def test_sqlite_store_keeps_finds_and_updates_leads(tmp_path: Path) -> None:
    store = SQLiteLeadStore(tmp_path / "leads.db")
    assert isinstance(store, LeadStore)
    store.save(lead(2, source="fair"))
    store.save(lead(1, email="Same@Example.gr"))
    store.save(lead(3, email="same@example.gr", status=LeadStatus.QUALIFIED))
    assert [x.id for x in store.list()] == ["l1", "l2", "l3"]
    assert [x.id for x in store.find_by_email("SAME@example.gr")] == ["l1", "l3"]
    assert [x.id for x in store.list(LeadStatus.QUALIFIED)] == ["l3"]
    store.save(lead(2, source="fair", status=LeadStatus.CONVERTED, crm_id="99"))
    reopened = SQLiteLeadStore(tmp_path / "leads.db")
    kept = reopened.get("l2")
    assert kept is not None
    assert (kept.status, kept.crm_id, kept.source) == (LeadStatus.CONVERTED, "99", "fair")
    assert reopened.delete_email("same@example.gr") == 2
    assert reopened.get("l3") is None
    assert reopened.get("missing") is None


def test_converting_an_unknown_lead_is_refused(run: Runner) -> None:
    box = HubSpotSandbox()
    adapter = HubSpot(HubSpotConfig(access_token=SecretStr(box.access_token)))
    book = LeadBook()
    with pytest.raises(InvalidInput, match="lead_id"):
        run(box, book.convert("nope", adapter))
    book.store.save(lead(1))
    with pytest.raises(InvalidInput, match="crm_id"):
        run(box, book.convert("l1", adapter))
    assert box.requests == []


def test_erase_everywhere_reports_each_system(run: Runner) -> None:
    box = HubSpotSandbox()
    box.bind("http://hubspot.test")
    hubspot = HubSpot(
        HubSpotConfig(access_token=SecretStr(box.access_token), base_url="http://hubspot.test")
    )
    # a Pipedrive adapter pointed at the same emulator: it answers 401 there
    broken = Pipedrive(
        PipedriveConfig(api_token=SecretStr("wrong"), base_url="http://hubspot.test")
    )
    store = SQLiteLeadStore()
    store.save(lead(1, email="gone@example.gr"))
    results = run(box, erase_everywhere("Gone@Example.gr", [hubspot, broken], leads=store))
    assert [(r.provider, r.erased) for r in results] == [
        ("hubspot", True),
        ("pipedrive", False),
        ("local-leads", True),
    ]
    assert results[2].detail == "1 leads"
    assert store.find_by_email("gone@example.gr") == []


def test_erase_everywhere_refuses_a_bad_email(run: Runner) -> None:
    box = HubSpotSandbox()
    with pytest.raises(InvalidInput, match="email"):
        run(box, erase_everywhere("not-an-email", []))
