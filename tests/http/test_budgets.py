"""Request budgets: per-(vendor, tenant) windows and concurrency, shared by every thread
and asyncio task of a process, on real or scaled time.

The vendor side counts arrivals; the invariant pinned here is the vendor's: in no window
of the vendor's length did more calls arrive than the limit, and never were more calls
in flight than allowed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from _driver_harness import Harness

from dixis_integrations.errors import NotFound, TransientError
from dixis_integrations.http import (
    AsyncDriver,
    Budget,
    Budgets,
    Driver,
    Endpoint,
    Limits,
    RetryPolicy,
    Window,
)


class _Counter:
    """A vendor that notes arrival times and the most calls it ever had in flight."""

    def __init__(self, hold: float = 0.002) -> None:
        self.hold = hold
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.arrivals: list[float] = []

    def _enter(self) -> None:
        with self.lock:
            self.arrivals.append(time.monotonic())
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)

    def _leave(self) -> None:
        with self.lock:
            self.inflight -= 1

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self._enter()
        time.sleep(self.hold)
        self._leave()
        return httpx.Response(200)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        self._enter()
        await asyncio.sleep(self.hold)
        self._leave()
        return httpx.Response(200)

    def most_in_any_window(self, seconds: float) -> int:
        times = sorted(self.arrivals)
        best = 0
        for i, start in enumerate(times):
            best = max(best, sum(1 for t in times[i:] if t < start + seconds))
        return best


def _endpoint(limits: Limits, tenant: str = "t1") -> Endpoint:
    return Endpoint(vendor="shop", base_url="https://shop.test", tenant=tenant, limits=limits)


def _run_threads(vendor: _Counter, endpoint: Endpoint, budgets: Budgets, calls: int) -> None:
    # two drivers (two clients) sharing one Budgets: as two parts of one host would
    drivers = [
        Driver(httpx.Client(transport=httpx.MockTransport(vendor)), budgets=budgets)
        for _ in range(2)
    ]

    def one(i: int) -> int:
        request = endpoint.request("GET", f"/items/{i}", operation="shop.get")
        return drivers[i % 2].send(request).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(one, range(calls))) == [200] * calls
    for driver in drivers:
        driver.client.close()


async def _run_tasks(vendor: _Counter, endpoint: Endpoint, budgets: Budgets, calls: int) -> None:
    transport = httpx.MockTransport(vendor.handle_async)
    async with httpx.AsyncClient(transport=transport) as client:
        driver = AsyncDriver(client, budgets=budgets)
        requests = [endpoint.request("GET", f"/i/{i}", operation="shop.get") for i in range(calls)]
        responses = await asyncio.gather(*(driver.send(r) for r in requests))
    assert [r.status_code for r in responses] == [200] * calls


def test_concurrency_is_capped_across_eight_threads() -> None:
    vendor = _Counter(hold=0.003)
    budgets = Budgets()
    _run_threads(vendor, _endpoint(Limits(concurrency=3)), budgets, calls=48)
    assert len(vendor.arrivals) == 48
    assert vendor.max_inflight <= 3
    assert budgets.snapshot()[("shop", "t1")][0] == 48


def test_a_window_is_never_exceeded_across_eight_threads() -> None:
    vendor = _Counter(hold=0.0)
    limits = Limits(windows=(Window(5, 0.05),))
    _run_threads(vendor, _endpoint(limits), Budgets(), calls=25)
    assert len(vendor.arrivals) == 25
    assert vendor.most_in_any_window(0.05) <= 5


def test_concurrency_and_windows_are_capped_across_asyncio_tasks() -> None:
    vendor = _Counter(hold=0.002)
    limits = Limits(windows=(Window(4, 0.04),), concurrency=2)
    asyncio.run(_run_tasks(vendor, _endpoint(limits), Budgets(), calls=20))
    assert len(vendor.arrivals) == 20
    assert vendor.max_inflight <= 2
    assert vendor.most_in_any_window(0.04) <= 4


def test_threads_and_tasks_share_one_budget() -> None:
    vendor = _Counter(hold=0.003)
    endpoint = _endpoint(Limits(concurrency=2))
    budgets = Budgets()
    worker = threading.Thread(target=_run_threads, args=(vendor, endpoint, budgets, 16))
    worker.start()
    asyncio.run(_run_tasks(vendor, endpoint, budgets, calls=16))
    worker.join()
    assert len(vendor.arrivals) == 32
    assert vendor.max_inflight <= 2


def test_tenants_have_budgets_of_their_own() -> None:
    budgets = Budgets()
    limits = Limits(concurrency=1)
    a = budgets.for_key("shop", "t1", limits)
    b = budgets.for_key("shop", "t2", limits)
    assert a is not b
    assert budgets.for_key("shop", "t1", limits) is a
    slot_a, _ = a.try_acquire()
    slot_b, _ = b.try_acquire()
    assert slot_a is not None
    assert slot_b is not None
    again, wait = a.try_acquire()
    assert again is None
    assert wait > 0


def test_app_windows_are_shared_by_every_tenant() -> None:
    budgets = Budgets()
    limits = Limits(app_windows=(Window(2, 60.0),))
    assert budgets.for_key("shop", "t1", limits, app=True) is budgets.for_key(
        "shop", "t2", limits, app=True
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_window_slot_counts_from_when_its_call_finished() -> None:
    clock = _Clock()
    budget = Budget((Window(2, 10.0),), None, clock=clock)
    first, _ = budget.try_acquire()
    second, _ = budget.try_acquire()
    assert first is not None
    assert second is not None
    # both in flight: the window is full whatever the time
    clock.now += 1000
    assert budget.try_acquire()[0] is None
    first.release()
    second.release()
    clock.now += 9.9
    slot, wait = budget.try_acquire()
    assert slot is None
    assert wait == pytest.approx(0.1)
    clock.now += 0.1
    assert budget.try_acquire()[0] is not None


def test_time_scale_shrinks_every_window() -> None:
    clock = _Clock()
    limits = Limits(windows=(Window(3, 60.0),)).scaled(0.001)  # a minute lasts 60 ms
    budget = Budgets(clock=clock).for_key("shop", "t1", limits)
    for _ in range(3):
        slot, _ = budget.try_acquire()
        assert slot is not None
        slot.release()
    slot, wait = budget.try_acquire()
    assert slot is None
    assert wait == pytest.approx(0.06)
    clock.now += 0.06
    assert budget.try_acquire()[0] is not None


def test_a_scaled_window_holds_against_a_real_vendor_clock() -> None:
    vendor = _Counter(hold=0.0)
    limits = Limits(windows=(Window(3, 10.0),), time_scale=0.005)  # 10 s -> 50 ms
    _run_threads(vendor, _endpoint(limits), Budgets(), calls=12)
    assert len(vendor.arrivals) == 12
    assert vendor.most_in_any_window(0.05) <= 3


def test_a_window_needs_a_positive_limit_and_length() -> None:
    with pytest.raises(ValueError, match="positive"):
        Window(0, 1.0)
    with pytest.raises(ValueError, match="positive"):
        Window(1, 0.0)


class _CountingCondition:
    """The budget's condition, counting the waits of its sleepers."""

    def __init__(self, inner: threading.Condition) -> None:
        self.inner = inner
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        return self.inner.wait(timeout)

    def notify_all(self) -> None:
        self.inner.notify_all()


