"""The ledger's durable store: a reopened ledger continues exactly, threads are safe,
and once-only marks are pruned after their retention."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from dixis_integrations.errors import InvalidInput
from dixis_integrations.inventory.ledger import Outcome, StockLedger
from dixis_integrations.inventory.store import LedgerStore, SQLiteLedgerStore
from dixis_integrations.models.inventory import StockAdjustment, StockLevel

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

_FIRST_WORKER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from decimal import Decimal
    from dixis_integrations.inventory.ledger import StockLedger
    from dixis_integrations.inventory.store import SQLiteLedgerStore
    from dixis_integrations.models.inventory import StockAdjustment, StockLevel

    t0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    ledger = StockLedger(
        {"FETA-1": Decimal(5)}, store=SQLiteLedgerStore(sys.argv[1]), clock=lambda: t0
    )
    ledger.observe(StockLevel(sku="FETA-1", on_hand=Decimal(10), as_of=t0), event_id="wh-1")
    ledger.commit("o1", "0", "FETA-1", Decimal(3))
    low = ledger.commit("o2", "0", "FETA-1", Decimal(4)).events
    ledger.commit("o3", "0", "FETA-1", Decimal(1))
    ledger.cancel("o3")
    adj = StockAdjustment(sku="FETA-1", delta=Decimal(2), reason="count", reference="adj-1")
    ledger.adjust(adj)
    ledger.expect("po-1", "FETA-1", Decimal(12))
    print(len(low))
    """
)


