"""Status normalisation, retractions, and the poller that emits only real changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from dixis_integrations.http import AsyncDriver, Driver
from dixis_integrations.models.events import ShipmentStatusChanged
from dixis_integrations.models.shipping import Tracking, TrackingEvent, TrackingStatus
from dixis_integrations.shipping.tracking import (
    CheckpointStore,
    MemoryCheckpointStore,
    StatusMap,
    TrackedShipment,
    TrackingPoller,
    build_tracking,
    drop_retracted,
    fold,
)

from ._fakes import FakeCarrier

T0 = datetime(2026, 11, 2, 8, tzinfo=UTC)
MAP = StatusMap(
    codes={"C_NW": TrackingStatus.ACCEPTED, "C_A3": TrackingStatus.OUT_FOR_DELIVERY},
    keywords=(("παραδοθηκε", TrackingStatus.DELIVERED), ("ΕΠΙΣΤΡΟΦΗ", TrackingStatus.RETURNING)),
    reasons={"C_EA_AS": "recipient absent"},
)


def event(code: str, status: TrackingStatus, minutes: int) -> TrackingEvent:
    return TrackingEvent(status=status, at=T0 + timedelta(minutes=minutes), raw_code=code)


def test_fold_drops_accents_and_case() -> None:
    assert fold("  Παραδόθηκε  στον παραλήπτη") == "ΠΑΡΑΔΟΘΗΚΕ ΣΤΟΝ ΠΑΡΑΛΗΠΤΗ"


def test_status_map_prefers_codes_then_keywords_then_default() -> None:
    assert MAP.status_of("c_a3 ") is TrackingStatus.OUT_FOR_DELIVERY
    assert MAP.status_of("X9", "Η αποστολή ΠΑΡΑΔΌΘΗΚΕ") is TrackingStatus.DELIVERED
    assert MAP.status_of(None, "σε επιστροφή") is TrackingStatus.RETURNING
    assert MAP.status_of("??", "unknown") is TrackingStatus.IN_TRANSIT


def test_status_map_event_keeps_the_raw_code_and_reason() -> None:
    made = MAP.event(code="C_EA_AS", at=T0, description="Απών", location="Αθήνα")
    assert made.raw_code == "C_EA_AS"
    assert made.reason == "recipient absent"
    assert made.location == "Αθήνα"


def test_a_retraction_removes_the_checkpoint_before_it() -> None:
    events = [
        event("C_NW", TrackingStatus.ACCEPTED, 0),
        event("C_A3", TrackingStatus.OUT_FOR_DELIVERY, 10),
        event("C_K9", TrackingStatus.IN_TRANSIT, 20),
    ]
    kept = drop_retracted(reversed(events), frozenset({"C_K9"}))
    assert [e.raw_code for e in kept] == ["C_NW"]
    tracking = build_tracking("g", "1", events, retracting=frozenset({"C_K9"}))
    assert tracking.status is TrackingStatus.ACCEPTED


def test_no_events_is_pending() -> None:
    assert build_tracking("g", "1", []).status is TrackingStatus.PENDING


class _Scripted(FakeCarrier):
    """Returns the next tracking of a script on each call."""

    def __init__(self, script: list[Tracking]) -> None:
        super().__init__("geniki")
        self.script = script
        self.calls = 0

    def track(self, tracking_number: str) -> Any:
        yield self.endpoint.request("GET", f"/track/{tracking_number}", operation="track")
        result = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return result


def _tracking(*events: TrackingEvent, retracting: frozenset[str] = frozenset()) -> Tracking:
    return build_tracking("geniki", "V1", events, retracting=retracting)


def _driver() -> Driver:
    return Driver(httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))))


SHIPMENT = TrackedShipment("geniki", "V1")


def test_poller_emits_on_change_only_and_ignores_duplicates_and_retractions() -> None:
    accepted = event("C_NW", TrackingStatus.ACCEPTED, 0)
    hub = event("C_H1", TrackingStatus.IN_TRANSIT, 30)
    out = event("C_A3", TrackingStatus.OUT_FOR_DELIVERY, 60)
    undo = event("C_K9", TrackingStatus.IN_TRANSIT, 61)
    hub2 = event("C_H2", TrackingStatus.IN_TRANSIT, 90)
    retract = frozenset({"C_K9"})
    carrier = _Scripted(
        [
            _tracking(accepted),
            _tracking(accepted),  # duplicate poll
            _tracking(accepted, hub),
            _tracking(accepted, hub, out, undo, retracting=retract),  # retracted in one go
            _tracking(accepted, hub, out, undo, hub2, retracting=retract),  # same status again
        ]
    )
    poller = TrackingPoller([carrier], MemoryCheckpointStore())
    seen: list[ShipmentStatusChanged] = []
    for _ in range(5):
        seen.extend(poller.poll([SHIPMENT], _driver()).changes)
    assert [(c.previous, c.status) for c in seen] == [
        (None, TrackingStatus.ACCEPTED),
        (TrackingStatus.ACCEPTED, TrackingStatus.IN_TRANSIT),
    ]
    assert seen[1].raw_code == "C_H1"
    assert (
        seen[1].event_id == "shipment.status_changed:geniki:V1:in_transit:2026-11-02T08:30:00+00:00"
    )


def test_a_retraction_seen_after_the_fact_emits_the_corrected_status() -> None:
    out = event("C_A3", TrackingStatus.OUT_FOR_DELIVERY, 60)
    hub = event("C_H1", TrackingStatus.IN_TRANSIT, 30)
    carrier = _Scripted(
        [
            _tracking(hub, out),
            _tracking(
                hub,
                out,
                event("C_K9", TrackingStatus.IN_TRANSIT, 70),
                retracting=frozenset({"C_K9"}),
            ),
        ]
    )
    poller = TrackingPoller([carrier], MemoryCheckpointStore())
    first = poller.poll([SHIPMENT], _driver()).changes
    second = poller.poll([SHIPMENT], _driver()).changes
    assert [c.status for c in first] == [TrackingStatus.OUT_FOR_DELIVERY]
    assert [(c.previous, c.status) for c in second] == [
        (TrackingStatus.OUT_FOR_DELIVERY, TrackingStatus.IN_TRANSIT)
    ]


def test_a_restarted_poller_resumes_from_the_checkpoint_without_repeating() -> None:
    store = MemoryCheckpointStore()
    accepted = event("C_NW", TrackingStatus.ACCEPTED, 0)
    first = TrackingPoller([_Scripted([_tracking(accepted)])], store)
    assert len(first.poll([SHIPMENT], _driver()).changes) == 1
    delivered = event("C_W2", TrackingStatus.DELIVERED, 600)
    restarted = TrackingPoller(
        [_Scripted([_tracking(accepted, delivered)])], MemoryCheckpointStore(store.snapshot())
    )
    result = restarted.poll([SHIPMENT, SHIPMENT], _driver())
    assert [(c.previous, c.status) for c in result.changes] == [
        (TrackingStatus.ACCEPTED, TrackingStatus.DELIVERED)
    ]
    again = restarted.poll([SHIPMENT], _driver())
    assert again.changes == ()
    assert again.skipped == (SHIPMENT,)


def test_a_failing_shipment_is_reported_and_others_proceed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404 if request.url.path.endswith("BAD") else 200)

    carrier = _Scripted([_tracking(event("C_NW", TrackingStatus.ACCEPTED, 0))])
    driver = Driver(httpx.Client(transport=httpx.MockTransport(handler)))
    poller = TrackingPoller([carrier], MemoryCheckpointStore())
    bad = TrackedShipment("geniki", "BAD")
    unknown = TrackedShipment("nobody", "X")
    result = poller.poll([bad, SHIPMENT, unknown], driver)
    assert len(result.changes) == 1
    assert result.errors[bad].code == "not_found"
    assert result.errors[unknown].code == "configuration"


def test_async_poll_emits_the_same_changes() -> None:
    carrier = _Scripted([_tracking(event("C_NW", TrackingStatus.ACCEPTED, 0))])
    poller = TrackingPoller([carrier], MemoryCheckpointStore(), tenant="shop-2")

    async def go() -> Any:
        transport = httpx.MockTransport(lambda r: httpx.Response(200))
        async with httpx.AsyncClient(transport=transport) as client:
            return await poller.apoll([SHIPMENT], AsyncDriver(client))

    result = asyncio.run(go())
    assert [c.tenant for c in result.changes] == ["shop-2"]


def test_a_correction_back_to_an_announced_status_gets_its_own_event_id() -> None:
    hub = event("C_H1", TrackingStatus.IN_TRANSIT, 30)
    out = event("C_A3", TrackingStatus.OUT_FOR_DELIVERY, 60)
    undo = event("C_K9", TrackingStatus.IN_TRANSIT, 70)
    retract = frozenset({"C_K9"})
    carrier = _Scripted(
        [_tracking(hub), _tracking(hub, out), _tracking(hub, out, undo, retracting=retract)]
    )
    poller = TrackingPoller([carrier], MemoryCheckpointStore())
    seen = [c for _ in range(3) for c in poller.poll([SHIPMENT], _driver()).changes]
    assert [c.status for c in seen] == [
        TrackingStatus.IN_TRANSIT,
        TrackingStatus.OUT_FOR_DELIVERY,
        TrackingStatus.IN_TRANSIT,
    ]
    assert seen[2].at == seen[0].at  # back to the same checkpoint...
    assert seen[2].event_id != seen[0].event_id  # ...announced as a distinct correction
    assert "correction-of:out_for_delivery" in seen[2].event_id


def test_the_memory_store_and_the_sync_journals_are_one_checkpoint_protocol(
    tmp_path: Any,
) -> None:
    from dixis_integrations.sync import CheckpointStore as SyncCheckpointStore
    from dixis_integrations.sync import SQLiteJournal

    assert CheckpointStore is SyncCheckpointStore
    journal = SQLiteJournal(tmp_path / "journal.db")
    try:
        assert isinstance(journal, CheckpointStore)
        assert isinstance(MemoryCheckpointStore(), CheckpointStore)
    finally:
        journal.close()


def test_checkpoints_are_kept_per_tenant() -> None:
    store = MemoryCheckpointStore()
    accepted = event("C_NW", TrackingStatus.ACCEPTED, 0)
    for tenant in ("shop-1", "shop-2"):
        poller = TrackingPoller([_Scripted([_tracking(accepted)])], store, tenant=tenant)
        assert [c.tenant for c in poller.poll([SHIPMENT], _driver()).changes] == [tenant]
    assert set(store.snapshot()) == {
        ("shop-1", "tracking:geniki:V1"),
        ("shop-2", "tracking:geniki:V1"),
    }


def test_a_poller_on_a_new_sqlite_journal_object_does_not_repeat(tmp_path: Any) -> None:
    from dixis_integrations.sync import SQLiteJournal

    path = tmp_path / "journal.db"
    accepted = event("C_NW", TrackingStatus.ACCEPTED, 0)
    delivered = event("C_W2", TrackingStatus.DELIVERED, 600)
    first = SQLiteJournal(path)
    try:
        poller = TrackingPoller([_Scripted([_tracking(accepted)])], first)
        assert len(poller.poll([SHIPMENT], _driver()).changes) == 1
    finally:
        first.close()
    second = SQLiteJournal(path)
    try:
        carrier = _Scripted([_tracking(accepted), _tracking(accepted, delivered)])
        restarted = TrackingPoller([carrier], second)
        assert restarted.poll([SHIPMENT], _driver()).changes == ()
        changes = restarted.poll([SHIPMENT], _driver()).changes
        assert [(c.previous, c.status) for c in changes] == [
            (TrackingStatus.ACCEPTED, TrackingStatus.DELIVERED)
        ]
    finally:
        second.close()


_POLL_IN_A_NEW_PROCESS = """
import json, sys
from datetime import timedelta
from dixis_integrations.models.shipping import TrackingStatus
from dixis_integrations.shipping.tracking import TrackingPoller
from dixis_integrations.sync import SQLiteJournal
from tests.shipping.test_tracking import SHIPMENT, _Scripted, _driver, _tracking, event

