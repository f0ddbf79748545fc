"""Reconciliation over many SKUs from the file source and the Zoho and Cin7 sandboxes.

For each source, in the same run: the baseline reads every page of the same data through
the same driver and throws the levels away; the measured pass reconciles them into a ledger
holding every SKU with 1% drift. Reported: time of both and their ratio; the baseline's
peak traced memory, the ledger's size, and the pass's peak beyond the ledger (which must not
grow with the number of SKUs), with its ratio to the baseline's.

    .venv/bin/python benchmarks/inventory/bench_reconcile.py --skus 100000 --runs 3
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from dixis_integrations.auth import MemoryTokenStore, Token, TokenManager
from dixis_integrations.http import Driver, Operation
from dixis_integrations.inventory.cin7 import Cin7Config, Cin7Core
from dixis_integrations.inventory.files import FileStockSource
from dixis_integrations.inventory.ledger import StockLedger
from dixis_integrations.inventory.reconcile import reconcile
from dixis_integrations.inventory.zoho import ZohoAuth, ZohoConfig, ZohoInventory, oauth_config
from dixis_integrations.models.inventory import StockLevel, StockPage
from dixis_integrations.sandbox.cin7 import Cin7Sandbox
from dixis_integrations.sandbox.zoho import ZohoSandbox

SCALE = 0.0005  # vendor minutes pass in 30 ms: both the emulators and the clients use it
T0 = datetime(2026, 11, 20, tzinfo=UTC)


def _truth(n: int) -> dict[str, int]:
    rng = random.Random(n)
    return {f"SKU-{i:06}": rng.randint(0, 500) for i in range(n)}


def _read_all(source: Any) -> Operation[int]:
    cursor, count = None, 0
    while True:
        page: StockPage = yield from source.stock_page(cursor)
        count += len(page.levels)
        cursor = page.next_cursor
        if cursor is None:
            return count


def _ledger(truth: dict[str, int], location: str = "default") -> StockLedger:
    ledger = StockLedger()
    for i, (sku, qty) in enumerate(truth.items()):
        drift = 1 if i % 100 == 0 else 0
        ledger.observe(
            StockLevel(
                sku=sku,
                location=location,
                on_hand=Decimal(qty + drift),
                as_of=T0 - timedelta(days=1),
            )
        )
    return ledger


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _peak(fn: Callable[[], Any]) -> int:
    """Peak memory allocated while ``fn`` runs (traced separately: tracing slows it)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def _timed_pass(
    truth: dict[str, int], location: str, source: Any, driver: Driver
) -> tuple[float, Any]:
    ledger = _ledger(truth, location)
    return _timed(lambda: driver.run(reconcile(source, ledger, keep_corrections=False)))


def _pass_memory(
    truth: dict[str, int], location: str, source: Any, driver: Driver
) -> tuple[int, int]:
    """(bytes of the ledger after the pass, peak bytes of the pass beyond the ledger),
    traced together so that values the pass replaces in the ledger count once: the levels
    hold each source's own ``as_of`` and ``version`` afterwards, which is their size, not
    the pass's.
    """
    gc.collect()
    tracemalloc.start()
    ledger = _ledger(truth, location)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    driver.run(reconcile(source, ledger, keep_corrections=False))
    peak = tracemalloc.get_traced_memory()[1]
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after, peak - max(held, after)


def _file_source(truth: dict[str, int], folder: Path) -> tuple[Any, Driver, str]:
    path = folder / "stock.csv"
    with path.open("w") as out:
        out.write("sku,on_hand\n")
        for sku, qty in truth.items():
            out.write(f"{sku},{qty}\n")
    source = FileStockSource.from_path(path, as_of=T0, page_size=1000)
    return (
        source,
        Driver(httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))),
        "default",
    )


def _zoho_source(truth: dict[str, int]) -> tuple[Any, Driver, str]:
    box = ZohoSandbox(time_scale=SCALE)
    box.bind("http://zoho.bench")
    for sku, qty in truth.items():
        box.add_item(sku, stock=qty)
    box.record_requests = False
    creds = box.credentials()
    store = MemoryTokenStore()
    store.save(
        "zoho",
        "default",
        Token(
            access_token=SecretStr(creds["access_token"]),
            refresh_token=SecretStr(creds["refresh_token"]),
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        ),
    )
    oauth = oauth_config(
        creds["client_id"],
        SecretStr(creds["client_secret"]),
        "http://127.0.0.1/cb",
        accounts_base="http://zoho.bench",
    )
    manager = TokenManager(
        oauth, "default", store, client_factory=lambda: httpx.Client(transport=box.transport())
    )
    adapter = ZohoInventory(
        ZohoConfig(organization_id=creds["organization_id"], base_url=creds["base_url"]),
        auth=ZohoAuth(manager),
        time_scale=SCALE,
    )
    return adapter, Driver(httpx.Client(transport=box.transport())), "default"


def _cin7_source(truth: dict[str, int]) -> tuple[Any, Driver, str]:
    box = Cin7Sandbox(time_scale=SCALE, locations=("Main Warehouse",))
    box.bind("http://cin7.bench")
    for sku, qty in truth.items():
        box.add_product(sku, stock=qty)
    box.record_requests = False
    creds = box.credentials()
    adapter = Cin7Core(
        Cin7Config(
            account_id=creds["account_id"],
            base_url=creds["base_url"],
            application_key=SecretStr(creds["application_key"]),
        ),
        time_scale=SCALE,
    )
    return adapter, Driver(httpx.Client(transport=box.transport())), "default"


def _run_one(
    name: str, build: Callable[[], tuple[Any, Driver, str]], truth: dict[str, int], runs: int
) -> tuple[str, int, float, float, int, int, int]:
    source, driver, location = build()
    driver.run(_read_all(source))  # warm-up: caches, first connections
    base: list[float] = []
    passes: list[float] = []
    for _ in range(runs):  # interleaved, so that load on the machine hits both alike
        base_t, count = _timed(lambda: driver.run(_read_all(source)))
        rec_t, report = _timed_pass(truth, location, source, driver)
        assert count == len(truth) == report.levels, (count, report.levels)
        assert report.corrected == (len(truth) + 99) // 100
        base.append(base_t)
        passes.append(rec_t)
    base_t, rec_t = statistics.median(base), statistics.median(passes)
    base_m = _peak(lambda: driver.run(_read_all(source)))
    ledger_bytes, rec_m = _pass_memory(truth, location, source, driver)
    return name, count, base_t, rec_t, base_m, rec_m, ledger_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--sources", default="file,zoho,cin7")
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the median is shown")
    args = parser.parse_args()
    truth = _truth(args.skus)
    rows: list[tuple[str, int, float, float, int, int, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        builders: dict[str, Callable[[], tuple[Any, Driver, str]]] = {
            "file": lambda: _file_source(truth, Path(tmp)),
            "zoho": lambda: _zoho_source(truth),
            "cin7": lambda: _cin7_source(truth),
        }
        for name in args.sources.split(","):
            rows.append(_run_one(name, builders[name], truth, args.runs))
    print(
        f"{'source':6} {'SKUs':>7} {'read s':>8} {'recon s':>8} {'time x':>7} "
        f"{'read MiB':>9} {'pass+ MiB':>9} {'mem x':>6} {'ledger MiB':>10}"
    )
    for name, count, bt, rt, bm, rm, lb in rows:
        print(
            f"{name:6} {count:7d} {bt:8.2f} {rt:8.2f} {rt / bt:7.2f} "
            f"{bm / 2**20:9.1f} {rm / 2**20:9.1f} {rm / max(bm, 1):6.2f} {lb / 2**20:10.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
