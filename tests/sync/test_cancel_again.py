"""A carrier cancellation repeated after its answer was lost (the worker killed after the
carrier answered, before the journal recorded it) is done, not dead: every carrier's
sandbox answers "not found" for a voucher already cancelled."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from dixis_integrations.hub import Integrations
from dixis_integrations.models.events import OrderCancelled, OrderCreated
from dixis_integrations.models.shipping import Shipment
from dixis_integrations.sync.engine import JobPolicy
from dixis_integrations.sync.journal import JobState
from dixis_integrations.sync.marketday import market_day

LEASE = 0.2


def an_order() -> OrderCreated:
    return next(e for e in market_day(orders=1, seed=3).events if isinstance(e, OrderCreated))


def cancelled(created: OrderCreated) -> OrderCancelled:
    return OrderCancelled(
        order_id=created.order.id,
        reason="test",
        occurred_at=created.occurred_at + timedelta(minutes=5),
    )


def cancel_job_state(carrier: str, *, cancelled_before: bool, lost: bool) -> JobState:
    """Create an order's voucher, then run its cancellation; ``cancelled_before``: the
    voucher is cancelled at the carrier first (by an attempt whose answer was lost when
    ``lost``, by someone else otherwise)."""
    policy = JobPolicy(lease=LEASE, backoff_initial=0.01, max_attempts=3)
    with Integrations.sandbox(only=[carrier], policy=policy) as hub:
        created = an_order()
        hub.submit(created)
        hub.engine.drain(max_wait=5)
        (shipment_job,) = hub.journal.jobs(state=JobState.DONE)
        (cancel_key,) = hub.submit(cancelled(created))
        connection = hub.connection("shipping", carrier)
        if cancelled_before:
            shipment = Shipment.model_validate(shipment_job.result)
            connection.driver.run(connection.adapter.cancel(shipment))
        if lost:  # a worker claimed the job and died: its lease runs out
            assert hub.journal.claim("lost", lease=LEASE, key=cancel_key)
            time.sleep(LEASE * 1.5)
        hub.engine.drain(max_wait=5)
        job = hub.journal.get(cancel_key)
        assert job is not None
        return job.state


@pytest.mark.parametrize("carrier", ["acs", "speedex", "geniki", "courier_center"])
def test_a_cancellation_repeated_after_a_lost_answer_is_done(carrier: str) -> None:
    assert cancel_job_state(carrier, cancelled_before=True, lost=True) is JobState.DONE


@pytest.mark.parametrize("carrier", ["acs", "speedex"])
def test_a_first_cancellation_of_a_voucher_gone_is_still_dead(carrier: str) -> None:
    assert cancel_job_state(carrier, cancelled_before=True, lost=False) is JobState.DEAD


@pytest.mark.parametrize("carrier", ["acs", "speedex"])
def test_a_cancellation_after_a_lost_attempt_that_never_landed_cancels(carrier: str) -> None:
    assert cancel_job_state(carrier, cancelled_before=False, lost=True) is JobState.DONE