steps = {"accepted": [("C_NW", "accepted", 0)],
         "delivered": [("C_NW", "accepted", 0), ("C_W2", "delivered", 600)]}
events = [event(code, TrackingStatus(status), minutes) for code, status, minutes
          in steps[sys.argv[2]]]
journal = SQLiteJournal(sys.argv[1])
poller = TrackingPoller([_Scripted([_tracking(*events)])], journal)
result = poller.poll([SHIPMENT], _driver())
journal.close()
print(json.dumps([[c.event_id, c.status.value] for c in result.changes]
                 + [["skipped", s.tracking_number] for s in result.skipped]))
"""


def test_a_poller_restarted_in_a_new_process_on_sqlite_emits_no_repeats(
    tmp_path: Any,
) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    path = str(tmp_path / "journal.db")

    def poll_in_a_new_process(step: str) -> list[list[str]]:
        done = subprocess.run(
            [sys.executable, "-c", _POLL_IN_A_NEW_PROCESS, path, step],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: list[list[str]] = json.loads(done.stdout)
        return result

    first = poll_in_a_new_process("accepted")
    assert [status for _, status in first] == ["accepted"]
    assert poll_in_a_new_process("accepted") == []
    delivered = poll_in_a_new_process("delivered")
    assert [status for _, status in delivered] == ["delivered"]
    assert delivered[0][0] != first[0][0]
    assert poll_in_a_new_process("delivered") == [["skipped", "V1"]]
