"""Zoho Inventory: exact payloads, parsed answers, OAuth, faults, sandbox end to end."""

from __future__ import annotations

import json
from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from dixis_integrations.auth import MemoryTokenStore, Token, TokenManager
from dixis_integrations.errors import (
    AuthError,
    Conflict,
    InvalidInput,
    NotFound,
    RateLimited,
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http import Endpoint
from dixis_integrations.inventory.zoho import (
    ZohoAuth,
    ZohoConfig,
    ZohoInventory,
    build_adjustment,
    build_purchase_order,
    classify,
    oauth_config,
    parse_item_levels,
    parse_webhook,
)
from dixis_integrations.models.inventory import (
    PurchaseOrder,
    PurchaseOrderLine,
    StockAdjustment,
    StockLevel,
)
from dixis_integrations.sandbox.kit import Fault, FaultPlan
from dixis_integrations.sandbox.zoho import ZohoSandbox

from .conftest import Runner

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
BASE = "http://zoho.test"


# -- configuration -----------------------------------------------------------------------
def test_the_data_centre_picks_the_api_host_including_eu() -> None:
    assert ZohoConfig(organization_id="1").base_url == "https://www.zohoapis.eu/inventory/v1"
    com = ZohoConfig(organization_id="1", data_centre="com")
    assert com.base_url == "https://www.zohoapis.com/inventory/v1"
    config = oauth_config("id", SecretStr("s"), "https://shop/cb", data_centre="eu")
    assert config.token_url == "https://accounts.zoho.eu/oauth/v2/token"


def test_an_empty_organization_id_is_refused() -> None:
    with pytest.raises(ValueError, match="organization_id"):
        ZohoConfig(organization_id=" ")


# -- pure building and parsing -------------------------------------------------------------
def test_adjustment_payload_is_exact() -> None:
    adj = StockAdjustment(sku="FETA-1", delta=Decimal("-2.5"), reason="spoiled", reference="r-9")
    assert build_adjustment(adj, "4600000000101", T0, "4600000000001") == {
        "date": "2026-11-20",
        "reason": "spoiled",
        "adjustment_type": "quantity",
        "reference_number": "r-9",
        "line_items": [
            {"item_id": "4600000000101", "quantity_adjusted": -2.5, "warehouse_id": "4600000000001"}
        ],
    }


def test_purchase_order_payload_is_numbered_with_our_reference() -> None:
    order = PurchaseOrder(
        reference="PO-FETA-1-1",
        supplier_id="4600000000900",
        lines=(PurchaseOrderLine(sku="FETA-1", quantity=Decimal(24)),),
        created_at=T0,
    )
    assert build_purchase_order(order, {"FETA-1": "4600000000101"}, None) == {
        "vendor_id": "4600000000900",
        "purchaseorder_number": "PO-FETA-1-1",
        "reference_number": "PO-FETA-1-1",
        "date": "2026-11-20",
        "line_items": [{"item_id": "4600000000101", "quantity": 24}],
    }


ITEM = {
    "item_id": "4600000000101",
    "sku": "FETA-1",
    "stock_on_hand": 12,
    "available_stock": 9,
    "last_modified_time": "2026-11-20T10:00:00+0200",
    "warehouses": [
        {"warehouse_id": "1", "warehouse_stock_on_hand": 10, "warehouse_available_stock": 8},
        {"warehouse_id": "2", "warehouse_stock_on_hand": 2, "warehouse_available_stock": 1},
    ],
}


def test_an_item_is_read_as_totals_or_per_warehouse() -> None:
    [total] = parse_item_levels(ITEM, per_warehouse=False)
    assert (total.on_hand, total.committed, total.as_of) == (Decimal(12), Decimal(3), T0)
    per = parse_item_levels(ITEM, per_warehouse=True)
    assert [(lv.location, lv.on_hand, lv.committed) for lv in per] == [
        ("1", Decimal(10), Decimal(2)),
        ("2", Decimal(2), Decimal(1)),
    ]


def _answer(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("GET", BASE + "/items")
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"code": 57, "message": "You are not authorized"}, AuthError),
        (429, {"code": 44, "message": "too many"}, RateLimited),
        (400, {"code": 1001, "message": "Purchase Order number already exists."}, Conflict),
        (404, {"code": 1002, "message": "Item does not exist."}, NotFound),
        (400, {"code": 4, "message": "reason is mandatory"}, ValidationRejected),
        (200, {"code": 9, "message": "failed inside a 200"}, ValidationRejected),
    ],
)
def test_zoho_failures_are_typed(status: int, body: object, error: type[Exception]) -> None:
    endpoint = Endpoint(vendor="zoho", base_url=BASE)
    found = classify(_answer(status, body), endpoint)
    assert isinstance(found, error)
    assert classify(_answer(200, {"code": 0, "message": "success"}), endpoint) is None


