"""Where the adapters' CPU per invoice goes, step by step, next to the raw-JSON baseline.

For 500 orders (the shapes of ``bench_push.py``) and each vendor, in one process: the
checks, VAT lines and vendor payload (one pass, as the bulk path does them), encoding a
bulk call's body, decoding the vendor's answer with exact decimals, and parsing it into
result models; the baseline is ``json.dumps``/``json.loads`` of the same documents (what
the raw-httpx baseline of ``bench_push.py`` spends on them). The answers are real ones,
from the in-process emulators. Best of 5 timed runs after a warm-up, CPU time.

Run: ``.venv/bin/python benchmarks/accounting/bench_adapter_cpu.py``
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from bench_push import QBO_CODES, XERO_CODES, Bearer, make_orders

from dixis_integrations.accounting import _wire, quickbooks, xero
from dixis_integrations.accounting._common import money
from dixis_integrations.accounting.tax import lean_lines
from dixis_integrations.http import Driver
from dixis_integrations.sandbox.quickbooks import QuickBooksSandbox
from dixis_integrations.sandbox.xero import XeroSandbox

N = 500


def _created(module: Any, reference: str, invoice: Any) -> Any:
    # The adapters' own result builder (or, in older versions, the validated model).
    build = getattr(module, "created_item", None)
    if build is not None:
        return build(reference, invoice)
    return module.BatchItemResult(
        reference=reference,
        status=module.BatchItemStatus.CREATED,
        external_id=invoice.external_id,
        invoice=invoice,
    )


def _best(fn: Callable[[], object], per: int) -> float:
    fn()
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best / per * 1e6


def _answers(emulator: Any, adapter: Any, orders: list[Any], marker: str) -> list[bytes]:
    seen: list[httpx.Response] = []

    def handler(request: httpx.Request) -> httpx.Response:
        response: httpx.Response = emulator.handle(request)
        if marker in request.url.path and request.method in ("PUT", "POST"):
            seen.append(response)
        return response

    with Driver(httpx.Client(transport=httpx.MockTransport(handler))) as driver:
        driver.run(adapter.prepare(orders))
        seen.clear()
        driver.run(adapter.post_invoices(orders))
    return [r.content for r in seen]


def _report(name: str, rows: list[tuple[str, float, float | None]]) -> None:
    print(f"\n{name}: CPU per invoice (us)          adapter   raw JSON")
    for label, ours, raw in rows:
        print(f"  {label:34} {ours:8.1f}   {'' if raw is None else f'{raw:8.1f}'}")
    print(f"  {'total':34} {sum(r[1] for r in rows):8.1f}   {sum(r[2] or 0 for r in rows):8.1f}")


def bench_xero(orders: list[Any]) -> None:
    sandbox = XeroSandbox()
    c = sandbox.credentials()
    config = xero.XeroConfig(base_url=c["base_url"], tenant_id=c["tenant_id"], tax_codes=XERO_CODES)
    adapter = xero.Xero(config, auth=Bearer(c["access_token"]))
    bodies = _answers(sandbox, adapter, orders, "/Invoices")
    prepared = [adapter._prepare(o) for o in orders]
    documents = [{"Invoices": [p[0] for p in prepared[i : i + 50]]} for i in range(0, N, 50)]
    plain = [json.loads(_wire.dumps(d)) for d in documents]
    decoded = [_wire.loads(b)["Invoices"] for b in bodies]
    lean_text = getattr(adapter, "_lean_text", None)  # the bulk path's writer, when present

    def prepare() -> list[Any]:  # checks, VAT and the body, in one pass (the bulk path)
        if lean_text is not None:
            return [lean_text(o) for o in orders]
        return [adapter._prepare(o) for o in orders]

    texts = [w[0] for w in prepare()]

    def encode() -> list[bytes]:
        if lean_text is not None:
            return [adapter._chunk_content(texts[i : i + 50]) for i in range(0, N, 50)]
        return [_wire.dumps_marked(d) for d in documents]

    def parse() -> None:
        for chunk, answers in zip(range(0, N, 50), decoded, strict=True):
            for (_, total, tax), data in zip(prepared[chunk : chunk + 50], answers, strict=True):
                _created(xero, "x", xero.parse_invoice(data, total=total, tax=tax))

    _report(
        "Xero",
        [
            ("checks, VAT and payload", _best(prepare, N), None),
            ("encode bulk bodies", _best(encode, N),
             _best(lambda: [json.dumps(d).encode() for d in plain], N)),
            ("decode answers", _best(lambda: [_wire.loads(b) for b in bodies], N),
             _best(lambda: [json.loads(b) for b in bodies], N)),
            ("results (PostedInvoice, item)", _best(parse, N), None),
        ],
    )  # fmt: skip


def bench_quickbooks(orders: list[Any]) -> None:
    sandbox = QuickBooksSandbox()
    c = sandbox.credentials()
    config = quickbooks.QuickBooksConfig(base_url=c["base_url"], realm_id=c["realm_id"],
                                         tax_codes=QBO_CODES)  # fmt: skip
    adapter = quickbooks.QuickBooks(config, auth=Bearer(c["access_token"]))
    bodies = _answers(sandbox, adapter, orders, "/batch")
    drafts = [adapter._check(o) for o in orders]
    ids = {**adapter._items, "Shipping": "1", "Discount": "1"}
    plan = adapter._plan

    def build() -> list[Any]:  # checks, VAT and the body (the bulk path)
        out = []
        refs: dict[str, Any] = {}
        for o in orders:
            lean = lean_lines(o, plan)
            assert lean is not None
            if hasattr(adapter, "_lean_invoice_text"):
                out.append(adapter._lean_invoice_text(o, lean[0], "1", ids, refs))
            else:  # older versions: a dictionary per body
                out.append(adapter._lean_invoice(o, lean[0], "1", ids, refs))
        return out

    built = [  # the same bodies as dictionaries, for the raw-JSON column
        quickbooks.build_invoice(o, d.lines, config, adapter.codes, tenant="t", customer_id="1",
                                 item_ids=ids)
        for o, d in zip(orders, drafts, strict=True)
    ]  # fmt: skip
    documents = [
        {"BatchItemRequest": [{"bId": str(n), "operation": "create", "Invoice": inv}
                              for n, inv in enumerate(built[i : i + 30])]}
        for i in range(0, N, 30)
    ]  # fmt: skip
    plain = [json.loads(_wire.dumps(d)) for d in documents]
    decoded = [_wire.loads(b)["BatchItemResponse"] for b in bodies]
    written = build()

    def encode() -> list[bytes]:
        if not isinstance(written[0], str):
            return [_wire.dumps_marked(d) for d in documents]
        return [
            quickbooks._batch_content([f'{{"bId":"{n}","operation":"create","Invoice":{t}}}'
                                       for n, t in enumerate(written[i : i + 30])])
            for i in range(0, N, 30)
        ]  # fmt: skip

    def parse() -> None:
        drafts_iter = iter(drafts)
        for answers in decoded:
            for answer in answers:
                draft = next(drafts_iter)
                invoice = quickbooks.parse_invoice(
                    answer["Invoice"], reference="r", total=money(draft.gross_amount, "EUR"),
                    tax=money(draft.vat_amount, "EUR"),
                )  # fmt: skip
                _created(quickbooks, "r", invoice)

    _report(
        "QuickBooks",
        [
            ("checks, VAT and payload", _best(build, N), None),
            ("encode bulk bodies", _best(encode, N),
             _best(lambda: [json.dumps(d).encode() for d in plain], N)),
            ("decode answers", _best(lambda: [_wire.loads(b) for b in bodies], N),
             _best(lambda: [json.loads(b) for b in bodies], N)),
            ("results (PostedInvoice, item)", _best(parse, N), None),
        ],
    )  # fmt: skip


def main() -> None:
    bench_xero(make_orders(N, "c"))
    bench_quickbooks(make_orders(N, "d"))


if __name__ == "__main__":
    main()
