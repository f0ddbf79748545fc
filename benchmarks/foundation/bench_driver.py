"""Driver CPU per request against raw httpx, in the same run.

Both sides send the same GET (same URL, params and headers) through the same keep-alive
``httpx.Client`` over the same in-process transport, read the body and parse its JSON.
The driver side builds the request with ``Endpoint.request`` and runs it as an operation
on ``Driver`` (budget bookkeeping, classification, call record, retry readiness). The
transport is in-process, so the network is not there to hide the driver's overhead.

Run: python benchmarks/foundation/bench_driver.py [--n 3000] [--rounds 9] [--parts]

``--parts`` also prints, in ``--rounds`` rounds of 200 calls each, every variant
interleaved with the raw path (the median of the per-round ratios): the plain driver, a
call record alone, a concurrency budget with a record, a window and a concurrency budget
with a record; and what a budget's admission and release (as the drivers make them, and
through ``acquire()`` and its ``Slot``) and a ``CallRecord`` (of a new request, as on
every call) cost by themselves.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import httpx
from _stats import interleaved, us

from dixis_integrations.http import CallRecord, Driver, Endpoint, Limits, Operation, Window
from dixis_integrations.http.budget import Budget
from dixis_integrations.http.driver import RetryPolicy, _Call

_BODY = b'{"id": "inv-1", "status": "AUTHORISED", "total": "124.00"}'
_HEADERS = {"content-type": "application/json", "x-request-id": "rq-1"}


def _vendor(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=_BODY, headers=_HEADERS)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--parts", action="store_true", help="also time each feature")
    args = parser.parse_args()

    client = httpx.Client(transport=httpx.MockTransport(_vendor))
    headers = {"Accept": "application/json", "Authorization": "Bearer at-0123456789"}
    params = {"page": "1"}
    url = "https://vendor.test/api/invoices/inv-1"

    def raw() -> Any:
        # the leanest raw path: no client defaults merged, exactly the request we send
        request = httpx.Request("GET", url, params=params, headers=headers)
        response = client.send(request)
        response.read()
        if response.status_code >= 400:
            raise RuntimeError(response.status_code)
        return response.json()

    records: list[CallRecord] = []
    plain = Endpoint(vendor="vendor", base_url="https://vendor.test/api", headers=headers)
    budgeted = Endpoint(
        vendor="vendor",
        base_url="https://vendor.test/api",
        tenant="t1",
        headers=headers,
        limits=Limits(windows=(Window(10**9, 60.0),), concurrency=64),
    )
    driver = Driver(client)
    budget_driver = Driver(client, on_call=records.append)

    def get_invoice(endpoint: Endpoint) -> Operation[Any]:
        response = yield endpoint.request(
            "GET", "/invoices/inv-1", operation="vendor.get_invoice", params=params
        )
        return response.json()

    def ours() -> Any:
        return driver.run(get_invoice(plain))

    def ours_budgeted() -> Any:
        records.clear()
        return budget_driver.run(get_invoice(budgeted))

    assert raw() == ours() == ours_budgeted()
    print(
        f"$ {sys.executable} benchmarks/foundation/bench_driver.py --n {args.n} "
        f"--rounds {args.rounds}" + (" --parts" if args.parts else "")
    )
    for label, fn in (("driver", ours), ("driver + budget + call records", ours_budgeted)):
        mine, base, ratio = interleaved(fn, raw, n=args.n, rounds=args.rounds)
        print(
            f"{label:<32} {us(mine):>10} per request | raw httpx {us(base):>10} | "
            f"ratio {ratio:.2f}x"
        )
    if args.parts:
        _parts(client, headers, params, raw, get_invoice, args.rounds)
    return 0


def _parts(
    client: httpx.Client,
    headers: dict[str, str],
    params: dict[str, str],
    raw: Any,
    get_invoice: Any,
    rounds: int,
) -> None:
    records: list[CallRecord] = []
    recording = Driver(client, on_call=records.append)

    def endpoint(vendor: str, limits: Limits) -> Endpoint:
        base = "https://vendor.test/api"
        return Endpoint(vendor=vendor, base_url=base, tenant="t1", headers=headers, limits=limits)

    def recorded(target: Endpoint) -> Any:
        def run() -> Any:
            records.clear()
            return recording.run(get_invoice(target))

        return run

    plain, plain_endpoint = Driver(client), endpoint("p0", Limits())
    variants: dict[str, Any] = {
        "raw": raw,
        "driver": lambda: plain.run(get_invoice(plain_endpoint)),
        "a call record": recorded(endpoint("p1", Limits())),
        "concurrency budget + record": recorded(endpoint("p2", Limits(concurrency=64))),
        "window + concurrency + record": recorded(
            endpoint("p3", Limits(windows=(Window(10**9, 60.0),), concurrency=64))
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.process_time()
            for _ in range(200):
                fn()
            times[name].append((time.process_time() - start) / 200)
    base = times.pop("raw")
    for name, values in times.items():
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        print(f"    {name:<30} {us(statistics.median(values)):>10} | ratio {ratio:.3f}x")

    budget = Budget((Window(10**9, 60.0),), 64)
    requests = [
        endpoint("p4", Limits()).request(
            "GET", "/invoices/inv-1", operation="vendor.get_invoice", params=params
        )
        for _ in range(5000)
    ]
    response = client.send(requests[0])
    response.read()
    calls = [_Call(request, RetryPolicy()) for request in requests]
    for call in calls:
        call.status, call.response = response.status_code, response

    def lowest_per_call(fn: Any, items: list[Any]) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.process_time()
            for item in items:
                fn(item)
            best = min(best, (time.process_time() - start) / len(items))
        return best

    def admit_and_release(_: Any) -> None:  # what the drivers do: no Slot
        budget._admit()
        budget._release()

    print(
        f"    alone: a budget's admission and release as the drivers make them "
        f"{us(lowest_per_call(admit_and_release, calls))} "
        f"(acquire() and its Slot's release() "
        f"{us(lowest_per_call(lambda _: budget.acquire().release(), calls))}), "
        f"a CallRecord {us(lowest_per_call(lambda call: call.record(None), calls))}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
