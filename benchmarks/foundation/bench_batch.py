"""Batch calls: CPU per record of building domain models, serialising them, sending the
batch through the driver and parsing the vendor's reply back into models, against a raw
baseline that posts and parses the same JSON from plain dicts, in the same run.

Records are customers (with a billing address, phone and marketing consent) and orders
(three lines, VAT categories, discount and shipping fee) as a marketplace exports them;
the vendor answers one result per record. The transport is in-process and the reply is
canned, so both sides pay the same HTTP cost and nothing hides the models' cost.

Run: python benchmarks/foundation/bench_batch.py [--batch 50] [--n 40] [--rounds 7] [--parts]

``--parts`` also prints what each step costs by itself (the lowest of interleaved rounds,
per record): validation (for the models with a fast path, its pydantic-core part and its
Python pass apart), writing the JSON body, parsing the reply; the raw side's
``json.dumps`` (as httpx's ``json=`` calls it) and ``json.loads``; both whole paths with
the garbage collector on and off, and how many collections 100 batches start.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import httpx
from _stats import interleaved, lowest, us
from pydantic import BaseModel, TypeAdapter

from dixis_integrations.http import Driver, Endpoint, Operation
from dixis_integrations.models import Customer, ListAdapter, Order, OrderLine
from dixis_integrations.models.accounting import BatchItemResult

_WHEN = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
_M = TypeVar("_M")


class _Body(BaseModel, Generic[_M]):
    items: list[_M]


class _Reply(BaseModel):
    results: list[BatchItemResult]


def _customer_row(i: int) -> dict[str, Any]:
    return {
        "id": f"cus_{i}",
        "email": f"maria{i}@example.gr",
        "first_name": "Μαρία",
        "last_name": "Παπαδοπούλου",
        "phone": "6912345678",
        "billing_address": {
            "name": "Μαρία Παπαδοπούλου",
            "street": "Ερμού",
            "number": "10",
            "city": "Αθήνα",
            "postcode": "105 63",
        },
        "created_at": _WHEN,
    }


def _order_row(i: int) -> dict[str, Any]:
    return {
        "id": f"ord_{i}",
        "customer": _customer_row(i),
        "lines": [
            {
                "sku": "OIL-1L",
                "name": "Ελαιόλαδο 1L",
                "quantity": 2,
                "unit_price": {"amount": "12.40", "currency": "EUR"},
                "vat_category": "reduced",
            },
            {
                "sku": "FETA-KG",
                "name": "Φέτα",
                "quantity": Decimal("0.750"),
                "unit_price": {"amount": "11.90", "currency": "EUR"},
                "vat_category": "reduced",
            },
            {
                "sku": "HONEY",
                "name": "Μέλι θυμαρίσιο",
                "quantity": 1,
                "unit_price": {"amount": "9.50", "currency": "EUR"},
                "vat_category": "reduced",
            },
        ],
        "created_at": _WHEN,
    }


def _reply(kind: str, batch: int) -> bytes:
    results = [
        {"reference": f"{kind}_{i}", "status": "created", "external_id": f"ext-{i}"}
        for i in range(batch)
    ]
    return json.dumps({"results": results}).encode()


def _bench(
    kind: str, model: Any, rows: list[dict[str, Any]], n: int, rounds: int, parts: bool = False
) -> None:
    reply = _reply(kind[:3], len(rows))
    client = httpx.Client(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(
                200, content=reply, headers={"content-type": "application/json"}
            )
        )
    )
    endpoint = Endpoint(vendor="vendor", base_url="https://vendor.test/api")
    driver = Driver(client)
    url = "https://vendor.test/api/batch"
    # the baseline posts the very JSON our models produce, from plain dicts
    plain_payload = [model.model_validate(row).model_dump(mode="json") for row in rows]

    # one call into pydantic-core per batch, not one per record: ListAdapter is
    # TypeAdapter(list[model]) with a fast path (same results and errors), as adapters use
    records_adapter: ListAdapter[Any] = ListAdapter(model)
    body_adapter = TypeAdapter(_Body[model])  # type: ignore[valid-type]
    reply_adapter = TypeAdapter(_Reply)

    def post_batch(records: list[Any]) -> Operation[list[BatchItemResult]]:
        response = yield endpoint.request(
            "POST",
            "/batch",
            operation="vendor.batch",
            content=body_adapter.dump_json(_Body(items=records)),
            headers={"content-type": "application/json"},
        )
        return reply_adapter.validate_json(response.content).results

    def ours() -> list[BatchItemResult]:
        records = records_adapter.validate_python(rows)
        return driver.run(post_batch(records))

    def raw() -> list[dict[str, Any]]:
        payload = [dict(d) for d in plain_payload]
        request = httpx.Request("POST", url, json={"items": payload})
        response = client.send(request)
        response.read()
        return list(response.json()["results"])

    assert len(ours()) == len(raw()) == len(rows)
    mine, base, ratio = interleaved(ours, raw, n=n, rounds=rounds)
    per = len(rows)
    print(
        f"{kind:<10} {us(mine / per):>10} per record | raw dicts {us(base / per):>10} "
        f"| ratio {ratio:.2f}x"
    )
    if not parts:
        return
    records = records_adapter.validate_python(rows)
    # what httpx's json= does
    dump = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    body = dump({"items": plain_payload}).encode()
    steps: dict[str, Any] = {
        "validate (ListAdapter)": lambda: records_adapter.validate_python(rows),
        "write the JSON body": lambda: body_adapter.dump_json(_Body(items=records)),
        "parse the reply": lambda: reply_adapter.validate_json(reply).results,
        "raw: json.dumps": lambda: dump({"items": plain_payload}).encode(),
        "raw: json.loads": lambda: json.loads(reply)["results"],
    }
    fast, finish = records_adapter._fast, records_adapter._finish
    if fast is not None:
        steps["  of which pydantic-core"] = lambda: fast.validate_python(rows)
    if fast is not None and finish is not None:
        # the pass fills in the models it is given: it is timed on fresh ones, as the
        # difference between validating with and without it
        steps["core and pass"] = lambda: finish(rows, fast.validate_python(rows))
    assert len(body) > 0

    def collector_off(fn: Any) -> Any:
        def run() -> Any:
            gc.disable()
            try:
                return fn()
            finally:
                gc.enable()

        return run

    costs = lowest(steps, n=n, rounds=rounds)
    both = costs.pop("core and pass", None)
    if both is not None:
        costs["  of which the pass"] = both - costs["  of which pydantic-core"]
    for name, seconds in costs.items():
        print(f"    {name:<26} {us(seconds / per):>10} per record")
    for name, fn in (("whole path", ours), ("raw", raw)):
        # the collector's share: medians, as it runs in some rounds and not in others
        off, on, _ = interleaved(collector_off(fn), fn, n=n, rounds=rounds)
        print(f"    {name}: {us(on / per)} per record, {us(off / per)} with the collector off")
        before = [generation["collections"] for generation in gc.get_stats()]
        for _ in range(100):
            fn()
        after = [generation["collections"] for generation in gc.get_stats()]
        counts = ", ".join(str(b - a) for a, b in zip(before, after, strict=True))
        print(f"    {name}: collections of generations 0, 1, 2 in 100 batches: {counts}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--parts", action="store_true", help="also time each step alone")
    args = parser.parse_args()
    print(
        f"$ {sys.executable} benchmarks/foundation/bench_batch.py --batch {args.batch} "
        f"--n {args.n} --rounds {args.rounds}" + (" --parts" if args.parts else "")
    )
    customers = [_customer_row(i) for i in range(args.batch)]
    _bench("customers", Customer, customers, args.n, args.rounds, args.parts)
    orders = [_order_row(i) for i in range(args.batch)]
    _bench("orders", Order, orders, args.n, args.rounds, args.parts)
    _ = OrderLine  # the order lines are validated as part of each Order
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
