"""Client-side request budgets per (vendor, tenant): windows and concurrency.

One ``Budgets`` object is shared by every driver of a host (threads and asyncio tasks
alike), so a process never sends more than a vendor allows. A window slot is stamped
when its call *finishes*, so the vendor (which counts arrivals) can never see more calls
in one of its windows than we counted in ours, whatever the network's jitter.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from dixis_integrations.http.endpoint import Limits, Window

__all__ = ["Budget", "Budgets", "Slot"]

_POLL = 0.002


class Slot:
    """One reserved call: released (and stamped) when the call completes."""

    __slots__ = ("_budget", "released")

    def __init__(self, budget: Budget, stamps: object = None) -> None:
        self._budget = budget
        self.released = False

    def release(self) -> None:
        """Mark the call done: its window slots start counting down from now."""
        if not self.released:
            self.released = True
            budget = self._budget
            with budget._lock:  # Budget._release, inlined: it runs once per call
                now = budget._clock()
                for state in budget._windows:
                    state.done.append(now)
                budget._inflight -= 1
                if budget._sleepers:
                    budget._cond.notify_all()


@dataclass(slots=True)
class _WindowState:
    window: Window
    seconds: float
    done: deque[float]  # finish times of completed calls, oldest first
    limit: int = 0

    def __post_init__(self) -> None:
        self.limit = self.window.limit


class Budget:
    """The budget of one key: a set of windows plus a concurrency cap.

    A call counts against every window from the moment it starts until ``seconds``
    after it finishes; calls in flight count against all of them.
    """

    def __init__(
        self,
        windows: tuple[Window, ...],
        concurrency: int | None,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._windows = [_WindowState(w, w.seconds * time_scale, deque()) for w in windows]
        self._concurrency = concurrency
        self._inflight = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._sleepers = 0  # threads only a release can help: release() wakes them if any
        self.waited = 0.0
        self.calls = 0

    def _wait_needed(self, now: float) -> float:
        """Seconds until one more call fits (0 when it fits now). Holds ``_cond``."""
        return self._wait_and_why(now)[0]

    def _wait_and_why(self, now: float) -> tuple[float, bool]:
        """Seconds until one more call fits (0 when it fits now), and whether only a
        release can shorten that wait (the concurrency cap, or a window full of calls
        still in flight). Holds ``_cond``.

        A release never frees room in a window (the call leaves the calls in flight and
        joins the window's completed calls), so a thread waiting for a window's oldest
        call to expire sleeps until then and is not woken by every release.
        """
        inflight = self._inflight
        if self._concurrency is not None and inflight >= self._concurrency:
            return _POLL, True  # a release wakes sync waiters at once
        wait = 0.0
        on_release = False
        for state in self._windows:
            done = state.done
            seconds = state.seconds
            while done and done[0] + seconds <= now:
                done.popleft()
            if inflight + len(done) >= state.window.limit:
                if done:
                    wait = max(wait, done[0] + seconds - now)
                else:  # full of calls in flight: the first release starts the clock
                    wait = max(wait, _POLL)
                    on_release = True
        return wait, on_release

    def _admitted(self) -> None:
        self._inflight += 1
        self.calls += 1

    def _release(self) -> None:
        """The end of a call admitted by ``_admit``, ``_try_admit`` or ``_admit_async``."""
        with self._lock:  # the plain lock: the condition's own methods are Python code
            now = self._clock()
            for state in self._windows:
                state.done.append(now)
            self._inflight -= 1
            if self._sleepers:
                self._cond.notify_all()

    def try_acquire(self) -> tuple[Slot | None, float]:
        """A slot if one is free now, else ``(None, seconds to wait)``."""
        wait = self._try_admit()
        if wait <= 0:
            return Slot(self), 0.0
        return None, wait

    def _try_admit(self) -> float:
        """Admit one more call if it fits now (0.0: ``_release()`` is then owed once),
        else the seconds to wait."""
        with self._lock:
            wait = self._wait_needed(self._clock())
            if wait <= 0:
                self._admitted()
                return 0.0
            return wait

    def acquire(self) -> Slot:
        """Block the calling thread until the budget allows one more call."""
        self._admit()
        return Slot(self)

    def _admit(self) -> None:
        """``acquire()`` without its ``Slot``: the caller calls ``_release()`` exactly once
        when the call completes (the drivers do, in a ``finally``)."""
        with self._lock:  # fast path: capacity now, decided without the condition
            # _wait_needed(now) <= 0, inlined: it runs once per call
            inflight = self._inflight
            cap = self._concurrency
            if cap is None or inflight < cap:
                now = self._clock()
                for state in self._windows:
                    done = state.done
                    seconds = state.seconds
                    while done and done[0] + seconds <= now:
                        done.popleft()
                    if inflight + len(done) >= state.limit:
                        break
                else:
                    self._inflight = inflight + 1
                    self.calls += 1
                    return
        while True:
            with self._lock:
                wait, on_release = self._wait_and_why(self._clock())
                if wait <= 0:
                    self._admitted()
                    return
                self.waited += wait
                if not on_release:
                    # only time frees room in a window: sleep until it does, unwoken
                    self._cond.wait(timeout=wait)
                    continue
                self._sleepers += 1
                try:
                    self._cond.wait(timeout=wait)
                finally:
                    self._sleepers -= 1

    async def acquire_async(self) -> Slot:
        """Wait (without blocking the event loop) until one more call fits."""
        await self._admit_async()
        return Slot(self)

    async def _admit_async(self) -> None:
        """``acquire_async()`` without its ``Slot``: ``_release()`` is owed once."""
        while True:
            wait = self._try_admit()
            if wait <= 0:
                return
            self.waited += wait
            await asyncio.sleep(wait)


class Budgets:
    """Every budget of a host, keyed by (vendor, tenant) and (vendor, app)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._budgets: dict[tuple[str, str], Budget] = {}
        self._clock = clock

    def for_key(self, vendor: str, scope: str, limits: Limits, *, app: bool = False) -> Budget:
        """The budget for ``vendor`` and ``scope`` (a tenant, or ``"*app*"``)."""
        key = (vendor, "*app*" if app else scope)
        budget = self._budgets.get(key)  # the common case needs no lock: dict reads are atomic
        if budget is not None:
            return budget
        with self._lock:
            budget = self._budgets.get(key)
            if budget is None:
                windows = limits.app_windows if app else limits.windows
                concurrency = None if app else limits.concurrency
                budget = Budget(
                    windows, concurrency, time_scale=limits.time_scale, clock=self._clock
                )
                self._budgets[key] = budget
            return budget

    def snapshot(self) -> dict[tuple[str, str], tuple[int, float]]:
        """(calls made, seconds waited) per key: for health checks and benchmarks."""
        with self._lock:
            return {k: (b.calls, b.waited) for k, b in self._budgets.items()}
