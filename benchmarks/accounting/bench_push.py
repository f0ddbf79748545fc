"""Push orders into the Xero and QuickBooks sandboxes with the vendors' limits enforced.

Each emulator runs in its own process with its real limits on scaled time (the client's
budgets use the same scale), so this process's CPU is the client's alone. We report:

- calls per invoice (Xero at most 1 per 45, QBO at most 1 per 28), all calls counted:
  tenant resolution, tax-code check, items and customers, invoices;
- the share of the ceiling the limits allow: the time the binding window forces on the
  calls (full windows before the last) over the time taken, which must be >= 90%.
  At 2,000 orders Xero needs 43 calls, fewer than its 60 per minute, so no window
  binds: that run reports its rate against the 3,000 invoices/min ceiling instead.
  ``--binding`` adds a Xero run with 6,000 orders (123 calls, about 70 s) where the
  minute window binds;
- throttling answers from the emulator and ``RateLimited`` errors surfaced (both 0);
- client CPU per invoice against a raw-httpx baseline posting the same JSON bodies (the
  exact bytes our run sent, chunked the same way) to an emulator without limits: <= 1.5x.
  Each side is timed ``--rounds`` times in the same process, alternated (ours, raw, raw,
  ours, ...), each against a fresh emulator; the claim is the median of the rounds'
  ratios. Each round also times our push against an emulator and budgets without
  limits (no waiting at all), to show what the vendor's windows cost our side.
  ``--paced`` adds, after our limited push of each round, the raw client posting the
  same bodies at the very moments our push started its calls (so it waits as long as
  ours did): what a raw client that respects the same limits would spend. Printed next
  to the claim, not instead of it.

Run: ``.venv/bin/python benchmarks/accounting/bench_push.py`` (about five minutes with
the default four rounds: QuickBooks's 40 batch calls/min make each of its rounds 45 s);
``--vendor xero|quickbooks``, ``--orders N`` and ``--rounds N`` make shorter runs;
``--binding`` and ``--paced`` (see above) longer ones.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from dixis_integrations.accounting.quickbooks import QuickBooks, QuickBooksConfig
from dixis_integrations.accounting.tax import check_order
from dixis_integrations.accounting.xero import Xero, XeroConfig
from dixis_integrations.errors import RateLimited
from dixis_integrations.http import AsyncDriver, Budgets, CallRecord
from dixis_integrations.models import Customer, Money, Order, OrderLine, VatCategory
from dixis_integrations.models.accounting import BatchItemStatus

HERE = Path(__file__).parent
WORKERS = {"xero": 3, "quickbooks": 4}  # concurrent bulk pushes (within both vendors' caps)
XERO_CODES = {VatCategory.STANDARD: "TAX001", VatCategory.REDUCED: "TAX002",
              VatCategory.SUPER_REDUCED: "TAX003"}  # fmt: skip
QBO_CODES = {VatCategory.STANDARD: "1", VatCategory.REDUCED: "2", VatCategory.SUPER_REDUCED: "3"}
CATEGORIES = (VatCategory.REDUCED, VatCategory.SUPER_REDUCED, VatCategory.STANDARD)


def make_orders(n: int, prefix: str) -> list[Order]:
    customers = [
        Customer(id=f"cus_{c}", email=f"buyer{c}@example.gr", first_name="Μαρία",
                 last_name=f"Παπαδοπούλου {c}")
        for c in range(10)
    ]  # fmt: skip
    created = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    return [
        Order(
            id=f"{prefix}{i}",
            customer=customers[i % 10],
            lines=[
                OrderLine(sku=f"SKU-{(i + k) % 12}", name=f"Προϊόν {(i + k) % 12}",
                          quantity=Decimal(1 + k) if k != 1 else Decimal("1.250"),
                          unit_price=Money.of(f"{3 + (i * 7 + k) % 20}.{(i + k) % 100:02d}"),
                          vat_category=CATEGORIES[(i + k) % 3])
                for k in range(1 + i % 3)
            ],
            shipping_fee=Money.of("3.50") if i % 2 else Money.zero(),
            discount=Money.of("1.00") if i % 5 == 0 else Money.zero(),
            created_at=created,
        )
        for i in range(n)
    ]


class Server:
    """One emulator in a child process."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_serve.py"), name, json.dumps(options)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.credentials: dict[str, str] = json.loads(self.proc.stdout.readline())

    def stop(self) -> int:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        stats = json.loads(self.proc.stdout.readline())
        self.proc.wait(timeout=30)
        return int(stats["throttled"])


class Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


@dataclass
class Report:
    vendor: str
    orders: int
    calls: int
    binding_limit: int
    window: float
    items_per_call: int
    elapsed: float
    throttled: int
    surfaced: int
    created: int
    cpu_us: float
    baseline_cpu_us: float
    all_calls: int = 0

    @property
    def invoices_per_call(self) -> float:
        return self.orders / (self.all_calls or self.calls)

    @property
    def forced(self) -> float:
        """Seconds the binding window forces: full windows before the last."""
        return ((self.calls - 1) // self.binding_limit) * self.window

    @property
    def ceiling_share(self) -> float:
        if self.forced:
            return self.forced / self.elapsed
        ceiling_rate = self.binding_limit * self.items_per_call / self.window
        return (self.orders / self.elapsed) / ceiling_rate

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_us / self.baseline_cpu_us


def _slices(items: list[Order], k: int, size: int) -> list[list[Order]]:
    """``k`` slices whose lengths are multiples of ``size`` (so no chunk is split)."""
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    return [[o for chunk in chunks[j::k] for o in chunk] for j in range(k)]


async def _push(
    adapter: Any, orders: list[Order], size: int, budgets: Budgets, marker: str
) -> tuple[list[Any], list[CallRecord], int, float, float, list[float]]:
    records: list[CallRecord] = []
    surfaced = 0
    starts: list[float] = []  # when each invoice write started, from the timed start

    async def note_start(request: httpx.Request) -> None:
        if marker in request.url.path and request.method in ("PUT", "POST"):
            starts.append(time.monotonic() - timed)

    timed = 0.0
    # The hook runs inside our timed section (one call per request): charged to our side.
    client = httpx.AsyncClient(timeout=60, event_hooks={"request": [note_start]})
    async with AsyncDriver(client, budgets=budgets, on_call=records.append) as driver:
        t0 = time.monotonic()
        await driver.run(adapter.prepare(orders))  # counted in calls and elapsed, not CPU
        _warm_up(adapter, orders[0])
        gc.collect()  # both timed runs start with no garbage pending (see _baseline)
        starts.clear()
        timed = time.monotonic()
        cpu0 = time.process_time()

        async def one(part: list[Order]) -> list[Any]:
            nonlocal surfaced
            try:
                return list(await driver.run(adapter.post_invoices(part)))
            except RateLimited:
                surfaced += 1
                return []

        slices = _slices(orders, WORKERS[adapter.name], size)
        parts = await asyncio.gather(*(one(p) for p in slices))
        elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    return [r for p in parts for r in p], records, surfaced, elapsed, cpu, starts


def _warm_up(adapter: Any, order: Order) -> None:
    """What a long-running worker has done long before: import and first-use costs."""
    from dixis_integrations.accounting import quickbooks, xero

    draft = check_order(order, adapter.codes, tenant="warm-up", vendor=adapter.name)
    module = xero if adapter.name == "xero" else quickbooks
    if adapter.name == "xero":
        xero.build_invoice(order, draft.lines, adapter.config, adapter.codes, tenant="w",
                           contact={})  # fmt: skip
    else:
        ids = {line.sku or "": "1" for line in draft.lines} | {"Shipping": "1", "Discount": "1"}
        quickbooks.build_invoice(order, draft.lines, adapter.config, adapter.codes, tenant="w",
                                 customer_id="1", item_ids=ids)  # fmt: skip
    module.parse_invoice({"Id": "1", "InvoiceID": "1", "Total": Decimal(1), "TotalAmt": 1})


async def _baseline(url: str, headers: dict[str, str], bodies: list[tuple[str, str, bytes]],
                    workers: int, starts: list[float] | None = None) -> float:
    """A raw httpx client posting the same JSON documents and reading the answers; given
    ``starts``, the k-th call starts no earlier than ``starts[k]`` seconds after the
    timed start (the moments our push started its calls)."""
    documents = [(method, path, json.loads(body)) for method, path, body in bodies]
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        async def worker(mine: list[tuple[str, str, Any]]) -> None:
            for method, path, document in mine:
                response = await client.request(method, url + path, json=document)
                response.json()

        queue = iter(enumerate(documents))

        async def paced_worker() -> None:
            assert starts is not None
            for k, (method, path, document) in queue:
                delay = t0 + starts[min(k, len(starts) - 1)] - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                response = await client.request(method, url + path, json=document)
                response.json()

        # As before our run: the process's pending garbage is not charged to either side.
        gc.collect()
        t0 = time.monotonic()
        cpu0 = time.process_time()
        if starts is None:
            await asyncio.gather(*(worker(documents[j::workers]) for j in range(workers)))
        else:
            await asyncio.gather(*(paced_worker() for _ in range(workers)))
        return time.process_time() - cpu0


def _bodies_of(transport_log: list[httpx.Request], base: str) -> list[tuple[str, str, bytes]]:
    return [(r.method, str(r.url).removeprefix(base), r.content) for r in transport_log]


class _Capture(httpx.AsyncBaseTransport):
    """Records the invoice writes of a dry run against a limit-free emulator."""

    def __init__(self, marker: str) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.marker = marker
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.marker in request.url.path and request.method in ("PUT", "POST"):
            await request.aread()
            self.seen.append(request)
        return await self.inner.handle_async_request(request)


NO_LIMITS = {
    "xero": {"minute_limit": 10**9, "day_limit": 10**9, "app_minute_limit": 10**9},
    "quickbooks": {"minute_limit": 10**9, "batch_minute_limit": 10**9},
}
UNBOUND_SCALE = 1e-9  # windows of nanoseconds: the budgets count every call, never wait


def _xero(c: dict[str, str], scale: float = 1.0) -> Xero:
    config = XeroConfig(base_url=c["base_url"], tenant_id=c["tenant_id"], tax_codes=XERO_CODES)
    return Xero(config, auth=Bearer(c["access_token"]), time_scale=scale)


def _quickbooks(c: dict[str, str], scale: float = 1.0) -> QuickBooks:
    config = QuickBooksConfig(base_url=c["base_url"], realm_id=c["realm_id"],
                              tax_codes=QBO_CODES)  # fmt: skip
    return QuickBooks(config, auth=Bearer(c["access_token"]), time_scale=scale)


def _xero_headers(c: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {c['access_token']}", "xero-tenant-id": c["tenant_id"],
            "Accept": "application/json"}  # fmt: skip


def _quickbooks_headers(c: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {c['access_token']}", "Accept": "application/json"}


@dataclass(frozen=True)
class Vendor:
    name: str
    make: Any  # (credentials, time scale) -> adapter
    headers: Any  # credentials -> the raw client's headers
    marker: str  # the path of the invoice writes
    size: int  # invoices per call
    binding_limit: int  # calls per window of the binding window
    prefix: str


VENDORS = {
    "xero": Vendor("xero", _xero, _xero_headers, "/Invoices", 50, 60, "x"),
    "quickbooks": Vendor("quickbooks", _quickbooks, _quickbooks_headers, "/batch", 30, 40, "q"),
}


def _ours(vendor: Vendor, orders: list[Order], scale: float,
          options: dict[str, Any] | None = None) -> tuple[Report, list[float]]:
    """Our push into a fresh emulator: with the vendor's limits on ``scale`` (both sides),
    or, given ``options``, into an emulator with those options and budgets that never wait.
    """
    server = Server(vendor.name, options if options is not None else {"time_scale": scale})
    adapter = vendor.make(server.credentials, scale if options is None else UNBOUND_SCALE)
    results, records, surfaced, elapsed, cpu, starts = asyncio.run(
        _push(adapter, orders, vendor.size, Budgets(), vendor.marker)
    )
    throttled = server.stop()
    n = len(orders)
    if vendor.name == "quickbooks":  # the binding window is the batch one: 40 /batch calls/min
        calls = sum(1 for r in records if r.operation.startswith("quickbooks.batch"))
    else:
        calls = len(records)
    report = Report(vendor.name, n, calls, vendor.binding_limit, 60 * scale, vendor.size,
                    elapsed, throttled, surfaced,
                    sum(r.status is BatchItemStatus.CREATED for r in results), cpu / n * 1e6,
                    0.0, all_calls=len(records))  # fmt: skip
    return report, starts


@dataclass
class Round:
    report: Report  # our push under the vendor's limits, with the baseline of this round
    unlimited_cpu_us: float  # our push against no limits at all (no waiting)
    load0: float
    load1: float
    paced_cpu_us: float | None = None  # the raw client at our push's moments (--paced)


def bench(vendor: Vendor, n: int, scale: float, rounds: int, prefix: str = "",
          paced: bool = False) -> list[Round]:  # fmt: skip
    """``rounds`` rounds of our push under the vendor's limits and the raw baseline,
    alternated (ours first in even rounds, the baseline first in odd ones: ours, raw,
    raw, ours, ...), each against a fresh emulator; plus, between the two, our push
    against an emulator and budgets without limits, to show what waiting costs (so it
    follows our limited run in even rounds and precedes it in odd ones).
    """
    orders = make_orders(n, prefix or vendor.prefix)
    bodies = _capture(vendor, orders)
    out = []
    for k in range(rounds):
        load0 = os.getloadavg()[0]
        if k % 2:  # raw, then ours without limits, then ours
            baseline = _baseline_run(vendor, orders, bodies)
            free, _ = _ours(vendor, orders, scale, NO_LIMITS[vendor.name])
            report, starts = _ours(vendor, orders, scale)
        else:  # ours, then ours without limits, then raw
            report, starts = _ours(vendor, orders, scale)
            free, _ = _ours(vendor, orders, scale, NO_LIMITS[vendor.name])
            baseline = _baseline_run(vendor, orders, bodies)
        report.baseline_cpu_us = baseline / n * 1e6
        rd = Round(report, free.cpu_us, load0, os.getloadavg()[0])
        if paced:  # after our limited push, whose moments it replays
            rd.paced_cpu_us = _baseline_run(vendor, orders, bodies, starts) / n * 1e6
            rd.load1 = os.getloadavg()[0]
        out.append(rd)
    return out


def _capture(vendor: Vendor, orders: list[Order]) -> list[tuple[str, str, bytes]]:
    """The exact invoice bodies our push sends (a dry run against a limit-free emulator)."""
    dry = Server(vendor.name, NO_LIMITS[vendor.name])
    capture = _Capture(vendor.marker)

    async def dry_run() -> None:
        adapter = vendor.make(dry.credentials)
        async with AsyncDriver(httpx.AsyncClient(transport=capture, timeout=60)) as driver:
            await driver.run(adapter.prepare(orders))
            capture.seen.clear()
            for part in _slices(orders, WORKERS[vendor.name], vendor.size):
                await driver.run(adapter.post_invoices(part))

    asyncio.run(dry_run())
    dry.stop()
    return _bodies_of(capture.seen, dry.credentials["base_url"])


def _baseline_run(vendor: Vendor, orders: list[Order], bodies: list[tuple[str, str, bytes]],
                  starts: list[float] | None = None) -> float:  # fmt: skip
    """The raw client posting the captured bodies to a fresh limit-free emulator (at
    the moments ``starts`` gives, if given)."""
    fresh = Server(vendor.name, NO_LIMITS[vendor.name])
    creds = fresh.credentials

    async def warm() -> None:  # the same references exist, as in our run
        adapter = vendor.make(creds)
        async with AsyncDriver(httpx.AsyncClient(timeout=60)) as driver:
            await driver.run(adapter.prepare(orders))

    asyncio.run(warm())
    cpu = asyncio.run(_baseline(creds["base_url"], vendor.headers(creds), bodies,
                                WORKERS[vendor.name], starts))  # fmt: skip
    fresh.stop()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vendor", choices=("xero", "quickbooks"))
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument(
        "--rounds", type=int, default=4,
        help="alternated rounds of our push and the raw baseline (the ratio is their median)",
    )  # fmt: skip
    parser.add_argument(
        "--binding", action="store_true",
        help="also push 3x the orders into Xero (123 calls: its minute window binds)",
    )  # fmt: skip
    parser.add_argument(
        "--paced", action="store_true",
        help="also time the raw client posting at the moments our limited push did",
    )  # fmt: skip
    args = parser.parse_args()
    runs: list[tuple[Vendor, list[Round]]] = []
    paced = args.paced
    if args.vendor in (None, "xero"):
        xero = VENDORS["xero"]
        runs.append((xero, bench(xero, args.orders, 0.25, args.rounds, paced=paced)))
        if args.binding:
            runs.append((xero, bench(xero, 3 * args.orders, 0.5, args.rounds, "y", paced)))
    if args.vendor in (None, "quickbooks"):
        qbo = VENDORS["quickbooks"]
        runs.append((qbo, bench(qbo, args.orders, 0.75, args.rounds, paced=paced)))
    limits = {"xero": 45, "quickbooks": 28}
    ok = True
    for vendor, rounds in runs:
        for k, rd in enumerate(rounds, 1):
            r = rd.report
            good = (
                r.ceiling_share >= 0.9
                and r.throttled == 0
                and r.surfaced == 0
                and r.invoices_per_call >= limits[r.vendor]
                and r.created == r.orders
            )
            ok = ok and good
            print(
                f"{r.vendor:10} round {k} load={rd.load0:.2f}-{rd.load1:.2f} "
                f"orders={r.orders:5} calls={r.all_calls or r.calls:3} "
                f"binding-window calls={r.calls:3} "
                f"invoices/call={r.invoices_per_call:5.1f} elapsed={r.elapsed:6.2f}s "
                f"forced={r.forced:5.1f}s ceiling={r.ceiling_share:6.1%} "
                f"throttled={r.throttled} surfaced={r.surfaced} created={r.created} "
                f"cpu/invoice={r.cpu_us:4.0f}us baseline={r.baseline_cpu_us:4.0f}us "
                f"ratio={r.cpu_ratio:4.2f} unlimited={rd.unlimited_cpu_us:4.0f}us "
                f"({rd.unlimited_cpu_us / r.baseline_cpu_us:4.2f}x)"
                + (
                    ""
                    if rd.paced_cpu_us is None
                    else f" paced={rd.paced_cpu_us:4.0f}us ({r.cpu_us / rd.paced_cpu_us:4.2f}x)"
                )
                + f" {'OK' if good else 'FAIL'}"
            )
        ratios = [rd.report.cpu_ratio for rd in rounds]
        free = [rd.unlimited_cpu_us / rd.report.baseline_cpu_us for rd in rounds]
        median = statistics.median(ratios)
        good = median <= 1.5
        ok = ok and good
        against_paced = [
            rd.report.cpu_us / rd.paced_cpu_us for rd in rounds if rd.paced_cpu_us is not None
        ]
        print(
            f"{vendor.name:10} ratios {', '.join(f'{x:.2f}' for x in ratios)} "
            f"median={median:.2f}x (unlimited: {', '.join(f'{x:.2f}' for x in free)}, "
            f"median={statistics.median(free):.2f}x)"
            + (
                f" (against the paced raw client: "
                f"{', '.join(f'{x:.2f}' for x in against_paced)}, "
                f"median={statistics.median(against_paced):.2f}x)"
                if against_paced
                else ""
            )
            + f" {'OK' if good else 'FAIL'}"
        )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
