"""Cin7 Core (formerly DEAR Inventory), API v2: availability per location, stock adjustments,
purchase orders and ``Stock/AvailableStockLevelChanged`` webhooks.

Auth is two headers (``api-auth-accountid``, ``api-auth-applicationkey``); the limit is 60
calls a minute per API application, signalled by 503 (as documented) or 429 (as seen).
A stock adjustment line carries the *new* quantity, so a delta is read-then-write; an absolute
write with ``expected_version`` (the on-hand quantity we last read) raises ``Conflict`` when
the level moved (detected, not atomic: Cin7 has no compare-and-set). Webhooks carry no
signature: subscriptions send a secret header, checked in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Final

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from dixis_integrations.errors import (
    AuthError,
    ConfigurationError,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    ProviderError,
    RateLimited,
    TransientError,
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http.driver import Operation
from dixis_integrations.http.endpoint import Endpoint, Limits, Window, parse_retry_after
from dixis_integrations.http.redact import register_secret
from dixis_integrations.models.inventory import (
    PurchaseOrder,
    StockAdjustment,
    StockLevel,
    StockPage,
    StockReceipt,
    StockUpdate,
)
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.webhooks import WebhookRequest

__all__ = [
    "WEBHOOK_HEADER",
    "Cin7Config",
    "Cin7Core",
    "build_adjustment",
    "build_purchase",
    "build_purchase_order",
    "build_webhook",
    "classify",
    "parse_availability",
    "parse_receipt_webhook",
    "parse_received_stock",
    "parse_webhook",
]

VENDOR: Final = "cin7"
PAGE_SIZE: Final = 1000
WEBHOOK_HEADER: Final = "X-Dixis-Webhook-Secret"
"""The header our subscriptions ask Cin7 to send with every delivery."""
STOCK_EVENT: Final = "Stock/AvailableStockLevelChanged"
RECEIPT_EVENT: Final = "Purchase/StockReceivedAuthorised"


class Cin7Config(BaseModel):
    """How to reach one Cin7 Core account.

    ``default_location`` is the Cin7 location our ``"default"`` stands for.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str
    application_key: SecretStr
    base_url: str = "https://inventory.dearsystems.com/ExternalApi/v2"
    default_location: str = "Main Warehouse"
    webhook_secret: SecretStr | None = None


# -- errors ------------------------------------------------------------------------------
def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        return None


def _message(body: Any, status: int) -> str:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("Exception") or f"HTTP {status}")
    if isinstance(body, dict) and body.get("Exception"):
        return str(body["Exception"])
    return f"HTTP {status}"


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """Cin7's ``[{ErrorCode, Exception}]`` failures; 503 and 429 overruns as ``RateLimited``."""
    status = response.status_code
    if status < 400:
        if response.content and _json(response) is None:
            return TransientError("unreadable answer from Cin7", vendor=VENDOR, status_code=status)
        return None
    body = _json(response)
    message = _message(body, status)
    common: dict[str, Any] = {"vendor": VENDOR, "status_code": status}
    if status == 429 or (status == 503 and "limit" in message.lower()):
        retry_at = parse_retry_after(response.headers.get("retry-after")) or (
            datetime.now(UTC) + timedelta(seconds=60.0 * endpoint.limits.time_scale)
        )
        return RateLimited(message, retry_at=retry_at, **common)
    if status in (401, 403):
        return AuthError(message, **common)
    if status == 404:
        return NotFound(message, **common)
    if status >= 500:
        return TransientError(message, **common)
    if "already" in message.lower():
        return Conflict(message, **common)
    return ValidationRejected(message, **common)


