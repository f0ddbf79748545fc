"""A Zoho Inventory emulator: items with stock per warehouse, inventory adjustments, purchase
orders, vendors, OAuth2 (``Zoho-oauthtoken``), ``organization_id`` on every call, pages of up
to 200, 100 requests per minute per organisation, and signed item webhooks.

Written from Zoho Inventory's API v1 reference (``https://www.zoho.com/inventory/api/v1/``):
answers carry ``{"code": 0, "message": "success", ...}``; failures carry a non-zero ``code``.
Webhooks are signed ``X-Zoho-Webhook-Signature: t=<ms>,v=<hex HMAC-SHA256 of "t.body">``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import httpx

from dixis_integrations.sandbox.kit import (
    Emulator,
    Fault,
    FaultPlan,
    FixedWindow,
    json_response,
    read_json,
    route,
    sign_hmac_sha256,
)
from dixis_integrations.sandbox.oauth import OAuthServer, SandboxClient

__all__ = ["ZohoSandbox"]

_API: Final = "/inventory/v1"
_MAX_PAGE: Final = 200
_TZ_OFFSET: Final = "+0200"


def _fail(status: int, code: int, message: str) -> httpx.Response:
    return json_response(status, {"code": code, "message": message})


def _ok(message: str = "success", **body: Any) -> httpx.Response:
    return json_response(200, {"code": 0, "message": message, **body})


def _stamp(moment: datetime) -> str:
    # Zoho writes local times with an offset and no colon: 2026-11-20T10:00:00+0200
    local = moment.astimezone(UTC) + timedelta(hours=2)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + _TZ_OFFSET


def _number(value: Decimal) -> Any:
    return int(value) if value == value.to_integral_value() else float(value)


class ZohoSandbox(Emulator):
    """One Zoho Inventory organisation in memory.

    Args:
        data_centre: the domain suffix the emulator pretends to be (``"eu"``, ``"com"``...).
        warehouses: warehouse names (the first is the primary).
        concurrency_limit: calls in progress at once per organisation (5 on Free, 10 on
            paid plans); one more is answered 429.
        daily_limit: calls per day per organisation (the plan's cap; the published
            figures disagree, so it is given, and ``None`` enforces none); over it, 429.
        latency: how long an admitted call stays in progress (vendor seconds, scaled), so
            that calls from several threads in-process overlap as on the network.
        faults, time_scale, webhook_client: as for every emulator.
    """

    name = "zoho"

    def __init__(
        self,
        *,
        data_centre: str = "eu",
        warehouses: Iterable[str] = ("Athens", "Thessaloniki"),
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
        concurrency_limit: int = 10,
        daily_limit: int | None = None,
        latency: float = 0.0,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.data_centre = data_centre
        self.concurrency_limit = concurrency_limit
        self.concurrency_rejected = 0
        self.latency = latency
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self.organization_id = "200" + str(secrets.randbelow(10**8)).zfill(8)
        self.client_id = "1000." + secrets.token_hex(12).upper()
        self.client_secret = secrets.token_hex(20)
        self.webhook_secret = secrets.token_hex(16)
        self.oauth = OAuthServer(
            clients=[SandboxClient(client_id=self.client_id, client_secret=self.client_secret)],
            access_token_lifetime=3600.0,
            refresh_token_lifetime=None,  # Zoho refresh tokens do not expire
            rotate_refresh_tokens=False,
            token_path="/oauth/v2/token",  # noqa: S106 - a path
            authorize_path="/oauth/v2/auth",
            userinfo_path="/oauth/user/info",
            time_scale=time_scale,
        )
        self.mount("/oauth/", self.oauth)
        self.per_minute = FixedWindow(100, 60.0, self.clock, "organization")
        self.per_day = (
            None if daily_limit is None else FixedWindow(daily_limit, 86_400.0, self.clock, "day")
        )
        self._seq = 4_600_000_000_000
        self.warehouses: dict[str, str] = {}
        for name in warehouses:
            self.warehouses[self._id()] = name
        self.items: dict[str, dict[str, Any]] = {}
        self._by_sku: dict[str, str] = {}
        self._order: list[str] = []
        self.stock: dict[str, dict[str, Decimal]] = {}  # item id -> warehouse id -> on hand
        self.committed: dict[str, dict[str, Decimal]] = {}
        self.vendors: dict[str, dict[str, Any]] = {}
        self.purchase_orders: dict[str, dict[str, Any]] = {}
        self.adjustments: dict[str, dict[str, Any]] = {}
        self.webhook_url: str | None = None
        self._grant: dict[str, Any] | None = None

    def _id(self) -> str:
        self._seq += 1
        return str(self._seq)

    def credentials(self) -> dict[str, str]:
        """OAuth client (and a grant, as if a person had connected), organisation, webhook
        secret and where to call.
        """
        if self._grant is None:
            self._grant = self.oauth.issue_token()
        return {
            "access_token": str(self._grant["access_token"]),
            "refresh_token": str(self._grant["refresh_token"]),
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "organization_id": self.organization_id,
            "webhook_secret": self.webhook_secret,
            "base_url": self.base_url + _API,
            "token_url": self.base_url + "/oauth/v2/token",
        }

    # -- seeding (what a person would do in the web app) ----------------------------------
    @property
    def primary_warehouse(self) -> str:
        """The id of the first warehouse."""
        return next(iter(self.warehouses))

    def add_item(
        self,
        sku: str,
        name: str | None = None,
        *,
        stock: dict[str, Decimal] | Decimal | int = 0,
        reorder_level: Decimal | int = 0,
        rate: Decimal | int = 1,
    ) -> str:
        """Create an item with opening stock (per warehouse id, or all in the primary)."""
        with self.lock:
            item_id = self._id()
            self.items[item_id] = {
                "item_id": item_id,
                "name": name or sku,
                "sku": sku,
                "status": "active",
                "unit": "pcs",
                "item_type": "inventory",
                "product_type": "goods",
                "rate": _number(Decimal(rate)),
                "reorder_level": _number(Decimal(reorder_level)),
                "last_modified_time": _stamp(datetime.now(UTC)),
            }
            self._by_sku[sku] = item_id
            self._order.append(item_id)
            per = stock if isinstance(stock, dict) else {self.primary_warehouse: Decimal(stock)}
            self.stock[item_id] = {w: Decimal(per.get(w, 0)) for w in self.warehouses}
            self.committed[item_id] = {w: Decimal(0) for w in self.warehouses}
            return item_id

    def seed_stock(self, levels: Mapping[str, Decimal | int]) -> None:
        """Create the SKUs that do not exist yet and set every on-hand level (primary
        warehouse): a demo's opening stock. Sends no webhooks.
        """
        with self.lock:
            for sku, on_hand in levels.items():
                item_id = self._by_sku.get(sku) or self.add_item(sku)
                self.stock[item_id][self.primary_warehouse] = Decimal(on_hand)

    def add_vendor(self, name: str, email: str | None = None) -> str:
        """Create a vendor contact; returns its ``contact_id``."""
        with self.lock:
            vendor_id = self._id()
            self.vendors[vendor_id] = {
                "contact_id": vendor_id,
                "contact_name": name,
                "contact_type": "vendor",
                "email": email or "",
            }
            return vendor_id

    def set_stock(self, sku: str, on_hand: Decimal | int, warehouse_id: str | None = None) -> None:
        """Change stock as the web app would (a count), and send the item webhook."""
        with self.lock:
            item_id = self._by_sku[sku]
            self.stock[item_id][warehouse_id or self.primary_warehouse] = Decimal(on_hand)
            self._touch(item_id)
        self._notify(item_id)

    def subscribe(self, url: str) -> None:
        """Point the item webhook (Settings > Automation > Webhooks) at ``url``."""
        self.webhook_url = url

    # -- hooks --------------------------------------------------------------------------
    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "Zoho-oauthtoken" or not token:
            return _fail(401, 57, "You are not authorized to perform this operation")
        probe = httpx.Request("GET", request.url, headers={"Authorization": f"Bearer {token}"})
        if self.oauth.validate_bearer(probe) is None:
            return _fail(401, 57, "You are not authorized to perform this operation")
        if request.url.params.get("organization_id") != self.organization_id:
            return _fail(400, 6041, "Invalid value passed for organization_id")
        return None

    def limit(self, request: httpx.Request) -> httpx.Response | None:
        if self.per_day is not None:
            ok, _, _ = self.per_day.hit(self.organization_id)
            if not ok:
                return _fail(
                    429, 45, "You have reached the maximum number of API calls for the day."
                )
        ok, _, _ = self.per_minute.hit(self.organization_id)
        if ok:
            return None
        return _fail(429, 44, "You have made too many requests. Please try again after some time.")

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request; API calls beyond ``concurrency_limit`` in progress get 429."""
        counted = request.url.path.startswith(_API)
        with self._inflight_lock:
            self._inflight += counted
            over = counted and self._inflight > self.concurrency_limit
            if over:
                self.concurrency_rejected += 1
        try:
            if over:
                return _fail(429, 44, "Too many concurrent requests. Please try again later.")
            if counted and self.latency > 0:
                time.sleep(self.clock.window(self.latency))
            return super().handle(request)
        finally:
            with self._inflight_lock:
                self._inflight -= counted

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            return _fail(429, 44, "You have made too many requests. Please try again later.")
        if fault is Fault.SERVER_ERROR:
            return _fail(500, 9999, "Internal error")
        if fault is Fault.EXPIRED_TOKEN:
            return _fail(401, 57, "You are not authorized to perform this operation")
        return super().fault_response(fault, request)

    # -- items --------------------------------------------------------------------------
    def _touch(self, item_id: str) -> None:
        self.items[item_id]["last_modified_time"] = _stamp(datetime.now(UTC))

    def _totals(self, item_id: str) -> dict[str, Any]:
        on_hand = sum(self.stock[item_id].values(), Decimal(0))
        committed = sum(self.committed[item_id].values(), Decimal(0))
        return {
            "stock_on_hand": _number(on_hand),
            "available_stock": _number(on_hand - committed),
            "actual_available_stock": _number(on_hand - committed),
        }

    def _item_out(self, item_id: str, *, detail: bool) -> dict[str, Any]:
        out = {**self.items[item_id], **self._totals(item_id)}
        if detail:
            out["warehouses"] = [
                {
                    "warehouse_id": w,
                    "warehouse_name": name,
                    "is_primary": w == self.primary_warehouse,
                    "warehouse_stock_on_hand": _number(self.stock[item_id][w]),
                    "warehouse_available_stock": _number(
                        self.stock[item_id][w] - self.committed[item_id][w]
                    ),
                    "warehouse_actual_available_stock": _number(
                        self.stock[item_id][w] - self.committed[item_id][w]
                    ),
                }
                for w, name in self.warehouses.items()
            ]
        return out

    @staticmethod
    def _page_params(request: httpx.Request) -> tuple[int, int] | httpx.Response:
        try:
            page = int(request.url.params.get("page", "1"))
            per_page = int(request.url.params.get("per_page", str(_MAX_PAGE)))
        except ValueError:
            return _fail(400, 2, "Invalid value passed for page")
        if page < 1 or not 1 <= per_page <= _MAX_PAGE:
            return _fail(400, 2, "Invalid value passed for per_page")
        return page, per_page

    @route("GET", _API + r"/items")
    def list_items(self, request: httpx.Request) -> httpx.Response:
        paging = self._page_params(request)
        if isinstance(paging, httpx.Response):
            return paging
        page, per_page = paging
        sku = request.url.params.get("sku")
        if sku is not None:
            ids = [self._by_sku[sku]] if sku in self._by_sku else []
        else:
            ids = self._order  # creation order, as Zoho sorts by default
        start = (page - 1) * per_page
        chunk = ids[start : start + per_page]
        return _ok(
            items=[self._item_out(i, detail=False) for i in chunk],
            page_context={
                "page": page,
                "per_page": per_page,
                "has_more_page": start + per_page < len(ids),
                "sort_column": "created_time",
                "sort_order": "A",
            },
        )

    @route("GET", _API + r"/items/(?P<item_id>\d+)")
    def get_item(self, request: httpx.Request, item_id: str) -> httpx.Response:
        if item_id not in self.items:
            return _fail(404, 1002, "Item does not exist.")
        return _ok(item=self._item_out(item_id, detail=True))

    @route("GET", _API + r"/organizations")
    def organizations(self, request: httpx.Request) -> httpx.Response:
        return _ok(
            organizations=[
                {
                    "organization_id": self.organization_id,
                    "name": "Dixis Fresh",
                    "currency_code": "EUR",
                    "time_zone": "Europe/Athens",
                }
            ]
        )

    # -- adjustments --------------------------------------------------------------------
    @route("GET", _API + r"/inventoryadjustments")
    def list_adjustments(self, request: httpx.Request) -> httpx.Response:
        ref = request.url.params.get("reference_number")
        found = [
            a for a in self.adjustments.values() if ref is None or a["reference_number"] == ref
        ]
        return _ok(inventory_adjustments=found, page_context={"page": 1, "has_more_page": False})

    @route("POST", _API + r"/inventoryadjustments")
    def create_adjustment(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if not isinstance(body, dict):
            return _fail(400, 2, "Invalid JSON body")
        for key in ("date", "reason", "adjustment_type", "line_items"):
            if not body.get(key):
                return _fail(400, 4, f"{key} is mandatory")
        if body["adjustment_type"] != "quantity":
            return _fail(400, 2, "Invalid value passed for adjustment_type")
        changes: list[tuple[str, str, Decimal]] = []
        for line in body["line_items"]:
            item_id = str(line.get("item_id", ""))
            warehouse_id = str(line.get("warehouse_id") or self.primary_warehouse)
            if item_id not in self.items:
                return _fail(400, 1002, "Item does not exist.")
            if warehouse_id not in self.warehouses:
                return _fail(400, 1002, "Warehouse does not exist.")
            try:
                delta = Decimal(str(line["quantity_adjusted"]))
            except (KeyError, ArithmeticError):
                return _fail(400, 2, "Invalid value passed for quantity_adjusted")
            if self.stock[item_id][warehouse_id] + delta < 0:
                return _fail(400, 9205, "Stock on hand cannot go below zero.")
            changes.append((item_id, warehouse_id, delta))
        for item_id, warehouse_id, delta in changes:
            self.stock[item_id][warehouse_id] += delta
            self._touch(item_id)
        adjustment_id = self._id()
        self.adjustments[adjustment_id] = {
            "inventory_adjustment_id": adjustment_id,
            "date": body["date"],
            "reason": body["reason"],
            "reference_number": body.get("reference_number", ""),
            "adjustment_type": "quantity",
            "line_items": body["line_items"],
        }
        for item_id, _, _ in changes:
            self._notify(item_id)
        return json_response(
            201,
            {
                "code": 0,
                "message": "Inventory Adjustment has been added",
                "inventory_adjustment": self.adjustments[adjustment_id],
            },
        )

    # -- purchase orders ----------------------------------------------------------------
    @route("GET", _API + r"/purchaseorders")
    def list_purchase_orders(self, request: httpx.Request) -> httpx.Response:
        number = request.url.params.get("purchaseorder_number")
        found = [
            p
            for p in self.purchase_orders.values()
            if number is None or p["purchaseorder_number"] == number
        ]
        return _ok(purchaseorders=found, page_context={"page": 1, "has_more_page": False})

    @route("POST", _API + r"/purchaseorders")
    def create_purchase_order(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if not isinstance(body, dict):
            return _fail(400, 2, "Invalid JSON body")
        vendor_id = str(body.get("vendor_id", ""))
        if vendor_id not in self.vendors:
            return _fail(400, 1002, "Vendor does not exist.")
        lines = body.get("line_items") or []
        if not lines:
            return _fail(400, 4, "line_items is mandatory")
        for line in lines:
            if str(line.get("item_id")) not in self.items:
                return _fail(400, 1002, "Item does not exist.")
            if Decimal(str(line.get("quantity", 0))) <= 0:
                return _fail(400, 2, "Invalid value passed for quantity")
        manual = request.url.params.get("ignore_auto_number_generation") == "true"
        number = body.get("purchaseorder_number") if manual else None
        if manual and not number:
            return _fail(400, 4, "purchaseorder_number is mandatory")
        if number and any(
            p["purchaseorder_number"] == number for p in self.purchase_orders.values()
        ):
            return _fail(400, 1001, "Purchase Order number already exists.")
        po_id = self._id()
        self.purchase_orders[po_id] = {
            "purchaseorder_id": po_id,
            "purchaseorder_number": number or f"PO-{len(self.purchase_orders) + 1:05}",
            "reference_number": body.get("reference_number", ""),
            "date": body.get("date") or date.today().isoformat(),
            "status": "issued" if body.get("status") != "draft" else "draft",
            "vendor_id": vendor_id,
            "vendor_name": self.vendors[vendor_id]["contact_name"],
            "warehouse_id": body.get("warehouse_id") or self.primary_warehouse,
            "line_items": [
                {
                    "line_item_id": self._id(),
                    "item_id": str(line["item_id"]),
                    "sku": self.items[str(line["item_id"])]["sku"],
                    "quantity": line["quantity"],
                }
                for line in lines
            ],
        }
        return json_response(
            201,
            {
                "code": 0,
                "message": "Purchase Order has been created.",
                "purchaseorder": self.purchase_orders[po_id],
            },
        )

    # -- webhooks -----------------------------------------------------------------------
    def signed_webhook(self, item_id: str) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the item webhook for ``item_id`` (signed now)."""
        with self.lock:
            body = json.dumps({"item": self._item_out(item_id, detail=True)}).encode()
        stamp = str(int(time.time() * 1000))
        signature = sign_hmac_sha256(
            self.webhook_secret, stamp.encode() + b"." + body, encoding="hex"
        )
        headers = {
            "Content-Type": "application/json",
            "X-Zoho-Webhook-Signature": f"t={stamp},v={signature}",
        }
        return body, headers

    def _notify(self, item_id: str) -> None:
        if self.webhook_url is None:
            return
        body, headers = self.signed_webhook(item_id)
        self.deliver_webhook(self.webhook_url, body, headers)
