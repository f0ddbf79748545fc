"""The report and the audit log, computed from the journal of a real run."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dixis_integrations.models.events import OrderCreated
from dixis_integrations.protocols import HealthStatus
from dixis_integrations.sync.engine import CallRecorder, Engine
from dixis_integrations.sync.journal import SQLiteJournal
from dixis_integrations.sync.marketday import SENDER, market_day
from dixis_integrations.sync.monitor import (
    Freshness,
    audit_log,
    build_report,
    render_csv,
    render_json,
    render_table,
    webhook_freshness,
)
from dixis_integrations.sync.steps import StepSettings
from dixis_integrations.webhooks import MemoryDeliveryStore, SQLiteDeliveryStore

from .market import MarketEmulator, connections


def test_report_counts_what_each_integration_did(tmp_path: Path) -> None:
    journal = SQLiteJournal(tmp_path / "j.db")
    emulator = MarketEmulator()
    engine = Engine(
        journal,
        connections("http://m", transport=emulator.transport(), on_call=CallRecorder(journal)),
        settings=StepSettings(sender=SENDER),
    )
    day = market_day(orders=6, seed=8, follow_ups=False)
    for e in day.events:
        engine.submit(e)
    engine.drain()
    report = build_report(journal)
    by = {r.provider: r for r in report.rows}
    orders = sum(isinstance(e, OrderCreated) for e in day.events)
    assert by["ledger"].invoices_created == orders
    assert by["carrier"].shipments_created == orders
    assert by["mailer"].emails_sent == orders
    assert by["stock"].inventory_updates == orders
    assert by["crm"].crm_contacts_synced == orders + day.customers
    assert report.totals["orders_synced"] == orders
    assert by["ledger"].error_rate == 0.0
    assert by["ledger"].availability == 1.0
    assert by["ledger"].p95_sync_seconds is not None
    assert report.dead_jobs == 0
    assert "totals: orders synced 6" in render_table(report)
    assert json.loads(render_json(report))["totals"]["invoices_created"] == orders
    assert render_csv(report).count("\n") == len(report.rows) + 1
    audit = audit_log(journal)
    assert {a["operation"] for a in audit} >= {"ledger.create_invoice", "mailer.send"}
    assert all(a["method"] != "GET" for a in audit)
    assert all(a["job_key"] for a in audit)
    journal.close()


# -- webhook freshness ----------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _statuses() -> list[HealthStatus]:
    return [HealthStatus("hubspot", True, "portal 1"), HealthStatus("xero", True, "org 2")]


def test_webhook_freshness_is_the_age_of_the_last_verified_delivery() -> None:
    clock = _Clock()
    log = MemoryDeliveryStore(clock=clock)
    log.mark_seen("hubspot")
    clock.now += 90
    log.mark_seen("hubspot", at=clock.now - 3600)  # an older delivery does not move it back
    freshness = Freshness(log=log, max_age=600, required=frozenset({"hubspot"}))
    now = datetime.fromtimestamp(clock.now, UTC)
    hubspot, xero = webhook_freshness(_statuses(), freshness, now=now)
    assert hubspot.ok
    assert hubspot.extra["webhook_fresh"] == "yes"
    assert hubspot.extra["webhook_age_seconds"] == "90"
    assert xero == _statuses()[1]  # neither required nor ever seen: unchanged
    later = now + timedelta(seconds=601)
    hubspot, _ = webhook_freshness(_statuses(), freshness, now=later)
    assert not hubspot.ok
    assert hubspot.extra["webhook_fresh"] == "no"
    assert "stale after 10min" in hubspot.detail
    assert hubspot.detail.startswith("portal 1; ")


def test_a_required_integration_never_heard_from_is_down_and_others_only_report(
    tmp_path: Path,
) -> None:
    log = SQLiteDeliveryStore(tmp_path / "hooks.db")
    log.mark_seen("xero")
    freshness = Freshness(log=log, max_age=60, required=frozenset({"hubspot"}))
    hubspot, xero = webhook_freshness(_statuses(), freshness)
    assert not hubspot.ok
    assert hubspot.extra["webhook_last_seen"] == "never"
    assert xero.ok  # seen, fresh, and not required anyway
    assert xero.extra["webhook_fresh"] == "yes"
    stale = webhook_freshness(_statuses(), freshness, now=datetime.now(UTC) + timedelta(hours=2))[1]
    assert stale.ok  # stale, but not required: reported only
    assert stale.extra["webhook_fresh"] == "no"


def test_health_command_reports_webhook_freshness_and_fails_when_required_and_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dixis_integrations.cli import main
    from dixis_integrations.hub import Integrations

    only_hubspot = Integrations.sandbox.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        Integrations, "sandbox", classmethod(lambda cls: only_hubspot(cls, only=["hubspot"]))
    )
    hooks = tmp_path / "hooks.db"
    args = ["health", "--sandbox", "--webhooks", str(hooks), "--require-webhooks", "hubspot"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "DOWN  hubspot" in out
    assert "webhooks STALE (last never)" in out
    SQLiteDeliveryStore(hooks).mark_seen("hubspot")
    assert main(args) == 0
    assert "webhooks fresh" in capsys.readouterr().out
    old = tmp_path / "old.db"
    SQLiteDeliveryStore(old).mark_seen("hubspot", at=time.time() - 3600)
    args[3] = str(old)
    assert main([*args, "--webhook-max-age", "60", "--json"]) == 1
    (row,) = json.loads(capsys.readouterr().out)
    assert row["webhook_fresh"] == "no"
    assert main(["health", "--sandbox"]) == 0  # not asked for: not checked


def test_configured_webhook_rule_drives_hub_health_and_the_inbox_store(tmp_path: Path) -> None:
    from dixis_integrations.config import Settings, WebhookSettings
    from dixis_integrations.hub import Integrations

    hooks = tmp_path / "hooks.db"
    with Integrations.sandbox(only=["hubspot"]) as hub:
        assert hub.freshness() is None  # nothing configured: nothing checked
        assert all("webhook_fresh" not in s.extra for s in hub.health())
        hub.settings = Settings(
            webhooks=WebhookSettings(store=str(hooks), max_age_seconds=60, required=("hubspot",))
        )
        (down,) = hub.health()
        assert not down.ok
        assert down.extra["webhook_fresh"] == "no"
        # the inbox records into the configured store, which health reads
        inbox = hub.inbox()
        assert inbox.store is hub.delivery_store()
        hub.delivery_store().mark_seen("hubspot")
        (up,) = hub.health()
        assert up.ok
        assert up.extra["webhook_fresh"] == "yes"
    # another process sees the same store
    assert SQLiteDeliveryStore(hooks).last_seen("hubspot") is not None


def test_webhooks_required_of_an_unconfigured_integration_is_a_configuration_error() -> None:
    from dixis_integrations.config import parse_settings
    from dixis_integrations.errors import ConfigurationError
    from dixis_integrations.hub import Integrations

    settings = parse_settings({"webhooks": {"required": ["xero"]}})
    with pytest.raises(ConfigurationError) as info:
        Integrations.from_settings(settings)
    assert info.value.key == "webhooks.required"
    assert "xero" in str(info.value)