# -- pure building and parsing -------------------------------------------------------------
def _d(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def parse_availability(
    row: Mapping[str, Any], *, default_location: str, as_of: datetime
) -> StockLevel:
    """One ``ProductAvailabilityList`` row (or webhook row) as a level.

    ``version`` is the on-hand quantity: Cin7 keeps no version, and it is what a later
    compare-and-set check compares.
    """
    location = str(row.get("Location") or default_location)
    on_hand = _d(row.get("OnHand"))
    return StockLevel(
        sku=str(row["SKU"]),
        location="default" if location == default_location else location,
        on_hand=on_hand,
        committed=_d(row.get("Allocated")),
        incoming=_d(row.get("OnOrder")),
        as_of=as_of,
        version=format(on_hand.normalize(), "f"),
    )


def build_adjustment(
    product_id: str, location: str, quantity: Decimal, reference: str, when: datetime
) -> dict[str, Any]:
    """The ``POST /stockadjustment`` body: one line carrying the new on-hand quantity."""
    return {
        "EffectiveDate": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Status": "COMPLETED",
        "Reference": reference,
        "Lines": [
            {
                "ProductID": product_id,
                "Quantity": _num(quantity),
                "UnitCost": 0,
                "Location": location,
            }
        ],
    }


def build_purchase(order: PurchaseOrder, location: str) -> dict[str, Any]:
    """The ``POST /purchase`` body (the purchase task; lines follow in ``/purchase/order``)."""
    return {
        "SupplierID": order.supplier_id,
        "Location": location,
        "Approach": "INVOICE",
        "Note": order.reference,
        "RequiredBy": None,
    }


def build_purchase_order(
    task_id: str, order: PurchaseOrder, product_ids: Mapping[str, str]
) -> dict[str, Any]:
    """The ``POST /purchase/order`` body: the lines, authorised unless the order is a draft."""
    return {
        "TaskID": task_id,
        "CombineAdditionalCharges": False,
        "Memo": order.reference,
        "Status": "DRAFT" if order.status.value == "draft" else "AUTHORISED",
        "Lines": [
            {
                "ProductID": product_ids[line.sku],
                "SKU": line.sku,
                "Quantity": _num(line.quantity),
                "Price": 0,
                "Tax": 0,
                "TaxRule": "Tax Exempt",
                "Total": 0,
            }
            for line in order.lines
        ],
    }


def build_webhook(
    url: str, secret: str, name: str = "dixis stock", event: str = STOCK_EVENT
) -> dict[str, Any]:
    """The ``POST /webhooks`` body subscribing ``url`` to ``event`` (stock level changes
    unless told otherwise).
    """
    return {
        "Type": event,
        "IsActive": True,
        "ExternalURL": url,
        "Name": name,
        "ExternalHeaders": [{"Key": WEBHOOK_HEADER, "Value": secret}],
    }


def parse_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secret: SecretStr,
    *,
    default_location: str = "Main Warehouse",
    received_at: datetime | None = None,
) -> list[StockUpdate]:
    """Check the secret header and read a ``Stock/AvailableStockLevelChanged`` delivery.

    The body is a bare array. Cin7 sends no event id or time, so the event id is a hash of
    the body (a redelivery is recognised) and ``as_of`` is when it was received.

    Raises:
        WebhookError: ``bad_signature`` (missing or wrong secret) or ``malformed``.
    """
    _check_secret(headers, secret)
    try:
        rows = json.loads(body)
    except ValueError:
        raise WebhookError("webhook body is not JSON", vendor=VENDOR, code="malformed") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and r.get("SKU") for r in rows):
        raise WebhookError("webhook body is not a list of levels", vendor=VENDOR, code="malformed")
    digest = hashlib.sha256(body).hexdigest()[:32]
    when = received_at or datetime.now(UTC)
    return [
        StockUpdate(
            event_id=f"cin7:{digest}:{i}",
            source=VENDOR,
            level=parse_availability(row, default_location=default_location, as_of=when),
        )
        for i, row in enumerate(rows)
    ]


def _check_secret(headers: Mapping[str, str], secret: SecretStr) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    given = lowered.get(WEBHOOK_HEADER.lower(), "")
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise WebhookError("webhook secret does not match", vendor=VENDOR, code="bad_signature")


def parse_receipt_webhook(headers: Mapping[str, str], body: bytes, secret: SecretStr) -> str:
    """Check the secret header and read a ``Purchase/StockReceivedAuthorised`` delivery:
    the purchase's ``TaskID`` (the lines are read with :meth:`Cin7Core.receipts`).

    Raises:
        WebhookError: ``bad_signature`` or ``malformed`` (no ``TaskID``).
    """
    _check_secret(headers, secret)
    try:
        data = json.loads(body)
    except ValueError:
        raise WebhookError("webhook body is not JSON", vendor=VENDOR, code="malformed") from None
    if not isinstance(data, dict) or not data.get("TaskID"):
        raise WebhookError("receipt webhook has no TaskID", vendor=VENDOR, code="malformed")
    return str(data["TaskID"])