def test_a_throttle_without_retry_after_waits_for_the_next_minute() -> None:
    endpoint = Endpoint(vendor="zoho", base_url=BASE)
    error = classify(_answer(429, {"code": 44, "message": "x"}), endpoint)
    assert isinstance(error, RateLimited)
    assert error.retry_at is not None
    assert error.retry_at > datetime.now(UTC) + timedelta(seconds=55)


def test_the_daily_cap_answer_waits_for_the_next_day() -> None:
    endpoint = Endpoint(vendor="zoho", base_url=BASE)
    error = classify(_answer(429, {"code": 45, "message": "daily"}), endpoint)
    assert isinstance(error, RateLimited)
    assert error.retry_at is not None
    assert error.retry_at > datetime.now(UTC) + timedelta(hours=23)


@pytest.mark.parametrize(
    ("paid", "daily", "concurrency", "windows"),
    [
        (True, None, 10, {("per_minute", 100, 60.0)}),
        (False, 1000, 5, {("per_minute", 100, 60.0), ("per_day", 1000, 86_400.0)}),
    ],
)
def test_the_adapter_budgets_the_plan_limits(
    paid: bool, daily: int | None, concurrency: int, windows: set[tuple[str, int, float]]
) -> None:
    config = ZohoConfig(organization_id="1", paid_plan=paid, daily_limit=daily)
    limits = ZohoInventory(config).endpoint.limits
    assert limits.concurrency == concurrency
    assert {(w.name, w.limit, w.seconds) for w in limits.windows} == windows


# -- sandbox end to end --------------------------------------------------------------------
@pytest.fixture
def sandbox() -> ZohoSandbox:
    box = ZohoSandbox()
    box.bind(BASE)
    box.add_item("FETA-1", "Feta PDO 1 kg", stock=20, reorder_level=5)
    box.add_item("HONEY-2", stock={box.primary_warehouse: Decimal(3)})
    return box


def _adapter(box: ZohoSandbox, **config: object) -> ZohoInventory:
    creds = box.credentials()
    issued = box.oauth.issue_token()
    store = MemoryTokenStore()
    store.save(
        "zoho",
        "default",
        Token(
            access_token=SecretStr(issued["access_token"]),
            refresh_token=SecretStr(issued["refresh_token"]),
            expires_at=datetime.now(UTC) + timedelta(seconds=issued["expires_in"]),
        ),
    )
    oauth = oauth_config(
        creds["client_id"],
        SecretStr(creds["client_secret"]),
        "http://127.0.0.1/callback",
        accounts_base=BASE,
    )
    manager = TokenManager(
        oauth,
        "default",
        store,
        client_factory=lambda: httpx.Client(transport=box.transport()),
        async_client_factory=lambda: httpx.AsyncClient(transport=box.transport()),
    )
    cfg = ZohoConfig(
        organization_id=creds["organization_id"],
        base_url=creds["base_url"],
        webhook_secret=SecretStr(creds["webhook_secret"]),
        **config,
    )  # type: ignore[arg-type]
    return ZohoInventory(cfg, auth=ZohoAuth(manager))


