"""Shared helpers of the foundation benchmarks: interleaved CPU timing and medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def cpu_per_call(fn: Callable[[], object], n: int) -> float:
    """Process CPU seconds per call of ``fn``, over ``n`` calls."""
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def interleaved(
    ours: Callable[[], object], baseline: Callable[[], object], *, n: int, rounds: int
) -> tuple[float, float, float]:
    """(median ours, median baseline, median of per-round ratios), rounds interleaved so
    that both sides meet the same machine load."""
    for _ in range(max(1, n // 10)):  # warm up caches, pools, branch predictors
        ours()
        baseline()
    mine: list[float] = []
    base: list[float] = []
    ratios: list[float] = []
    for i in range(rounds):
        if i % 2:
            b = cpu_per_call(baseline, n)
            o = cpu_per_call(ours, n)
        else:
            o = cpu_per_call(ours, n)
            b = cpu_per_call(baseline, n)
        mine.append(o)
        base.append(b)
        ratios.append(o / b)
    return statistics.median(mine), statistics.median(base), statistics.median(ratios)


def lowest(steps: dict[str, Callable[[], object]], *, n: int, rounds: int) -> dict[str, float]:
    """The lowest CPU seconds per call of each step over ``rounds`` interleaved rounds of
    ``n`` calls: the least disturbed estimate of what each step costs by itself."""
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, fn in steps.items():
            best[name] = min(best[name], cpu_per_call(fn, n))
    return best


def us(seconds: float) -> str:
    """Seconds as microseconds, for the report."""
    return f"{seconds * 1e6:.1f} µs"