def parse_received_stock(
    purchase: Mapping[str, Any],
    stock: Mapping[str, Any],
    *,
    default_location: str,
    received_at: datetime | None = None,
) -> list[StockReceipt]:
    """The receipts of one purchase: its ``GET /purchase`` answer (``Note`` carries our
    order reference) and its ``GET /purchase/stock`` answer (the lines booked in). Lines of
    one SKU at one location are summed; an unauthorised stock receipt gives none.
    """
    if stock.get("Status") != "AUTHORISED":
        return []
    task_id = str(purchase.get("ID") or stock.get("TaskID"))
    reference = str(purchase.get("Note") or purchase.get("OrderNumber") or task_id)
    totals: dict[tuple[str, str], Decimal] = {}
    dates: dict[tuple[str, str], datetime] = {}
    for line in stock.get("Lines") or []:
        location = str(line.get("Location") or default_location)
        key = (str(line["SKU"]), "default" if location == default_location else location)
        totals[key] = totals.get(key, Decimal(0)) + _d(line.get("Quantity"))
        raw = line.get("Date")
        when = (
            datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
            if raw
            else received_at or datetime.now(UTC)
        )
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # Cin7 dates are UTC
        dates[key] = max(when, dates.get(key, when))
    return [
        StockReceipt(
            event_id=f"cin7:receipt:{task_id}:{sku}:{location}",
            source=VENDOR,
            reference=reference,
            sku=sku,
            location=location,
            quantity=quantity,
            received_at=dates[(sku, location)],
        )
        for (sku, location), quantity in totals.items()
        if quantity > 0
    ]


