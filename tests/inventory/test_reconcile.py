"""Reconciliation: drift fixed and reported, resumable from a checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from dixis_integrations.inventory.files import FileStockSource
from dixis_integrations.inventory.ledger import StockLedger
from dixis_integrations.inventory.reconcile import MemoryCheckpoints, reconcile
from dixis_integrations.models.inventory import StockLevel

from .conftest import Runner

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def _source(tmp_path: Path, levels: dict[str, int], page_size: int = 4) -> FileStockSource:
    path = tmp_path / "stock.csv"
    rows = "".join(f"{sku},{qty}\n" for sku, qty in levels.items())
    path.write_text("sku,on_hand\n" + rows)
    return FileStockSource.from_path(path, as_of=T0, page_size=page_size)


def _ledger(levels: dict[str, int], points: dict[str, int] | None = None) -> StockLedger:
    ledger = StockLedger({k: Decimal(v) for k, v in (points or {}).items()})
    for sku, qty in levels.items():
        ledger.observe(StockLevel(sku=sku, on_hand=Decimal(qty), as_of=T0 - timedelta(hours=1)))
    return ledger


def test_every_drifted_level_is_fixed_and_reported(tmp_path: Path, run: Runner) -> None:
    truth = {f"S{i}": i for i in range(10)}
    ours = dict(truth, S3=99, S7=0)
    ledger = _ledger(ours, points={"S7": 5})
    ledger.observe(StockLevel(sku="GONE", on_hand=Decimal(1), as_of=T0))
    report = run(None, reconcile(_source(tmp_path, truth), ledger))
    assert report.complete
    assert report.levels == 10
    assert report.pages == 3
    assert sorted((c.sku, c.ours, c.theirs) for c in report.corrections) == [
        ("S3", Decimal(99), Decimal(3)),
        ("S7", Decimal(0), Decimal(7)),
    ]
    assert [(m.sku, m.field) for m in report.missing] == [("GONE", "missing")]
    assert {lv.sku: int(lv.on_hand) for lv in ledger.levels() if lv.sku != "GONE"} == truth


def test_a_correction_that_drops_below_the_reorder_point_emits_stock_low(
    tmp_path: Path, run: Runner
) -> None:
    ledger = _ledger({"A": 50}, points={"A": 10})
    report = run(None, reconcile(_source(tmp_path, {"A": 4}), ledger))
    assert [(e.sku, e.available) for e in report.events] == [("A", Decimal(4))]


def test_an_interrupted_pass_resumes_at_the_next_page(tmp_path: Path, run: Runner) -> None:
    truth = {f"S{i:02}": i for i in range(10)}
    ledger = _ledger({sku: 0 for sku in truth})
    checkpoints = MemoryCheckpoints()
    source = _source(tmp_path, truth, page_size=3)
    first = run(None, reconcile(source, ledger, checkpoints=checkpoints, max_pages=2))
    assert not first.complete
    assert first.levels == 6
    second = run(None, reconcile(source, ledger, checkpoints=checkpoints))
    assert second.complete
    assert second.pass_id == first.pass_id
    assert second.resumed_from == first.cursor
    assert second.levels == 4
    # a level seen in the first part of the pass is not reported missing
    assert second.missing == []
    assert first.corrected + second.corrected == 9  # S00 already agreed
    third = run(None, reconcile(source, ledger, checkpoints=checkpoints))
    assert third.pass_id == first.pass_id + 1
    assert third.corrected == 0
    assert third.levels == 10


def test_the_journal_keeps_the_place_of_an_interrupted_pass(tmp_path: Path, run: Runner) -> None:
    from dixis_integrations.sync.journal import SQLiteJournal

    journal = SQLiteJournal(str(tmp_path / "journal.db"))
    truth = {f"S{i:02}": i for i in range(7)}
    ledger = _ledger({sku: 0 for sku in truth})
    source = _source(tmp_path, truth, page_size=3)
    first = run(None, reconcile(source, ledger, checkpoints=journal, max_pages=1))
    resumed = run(None, reconcile(source, ledger, checkpoints=journal))
    assert resumed.resumed_from == first.cursor
    assert first.levels + resumed.levels == 7
    assert {lv.sku: int(lv.on_hand) for lv in ledger.levels()} == truth


def test_an_export_older_than_a_webhook_does_not_undo_it(tmp_path: Path, run: Runner) -> None:
    ledger = _ledger({"A": 5, "B": 5})
    ledger.observe(StockLevel(sku="A", on_hand=Decimal(2), as_of=T0 + timedelta(minutes=5)))
    report = run(None, reconcile(_source(tmp_path, {"A": 9, "B": 7}), ledger))
    assert [(c.sku, c.theirs) for c in report.corrections] == [("B", Decimal(7))]
    assert [(c.sku, c.ours, c.theirs) for c in report.stale_readings] == [
        ("A", Decimal(2), Decimal(9))
    ]
    assert ledger.level("A").on_hand == Decimal(2)
