"""Contract tests against the vendors' own specifications (``shared/specs``).

Every request body the Xero adapter sends, and every response the Xero sandbox returns,
validates against ``xero_accounting.yaml`` (and uses only properties it defines). Every
QuickBooks body the adapter sends, and every entity and ``Fault`` the sandbox returns,
uses only element and attribute names the Intuit XSDs define for that entity.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from tests.accounting._specs import qbo_unknown_names, xero_spec
from tests.accounting.conftest import GREEK_XERO_CODES, StaticBearer
from tests.accounting.test_quickbooks import QBO_CODES
from tests.models.factories import make_customer, make_line, make_order

from dixis_integrations.accounting.quickbooks import QuickBooks, QuickBooksConfig
from dixis_integrations.accounting.xero import Xero, XeroConfig
from dixis_integrations.http import Driver
from dixis_integrations.models import Money, Payment, PaymentMethod, Product, Refund, VatCategory
from dixis_integrations.sandbox.quickbooks import QuickBooksSandbox
from dixis_integrations.sandbox.xero import XeroSandbox

Exchange = tuple[httpx.Request, httpx.Response]
PAID_AT = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def _recording(
    handler: Callable[[httpx.Request], httpx.Response], log: list[Exchange]
) -> httpx.MockTransport:
    def record(request: httpx.Request) -> httpx.Response:
        response = handler(request)
        response.read()
        log.append((request, response))
        return response

    return httpx.MockTransport(record)


def _scenario_orders() -> list[Any]:
    rich = make_order(
        id="ord_rich",
        number="D-1",
        lines=[
            make_line(),
            make_line(
                sku="HONEY",
                name="Μέλι",
                quantity=Decimal("1.250"),
                unit_price=Money.of("9.99"),
                vat_category=VatCategory.SUPER_REDUCED,
                discount=Money.of("0.50"),
            ),
        ],
        shipping_fee=Money.of("3.50"),
        discount=Money.of("1.00"),
        customer=make_customer(phone="+306912345678", vat_number="090000045"),
    )
    return [rich, *[make_order(id=f"bulk-{n}") for n in range(3)]]


# -- Xero ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xero_traffic() -> list[Exchange]:
    sandbox = XeroSandbox()
    creds = sandbox.credentials()
    log: list[Exchange] = []
    xero = Xero(
        XeroConfig(
            base_url=creds["base_url"],
            connections_url=creds["connections_url"],
            tax_codes=GREEK_XERO_CODES,
            fee_account_code="404",
        ),
        auth=StaticBearer(creds["access_token"]),
    )
    orders = _scenario_orders()
    with Driver(
        httpx.Client(transport=_recording(sandbox.handle, log)), sleep=lambda s: None
    ) as run:
        run.run(xero.upsert_customer(make_customer(id="cus_9", first_name="Νίκος")))
        run.run(
            xero.upsert_products(
                [
                    Product(
                        sku="BREAD",
                        name="Ψωμί",
                        vat_category=VatCategory.SUPER_REDUCED,
                        price=Money.of("2.00"),
                    )
                ]
            )
        )
        run.run(xero.post_invoice(orders[0]))
        run.run(xero.post_invoices(orders))
        run.run(
            xero.record_payment(
                Payment(
                    id="pay_1",
                    order_id="ord_rich",
                    amount=Money.of("10.00"),
                    method=PaymentMethod.CARD,
                    paid_at=PAID_AT,
                    fee=Money.of("0.40"),
                )
            )
        )
        run.run(
            xero.record_refund(
                Refund(
                    id="ref_1", order_id="ord_rich", amount=Money.of("20.00"), created_at=PAID_AT
                )
            )
        )
        run.run(xero.void_invoice("bulk-1"))
        run.run(xero.find_invoice("bulk-2"))
        run.run(xero.changes_since(None))
        # One summarised validation failure, to check the Error schema too.
        client = httpx.Client(transport=_recording(sandbox.handle, log))
        client.put(
            creds["base_url"].replace(sandbox.base_url, "http://sandbox.invalid") + "/Invoices",
            headers={
                "Authorization": f"Bearer {creds['access_token']}",
                "xero-tenant-id": creds["tenant_id"],
            },
            json={"Invoices": [{"Type": "ACCREC", "LineItems": []}]},
        )
    return [(q, r) for q, r in log if "/api.xro/2.0/" in q.url.path]


def _operation(method: str, path: str) -> dict[str, Any]:
    spec = xero_spec()
    relative = path.split("/api.xro/2.0", 1)[1]
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$"
        if re.match(pattern, relative) and method.lower() in item:
            return dict(item[method.lower()])
    raise AssertionError(f"{method} {relative} is not in the Xero spec")


def _schema_of(content: dict[str, Any] | None) -> dict[str, Any] | None:
    if not content:
        return None
    if "$ref" in content:  # a shared response: '#/components/responses/400Error'
        content = xero_spec()["components"]["responses"][content["$ref"].rsplit("/", 1)[-1]]
        assert content is not None
    media = content.get("content", {}).get("application/json")
    return media.get("schema") if media else None


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = xero_spec()["components"]["schemas"][name]
    return schema


def _undefined(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    schema = _resolve(schema)
    if isinstance(value, list):
        items = schema.get("items") or {}
        return [p for n, v in enumerate(value) for p in _undefined(items, v, f"{path}[{n}]")]
    if not isinstance(value, dict) or "properties" not in schema:
        return []
    out = []
    for key, child in value.items():
        where = f"{path}.{key}" if path else key
        if key not in schema["properties"]:
            out.append(where)
        else:
            out += _undefined(schema["properties"][key], child, where)
    return out


def _validate(schema: dict[str, Any], body: Any) -> list[str]:
    from jsonschema import Draft7Validator

    root = {**schema, "components": xero_spec()["components"]}
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft7Validator(root).iter_errors(body)
    ]


def test_every_xero_request_body_matches_the_spec(xero_traffic: list[Exchange]) -> None:
    checked = 0
    for request, _ in xero_traffic:
        if not request.content:
            continue
        schema = _schema_of(_operation(request.method, request.url.path).get("requestBody"))
        assert schema is not None, f"{request.method} {request.url.path} takes no body"
        body = json.loads(request.content)
        assert _validate(schema, body) == [], request.url.path
        assert _undefined(schema, body) == [], request.url.path
        checked += 1
    assert checked >= 8


def test_every_xero_sandbox_response_matches_the_spec(xero_traffic: list[Exchange]) -> None:
    statuses = set()
    for request, response in xero_traffic:
        operation = _operation(request.method, request.url.path)
        declared = operation["responses"].get(str(response.status_code))
        assert declared is not None, f"{response.status_code} not declared for {request.url}"
        schema = _schema_of(declared)
        if schema is None or not response.content:
            continue
        body = json.loads(response.content)
        assert _validate(schema, body) == [], request.url.path
        if response.status_code == 200:
            # A 400's Elements echo the whole refused entity, as the real API does; the
            # spec's Element lists only the ids, so only the schema check applies there.
            assert _undefined(schema, body) == [], request.url.path
        statuses.add(response.status_code)
    assert statuses == {200, 400}


# -- QuickBooks ---------------------------------------------------------------------------
_QBO_ENTITY = {
    "invoice": "Invoice",
    "customer": "Customer",
    "item": "Item",
    "payment": "Payment",
    "creditmemo": "CreditMemo",
    "refundreceipt": "RefundReceipt",
    "purchase": "Purchase",
}


@pytest.fixture(scope="module")
def qbo_traffic() -> list[Exchange]:
    sandbox = QuickBooksSandbox()
    creds = sandbox.credentials()
    log: list[Exchange] = []
    qbo = QuickBooks(
        QuickBooksConfig(
            base_url=creds["base_url"],
            realm_id=creds["realm_id"],
            tax_codes=QBO_CODES,
            fee_account_id="5",
        ),
        auth=StaticBearer(creds["access_token"]),
    )
    orders = _scenario_orders()
    with Driver(
        httpx.Client(transport=_recording(sandbox.handle, log)), sleep=lambda s: None
    ) as run:
        run.run(qbo.upsert_customer(make_customer(phone="+306912345678")))
        run.run(qbo.upsert_customer(make_customer(id="cus_2")))  # 6240, then suffixed
        run.run(qbo.post_invoice(orders[0]))
        run.run(qbo.post_invoices(orders))
        run.run(
            qbo.record_payment(
                Payment(
                    id="pay_1",
                    order_id="ord_rich",
                    amount=Money.of("10.00"),
                    method=PaymentMethod.CARD,
                    paid_at=PAID_AT,
                    fee=Money.of("0.40"),
                )
            )
        )
        run.run(
            qbo.record_refund(
                Refund(id="ref_1", order_id="ord_rich", amount=Money.of("5.00"), created_at=PAID_AT)
            )
        )
        # A paid invoice refunded: money back out (RefundReceipt).
        paid = orders[3]
        run.run(
            qbo.record_payment(
                Payment(
                    id="pay_2",
                    order_id=paid.id,
                    amount=paid.total,
                    method=PaymentMethod.CARD,
                    paid_at=PAID_AT,
                )
            )
        )
        run.run(
            qbo.record_refund(
                Refund(id="ref_2", order_id=paid.id, amount=Money.of("1.00"), created_at=PAID_AT)
            )
        )
        run.run(qbo.void_invoice("bulk-1"))
        run.run(qbo.sparse_update("customer", "101", {"Notes": "x"}))
    return log


def _entity_bodies(traffic: list[Exchange]) -> Iterator[tuple[str, Any]]:
    for request, _response in traffic:
        last = request.url.path.rsplit("/", 1)[-1]
        if request.method == "POST" and last in _QBO_ENTITY:
            yield _QBO_ENTITY[last], json.loads(request.content)
        if request.method == "POST" and last == "batch":
            for item in json.loads(request.content)["BatchItemRequest"]:
                yield "BatchItemRequest", item


def test_every_qbo_request_uses_only_xsd_names(qbo_traffic: list[Exchange]) -> None:
    seen = set()
    for type_name, body in _entity_bodies(qbo_traffic):
        assert qbo_unknown_names(type_name, body) == [], type_name
        seen.add(type_name)
        if type_name == "BatchItemRequest":
            seen.update(k for k in body if k in _QBO_ENTITY.values())
    assert {
        "Invoice",
        "Customer",
        "Item",
        "Payment",
        "CreditMemo",
        "RefundReceipt",
        "BatchItemRequest",
    } <= seen


def test_every_qbo_sandbox_answer_uses_only_xsd_names(qbo_traffic: list[Exchange]) -> None:
    faults = 0
    for _, response in qbo_traffic:
        if "json" not in response.headers.get("content-type", ""):
            continue
        body = json.loads(response.content)
        for key, value in body.items():
            if key == "Fault":
                faults += 1
                assert qbo_unknown_names("Fault", value) == []
            elif key in _QBO_ENTITY.values():
                assert qbo_unknown_names(key, value) == [], key
            elif key == "BatchItemResponse":
                assert qbo_unknown_names("IntuitResponse", {"BatchItemResponse": value}) == []
            elif key == "QueryResponse":
                assert qbo_unknown_names("QueryResponse", value) == []
    assert faults >= 1  # the 6240 answer


def test_the_checks_flag_names_the_specs_do_not_define() -> None:
    assert qbo_unknown_names(
        "Invoice", {"Line": [{"SalesItemLineDetail": {"Bogus": 1}}], "Nope": 2}
    ) == ["Line[0].SalesItemLineDetail.Bogus", "Nope"]
    assert qbo_unknown_names("BatchItemRequest", {"bId": "1", "Invoice": {"Foo": 1}}) == [
        "Invoice.Foo"
    ]
    invoices = {"$ref": "#/components/schemas/Invoices"}
    assert _undefined(invoices, {"Invoices": [{"LineItems": [{"Price": 1}]}]}) == [
        "Invoices[0].LineItems[0].Price"
    ]
    assert _validate(invoices, {"Invoices": [{"Total": "x"}]}) != []
