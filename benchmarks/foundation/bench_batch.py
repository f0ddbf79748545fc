"""Batch calls: CPU per record of building domain models, serialising them, sending the
batch through the driver and parsing the vendor's reply back into models, against a raw
baseline that posts and parses the same JSON from plain dicts, in the same run.

Records are customers (with a billing address, phone and marketing consent) and orders
(three lines, VAT categories, discount and shipping fee) as a marketplace exports them;
the vendor answers one result per record. The transport is in-process and the reply is
canned, so both sides pay the same HTTP cost and nothing hides the models' cost.

Run: python benchmarks/foundation/bench_batch.py [--batch 50] [--n 40] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import httpx
from _stats import interleaved, us
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


def _bench(kind: str, model: Any, rows: list[dict[str, Any]], n: int, rounds: int) -> None:
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(
        f"$ {sys.executable} benchmarks/foundation/bench_batch.py --batch {args.batch} "
        f"--n {args.n} --rounds {args.rounds}"
    )
    _bench(
        "customers", Customer, [_customer_row(i) for i in range(args.batch)], args.n, args.rounds
    )
    _bench("orders", Order, [_order_row(i) for i in range(args.batch)], args.n, args.rounds)
    _ = OrderLine  # the order lines are validated as part of each Order
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
