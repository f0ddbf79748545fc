"""The journal contract, run on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from dixis_integrations.sync.journal import (
    CallRow,
    CheckpointStore,
    JobSpec,
    JobState,
    Journal,
    PostgresJournal,
    SQLiteJournal,
    job_key,
)

from .conftest import Clock


def spec(
    event: str = "order.created:1", step: str = "invoice", deps: tuple[str, ...] = ()
) -> JobSpec:
    return JobSpec(
        tenant="default",
        event_id=event,
        event_type="order.created",
        step=step,
        kind="accounting",
        provider="fake",
        payload='{"x": 1}',
        depends_on=deps,
    )


def test_job_key_is_deterministic_and_depends_on_every_part() -> None:
    base = job_key("t", "e", "s", "p")
    assert base == job_key("t", "e", "s", "p")
    assert (
        len(
            {
                base,
                job_key("t2", "e", "s", "p"),
                job_key("t", "e2", "s", "p"),
                job_key("t", "e", "s2", "p"),
                job_key("t", "e", "s", "p2"),
            }
        )
        == 5
    )
    # the separator keeps ("ab", "c") apart from ("a", "bc")
    assert job_key("ab", "c", "s", "p") != job_key("a", "bc", "s", "p")


def test_journal_satisfies_the_protocols(journal: SQLiteJournal | PostgresJournal) -> None:
    assert isinstance(journal, Journal)
    assert isinstance(journal, CheckpointStore)


def test_enqueue_twice_records_one_job(journal: Journal) -> None:
    keys1 = journal.enqueue([spec()])
    keys2 = journal.enqueue([spec()])
    assert keys1 == keys2 == [spec().key]
    assert len(journal.jobs()) == 1
    job = journal.get(keys1[0])
    assert job is not None
    assert job.state is JobState.PENDING
    assert job.attempts == 0
    assert job.payload == '{"x": 1}'


def test_enqueue_does_not_reset_a_done_job(journal: Journal) -> None:
    (key,) = journal.enqueue([spec()])
    (_job,) = journal.claim("w1", lease=30)
    journal.complete(key, "w1", external_id="INV-1", result={"n": 1})
    journal.enqueue([spec()])
    done = journal.get(key)
    assert done is not None
    assert done.state is JobState.DONE
    assert done.external_id == "INV-1"


def test_claim_marks_running_with_lease_and_counts_attempt(journal: Journal, clock: Clock) -> None:
    (key,) = journal.enqueue([spec()])
    (job,) = journal.claim("w1", lease=30)
    assert job.key == key
    assert job.state is JobState.RUNNING
    assert job.worker == "w1"
    assert job.attempts == 1
    assert job.lease_until is not None
    assert abs(job.lease_until.timestamp() - (clock.now + 30)) < 0.01
    assert journal.claim("w2", lease=30) == []


def test_expired_lease_makes_a_running_job_claimable_again(journal: Journal, clock: Clock) -> None:
    journal.enqueue([spec()])
    journal.claim("w1", lease=10)
    clock.advance(9)
    assert journal.claim("w2", lease=10) == []
    clock.advance(2)
    (job,) = journal.claim("w2", lease=10)
    assert job.worker == "w2"
    assert job.attempts == 2
    # the old worker lost it: it can neither extend nor fail it
    assert journal.heartbeat(job.key, "w1", lease=10) is False
    assert journal.heartbeat(job.key, "w2", lease=10) is True


def test_complete_records_external_id_and_result_once(journal: Journal, clock: Clock) -> None:
    (key,) = journal.enqueue([spec()])
    journal.claim("w1", lease=30)
    clock.advance(2)
    assert journal.complete(key, "w1", external_id="INV-7", result={"total": "12.40"}, duration=1.5)
    assert not journal.complete(key, "w1", external_id="INV-8", result=None)
    job = journal.get(key)
    assert job is not None
    assert job.state is JobState.DONE
    assert job.external_id == "INV-7"
    assert job.result == {"total": "12.40"}
    assert job.duration == 1.5
    assert job.sync_seconds is not None
    assert abs(job.sync_seconds - 2) < 0.01


def test_failed_job_waits_for_its_retry_time(journal: Journal, clock: Clock) -> None:
    (key,) = journal.enqueue([spec()])
    journal.claim("w1", lease=30)
    retry_at = datetime.fromtimestamp(clock.now + 60, UTC)
    assert journal.fail(
        key, "w1", error_code="rate_limited", message="slow down", retry_at=retry_at
    )
    job = journal.get(key)
    assert job is not None
    assert job.state is JobState.FAILED
    assert job.error_code == "rate_limited"
    assert job.next_attempt_at == retry_at
    assert journal.next_due() == retry_at
    clock.advance(59)
    assert journal.claim("w1", lease=30) == []
    clock.advance(2)
    (again,) = journal.claim("w1", lease=30)
    assert again.attempts == 2


def test_dependent_job_waits_until_its_dependency_is_done(journal: Journal) -> None:
    invoice = spec(step="invoice")
    payment = spec(step="payment", deps=(invoice.key,))
    journal.enqueue([payment, invoice])
    (first,) = journal.claim("w1", lease=30, limit=10)
    assert first.step == "invoice"
    assert journal.claim("w1", lease=30, limit=10) == []
    journal.complete(first.key, "w1", external_id="INV-1", result=None)
    (second,) = journal.claim("w1", lease=30)
    assert second.step == "payment"
    assert second.depends_on == (invoice.key,)


def test_dependency_not_recorded_blocks_the_job(journal: Journal) -> None:
    journal.enqueue([spec(step="payment", deps=(job_key("default", "other", "invoice", "fake"),))])
    assert journal.claim("w1", lease=30) == []


def test_kill_takes_down_waiting_dependents_and_replay_revives_them(journal: Journal) -> None:
    shipment = spec(step="shipment")
    label = spec(step="label", deps=(shipment.key,))
    other = spec(step="crm_contact")
    journal.enqueue([shipment, label, other])
    claimed = {j.step: j for j in journal.claim("w1", lease=30, limit=10)}
    assert set(claimed) == {"shipment", "crm_contact"}
    killed = journal.kill(
        shipment.key, "w1", error_code="validation_rejected", message="bad postcode"
    )
    assert killed == [shipment.key, label.key]
    dead = {j.key: j for j in journal.jobs(state=JobState.DEAD)}
    assert dead[shipment.key].error_message == "bad postcode"
    assert dead[label.key].error_code == "dependency_dead"
    assert journal.get(other.key).state is JobState.RUNNING  # type: ignore[union-attr]
    revived = journal.replay(shipment.key)
    assert revived == [shipment.key, label.key]
    job = journal.get(shipment.key)
    assert job is not None
    assert job.state is JobState.PENDING
    assert job.attempts == 0
    assert journal.replay(shipment.key) == []  # only dead jobs are replayed


def test_a_job_enqueued_after_its_dependency_died_is_dead_and_revived_by_replay(
    journal: Journal,
) -> None:
    shipment = spec(step="shipment")
    journal.enqueue([shipment])
    journal.claim("w1", lease=30)
    journal.kill(shipment.key, "w1", error_code="in_doubt", message="check the carrier")
    # the cancellation arrives hours later and waits on the dead shipment
    cancel = spec(event="order.cancelled:1", step="cancel_shipment", deps=(shipment.key,))
    after = spec(event="order.cancelled:1", step="notify", deps=(cancel.key,))
    journal.enqueue([cancel, after])
    dead = {j.key: j for j in journal.jobs(state=JobState.DEAD)}
    assert dead[cancel.key].error_code == "dependency_dead"
    assert shipment.key in (dead[cancel.key].error_message or "")
    assert dead[after.key].error_code == "dependency_dead"
    assert journal.next_due() is None  # nothing is left waiting forever
    journal.enqueue([cancel])  # at-least-once delivery: enqueueing again changes nothing
    assert journal.get(cancel.key).state is JobState.DEAD  # type: ignore[union-attr]
    assert journal.replay(shipment.key) == [shipment.key, cancel.key, after.key]
    assert journal.get(after.key).state is JobState.PENDING  # type: ignore[union-attr]


def test_a_job_enqueued_after_its_dependency_is_done_runs(journal: Journal) -> None:
    invoice = spec(step="invoice")
    journal.enqueue([invoice])
    (job,) = journal.claim("w1", lease=30)
    journal.complete(job.key, "w1", external_id="INV-1", result=None)
    payment = spec(event="order.paid:1", step="payment", deps=(invoice.key,))
    journal.enqueue([payment])
    (claimed,) = journal.claim("w1", lease=30)
    assert claimed.key == payment.key


def test_jobs_filter_by_step_provider_kind_external_id_and_event_prefix(
    journal: Journal,
) -> None:
    paid = [spec(event=f"order.paid:o1:{n}", step="payment") for n in (1, 2)]
    other = spec(event="order.paid:o10:1", step="payment")  # o10 is not o1
    journal.enqueue([*paid, other, spec(step="invoice")])
    for job in journal.claim("w1", lease=30, limit=10):
        journal.complete(job.key, "w1", external_id=f"X-{job.event_id}", result=None)
    keys = {j.key for j in journal.jobs(step="payment", event_prefix="order.paid:o1:")}
    assert keys == {p.key for p in paid}
    assert journal.jobs(step="payment", provider="other") == []
    assert [j.step for j in journal.jobs(kind="accounting", step="invoice")] == ["invoice"]
    (found,) = journal.jobs(state=JobState.DONE, external_id="X-order.paid:o10:1")
    assert found.key == other.key
    assert journal.jobs(event_prefix="order.paid:o1%") == []  # no wildcards


def test_resolve_marks_only_a_dead_job_done_with_its_id_and_result(journal: Journal) -> None:
    shipment = spec(step="shipment")
    journal.enqueue([shipment])
    assert journal.resolve(shipment.key, external_id="V-9") == []  # pending: not dead
    journal.claim("w1", lease=30)
    journal.kill(shipment.key, "w1", error_code="in_doubt", message="check the carrier")
    changed = journal.resolve(shipment.key, external_id="V-9", result={"tracking": "V-9"})
    assert changed == [shipment.key]
    done = journal.get(shipment.key)
    assert done is not None
    assert (done.state, done.external_id, done.result) == (
        JobState.DONE,
        "V-9",
        {"tracking": "V-9"},
    )
    assert journal.resolve(shipment.key, external_id="V-10") == []  # only dead jobs


def test_resolve_revives_dependants_left_dead(journal: Journal) -> None:
    shipment = spec(step="shipment")
    label = spec(step="label", deps=(shipment.key,))
    journal.enqueue([shipment, label])
    journal.claim("w1", lease=30)
    journal.kill(shipment.key, "w1", error_code="in_doubt", message="check the carrier")
    assert journal.resolve(shipment.key, external_id="V-9") == [shipment.key, label.key]
    (job,) = journal.claim("w1", lease=30)
    assert job.key == label.key


def test_claim_by_key_claims_only_that_job_when_due(journal: Journal) -> None:
    a, b = spec(step="a"), spec(step="b")
    journal.enqueue([a, b])
    (job,) = journal.claim("w1", lease=30, key=b.key)
    assert job.key == b.key
    assert journal.claim("w2", lease=30, key=b.key) == []


def test_jobs_filters_and_counts(journal: Journal) -> None:
    journal.enqueue([spec(step="a"), spec(step="b"), spec(event="order.created:2", step="a")])
    (job,) = journal.claim("w1", lease=30)
    journal.complete(job.key, "w1", external_id="X", result=None)
    assert len(journal.jobs(event_id="order.created:1")) == 2
    assert len(journal.jobs(state=JobState.PENDING)) == 2
    assert len(journal.jobs(limit=1)) == 1
    counts = journal.counts()
    assert counts[JobState.DONE] == 1
    assert counts[JobState.PENDING] == 2
    assert counts[JobState.DEAD] == 0


def test_concurrent_claims_never_hand_out_a_job_twice(journal: Journal) -> None:
    journal.enqueue([spec(event=f"order.created:{i}") for i in range(60)])
    taken: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            jobs = journal.claim(name, lease=60, limit=3)
            if not jobs:
                return
            with lock:
                taken.extend(j.key for j in jobs)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 60
    assert len(set(taken)) == 60


def test_calls_are_kept_for_the_audit_log(journal: Journal) -> None:
    at = datetime.now(UTC)
    journal.record_call(
        CallRow(
            at,
            "default",
            "xero",
            "xero.create_invoice",
            "POST",
            "https://x/inv",
            200,
            1,
            0.2,
            "key-1",
            "req-1",
            None,
            "job-1",
        )
    )
    journal.record_call(
        CallRow(
            at + timedelta(seconds=1),
            "default",
            "xero",
            "xero.get",
            "GET",
            "https://x/inv",
            200,
            1,
            0.1,
            None,
            None,
            None,
            None,
        )
    )
    assert len(journal.calls()) == 2
    (write,) = journal.calls(writes_only=True)
    assert write.operation == "xero.create_invoice"
    assert write.idempotency_key == "key-1"
    assert write.job_key == "job-1"
    assert write.is_write


def test_checkpoints_are_saved_per_tenant(journal: SQLiteJournal | PostgresJournal) -> None:
    assert journal.get_checkpoint("stock") is None
    journal.set_checkpoint("stock", "c1")
    journal.set_checkpoint("stock", "c2")
    journal.set_checkpoint("stock", "other", tenant="t2")
    assert journal.get_checkpoint("stock") == "c2"
    assert journal.get_checkpoint("stock", tenant="t2") == "other"


def test_jobs_sharing_a_lane_never_run_at_once(journal: Journal, clock: Clock) -> None:
    def laned(event: str, lane: str | None) -> JobSpec:
        base = spec(event=event, step="inventory")
        return JobSpec(
            base.tenant,
            base.event_id,
            base.event_type,
            base.step,
            base.kind,
            base.provider,
            base.payload,
            lane=lane,
        )

    journal.enqueue([laned("e1", "stock:a"), laned("e2", "stock:a"), laned("e3", None)])
    first = {j.event_id: j for j in journal.claim("w1", lease=10, limit=10)}
    assert "e3" in first
    laned_first = set(first) & {"e1", "e2"}
    assert len(laned_first) == 1  # one job of the lane at a time
    assert journal.claim("w2", lease=10, limit=10) == []
    (running,) = laned_first
    journal.complete(first[running].key, "w1", external_id=None, result=None)
    (second,) = journal.claim("w2", lease=10, limit=10)
    assert second.event_id == ({"e1", "e2"} - laned_first).pop()
    # a dead worker's lane job frees the lane when its lease runs out
    journal.enqueue([laned("e4", "stock:a")])
    assert journal.claim("w3", lease=10) == []
    clock.advance(11)
    taken = {j.event_id for j in journal.claim("w3", lease=10, limit=10)}
    assert len(taken & {second.event_id, "e4"}) == 1
