"""Cin7 Core: exact payloads, parsed answers, throttles, sandbox end to end, webhooks."""

from __future__ import annotations

import json
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from dixis_integrations.errors import (
    AuthError,
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
    RateLimited,
    TransientError,
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http import Endpoint
from dixis_integrations.inventory.cin7 import (
    WEBHOOK_HEADER,
    Cin7Config,
    Cin7Core,
    build_adjustment,
    build_purchase,
    build_purchase_order,
    build_webhook,
    classify,
    parse_availability,
    parse_webhook,
)
from dixis_integrations.models.inventory import (
    PurchaseOrder,
    PurchaseOrderLine,
    StockAdjustment,
    StockLevel,
)
from dixis_integrations.sandbox.cin7 import Cin7Sandbox
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.sandbox.serve import serve

from .conftest import Runner

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
BASE = "http://cin7.test"
ORDER = PurchaseOrder(
    reference="PO-OIL-1",
    supplier_id="sup-1",
    lines=(PurchaseOrderLine(sku="OIL-5L", quantity=Decimal(12)),),
    created_at=T0,
)


# -- pure ----------------------------------------------------------------------------------
def test_adjustment_payload_carries_the_new_quantity() -> None:
    assert build_adjustment("p-1", "Main Warehouse", Decimal(7), "o1:OIL", T0) == {
        "EffectiveDate": "2026-11-20T08:00:00Z",
        "Status": "COMPLETED",
        "Reference": "o1:OIL",
        "Lines": [{"ProductID": "p-1", "Quantity": 7, "UnitCost": 0, "Location": "Main Warehouse"}],
    }


def test_purchase_payloads_are_exact() -> None:
    assert build_purchase(ORDER, "Main Warehouse") == {
        "SupplierID": "sup-1",
        "Location": "Main Warehouse",
        "Approach": "INVOICE",
        "Note": "PO-OIL-1",
        "RequiredBy": None,
    }
    assert build_purchase_order("t-1", ORDER, {"OIL-5L": "p-1"}) == {
        "TaskID": "t-1",
        "CombineAdditionalCharges": False,
        "Memo": "PO-OIL-1",
        "Status": "AUTHORISED",
        "Lines": [
            {
                "ProductID": "p-1",
                "SKU": "OIL-5L",
                "Quantity": 12,
                "Price": 0,
                "Tax": 0,
                "TaxRule": "Tax Exempt",
                "Total": 0,
            }
        ],
    }
    assert build_webhook("https://shop/hook", "s3cret")["ExternalHeaders"] == [
        {"Key": WEBHOOK_HEADER, "Value": "s3cret"}
    ]


def test_an_availability_row_keeps_the_quantities_apart() -> None:
    row = {
        "ID": "p",
        "SKU": "OIL-5L",
        "Location": "Main Warehouse",
        "OnHand": 10,
        "Allocated": 3,
        "Available": 7,
        "OnOrder": 12,
    }
    level = parse_availability(row, default_location="Main Warehouse", as_of=T0)
    assert (level.location, level.on_hand, level.committed, level.incoming) == (
        "default",
        Decimal(10),
        Decimal(3),
        Decimal(12),
    )
    assert level.available == Decimal(7)


def _answer(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("GET", BASE + "/product"))


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            503,
            [
                {
                    "ErrorCode": 503,
                    "Exception": "You have reached 60 calls per 60 seconds API limit.",
                }
            ],
            RateLimited,
        ),
        (429, [{"ErrorCode": 429, "Exception": "Too many requests"}], RateLimited),
        (503, [{"ErrorCode": 503, "Exception": "Service Unavailable"}], TransientError),
        (403, [{"ErrorCode": 403, "Exception": "Incorrect credentials!"}], AuthError),
        (404, [{"ErrorCode": 404, "Exception": "Purchase not found"}], NotFound),
        (400, [{"ErrorCode": 400, "Exception": "Purchase order is already authorised"}], Conflict),
        (400, [{"ErrorCode": 400, "Exception": "Lines are required"}], ValidationRejected),
    ],
)
def test_cin7_failures_are_typed(status: int, body: object, error: type[Exception]) -> None:
    found = classify(_answer(status, body), Endpoint(vendor="cin7", base_url=BASE))
    assert isinstance(found, error)
    assert str(body[0]["Exception"]) in str(found)  # type: ignore[index]


