"""The soak: a day of orders through every step against the vendors' own sandboxes,
served over HTTP, with 20% injected faults and three kill -9 crashes of the worker, then
resume; cancellations (QuickBooks voids, carrier cancellations, stock given back) included.

Effects are counted in the sandboxes' own state, not in our journal: one invoice, one
shipment and one contact per order, one payment per payment, the refunds' amounts, and
the stock levels exact. The shared checks live in :func:`check_effects`, which the Celery
and Dramatiq soaks use too.

Voucher creations that may have reached a carrier which can tell neither by key nor by
reference are parked in doubt, never repeated; the operator's rounds then look for each
at its carrier and resolve it with the voucher found or replay it, after which every
order has exactly one voucher.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dixis_integrations.auth import TokenCipher
from dixis_integrations.hub import Integrations
from dixis_integrations.models.events import OrderCancelled, OrderCreated, OrderPaid, OrderRefunded
from dixis_integrations.registry import Registry
from dixis_integrations.sandbox import catalog
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.sandbox.serve import serve
from dixis_integrations.sync.engine import IN_DOUBT, Engine, spread_by_order
from dixis_integrations.sync.journal import Job, JobState
from dixis_integrations.sync.marketday import MarketDay, market_day
from dixis_integrations.sync.steps import can_repeat_shipments

WORKER = Path(__file__).with_name("_soak_worker.py")
WORKER_THREADS = 6
# One vendor second is a millisecond here. Cin7 allows 60 calls a minute and an order
# costs it about 12 (four per line: look up the reference, read, write, read back), so a
# day of 1,000 orders is over three hours of Cin7's time: 12 s at this scale, and the
# adapters' budgets and the emulators' windows meet the same limits.
TIME_SCALE = 0.001
# How long an injected timeout holds the request before the connection drops (real
# seconds): the client's patience is what is scaled, not the vendor's.
HOLD_SECONDS = 0.01
KEY = TokenCipher.generate_key()
VENDORS = (
    "quickbooks",
    "acs",
    "courier_center",
    "elta",
    "geniki",
    "speedex",
    "hubspot",
    "cin7",
)
CARRIERS = ("acs", "courier_center", "elta", "geniki", "speedex")
FAULTS = (Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.RESET, Fault.TIMEOUT, Fault.EXPIRED_TOKEN)
# The day is compressed: at this scale Speedex would count a parcel picked up (no longer
# cancellable) 11 s after its voucher, long before the day's cancellations arrive.
SANDBOX_OPTIONS: dict[str, dict[str, Any]] = {"speedex": {"pickup_after": 30 * 86400}}


def vouchers_of(name: str, emulator: Any, *, cancelled: bool = False) -> list[str]:
    """Every voucher a carrier emulator made (``cancelled``: the cancelled ones too), as
    text to find our reference in."""
    with emulator.lock:
        if name == "acs":
            return [
                json.dumps(v.params, default=str)
                for v in emulator.vouchers.values()
                if cancelled or not v.deleted
            ]
        if name == "speedex":
            return [
                json.dumps(b.fields, default=str)
                for b in emulator.bols.values()
                if cancelled or not b.cancelled
            ]
        if name == "elta":  # ELTA has no cancellation
            return [json.dumps(a.params, default=str) for a in emulator.awbs.values()]
        if name == "geniki":
            return [
                json.dumps(j.record, default=str)
                for j in emulator.jobs.values()
                if cancelled or not j.cancelled
            ]
        if name == "courier_center":
            return [
                json.dumps(s.body, default=str)
                for s in emulator.shipments.values()
                if cancelled or not s.voided
            ]
    raise AssertionError(name)


def voucher_found(name: str, emulator: Any, order_id: str) -> dict[str, Any] | None:
    """What a person finds at a carrier for our order reference (its portal's search),
    as the shipment to resolve a parked job with; ``None``: nothing there."""
    pattern = re.compile(re.escape(order_id) + r"(?!\d)")
    with emulator.lock:
        if name == "acs":
            hits = [
                (v.number, {})
                for v in emulator.vouchers.values()
                if pattern.search(json.dumps(v.params, default=str))
            ]
        elif name == "speedex":
            hits = [
                (b.voucher, {})
                for b in emulator.bols.values()
                if pattern.search(json.dumps(b.fields, default=str))
            ]
        elif name == "geniki":
            hits = [
                (j.voucher, {"job_id": str(j.job_id)})
                for j in emulator.jobs.values()
                if pattern.search(json.dumps(j.record, default=str))
            ]
        elif name == "courier_center":
            hits = [
                (c.number, {})
                for c in emulator.shipments.values()
                if pattern.search(json.dumps(c.body, default=str))
            ]
        else:
            raise AssertionError(f"{name} can tell by itself: nothing is parked there")
    assert len(hits) <= 1, (name, order_id, hits)  # parking never makes a second one
    if not hits:
        return None
    number, data = hits[0]
    return {
        "carrier": name,
        "reference": order_id,
        "tracking_number": str(number),
        "created_at": "2026-01-01T00:00:00+00:00",
        "carrier_data": data,
    }


def served_sandboxes(stack: ExitStack, vendors: Sequence[str] = VENDORS) -> dict[str, Any]:
    """Every vendor's emulator with 20% faults, served over HTTP: name -> (emulator, url)."""
    installed = {i.name for i in Registry().list()}
    missing = [v for v in vendors if v not in installed or v not in catalog.SANDBOXES]
    if missing:
        pytest.skip(f"adapters or sandboxes not installed: {', '.join(missing)}")
    emulators: dict[str, Any] = {}
    for n, name in enumerate(vendors):
        plan = FaultPlan(rate=0.2, kinds=FAULTS, seed=100 + n, retry_after=0.01)
        options = SANDBOX_OPTIONS.get(name, {})
        emulator = catalog.load(name)(faults=plan, time_scale=TIME_SCALE, **options)
        emulator.record_requests = False  # counted in their own state, not by request
        served = stack.enter_context(serve(emulator.handle, hold_seconds=HOLD_SECONDS))
        emulator.bind(served.base_url)
        emulators[name] = (emulator, served.base_url)
    return emulators


@pytest.fixture
def sandboxes() -> Iterator[dict[str, Any]]:
    with ExitStack() as stack:
        yield served_sandboxes(stack)


def sandbox_config(sandboxes: dict[str, Any], path: Path) -> dict[str, Any]:
    """What a worker attaches with (written to ``path`` for the worker processes)."""
    config = {
        name: {"base_url": url, **emulator.credentials()}
        for name, (emulator, url) in sandboxes.items()
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return config


def run_worker(config: Path, journal: Path, crash_after: int) -> int:
    env = {**os.environ, "DIXIS_SOAK_TIME_SCALE": str(TIME_SCALE), "DIXIS_SOAK_KEY": KEY}
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(config), str(journal), str(crash_after)],
        timeout=900,
        capture_output=True,
        check=False,
        env=env,
    )
    if proc.returncode not in (0, -signal.SIGKILL):
        sys.stderr.write(proc.stderr.decode(errors="replace")[-4000:])
    return proc.returncode


