"""The stock ledger: separate quantities, ordered readings, exactly-once commits, StockLow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from dixis_integrations.errors import InvalidInput
from dixis_integrations.inventory.ledger import Outcome, StockLedger
from dixis_integrations.models.inventory import StockAdjustment, StockLevel

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _level(
    on_hand: int, minutes: int = 0, sku: str = "FETA-1", version: str | None = None
) -> StockLevel:
    return StockLevel(
        sku=sku, on_hand=Decimal(on_hand), as_of=T0 + timedelta(minutes=minutes), version=version
    )


def _ledger(point: int = 5) -> StockLedger:
    ledger = StockLedger({"FETA-1": Decimal(point)}, clock=lambda: T0)
    ledger.observe(_level(20))
    return ledger


def test_quantities_are_kept_apart_and_available_is_on_hand_less_committed() -> None:
    ledger = _ledger()
    ledger.commit("o1", "0", "FETA-1", Decimal(3))
    ledger.expect("po1", "FETA-1", Decimal(10))
    level = ledger.level("FETA-1")
    assert (level.on_hand, level.committed, level.incoming, level.available) == (
        Decimal(20),
        Decimal(3),
        Decimal(10),
        Decimal(17),
    )


def test_an_older_reading_never_overwrites_a_newer_one() -> None:
    ledger = _ledger()
    assert ledger.observe(_level(12, minutes=10)).outcome is Outcome.APPLIED
    stale = ledger.observe(_level(30, minutes=5))
    assert stale.outcome is Outcome.STALE
    assert ledger.level("FETA-1").on_hand == Decimal(12)


def test_same_instant_readings_are_ordered_by_numeric_version() -> None:
    ledger = _ledger()
    ledger.observe(_level(9, minutes=1, version="10"))
    assert ledger.observe(_level(7, minutes=1, version="9")).outcome is Outcome.STALE
    assert ledger.observe(_level(8, minutes=1, version="11")).outcome is Outcome.APPLIED
    assert ledger.level("FETA-1").on_hand == Decimal(8)


def test_a_redelivered_webhook_is_recognised_by_its_event_id() -> None:
    ledger = _ledger()
    first = ledger.observe(_level(15, minutes=1), event_id="evt-1")
    again = ledger.observe(_level(15, minutes=1), event_id="evt-1")
    assert (first.outcome, again.outcome) == (Outcome.APPLIED, Outcome.DUPLICATE)


def test_an_order_line_commits_once_however_often_it_is_delivered() -> None:
    ledger = _ledger()
    outcomes = [ledger.commit("o1", "0", "FETA-1", Decimal(4)).outcome for _ in range(3)]
    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert ledger.level("FETA-1").committed == Decimal(4)


def test_a_cancellation_releases_once() -> None:
    ledger = _ledger()
    ledger.commit("o1", "0", "FETA-1", Decimal(4))
    first = ledger.release("o1", "0")
    second = ledger.release("o1", "0")
    assert first is not None
    assert first.outcome is Outcome.APPLIED
    assert second is not None
    assert second.outcome is Outcome.DUPLICATE
    assert ledger.level("FETA-1").committed == Decimal(0)


def test_a_cancellation_delivered_before_its_order_makes_the_late_commit_a_no_op() -> None:
    ledger = _ledger()
    assert ledger.release("o1", "0") is None
    late = ledger.commit("o1", "0", "FETA-1", Decimal(4))
    assert late.outcome is Outcome.SUPERSEDED
    assert ledger.level("FETA-1").committed == Decimal(0)


def test_stock_low_is_emitted_once_per_crossing_and_rearmed_by_a_rise() -> None:
    ledger = _ledger(point=5)
    events = []
    for i, on_hand in enumerate([8, 5, 4, 2, 9, 3, 1]):
        events.extend(ledger.observe(_level(on_hand, minutes=i + 1)).events)
    assert [(e.available, e.reorder_point) for e in events] == [
        (Decimal(5), Decimal(5)),
        (Decimal(3), Decimal(5)),
    ]
    assert len({e.event_id for e in events}) == 2
    assert ledger.is_low("FETA-1")


def test_commits_can_cross_the_reorder_point() -> None:
    ledger = _ledger(point=5)
    assert ledger.commit("o1", "0", "FETA-1", Decimal(10)).events == ()
    low = ledger.commit("o2", "0", "FETA-1", Decimal(6)).events
    assert [e.available for e in low] == [Decimal(4)]


def test_adjustments_apply_once_per_reference_and_never_go_negative() -> None:
    ledger = _ledger()
    adj = StockAdjustment(sku="FETA-1", delta=Decimal(-5), reason="spoiled", reference="r1")
    assert ledger.adjust(adj).outcome is Outcome.APPLIED
    assert ledger.adjust(adj).outcome is Outcome.DUPLICATE
    assert ledger.level("FETA-1").on_hand == Decimal(15)
    with pytest.raises(InvalidInput) as err:
        ledger.adjust(adj.model_copy(update={"delta": Decimal(-16), "reference": "r2"}))
    assert err.value.errors[0].code == "negative_stock"


def test_receiving_a_purchase_order_moves_incoming_to_on_hand_once() -> None:
    ledger = _ledger()
    ledger.expect("po1", "FETA-1", Decimal(10))
    ledger.receive("po1", "FETA-1", Decimal(10))
    assert ledger.receive("po1", "FETA-1", Decimal(10)).outcome is Outcome.DUPLICATE
    level = ledger.level("FETA-1")
    assert (level.on_hand, level.incoming) == (Decimal(30), Decimal(0))


@pytest.mark.parametrize("quantity", [Decimal(0), Decimal(-2), Decimal("NaN")])
def test_non_positive_quantities_are_refused_with_the_field_named(quantity: Decimal) -> None:
    ledger = _ledger()
    with pytest.raises(InvalidInput) as err:
        ledger.commit("o1", "0", "FETA-1", quantity)
    assert err.value.errors[0].loc == ("quantity",)
    assert ledger.level("FETA-1").committed == Decimal(0)


def test_an_unknown_sku_is_a_typed_error_in_strict_mode() -> None:
    ledger = _ledger()
    with pytest.raises(InvalidInput) as err:
        ledger.commit("o1", "0", "NOPE", Decimal(1))
    assert err.value.errors[0].code == "unknown_sku"
    assert "NOPE" not in {level.sku for level in ledger.levels()}


def test_correct_reports_the_difference_and_takes_the_sources_value() -> None:
    ledger = _ledger(point=5)
    fixes = ledger.correct(_level(3, minutes=60), source="zoho", pass_id=1)
    assert [(f.ours, f.theirs, f.field) for f in fixes] == [(Decimal(20), Decimal(3), "on_hand")]
    assert ledger.level("FETA-1").on_hand == Decimal(3)
    assert [e.available for e in ledger.drain_events()] == [Decimal(3)]
    assert ledger.correct(_level(3, minutes=61), source="zoho", pass_id=1) == []


def test_an_older_full_reading_is_reported_stale_and_not_applied() -> None:
    ledger = _ledger(point=5)
    fixes = ledger.correct(_level(3, minutes=-60), source="zoho", pass_id=1)
    assert [(f.ours, f.theirs, f.field) for f in fixes] == [(Decimal(20), Decimal(3), "stale")]
    assert ledger.level("FETA-1").on_hand == Decimal(20)
    assert ledger.drain_events() == []


def test_cancelling_an_order_by_id_releases_its_lines_once_even_before_creation() -> None:
    ledger = _ledger()
    ledger.commit("o1", "0", "FETA-1", Decimal(2))
    ledger.commit("o1", "1", "FETA-1", Decimal(3))
    assert len(ledger.cancel("o1")) == 2
    assert ledger.cancel("o1") == []
    assert ledger.level("FETA-1").committed == Decimal(0)
    assert ledger.cancel("o2") == []
    late = ledger.commit("o2", "0", "FETA-1", Decimal(4))
    assert late.outcome is Outcome.SUPERSEDED
    assert ledger.level("FETA-1").committed == Decimal(0)