# -- sandbox end to end ------------------------------------------------------------------------
@pytest.fixture
def sandbox() -> Cin7Sandbox:
    box = Cin7Sandbox()
    box.bind(BASE)
    box.add_product("OIL-5L", "Olive oil 5 l", stock=10)
    box.add_product("FETA-1", stock={"Athens Market": Decimal(4)})
    return box


def _adapter(box: Cin7Sandbox) -> Cin7Core:
    creds = box.credentials()
    return Cin7Core(
        Cin7Config(
            account_id=creds["account_id"],
            application_key=SecretStr(creds["application_key"]),
            base_url=creds["base_url"],
            webhook_secret=SecretStr(creds["webhook_secret"]),
        )
    )


def test_every_call_carries_the_account_headers(sandbox: Cin7Sandbox, run: Runner) -> None:
    level = run(sandbox.transport(), _adapter(sandbox).stock_level("FETA-1", "Athens Market"))
    assert level.on_hand == Decimal(4)
    for request in sandbox.requests:
        assert request.headers["api-auth-accountid"] == sandbox.account_id
        assert request.headers["api-auth-applicationkey"] == sandbox.application_key


def test_wrong_keys_are_an_auth_error(sandbox: Cin7Sandbox, run: Runner) -> None:
    adapter = Cin7Core(
        Cin7Config(
            account_id=sandbox.account_id,
            application_key=SecretStr("wrong"),
            base_url=BASE + "/ExternalApi/v2",
        )
    )
    with pytest.raises(AuthError):
        run(sandbox.transport(), adapter.check())


def test_pages_of_1000_cover_every_product_and_location(sandbox: Cin7Sandbox, run: Runner) -> None:
    for i in range(600):
        sandbox.add_product(f"S{i}", stock=i)
    adapter = _adapter(sandbox)
    cursor, keys = None, []
    while True:
        page = run(sandbox.transport(), adapter.stock_page(cursor))
        keys.extend((lv.sku, lv.location) for lv in page.levels)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(keys) == len(set(keys)) == 602 * 2


def test_an_adjustment_writes_on_hand_plus_delta_once_per_reference(
    sandbox: Cin7Sandbox, run: Runner
) -> None:
    adapter = _adapter(sandbox)
    adj = StockAdjustment(sku="OIL-5L", delta=Decimal(-3), reason="order", reference="o1:OIL")
    assert run(sandbox.transport(), adapter.adjust(adj)).on_hand == Decimal(7)
    assert run(sandbox.transport(), adapter.adjust(adj)).on_hand == Decimal(7)
    assert len(sandbox.adjustments) == 1


def test_an_adjustment_overtaken_by_another_change_is_reported_as_a_conflict(
    sandbox: Cin7Sandbox, run: Runner
) -> None:
    def racing(request: httpx.Request) -> httpx.Response:
        response = sandbox.handle(request)
        if request.method == "POST" and request.url.path.endswith("/stockadjustment"):
            sandbox.set_stock("OIL-5L", 2)  # someone counts just as our write lands
        return response

    adapter = _adapter(sandbox)
    adj = StockAdjustment(sku="OIL-5L", delta=Decimal(-3), reason="order", reference="o1:OIL")
    with pytest.raises(Conflict) as caught:
        run(httpx.MockTransport(racing), adapter.adjust(adj))
    assert caught.value.vendor_code == "concurrent_change"
    assert "wrote 7, now 2" in str(caught.value)
    # The adjustment is recorded once at Cin7: a retry for the reference writes nothing.
    assert run(sandbox.transport(), adapter.adjust(adj)).on_hand == Decimal(2)
    assert len(sandbox.adjustments) == 1


def test_set_level_refuses_a_level_that_moved(sandbox: Cin7Sandbox, run: Runner) -> None:
    adapter = _adapter(sandbox)
    seen = run(sandbox.transport(), adapter.stock_level("OIL-5L"))
    sandbox.set_stock("OIL-5L", 9)  # someone counts in the meantime
    target = StockLevel(sku="OIL-5L", on_hand=Decimal(20), as_of=T0)
    with pytest.raises(Conflict):
        run(sandbox.transport(), adapter.set_level(target, expected_version=seen.version))
    assert sandbox.adjustments == {}
    fresh = run(sandbox.transport(), adapter.stock_level("OIL-5L"))
    done = run(sandbox.transport(), adapter.set_level(target, expected_version=fresh.version))
    assert done.on_hand == Decimal(20)