LATER = frozenset({"order.refunded", "order.cancelled"})
"""Event types that come hours after the orders and payments they are about."""


def soak(tmp_path: Path, sandboxes: dict[str, Any], *, orders: int, crashes: int) -> None:
    day = market_day(orders=orders, seed=31)
    sandboxes["cin7"][0].seed_stock(day.opening_stock)  # the merchant's catalogue
    config = tmp_path / "sandboxes.json"
    journal = tmp_path / "journal.db"
    submitter = Integrations.attach(
        sandbox_config(sandboxes, config),
        journal_url=f"sqlite:///{journal}",
        time_scale=TIME_SCALE,
        router=spread_by_order(("shipping",), exclude=("boxnow",)),
    )
    with submitter:
        # events arrive in the order they happen: refunds and cancellations come hours
        # after the payments, which the ledger has booked by then
        for event in day.events:
            if event.type not in LATER:
                submitter.submit(event)
        first = len(submitter.journal.jobs())
        rng = random.Random(5)
        for _ in range(crashes):
            assert run_worker(config, journal, rng.randint(20, first // 3)) == -signal.SIGKILL
        assert run_worker(config, journal, 0) == 0
        for event in day.events:  # at-least-once delivery: the host sends everything again
            submitter.submit(event)
        total = len(submitter.journal.jobs())
        assert run_worker(config, journal, rng.randint(1, max(1, total - first))) in (
            0,
            -signal.SIGKILL,
        )
        assert run_worker(config, journal, 0) == 0
        parked = resolve_by_hand(
            submitter.engine, sandboxes, lambda: run_worker(config, journal, 0) == 0
        )
        jobs = submitter.journal.jobs()
    if orders >= 500:
        assert parked, "the faults parked no shipment: the operator's rounds went untested"
    check_effects(day, sandboxes, jobs)


def resolve_by_hand(engine: Engine, sandboxes: dict[str, Any], resume: Callable[[], object]) -> int:
    """The operator's rounds: each shipment parked in doubt is looked for at its carrier
    by our order reference, then resolved with the voucher found (the label and any
    cancellation waiting on it then run) or replayed (nothing there: created now, once),
    and the workers ``resume``. A replayed creation may meet another fault and be parked
    again: another round. The number of jobs parked in all."""
    parked = 0
    for _ in range(8):
        doubtful = engine.in_doubt_jobs()
        if not doubtful:
            return parked
        parked += len(doubtful)
        for job in doubtful:
            found = voucher_found(job.provider, sandboxes[job.provider][0], order_of(job))
            if found is None:
                assert engine.replay(job.key)
            else:
                assert engine.resolve(job.key, found["tracking_number"], found)
        assert resume() is not False
    raise AssertionError("shipments still parked after eight rounds")


def dead_allowed(jobs: Sequence[Job]) -> None:
    """Every job is done, or parked in doubt (a voucher creation that may have reached a
    carrier that can neither take an idempotency key nor be asked by our reference), or
    dead because a job it waits on is."""
    registry = Registry()
    unfinished = [(j.step, j.provider, j.state) for j in jobs if j.state not in _FINAL]
    assert not unfinished, Counter(unfinished)
    dead = {j.key: j for j in jobs if j.state is JobState.DEAD}
    allowed = set()
    for j in dead.values():
        if j.error_code == IN_DOUBT:
            assert j.step == "shipment", (j.step, j.provider, j.error_message)
            assert not can_repeat_shipments(registry.load("shipping", j.provider)), j.provider
            allowed.add(j.key)
    grew = True
    while grew:
        grew = False
        for j in dead.values():
            if j.key in allowed or j.error_code != "dependency_dead":
                continue
            if any(dep in allowed for dep in j.depends_on):
                allowed.add(j.key)
                grew = True
    others = Counter(
        (j.step, j.provider, j.error_code, j.error_message)
        for j in dead.values()
        if j.key not in allowed
    )
    assert not others, others


_FINAL = (JobState.DONE, JobState.DEAD)


def order_of(job: Job) -> str:
    payload = json.loads(job.payload)
    return str(payload["order"]["id"] if "order" in payload else payload["order_id"])


def check_effects(day: MarketDay, sandboxes: dict[str, Any], jobs: Sequence[Job]) -> None:
    """What the day must have left at the vendors, counted in their own state."""
    dead_allowed(jobs)
    created = [e.order for e in day.events if isinstance(e, OrderCreated)]
    cancelled = {e.order_id for e in day.events if isinstance(e, OrderCancelled)}
    assert cancelled, "the day has cancellations"
    in_doubt = {order_of(j) for j in jobs if j.step == "shipment" and j.error_code == IN_DOUBT}

    # accounting: one invoice per order, in the ledger's own tables; cancelled: voided
    qbo = sandboxes["quickbooks"][0]
    company = qbo.companies[qbo.realm_id]
    invoices = list(company.table("Invoice").values())
    assert Counter(inv["DocNumber"] for inv in invoices) == Counter({o.id: 1 for o in created})
    voided = {inv["DocNumber"] for inv in invoices if inv.get("PrivateNote", "").startswith("Void")}
    assert voided == cancelled
    paid = [e for e in day.events if isinstance(e, OrderPaid)]
    payments = Counter(
        p.get("PaymentRefNum")
        for p in company.table("Payment").values()
        if Decimal(str(p["TotalAmt"])) != 0  # zero payments apply credit memos
    )
    assert payments == Counter({e.payment.id: 1 for e in paid})
    # refunds: each refund's amount once, as a credit memo and/or a refund receipt
    refunded: Counter[str] = Counter()
    for table in ("CreditMemo", "RefundReceipt"):
        numbers = Counter(row["DocNumber"] for row in company.table(table).values())
        assert all(n == 1 for n in numbers.values()), (table, numbers)
        for row in company.table(table).values():
            refunded[row["DocNumber"]] += Decimal(str(row["TotalAmt"]))
    refunds = {
        e.refund.id: e.refund.amount.amount for e in day.events if isinstance(e, OrderRefunded)
    }
    assert refunds
    assert dict(refunded) == refunds

    # shipping: one voucher per order, at one carrier; none left live for a cancelled
    # order. A voucher creation parked in doubt made at most one.
    made: dict[str, list[str]] = {o.id: [] for o in created}
    live: dict[str, list[str]] = {o.id: [] for o in created}
    pattern = re.compile(r"O\d{6}-\d{4,}(?!\d)")
    for name in CARRIERS:
        emulator = sandboxes[name][0]
        for found, every in ((made, True), (live, False)):
            for text in vouchers_of(name, emulator, cancelled=every):
                for order_id in set(pattern.findall(text)):
                    if order_id in found:
                        found[order_id].append(name)
    for o in created:
        if o.id in in_doubt:
            assert len(made[o.id]) <= 1, (o.id, made[o.id])
            continue
        assert len(made[o.id]) == 1, (o.id, made[o.id])
        if o.id in cancelled and made[o.id] != ["elta"]:  # ELTA cannot cancel a voucher
            assert live[o.id] == [], (o.id, live[o.id])
        else:
            assert live[o.id] == made[o.id], (o.id, live[o.id])

    # inventory: the levels at the vendor are exact (each order's lines committed once,
    # a cancelled order's given back once)
    cin7 = sandboxes["cin7"][0]
    expected = dict(day.opening_stock)
    for o in created:
        for line in o.lines:
            if o.id not in cancelled:
                expected[line.sku] -= line.quantity
    with cin7.lock:
        on_hand = {
            sku: cin7.stock[(cin7._by_sku[sku], cin7.locations[0])]["OnHand"] for sku in expected
        }
    assert on_hand == expected

    # CRM: one contact per customer, never a duplicate
    hubspot = sandboxes["hubspot"][0]
    emails = Counter(c["properties"].get("email") for c in hubspot.contacts.values())
    assert all(n == 1 for n in emails.values()), [e for e, n in emails.items() if n > 1]
    assert set(emails) >= {o.customer.email for o in created}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_soak_orders_with_faults_and_three_crashes(
    tmp_path: Path, sandboxes: dict[str, Any]
) -> None:
    soak(tmp_path, sandboxes, orders=int(os.environ.get("DIXIS_SOAK_ORDERS", "1000")), crashes=3)