def _runs(box: ZohoSandbox, run: Runner, op: object) -> object:
    return run(box.transport(), op)  # type: ignore[arg-type]


def test_every_call_carries_the_organization_and_the_zoho_token(
    sandbox: ZohoSandbox, run: Runner
) -> None:
    level = _runs(sandbox, run, _adapter(sandbox).stock_level("FETA-1"))
    assert isinstance(level, StockLevel)
    assert level.on_hand == Decimal(20)
    for request in sandbox.requests:
        assert request.url.params["organization_id"] == sandbox.organization_id
        assert request.headers["authorization"].startswith("Zoho-oauthtoken ")


def test_pages_of_200_cover_every_item(sandbox: ZohoSandbox, run: Runner) -> None:
    for i in range(430):
        sandbox.add_item(f"SKU-{i}", stock=i)
    adapter = _adapter(sandbox)
    cursor, skus = None, []
    while True:
        page = _runs(sandbox, run, adapter.stock_page(cursor))
        skus.extend(lv.sku for lv in page.levels)  # type: ignore[attr-defined]
        cursor = page.next_cursor  # type: ignore[attr-defined]
        if cursor is None:
            break
    assert len(skus) == 432
    assert len(set(skus)) == 432
    assert [r.url.params["per_page"] for r in sandbox.requests] == ["200"] * 3


def test_per_warehouse_levels_come_from_item_details(sandbox: ZohoSandbox, run: Runner) -> None:
    adapter = _adapter(sandbox, per_warehouse=True)
    page = _runs(sandbox, run, adapter.stock_page())
    locations = {(lv.sku, lv.location): lv.on_hand for lv in page.levels}  # type: ignore[attr-defined]
    assert locations[("FETA-1", sandbox.primary_warehouse)] == Decimal(20)
    assert len(locations) == 4


def test_an_adjustment_is_posted_once_per_reference(sandbox: ZohoSandbox, run: Runner) -> None:
    adapter = _adapter(sandbox)
    adj = StockAdjustment(sku="FETA-1", delta=Decimal(-4), reason="order 7", reference="o7:FETA-1")
    first = _runs(sandbox, run, adapter.adjust(adj))
    again = _runs(sandbox, run, adapter.adjust(adj))
    assert first.on_hand == again.on_hand == Decimal(16)  # type: ignore[attr-defined]
    assert len(sandbox.adjustments) == 1


def test_set_level_detects_a_stale_version_and_writes_nothing(
    sandbox: ZohoSandbox, run: Runner
) -> None:
    adapter = _adapter(sandbox)
    level = _runs(sandbox, run, adapter.stock_level("FETA-1"))
    target = StockLevel(sku="FETA-1", on_hand=Decimal(7), as_of=T0)
    with pytest.raises(Conflict):
        _runs(sandbox, run, adapter.set_level(target, expected_version="2000-01-01T00:00:00+0200"))
    assert sandbox.adjustments == {}
    done = _runs(sandbox, run, adapter.set_level(target, expected_version=level.version))  # type: ignore[attr-defined]
    assert done.on_hand == Decimal(7)  # type: ignore[attr-defined]


def test_a_purchase_order_is_created_once_even_when_asked_twice(
    sandbox: ZohoSandbox, run: Runner
) -> None:
    vendor = sandbox.add_vendor("Kritsa coop")
    order = PurchaseOrder(
        reference="PO-FETA-1-1",
        supplier_id=vendor,
        lines=(PurchaseOrderLine(sku="FETA-1", quantity=Decimal(24)),),
        created_at=T0,
    )
    adapter = _adapter(sandbox)
    first = _runs(sandbox, run, adapter.create_purchase_order(order))
    second = _runs(sandbox, run, adapter.create_purchase_order(order))
    assert first.external_id == second.external_id  # type: ignore[attr-defined]
    assert len(sandbox.purchase_orders) == 1
    [po] = sandbox.purchase_orders.values()
    assert po["purchaseorder_number"] == "PO-FETA-1-1"


