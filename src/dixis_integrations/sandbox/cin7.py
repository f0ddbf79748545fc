"""A Cin7 Core (formerly DEAR Inventory) emulator: products, availability per location, stock
adjustments, purchases, webhook subscriptions and ``Stock/AvailableStockLevelChanged``
deliveries; ``api-auth-accountid`` / ``api-auth-applicationkey`` headers; 60 calls a minute.

Written from the Cin7 Core developer portal (API v2, ``/ExternalApi/v2/``): ``Page``/``Limit``
paging (at most 1000, with ``Total``); failures are a JSON array of ``{ErrorCode, Exception}``.
Overruns answer 503 as the docs say, or 429 as practitioners see (``throttle_status``). A
webhook that fails 6 deliveries in a row is switched off, as Cin7 does.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal

import httpx

from dixis_integrations.sandbox.kit import (
    Emulator,
    Fault,
    FaultPlan,
    FixedWindow,
    json_response,
    read_json,
    route,
)

__all__ = ["Cin7Sandbox"]

_API: Final = "/ExternalApi/v2"
_MAX_LIMIT: Final = 1000
_DISABLE_AFTER: Final = 6


def _fail(status: int, message: str) -> httpx.Response:
    return json_response(status, [{"ErrorCode": status, "Exception": message}])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: Decimal) -> Any:
    return int(value) if value == value.to_integral_value() else float(value)


class Cin7Sandbox(Emulator):
    """One Cin7 Core account in memory.

    Args:
        locations: location names (the first is the default).
        throttle_status: how an overrun is answered (503, as documented, or 429).
        faults, time_scale, webhook_client: as for every emulator.
    """

    name = "cin7"

    def __init__(
        self,
        *,
        locations: Iterable[str] = ("Main Warehouse", "Athens Market"),
        throttle_status: Literal[503, 429] = 503,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.account_id = str(uuid.uuid4())
        self.application_key = secrets.token_hex(20)
        self.webhook_secret = secrets.token_hex(16)
        self.locations = list(locations)
        self.throttle_status = throttle_status
        self.per_minute = FixedWindow(60, 60.0, self.clock, "application")
        self.products: dict[str, dict[str, Any]] = {}
        self._by_sku: dict[str, str] = {}
        self._keys: list[tuple[str, str]] = []
        self.stock: dict[tuple[str, str], dict[str, Decimal]] = {}
        self.suppliers: dict[str, dict[str, Any]] = {}
        self.purchases: dict[str, dict[str, Any]] = {}
        self.adjustments: dict[str, dict[str, Any]] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}

    def credentials(self) -> dict[str, str]:
        """The account id, application key, a webhook secret to subscribe with, and the URL."""
        return {
            "account_id": self.account_id,
            "application_key": self.application_key,
            "webhook_secret": self.webhook_secret,
            "base_url": self.base_url + _API,
        }

    # -- seeding ------------------------------------------------------------------------
    def add_product(
        self,
        sku: str,
        name: str | None = None,
        *,
        stock: dict[str, Decimal] | Decimal | int = 0,
    ) -> str:
        """Create a stock product with opening stock (per location, or all in the first)."""
        with self.lock:
            product_id = str(uuid.uuid4())
            self.products[product_id] = {
                "ID": product_id,
                "SKU": sku,
                "Name": name or sku,
                "Type": "Stock",
                "UOM": "Item",
                "Status": "Active",
                "CostingMethod": "FIFO",
                "LastModifiedOn": _now(),
            }
            self._by_sku[sku] = product_id
            per = stock if isinstance(stock, dict) else {self.locations[0]: Decimal(stock)}
            for location in self.locations:
                self.stock[(product_id, location)] = {
                    "OnHand": Decimal(per.get(location, 0)),
                    "Allocated": Decimal(0),
                    "OnOrder": Decimal(0),
                }
                self._keys.append((product_id, location))
            return product_id

    def seed_stock(self, levels: Mapping[str, Decimal | int]) -> None:
        """Create the SKUs that do not exist yet and set every on-hand level (first
        location): a demo's opening stock. Sends no webhooks.
        """
        with self.lock:
            for sku, on_hand in levels.items():
                product_id = self._by_sku.get(sku) or self.add_product(sku)
                self.stock[(product_id, self.locations[0])]["OnHand"] = Decimal(on_hand)

    def add_supplier(self, name: str) -> str:
        """Create a supplier; returns its ``ID``."""
        with self.lock:
            supplier_id = str(uuid.uuid4())
            self.suppliers[supplier_id] = {"ID": supplier_id, "Name": name, "Currency": "EUR"}
            return supplier_id

    def set_stock(self, sku: str, on_hand: Decimal | int, location: str | None = None) -> None:
        """Change on hand as a person in the web app would, and notify subscribers."""
        with self.lock:
            key = (self._by_sku[sku], location or self.locations[0])
            self.stock[key]["OnHand"] = Decimal(on_hand)
            rows = [self._availability(*key)]
        self._notify(rows)

    def allocate(self, sku: str, quantity: Decimal | int, location: str | None = None) -> None:
        """Allocate stock to a sale made in Cin7 itself, and notify subscribers."""
        with self.lock:
            key = (self._by_sku[sku], location or self.locations[0])
            self.stock[key]["Allocated"] += Decimal(quantity)
            rows = [self._availability(*key)]
        self._notify(rows)

    # -- hooks --------------------------------------------------------------------------
    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        account = request.headers.get("api-auth-accountid")
        key = request.headers.get("api-auth-applicationkey", "")
        if account != self.account_id or not secrets.compare_digest(
            key.encode(), self.application_key.encode()
        ):
            return _fail(403, "Incorrect credentials!")
        return None

    def limit(self, request: httpx.Request) -> httpx.Response | None:
        ok, _, _ = self.per_minute.hit(self.account_id)
        if ok:
            return None
        return _fail(self.throttle_status, "You have reached 60 calls per 60 seconds API limit.")

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            return _fail(
                self.throttle_status, "You have reached 60 calls per 60 seconds API limit."
            )
        if fault is Fault.SERVER_ERROR:
            return _fail(500, "Internal server error")
        if fault is Fault.EXPIRED_TOKEN:
            return _fail(403, "Incorrect credentials!")
        return super().fault_response(fault, request)

    # -- reading ------------------------------------------------------------------------
    @staticmethod
    def _paging(request: httpx.Request) -> tuple[int, int] | httpx.Response:
        try:
            page = int(request.url.params.get("Page", "1"))
            limit = int(request.url.params.get("Limit", "100"))
        except ValueError:
            return _fail(400, "Page and Limit must be integers")
        if page < 1 or not 1 <= limit <= _MAX_LIMIT:
            return _fail(400, f"Limit must be between 1 and {_MAX_LIMIT}")
        return page, limit

    def _availability(self, product_id: str, location: str) -> dict[str, Any]:
        product = self.products[product_id]
        row = self.stock[(product_id, location)]
        return {
            "ID": product_id,
            "SKU": product["SKU"],
            "Name": product["Name"],
            "Barcode": "",
            "Location": location,
            "Bin": None,
            "Batch": None,
            "ExpiryDate": None,
            "OnHand": _number(row["OnHand"]),
            "Allocated": _number(row["Allocated"]),
            "Available": _number(row["OnHand"] - row["Allocated"]),
            "OnOrder": _number(row["OnOrder"]),
            "StockOnHand": _number(row["OnHand"]),
            "InTransit": 0,
        }

    @route("GET", _API + r"/ref/productavailability")
    def product_availability(self, request: httpx.Request) -> httpx.Response:
        paging = self._paging(request)
        if isinstance(paging, httpx.Response):
            return paging
        page, limit = paging
        sku = request.url.params.get("Sku")
        location = request.url.params.get("Location")
        if sku is not None:
            product_id = self._by_sku.get(sku)
            keys = [(product_id, loc) for loc in self.locations] if product_id else []
        else:
            keys = self._keys
        if location is not None:
            keys = [k for k in keys if k[1] == location]
        start = (page - 1) * limit
        rows = [self._availability(*k) for k in keys[start : start + limit]]
        return json_response(
            200, {"Total": len(keys), "Page": page, "ProductAvailabilityList": rows}
        )

    @route("GET", _API + r"/product")
    def list_products(self, request: httpx.Request) -> httpx.Response:
        paging = self._paging(request)
        if isinstance(paging, httpx.Response):
            return paging
        page, limit = paging
        sku = request.url.params.get("Sku")
        if sku is not None:
            found = [self.products[self._by_sku[sku]]] if sku in self._by_sku else []
        else:
            found = list(self.products.values())
        start = (page - 1) * limit
        return json_response(
            200, {"Total": len(found), "Page": page, "Products": found[start : start + limit]}
        )

    @route("GET", _API + r"/me")
    def me(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"Company": "Dixis Fresh", "Currency": "EUR"})

    # -- stock adjustments ----------------------------------------------------------------
    @route("GET", _API + r"/stockadjustmentList")
    def list_adjustments(self, request: httpx.Request) -> httpx.Response:
        search = request.url.params.get("Search")
        rows = [
            {k: a[k] for k in ("TaskID", "Reference", "Status", "EffectiveDate")}
            for a in self.adjustments.values()
            if search is None or a["Reference"] == search
        ]
        return json_response(200, {"Total": len(rows), "Page": 1, "StockAdjustmentList": rows})

    @route("POST", _API + r"/stockadjustment")
    def create_adjustment(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if not isinstance(body, dict) or not body.get("Lines"):
            return _fail(400, "Lines are required")
        if body.get("Status") not in ("DRAFT", "COMPLETED"):
            return _fail(400, "Status must be DRAFT or COMPLETED")
        if not body.get("EffectiveDate"):
            return _fail(400, "EffectiveDate is required")
        changes: list[tuple[tuple[str, str], Decimal]] = []
        for line in body["Lines"]:
            product_id = str(line.get("ProductID", ""))
            location = str(line.get("Location") or self.locations[0])
            if product_id not in self.products:
                return _fail(400, f"Product not found: {product_id}")
            if location not in self.locations:
                return _fail(400, f"Location not found: {location}")
            try:
                quantity = Decimal(str(line["Quantity"]))
            except (KeyError, ArithmeticError):
                return _fail(400, "Quantity is required")
            if quantity < 0:
                return _fail(400, "Quantity can not be negative")
            changes.append(((product_id, location), quantity))
        task_id = str(uuid.uuid4())
        self.adjustments[task_id] = {
            "TaskID": task_id,
            "Reference": body.get("Reference", ""),
            "Status": body["Status"],
            "EffectiveDate": body["EffectiveDate"],
            "Lines": body["Lines"],
        }
        rows = []
        if body["Status"] == "COMPLETED":
            for key, quantity in changes:
                # a stock adjustment line carries the new quantity, not a difference
                self.stock[key]["OnHand"] = quantity
                self.products[key[0]]["LastModifiedOn"] = _now()
                rows.append(self._availability(*key))
        self._notify(rows)
        return json_response(200, self.adjustments[task_id])

    # -- purchases ----------------------------------------------------------------------
    @route("GET", _API + r"/purchaseList")
    def list_purchases(self, request: httpx.Request) -> httpx.Response:
        search = request.url.params.get("Search")
        rows = [
            {k: p[k] for k in ("ID", "OrderNumber", "Status", "Supplier", "Note")}
            for p in self.purchases.values()
            if search is None or search in (p["OrderNumber"], p["Note"])
        ]
        return json_response(200, {"Total": len(rows), "Page": 1, "PurchaseList": rows})

    @route("POST", _API + r"/purchase")
    def create_purchase(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if not isinstance(body, dict):
            return _fail(400, "Body must be a JSON object")
        supplier_id = str(body.get("SupplierID", ""))
        if supplier_id not in self.suppliers:
            return _fail(400, "Supplier not found")
        location = body.get("Location") or self.locations[0]
        if location not in self.locations:
            return _fail(400, f"Location not found: {location}")
        purchase_id = str(uuid.uuid4())
        self.purchases[purchase_id] = {
            "ID": purchase_id,
            "OrderNumber": f"PO-{len(self.purchases) + 1:05}",
            "Status": "DRAFT",
            "Supplier": self.suppliers[supplier_id]["Name"],
            "SupplierID": supplier_id,
            "Location": location,
            "Approach": body.get("Approach", "INVOICE"),
            "Note": body.get("Note", ""),
            "Order": None,
        }
        return json_response(200, self.purchases[purchase_id])

    @route("POST", _API + r"/purchase/order")
    def create_purchase_order(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if not isinstance(body, dict):
            return _fail(400, "Body must be a JSON object")
        purchase = self.purchases.get(str(body.get("TaskID", "")))
        if purchase is None:
            return _fail(404, "Purchase not found")
        if purchase["Order"] is not None and purchase["Order"]["Status"] == "AUTHORISED":
            return _fail(400, "Purchase order is already authorised")
        lines = body.get("Lines") or []
        if not lines:
            return _fail(400, "Lines are required")
        for line in lines:
            if str(line.get("ProductID")) not in self.products:
                return _fail(400, "Product not found")
            if Decimal(str(line.get("Quantity", 0))) <= 0:
                return _fail(400, "Quantity must be greater than zero")
        status = body.get("Status", "DRAFT")
        purchase["Order"] = {"Status": status, "Memo": body.get("Memo", ""), "Lines": lines}
        purchase["Status"] = "ORDERED" if status == "AUTHORISED" else "ORDERING"
        rows = []
        if status == "AUTHORISED":
            for line in lines:
                key = (str(line["ProductID"]), purchase["Location"])
                self.stock[key]["OnOrder"] += Decimal(str(line["Quantity"]))
                rows.append(self._availability(*key))
        self._notify(rows)
        return json_response(200, {"TaskID": purchase["ID"], **purchase["Order"]})

    def receive_purchase(self, task_id: str) -> None:
        """Book in every line of an authorised purchase order, as a warehouse person does in
        Cin7: on order becomes on hand, the stock received is recorded, and subscribers
        get ``Stock/AvailableStockLevelChanged`` then ``Purchase/StockReceivedAuthorised``.
        """
        with self.lock:
            purchase = self.purchases[task_id]
            order = purchase["Order"]
            if order is None or order["Status"] != "AUTHORISED" or purchase.get("Stock"):
                raise ValueError(f"purchase {task_id} has no authorised order to receive")
            date = _now()
            lines, rows = [], []
            for line in order["Lines"]:
                key = (str(line["ProductID"]), purchase["Location"])
                quantity = Decimal(str(line["Quantity"]))
                self.stock[key]["OnOrder"] -= quantity
                self.stock[key]["OnHand"] += quantity
                lines.append(
                    {
                        "Date": date,
                        "ProductID": key[0],
                        "SKU": self.products[key[0]]["SKU"],
                        "Name": self.products[key[0]]["Name"],
                        "Quantity": _number(quantity),
                        "Location": key[1],
                        "BatchSN": None,
                        "ExpiryDate": None,
                    }
                )
                rows.append(self._availability(*key))
            purchase["Stock"] = {"TaskID": task_id, "Status": "AUTHORISED", "Lines": lines}
            purchase["Status"] = "RECEIVED"
        self._notify(rows)
        self._notify_event(
            "Purchase/StockReceivedAuthorised",
            {"TaskID": task_id, "OrderNumber": purchase["OrderNumber"], "Status": "RECEIVED"},
        )

    @route("GET", _API + r"/purchase")
    def get_purchase(self, request: httpx.Request) -> httpx.Response:
        purchase = self.purchases.get(request.url.params.get("ID", ""))
        if purchase is None:
            return _fail(404, "Purchase not found")
        return json_response(200, {k: v for k, v in purchase.items() if k != "Stock"})

    @route("GET", _API + r"/purchase/stock")
    def get_purchase_stock(self, request: httpx.Request) -> httpx.Response:
        purchase = self.purchases.get(request.url.params.get("TaskID", ""))
        if purchase is None:
            return _fail(404, "Purchase not found")
        stock = purchase.get("Stock") or {
            "TaskID": purchase["ID"],
            "Status": "NOT AVAILABLE",
            "Lines": [],
        }
        return json_response(200, stock)

    # -- webhooks -----------------------------------------------------------------------
    @route("GET", _API + r"/webhooks")
    def list_webhooks(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"Webhooks": list(self.webhooks.values())})

    @route("POST", _API + r"/webhooks")
    def create_webhook(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if not isinstance(body, dict) or not body.get("Type") or not body.get("ExternalURL"):
            return _fail(400, "Type and ExternalURL are required")
        webhook_id = str(uuid.uuid4())
        self.webhooks[webhook_id] = {
            "ID": webhook_id,
            "Type": body["Type"],
            "IsActive": bool(body.get("IsActive", True)),
            "ExternalURL": body["ExternalURL"],
            "Name": body.get("Name", ""),
            "ExternalHeaders": list(body.get("ExternalHeaders") or []),
            "Failures": 0,
        }
        return json_response(200, self.webhooks[webhook_id])

    def _notify(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        # a bare array, as Cin7 sends it
        self._notify_event("Stock/AvailableStockLevelChanged", rows)

    def _notify_event(self, event_type: str, payload: Any) -> None:
        body = json.dumps(payload).encode()
        for hook in list(self.webhooks.values()):
            if hook["Type"] != event_type or not hook["IsActive"]:
                continue
            headers = {"Content-Type": "application/json"}
            headers.update({h["Key"]: h["Value"] for h in hook["ExternalHeaders"]})
            delivery = self.deliver_webhook(hook["ExternalURL"], body, headers)
            if delivery.status is not None and 200 <= delivery.status < 300:
                hook["Failures"] = 0
            else:
                hook["Failures"] += 1
                if hook["Failures"] >= _DISABLE_AFTER:
                    hook["IsActive"] = False