def _run_first_worker(path: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_WORKER, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(done.stdout.strip())


def test_a_ledger_reopened_in_a_new_process_continues_exactly(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    assert _run_first_worker(path) == 1  # the first worker saw the one crossing
    ledger = StockLedger({"FETA-1": Decimal(5)}, store=SQLiteLedgerStore(path), clock=lambda: T0)
    level = ledger.level("FETA-1")
    assert (level.on_hand, level.committed, level.incoming) == (
        Decimal(12),
        Decimal(7),
        Decimal(12),
    )
    assert ledger.is_low("FETA-1")
    # Everything the first worker did, delivered again: nothing changes, no second StockLow.
    redelivered = StockLevel(sku="FETA-1", on_hand=Decimal(10), as_of=T0)
    assert ledger.observe(redelivered, event_id="wh-1").outcome is Outcome.DUPLICATE
    assert ledger.commit("o1", "0", "FETA-1", Decimal(3)).outcome is Outcome.DUPLICATE
    again = ledger.commit("o2", "0", "FETA-1", Decimal(4))
    assert (again.outcome, again.events) == (Outcome.DUPLICATE, ())
    assert ledger.commit("o3", "0", "FETA-1", Decimal(1)).outcome is Outcome.SUPERSEDED
    assert ledger.cancel("o3") == []
    adj = StockAdjustment(sku="FETA-1", delta=Decimal(2), reason="count", reference="adj-1")
    assert ledger.adjust(adj).outcome is Outcome.DUPLICATE
    assert ledger.expect("po-1", "FETA-1", Decimal(12)).outcome is Outcome.DUPLICATE
    assert ledger.level("FETA-1") == level
    # A further change continues from there: still low, so still no second StockLow.
    assert ledger.commit("o4", "0", "FETA-1", Decimal(1)).events == ()
    # The delivery books once across the restart, too.
    ledger.receive("po-1", "FETA-1", Decimal(12))
    ledger.close()
    reopened = StockLedger({"FETA-1": Decimal(5)}, store=SQLiteLedgerStore(path))
    assert reopened.receive("po-1", "FETA-1", Decimal(12)).outcome is Outcome.DUPLICATE
    final = reopened.level("FETA-1")
    assert (final.on_hand, final.committed, final.incoming) == (
        Decimal(24),
        Decimal(8),
        Decimal(0),
    )
    reopened.close()


def test_a_crossing_after_a_restart_is_emitted_once_when_stock_rose_in_between(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = StockLedger({"FETA-1": Decimal(5)}, store=SQLiteLedgerStore(path))
    ledger.observe(StockLevel(sku="FETA-1", on_hand=Decimal(4), as_of=T0))
    ledger.observe(StockLevel(sku="FETA-1", on_hand=Decimal(20), as_of=T0 + timedelta(hours=1)))
    ledger.close()
    reopened = StockLedger({"FETA-1": Decimal(5)}, store=SQLiteLedgerStore(path))
    later = T0 + timedelta(hours=2)
    first = reopened.observe(StockLevel(sku="FETA-1", on_hand=Decimal(3), as_of=later))
    second = reopened.observe(
        StockLevel(sku="FETA-1", on_hand=Decimal(2), as_of=later + timedelta(minutes=1))
    )
    assert (len(first.events), len(second.events)) == (1, 0)


def test_commits_from_many_threads_are_each_counted_once() -> None:
    ledger = StockLedger()
    ledger.observe(StockLevel(sku="FETA-1", on_hand=Decimal(10_000), as_of=T0))

    def worker(n: int) -> None:
        for i in range(200):
            # Every thread delivers every order: only one delivery of each may count.
            ledger.commit(f"o{i}", "0", "FETA-1", Decimal(1))
            ledger.commit(f"t{n}-{i}", "0", "FETA-1", Decimal(1))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.level("FETA-1").committed == Decimal(200 + 8 * 200)


def test_once_only_marks_are_pruned_after_retention_and_the_high_water_mark_still_holds() -> None:
    now = [T0]
    store = SQLiteLedgerStore()
    ledger = StockLedger(store=store, clock=lambda: now[0], retention=timedelta(days=1))
    for i in range(50):
        at = T0 + timedelta(seconds=i)
        ledger.observe(StockLevel(sku="FETA-1", on_hand=Decimal(i), as_of=at), event_id=f"e{i}")
    now[0] = T0 + timedelta(days=2)
    assert ledger.prune() == 50
    assert not store.has_mark("event", "e3")
    # The id is forgotten, yet the old reading is still refused by the high-water mark.
    old = StockLevel(sku="FETA-1", on_hand=Decimal(3), as_of=T0 + timedelta(seconds=3))
    assert ledger.observe(old, event_id="e3").outcome is Outcome.STALE
    assert ledger.level("FETA-1").on_hand == Decimal(49)


def test_open_order_lines_and_expected_deliveries_are_not_pruned() -> None:
    now = [T0]
    ledger = StockLedger(clock=lambda: now[0], retention=timedelta(days=1))
    ledger.observe(StockLevel(sku="FETA-1", on_hand=Decimal(10), as_of=T0))
    ledger.commit("o1", "0", "FETA-1", Decimal(2))
    ledger.expect("po-1", "FETA-1", Decimal(5))
    now[0] = T0 + timedelta(days=3)
    ledger.prune()
    assert ledger.commit("o1", "0", "FETA-1", Decimal(2)).outcome is Outcome.DUPLICATE
    assert len(ledger.cancel("o1")) == 1
    assert ledger.receive("po-1", "FETA-1", Decimal(5)).level.incoming == Decimal(0)


def test_a_failed_change_leaves_nothing_half_written() -> None:
    ledger = StockLedger()
    ledger.observe(StockLevel(sku="FETA-1", on_hand=Decimal(1), as_of=T0))
    adj = StockAdjustment(sku="FETA-1", delta=Decimal(-5), reason="count", reference="adj-1")
    with pytest.raises(InvalidInput):
        ledger.adjust(adj)
    assert not ledger.store.has_mark("adjustment", "adj-1")


def test_the_sqlite_store_satisfies_the_protocol() -> None:
    assert isinstance(SQLiteLedgerStore(), LedgerStore)


def test_a_pass_that_fails_midway_leaves_the_ledger_as_its_store() -> None:
    ledger = StockLedger()
    for sku in ("A", "B"):
        ledger.observe(StockLevel(sku=sku, on_hand=Decimal(1), as_of=T0))
    later = T0 + timedelta(minutes=1)
    fixed = StockLevel(sku="A", on_hand=Decimal(9), as_of=later)

    def failing_pass() -> None:
        with ledger.batch():
            ledger.correct(fixed, source="file")
            raise RuntimeError("the source went away")

    with pytest.raises(RuntimeError):
        failing_pass()
    assert ledger.level("A").on_hand == Decimal(1)
    reopened = StockLedger(store=ledger.store)
    assert reopened.level("A").on_hand == Decimal(1)
