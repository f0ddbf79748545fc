"""Driver CPU per request against raw httpx, in the same run.

Both sides send the same GET (same URL, params and headers) through the same keep-alive
``httpx.Client`` over the same in-process transport, read the body and parse its JSON.
The driver side builds the request with ``Endpoint.request`` and runs it as an operation
on ``Driver`` (budget bookkeeping, classification, call record, retry readiness). The
transport is in-process, so the network is not there to hide the driver's overhead.

Run: python benchmarks/foundation/bench_driver.py [--n 3000] [--rounds 9]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import httpx
from _stats import interleaved, us

from dixis_integrations.http import CallRecord, Driver, Endpoint, Limits, Operation, Window

_BODY = b'{"id": "inv-1", "status": "AUTHORISED", "total": "124.00"}'
_HEADERS = {"content-type": "application/json", "x-request-id": "rq-1"}


def _vendor(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=_BODY, headers=_HEADERS)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=9)
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
        f"--rounds {args.rounds}"
    )
    for label, fn in (("driver", ours), ("driver + budget + call records", ours_budgeted)):
        mine, base, ratio = interleaved(fn, raw, n=args.n, rounds=args.rounds)
        print(
            f"{label:<32} {us(mine):>10} per request | raw httpx {us(base):>10} | "
            f"ratio {ratio:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