def test_a_purchase_order_is_created_once_and_counts_as_on_order(
    sandbox: Cin7Sandbox, run: Runner
) -> None:
    order = ORDER.model_copy(update={"supplier_id": sandbox.add_supplier("Kritsa coop")})
    adapter = _adapter(sandbox)
    first = run(sandbox.transport(), adapter.create_purchase_order(order))
    second = run(sandbox.transport(), adapter.create_purchase_order(order))
    assert first.external_id == second.external_id
    assert len(sandbox.purchases) == 1
    level = run(sandbox.transport(), adapter.stock_level("OIL-5L"))
    assert level.incoming == Decimal(12)


@pytest.mark.parametrize("status", [503, 429])
def test_both_throttle_signals_are_waited_out(status: int, run: Runner) -> None:
    box = Cin7Sandbox(throttle_status=status)  # type: ignore[arg-type]
    box.bind(BASE)
    box.add_product("OIL-5L", stock=1)
    box.faults = FaultPlan(script=deque([Fault.RATE_LIMIT, Fault.RATE_LIMIT]))
    assert run(box.transport(), _adapter(box).stock_level("OIL-5L")).on_hand == Decimal(1)
    assert len(box.requests) == 3


def test_bad_input_is_refused_before_anything_is_sent(sandbox: Cin7Sandbox, run: Runner) -> None:
    adapter = _adapter(sandbox)
    with pytest.raises(InvalidInput):
        run(
            sandbox.transport(),
            adapter.adjust(
                StockAdjustment(sku="OIL-5L", delta=Decimal(0), reason="x", reference="r")
            ),
        )
    with pytest.raises(InvalidInput):
        run(
            sandbox.transport(),
            adapter.set_level(StockLevel(sku="OIL-5L", on_hand=Decimal(-1), as_of=T0)),
        )
    assert sandbox.requests == []


def test_an_unknown_sku_is_not_found(sandbox: Cin7Sandbox, run: Runner) -> None:
    with pytest.raises(NotFound):
        run(sandbox.transport(), _adapter(sandbox).stock_level("NOPE"))


# -- webhooks --------------------------------------------------------------------------------
def test_a_subscription_receives_verified_stock_changes_over_http(
    sandbox: Cin7Sandbox, run: Runner
) -> None:
    adapter = _adapter(sandbox)
    received: list[tuple[dict[str, str], bytes]] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append((dict(request.headers), request.read()))
        return httpx.Response(200)

    with serve(receiver) as hooks:
        run(sandbox.transport(), adapter.subscribe(hooks.base_url + "/hooks/cin7"))
        sandbox.allocate("OIL-5L", 4)
    [(headers, body)] = received
    [update] = adapter.parse_webhook(headers, body)
    assert (update.level.sku, update.level.on_hand, update.level.committed) == (
        "OIL-5L",
        Decimal(10),
        Decimal(4),
    )
    assert adapter.parse_webhook(headers, body)[0].event_id == update.event_id


def test_a_webhook_without_the_secret_or_with_a_bad_body_is_refused() -> None:
    secret = SecretStr("s3cret")
    body = json.dumps([{"SKU": "OIL-5L", "OnHand": 1}]).encode()
    with pytest.raises(WebhookError) as unsigned:
        parse_webhook({}, body, secret)
    assert unsigned.value.code == "bad_signature"
    with pytest.raises(WebhookError) as bad:
        parse_webhook({WEBHOOK_HEADER: "s3cret"}, b'{"SKU": 1}', secret)
    assert bad.value.code == "malformed"


def test_parsing_webhooks_needs_a_configured_secret() -> None:
    adapter = Cin7Core(Cin7Config(account_id="a", application_key=SecretStr("k")))
    with pytest.raises(ConfigurationError):
        adapter.parse_webhook({}, b"[]")


def test_secrets_stay_out_of_reprs() -> None:
    adapter = Cin7Core(Cin7Config(account_id="a", application_key=SecretStr("very-secret-key")))
    assert "very-secret-key" not in repr(adapter) + repr(adapter.config) + repr(adapter.endpoint)


def test_check_reports_a_webhook_cin7_switched_off(run: Runner) -> None:
    failing = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    box = Cin7Sandbox(webhook_client=failing)
    box.bind(BASE)
    box.add_product("OIL-5L", stock=1)
    adapter = _adapter(box)
    run(box.transport(), adapter.subscribe("http://hooks.test/cin7"))
    assert run(box.transport(), adapter.check()).extra == {}
    for i in range(6):
        box.set_stock("OIL-5L", i)
    status = run(box.transport(), adapter.check())
    assert status.extra == {"webhooks_off": "http://hooks.test/cin7"}