def test_throttles_and_server_errors_are_retried(sandbox: ZohoSandbox, run: Runner) -> None:
    sandbox.faults = FaultPlan(script=deque([Fault.RATE_LIMIT, Fault.SERVER_ERROR]))
    level = _runs(sandbox, run, _adapter(sandbox).stock_level("HONEY-2"))
    assert level.on_hand == Decimal(3)  # type: ignore[attr-defined]
    assert len(sandbox.requests) == 3


def test_an_expired_token_is_refreshed_once(sandbox: ZohoSandbox, run: Runner) -> None:
    adapter = _adapter(sandbox)
    sandbox.oauth.expire_all()
    level = _runs(sandbox, run, adapter.stock_level("FETA-1"))
    assert level.on_hand == Decimal(20)  # type: ignore[attr-defined]
    assert sandbox.oauth.refresh_count == 1


def test_an_unknown_sku_is_not_found(sandbox: ZohoSandbox, run: Runner) -> None:
    with pytest.raises(NotFound):
        _runs(sandbox, run, _adapter(sandbox).stock_level("NOPE"))


def test_a_zero_adjustment_is_refused_before_anything_is_sent(
    sandbox: ZohoSandbox, run: Runner
) -> None:
    adj = StockAdjustment(sku="FETA-1", delta=Decimal(0), reason="x", reference="r")
    with pytest.raises(InvalidInput) as err:
        _runs(sandbox, run, _adapter(sandbox).adjust(adj))
    assert err.value.errors[0].loc == ("delta",)
    assert sandbox.requests == []


# -- webhooks ------------------------------------------------------------------------------
def test_a_signed_item_webhook_is_verified_and_read(sandbox: ZohoSandbox) -> None:
    item_id = next(iter(sandbox.items))
    body, headers = sandbox.signed_webhook(item_id)
    updates = _adapter(sandbox).parse_webhook(headers, body)
    assert [(u.level.sku, u.level.on_hand) for u in updates] == [("FETA-1", Decimal(20))]
    assert updates[0].event_id.startswith("zoho:")


def test_tampered_unsigned_and_old_webhooks_are_refused(sandbox: ZohoSandbox) -> None:
    secret = SecretStr(sandbox.webhook_secret)
    body, headers = sandbox.signed_webhook(next(iter(sandbox.items)))
    forged = json.loads(body)
    forged["item"]["stock_on_hand"] = 999
    with pytest.raises(WebhookError) as bad:
        parse_webhook(headers, json.dumps(forged).encode(), secret)
    assert bad.value.code == "bad_signature"
    with pytest.raises(WebhookError) as unsigned:
        parse_webhook({}, body, secret)
    assert unsigned.value.code == "malformed"
    with pytest.raises(WebhookError) as old:
        parse_webhook(headers, body, secret, now=datetime.now(UTC) + timedelta(hours=1))
    assert old.value.code == "too_old"


def test_a_replayed_webhook_changes_nothing_the_second_time(sandbox: ZohoSandbox) -> None:
    from dixis_integrations.inventory.ledger import Outcome, StockLedger

    adapter = _adapter(sandbox)
    body, headers = sandbox.signed_webhook(next(iter(sandbox.items)))
    ledger = StockLedger()
    outcomes = [
        ledger.observe(u.level, event_id=u.event_id).outcome
        for _ in range(2)
        for u in adapter.parse_webhook(headers, body)
    ]
    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE]


def test_a_cut_off_answer_is_retried(sandbox: ZohoSandbox, run: Runner) -> None:
    sandbox.faults = FaultPlan(script=deque([Fault.MALFORMED, Fault.RESET]))
    level = _runs(sandbox, run, _adapter(sandbox).stock_level("FETA-1"))
    assert level.on_hand == Decimal(20)  # type: ignore[attr-defined]
    assert len(sandbox.requests) == 3
