"""The report and the audit log, computed from the journal of a real run."""

from __future__ import annotations

import json
from pathlib import Path

from dixis_integrations.models.events import OrderCreated
from dixis_integrations.sync.engine import CallRecorder, Engine
from dixis_integrations.sync.journal import SQLiteJournal
from dixis_integrations.sync.marketday import SENDER, market_day
from dixis_integrations.sync.monitor import (
    audit_log,
    build_report,
    render_csv,
    render_json,
    render_table,
)
from dixis_integrations.sync.steps import StepSettings

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
