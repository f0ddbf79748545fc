"""Run many carrier operations at once and keep each outcome apart (private).

Sync: a thread pool over ``Driver.run``; async: ``asyncio.gather`` over
``AsyncDriver.run``. Each operation gets its own outcome, a result or a typed error; an
operation still running at the deadline is reported as :class:`ProviderTimeout`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeAlias, TypeVar

from dixis_integrations.errors import DixisError, ProviderTimeout, TransientError
from dixis_integrations.http.driver import AsyncDriver, Driver, Operation

__all__ = ["DriverChoice", "run_all", "run_all_async"]

T = TypeVar("T")
D = TypeVar("D", Driver, AsyncDriver)
DriverChoice: TypeAlias = D | Mapping[str, D]
"""One driver for every carrier, or one per carrier name."""


def _pick(driver: Driver | AsyncDriver | Mapping[str, Any], name: str) -> Any:
    if isinstance(driver, Mapping):
        try:
            return driver[name]
        except KeyError:
            raise DixisError(f"no driver for carrier {name!r}", code="configuration") from None
    return driver


def _as_error(name: str, exc: BaseException) -> DixisError:
    if isinstance(exc, DixisError):
        return exc
    # A bug or an unexpected answer in one carrier must not sink the others.
    return TransientError(f"unexpected {type(exc).__name__}: {exc}", vendor=name)


def _timeout(name: str, seconds: float) -> ProviderTimeout:
    return ProviderTimeout(f"no answer within {seconds:g}s", vendor=name)


def run_all(
    jobs: Sequence[tuple[str, Operation[T]]],
    driver: DriverChoice[Driver],
    *,
    timeout: float,
) -> list[tuple[T | DixisError, float]]:
    """Run ``(carrier, operation)`` jobs on threads; outcomes and seconds, in job order."""
    if not jobs:
        return []
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=min(32, len(jobs)), thread_name_prefix="dixis-fanout")

    def one(name: str, op: Operation[T]) -> tuple[T | DixisError, float]:
        t0 = time.monotonic()
        try:
            result: T | DixisError = _pick(driver, name).run(op)
        except BaseException as exc:
            result = _as_error(name, exc)
        return result, time.monotonic() - t0

    futures: list[Future[tuple[T | DixisError, float]]] = [
        pool.submit(one, name, op) for name, op in jobs
    ]
    try:
        wait(futures, timeout=timeout)
    finally:
        # Never wait for a stuck carrier: its thread finishes in the background.
        pool.shutdown(wait=False, cancel_futures=True)
    elapsed = time.monotonic() - started
    out: list[tuple[T | DixisError, float]] = []
    for (name, _), future in zip(jobs, futures, strict=True):
        if future.done() and not future.cancelled():
            out.append(future.result())
        else:
            out.append((_timeout(name, timeout), elapsed))
    return out


async def run_all_async(
    jobs: Sequence[tuple[str, Operation[T]]],
    driver: DriverChoice[AsyncDriver],
    *,
    timeout: float,
) -> list[tuple[T | DixisError, float]]:
    """Run ``(carrier, operation)`` jobs concurrently on asyncio, each with ``timeout``."""

    async def one(name: str, op: Operation[T]) -> tuple[T | DixisError, float]:
        t0 = time.monotonic()
        try:
            result: T | DixisError = await asyncio.wait_for(
                _pick(driver, name).run(op), timeout=timeout
            )
        except TimeoutError:
            result = _timeout(name, timeout)
        except Exception as exc:
            result = _as_error(name, exc)
        return result, time.monotonic() - t0

    return list(await asyncio.gather(*(one(name, op) for name, op in jobs)))