# -- the adapter ---------------------------------------------------------------------------
class Cin7Core:
    """Cin7 Core as an :class:`~dixis_integrations.protocols.InventorySource`."""

    name = VENDOR
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.STOCK_LEVELS,
            Capability.ADJUSTMENTS,
            Capability.PURCHASE_ORDERS,
            Capability.WEBHOOKS,
        }
    )

    def __init__(
        self,
        config: Cin7Config,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        register_secret(config.application_key.get_secret_value())
        if config.webhook_secret is not None:
            register_secret(config.webhook_secret.get_secret_value())
        if not config.account_id.strip():
            raise ConfigurationError("is required", key="account_id", vendor=VENDOR)
        self.config = config
        self.tenant = tenant
        self.endpoint = Endpoint(
            vendor=VENDOR,
            base_url=config.base_url,
            tenant=tenant,
            auth=auth,
            limits=Limits(
                windows=(Window(60, 60.0, "per_minute"),),
                concurrency=2,
                time_scale=time_scale,
            ),
            classify=classify,
            headers={
                "api-auth-accountid": config.account_id,
                "api-auth-applicationkey": config.application_key.get_secret_value(),
            },
        )

    def __repr__(self) -> str:
        return f"Cin7Core(account_id={self.config.account_id!r})"

    def _location(self, location: str) -> str:
        return self.config.default_location if location == "default" else location

    def _get(self, path: str, operation: str, **params: Any) -> httpx.Request:
        return self.endpoint.request("GET", path, operation=operation, params=params)

    def _availability(self, sku: str, location: str) -> Operation[tuple[str, StockLevel]]:
        response = yield self._get(
            "/ref/productavailability",
            "cin7.availability",
            Sku=sku,
            Location=self._location(location),
            Page=1,
            Limit=10,
        )
        rows = [
            r
            for r in (_json(response) or {}).get("ProductAvailabilityList") or []
            if r.get("SKU") == sku
        ]
        if not rows:
            raise NotFound(f"{sku!r} has no stock record at {location!r}", vendor=VENDOR)
        level = parse_availability(
            rows[0], default_location=self.config.default_location, as_of=datetime.now(UTC)
        )
        return str(rows[0]["ID"]), level

    # -- InventorySource ----------------------------------------------------------------
    def check(self) -> Operation[HealthStatus]:
        """The account answers to these keys; stock webhooks Cin7 has switched off (after
        6 failed deliveries) are reported in ``extra["webhooks_off"]``.
        """
        response = yield self._get("/me", "cin7.me")
        company = str((_json(response) or {}).get("Company", ""))
        hooks = yield self._get("/webhooks", "cin7.webhooks")
        off = [
            str(h.get("ExternalURL", ""))
            for h in (_json(hooks) or {}).get("Webhooks") or []
            if h.get("Type") == STOCK_EVENT and not h.get("IsActive", True)
        ]
        extra = {"webhooks_off": ", ".join(off)} if off else {}
        detail = f"{company}; {len(off)} stock webhook(s) switched off" if off else company
        return HealthStatus(self.name, True, detail, extra=extra)

    def stock_page(self, cursor: str | None = None) -> Operation[StockPage]:
        """Up to 1000 availability rows (one per product and location); cursor = next page."""
        page = int(cursor or "1")
        response = yield self._get(
            "/ref/productavailability", "cin7.availability", Page=page, Limit=PAGE_SIZE
        )
        body = _json(response) or {}
        now = datetime.now(UTC)
        rows = body.get("ProductAvailabilityList") or []
        levels = tuple(
            parse_availability(r, default_location=self.config.default_location, as_of=now)
            for r in rows
        )
        more = page * PAGE_SIZE < int(body.get("Total") or 0) and bool(rows)
        return StockPage(levels=levels, next_cursor=str(page + 1) if more else None)

    def stock_level(self, sku: str, location: str = "default") -> Operation[StockLevel]:
        """The level of one SKU at one location."""
        _, level = yield from self._availability(sku, location)
        return level

    def adjust(self, adjustment: StockAdjustment) -> Operation[StockLevel]:
        """Apply a delta, once per ``adjustment.reference``: read on hand, write the sum,
        read again.

        Cin7 has no compare-and-set and its adjustment line carries the new quantity, so a
        change made by someone else around the write would be lost silently. The level is
        read again after the write: if it is not what was written, the adjustment is
        reported as a ``Conflict`` (``vendor_code="concurrent_change"``) naming both
        quantities, and the caller reconciles (the adjustment itself is recorded at Cin7
        and is not repeated for its reference).

        Raises:
            Conflict: the on-hand quantity moved while the adjustment was written.
            InvalidInput: a zero delta, or one that would make stock negative.
        """
        if not adjustment.delta.is_finite() or adjustment.delta == 0:
            raise InvalidInput(
                "an adjustment needs a non-zero delta",
                vendor=VENDOR,
                errors=[FieldError(("delta",), "must not be zero", "zero")],
            )
        seen = yield self._get(
            "/stockadjustmentList", "cin7.find_adjustment", Search=adjustment.reference
        )
        product_id, level = yield from self._availability(adjustment.sku, adjustment.location)
        done = [
            a
            for a in (_json(seen) or {}).get("StockAdjustmentList") or []
            if a.get("Reference") == adjustment.reference
        ]
        if done:
            return level
        target = level.on_hand + adjustment.delta
        if target < 0:
            raise InvalidInput(
                "adjustment would make stock negative",
                vendor=VENDOR,
                errors=[FieldError(("delta",), f"on hand is {level.on_hand}", "negative_stock")],
            )
        body = build_adjustment(
            product_id,
            self._location(adjustment.location),
            target,
            adjustment.reference,
            datetime.now(UTC),
        )
        # An absolute write: sending it twice lands on the same quantity.
        yield self.endpoint.request(
            "POST", "/stockadjustment", operation="cin7.adjust", json=body, idempotent=True
        )
        _, after = yield from self._availability(adjustment.sku, adjustment.location)
        if after.on_hand != target:
            raise Conflict(
                f"{adjustment.sku} moved during adjustment {adjustment.reference}: read "
                f"{level.on_hand}, wrote {target}, now {after.on_hand}",
                vendor=VENDOR,
                vendor_code="concurrent_change",
            )
        return after

    def set_level(
        self, level: StockLevel, *, expected_version: str | None = None
    ) -> Operation[StockLevel]:
        """Write an absolute on-hand level; ``Conflict`` when ``expected_version`` (the on
        hand we last read) no longer matches (checked just before writing).
        """
        if level.on_hand < 0:
            raise InvalidInput(
                "negative stock",
                vendor=VENDOR,
                errors=[FieldError(("on_hand",), "must not be negative")],
            )
        product_id, current = yield from self._availability(level.sku, level.location)
        if expected_version is not None and Decimal(expected_version) != current.on_hand:
            raise Conflict(
                f"{level.sku} is {current.on_hand} at Cin7, not {expected_version}",
                vendor=VENDOR,
                vendor_code="stale_version",
            )
        reference = f"set:{level.sku}:{level.as_of.isoformat()}"[:50]
        body = build_adjustment(
            product_id, self._location(level.location), level.on_hand, reference, level.as_of
        )
        yield self.endpoint.request(
            "POST", "/stockadjustment", operation="cin7.set_level", json=body, idempotent=True
        )
        return current.model_copy(
            update={"on_hand": level.on_hand, "version": format(level.on_hand, "f")}
        )

    def create_purchase_order(self, order: PurchaseOrder) -> Operation[PurchaseOrder]:
        """Create the purchase (task, then authorised order lines), or return the one whose
        note carries our reference.
        """
        found = yield self._get("/purchaseList", "cin7.find_purchase", Search=order.reference)
        rows = [
            p
            for p in (_json(found) or {}).get("PurchaseList") or []
            if p.get("Note") == order.reference
        ]
        if rows and rows[0].get("Status") != "DRAFT":
            return order.model_copy(update={"external_id": str(rows[0]["ID"])})
        product_ids: dict[str, str] = {}
        for line in order.lines:
            product_id, _ = yield from self._availability(line.sku, order.location)
            product_ids[line.sku] = product_id
        if rows:
            task_id = str(rows[0]["ID"])  # the task exists; its lines never arrived
        else:
            created = yield self.endpoint.request(
                "POST",
                "/purchase",
                operation="cin7.create_purchase",
                json=build_purchase(order, self._location(order.location)),
            )
            task_id = str(_json(created)["ID"])
        yield self.endpoint.request(
            "POST",
            "/purchase/order",
            operation="cin7.create_purchase_order",
            json=build_purchase_order(task_id, order, product_ids),
        )
        return order.model_copy(update={"external_id": task_id})

    def subscribe(self, url: str) -> Operation[str]:
        """Subscribe ``url`` to stock level changes; returns the webhook id.

        Raises:
            ConfigurationError: no ``webhook_secret`` to send with each delivery.
        """
        if self.config.webhook_secret is None:
            raise ConfigurationError("needed to subscribe", key="webhook_secret", vendor=VENDOR)
        body = build_webhook(url, self.config.webhook_secret.get_secret_value())
        response = yield self.endpoint.request(
            "POST", "/webhooks", operation="cin7.subscribe", json=body
        )
        return str(_json(response)["ID"])

    def subscribe_receipts(self, url: str) -> Operation[str]:
        """Subscribe ``url`` to ``Purchase/StockReceivedAuthorised``; returns the webhook id.

        Raises:
            ConfigurationError: no ``webhook_secret`` to send with each delivery.
        """
        if self.config.webhook_secret is None:
            raise ConfigurationError("needed to subscribe", key="webhook_secret", vendor=VENDOR)
        body = build_webhook(
            url, self.config.webhook_secret.get_secret_value(), "dixis receipts", RECEIPT_EVENT
        )
        response = yield self.endpoint.request(
            "POST", "/webhooks", operation="cin7.subscribe_receipts", json=body
        )
        return str(_json(response)["ID"])

    def parse_receipt_webhook(self, headers: Mapping[str, str], body: bytes) -> str:
        """Check and read a ``Purchase/StockReceivedAuthorised`` delivery: its ``TaskID``.

        Raises:
            ConfigurationError: no ``webhook_secret`` configured.
            WebhookError: a wrong secret or a body without ``TaskID``.
        """
        if self.config.webhook_secret is None:
            raise ConfigurationError(
                "needed to verify webhooks", key="webhook_secret", vendor=VENDOR
            )
        return parse_receipt_webhook(headers, body, self.config.webhook_secret)

    def receipts(self, task_id: str) -> Operation[list[StockReceipt]]:
        """The goods booked in against purchase ``task_id`` (from its receipt webhook), as
        receipts keyed by our order reference: feed them to ``StockSync.apply_receipts``.
        """
        if not task_id.strip():
            raise InvalidInput(
                "a purchase TaskID is required",
                vendor=VENDOR,
                errors=[FieldError(("task_id",), "must not be empty", "missing")],
            )
        purchase = yield self._get("/purchase", "cin7.get_purchase", ID=task_id)
        stock = yield self._get("/purchase/stock", "cin7.get_purchase_stock", TaskID=task_id)
        return parse_received_stock(
            _json(purchase) or {},
            _json(stock) or {},
            default_location=self.config.default_location,
        )

    def read_webhook(self, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
        """Verify and read a delivery as it arrived; see :meth:`parse_webhook`."""
        return list(self.parse_webhook(dict(request.headers), request.body))

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, *, received_at: datetime | None = None
    ) -> list[StockUpdate]:
        """Check and read a stock webhook with the configured secret.

        Raises:
            ConfigurationError: no ``webhook_secret`` configured.
            WebhookError: a wrong secret or a body that is not a list of levels.
        """
        if self.config.webhook_secret is None:
            raise ConfigurationError(
                "needed to verify webhooks", key="webhook_secret", vendor=VENDOR
            )
        return parse_webhook(
            headers,
            body,
            self.config.webhook_secret,
            default_location=self.config.default_location,
            received_at=received_at,
        )