def test_a_release_does_not_wake_a_thread_waiting_for_a_window_to_expire() -> None:
    # a release moves a call from "in flight" to "done": it never frees room in a window
    budget = Budget((Window(3, 60.0),), None, time_scale=0.005)  # a 0.3 s window
    counting = _CountingCondition(budget._cond)
    budget._cond = counting  # type: ignore[assignment]
    first, second, third = budget.acquire(), budget.acquire(), budget.acquire()
    first.release()
    started = time.monotonic()
    got: list[float] = []
    waiter = threading.Thread(target=lambda: got.append(budget.acquire() and time.monotonic()))
    waiter.start()
    time.sleep(0.05)
    second.release()
    third.release()
    waiter.join(5)
    assert got, "the waiter never got its slot"
    assert got[0] - started >= 0.25  # it waited for the oldest call's window to expire
    assert counting.waits == 1  # one sleep, not woken by the two releases


def test_a_thread_waiting_for_the_concurrency_cap_is_woken_by_a_release() -> None:
    budget = Budget((), 1)
    slot = budget.acquire()
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (budget.acquire(), got.set()))
    waiter.start()
    time.sleep(0.05)
    assert not got.is_set()
    slot.release()
    assert got.wait(5)
    waiter.join(5)


def test_a_call_releases_each_budget_once_whatever_its_outcome(harness: Harness) -> None:
    # success, a vendor error, a transport error: each call leaves the calls in flight
    # once (no lost release: the cap of one admits the next) and is counted once in
    # each window (no double release: the fourth slot is the last)
    limits = Limits(windows=(Window(4, 60.0),), concurrency=1, app_windows=(Window(4, 60.0),))
    endpoint = _endpoint(limits)
    harness.retry = RetryPolicy(max_attempts=1)
    replies = iter([httpx.Response(200), httpx.Response(404), None])

    def vendor(request: httpx.Request) -> httpx.Response:
        reply = next(replies)
        if reply is None:
            raise httpx.ConnectError("refused", request=request)
        return reply

    assert (
        harness.send(vendor, endpoint.request("GET", "/a", operation="shop.get")).status_code == 200
    )
    with pytest.raises(NotFound):
        harness.send(vendor, endpoint.request("GET", "/b", operation="shop.get"))
    with pytest.raises(TransientError):
        harness.send(vendor, endpoint.request("GET", "/c", operation="shop.get"))
    for budget in (
        harness.budgets.for_key("shop", "t1", limits),
        harness.budgets.for_key("shop", "t1", limits, app=True),
    ):
        slot, _ = budget.try_acquire()
        assert slot is not None
        assert budget.try_acquire()[0] is None
        slot.release()
    assert harness.budgets.snapshot()[("shop", "t1")][0] == 4
    assert harness.budgets.snapshot()[("shop", "*app*")][0] == 4
