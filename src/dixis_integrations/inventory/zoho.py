"""Zoho Inventory (API v1): items and stock per warehouse, adjustments, purchase orders,
signed item webhooks. OAuth2 with the ``Zoho-oauthtoken`` header; ``organization_id`` on
every call; the data centre (``eu``, ``com``, ``in``...) picks the API and accounts hosts.

Limits: about 100 requests per minute per organisation and 5 (Free) or 10 (paid) at once.
Zoho has no idempotency key and no compare-and-set, so writes look up by our reference
first, and :meth:`ZohoInventory.set_level` detects a changed level (``Conflict``) by reading
the item's ``last_modified_time`` just before writing the difference as an adjustment.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from dixis_integrations.auth.oauth import OAuth2Auth, OAuth2Config, TokenManager
from dixis_integrations.errors import (
    AuthError,
    ConfigurationError,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    TransientError,
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http.driver import Operation
from dixis_integrations.http.endpoint import (
    Endpoint,
    Limits,
    Window,
    default_classify,
    parse_retry_after,
)
from dixis_integrations.http.redact import register_secret
from dixis_integrations.models.inventory import (
    PurchaseOrder,
    StockAdjustment,
    StockLevel,
    StockPage,
    StockUpdate,
)
from dixis_integrations.protocols import Capability, HealthStatus
from dixis_integrations.webhooks import WebhookRequest

__all__ = [
    "DATA_CENTRES",
    "ZohoAuth",
    "ZohoConfig",
    "ZohoInventory",
    "build_adjustment",
    "build_purchase_order",
    "classify",
    "oauth_config",
    "parse_item_levels",
    "parse_webhook",
]

VENDOR: Final = "zoho"
PAGE_SIZE: Final = 200
DATA_CENTRES: Final = ("com", "eu", "in", "com.au", "jp", "ca", "com.cn", "sa")
DataCentre = Literal["com", "eu", "in", "com.au", "jp", "ca", "com.cn", "sa"]
_WEBHOOK_TOLERANCE: Final = 300.0


class ZohoConfig(BaseModel):
    """How to reach one Zoho Inventory organisation.

    ``base_url`` defaults to ``https://www.zohoapis.<data_centre>/inventory/v1``.
    ``per_warehouse`` reads stock per warehouse (one extra call per item) instead of the
    organisation's totals; ``webhook_secret`` checks item webhooks. ``paid_plan`` sets the
    calls in progress at once (10, or 5 on Free); ``daily_limit`` is the plan's daily cap
    (published figures disagree: give your plan's, ``None`` budgets none).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    organization_id: str
    data_centre: DataCentre = "eu"
    base_url: str = ""
    paid_plan: bool = True
    daily_limit: int | None = Field(default=None, gt=0)
    per_warehouse: bool = False
    webhook_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _base(self) -> ZohoConfig:
        if not self.organization_id.strip():
            raise ValueError("organization_id is required on every Zoho call")
        if not self.base_url:
            object.__setattr__(
                self, "base_url", f"https://www.zohoapis.{self.data_centre}/inventory/v1"
            )
        return self


def oauth_config(
    client_id: str,
    client_secret: SecretStr,
    redirect_uri: str,
    *,
    data_centre: DataCentre = "eu",
    accounts_base: str | None = None,
) -> OAuth2Config:
    """The OAuth2 settings of a Zoho server-based client in ``data_centre``."""
    base = (accounts_base or f"https://accounts.zoho.{data_centre}").rstrip("/")
    return OAuth2Config(
        provider=VENDOR,
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=f"{base}/oauth/v2/auth",
        token_url=f"{base}/oauth/v2/token",
        scopes=("ZohoInventory.FullAccess.all",),
        redirect_uri=redirect_uri,
        token_endpoint_auth="client_secret_post",  # noqa: S106 - a method name
        authorize_params={"access_type": "offline", "prompt": "consent"},
    )


class ZohoAuth(httpx.Auth):
    """OAuth2 tokens from a :class:`TokenManager`, sent as ``Zoho-oauthtoken <token>``
    (Zoho's scheme, not ``Bearer``); on a 401, one forced refresh and one retry.
    """

    requires_request_body = True

    def __init__(self, manager: TokenManager) -> None:
        self.manager = manager

    def __repr__(self) -> str:
        return f"ZohoAuth({self.manager!r})"

    @staticmethod
    def _set(request: httpx.Request, token: str) -> None:
        request.headers["Authorization"] = f"Zoho-oauthtoken {token}"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.manager.token()
        self._set(request, token.access_token.get_secret_value())
        response = yield request
        if response.status_code == 401:
            fresh = self.manager.refresh(rejected=token)
            self._set(request, fresh.access_token.get_secret_value())
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.manager.atoken()
        self._set(request, token.access_token.get_secret_value())
        response = yield request
        if response.status_code == 401:
            fresh = await self.manager.arefresh(rejected=token)
            self._set(request, fresh.access_token.get_secret_value())
            yield request


# -- errors -----------------------------------------------------------------------------
def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
    """Zoho's ``{"code", "message"}`` failures, including a non-zero code in an HTTP 200."""
    body = _body(response)
    code = body.get("code")
    if response.status_code < 400 and (code in (None, 0)):
        if response.status_code == 200 and not body and response.content:
            # a cut-off body: worth another try (the driver retries only what is safe)
            return TransientError("unreadable answer from Zoho", vendor=VENDOR, status_code=200)
        return None
    message = str(body.get("message") or f"HTTP {response.status_code}")
    status = response.status_code
    vendor_code = str(code) if code is not None else None
    common: dict[str, Any] = {"vendor": VENDOR, "status_code": status, "vendor_code": vendor_code}
    if status == 429 or code in (43, 44, 45):
        # code 45 is the plan's daily cap: waiting a minute would not help
        window = (86_400.0 if code == 45 else 60.0) * endpoint.limits.time_scale
        retry_at = parse_retry_after(response.headers.get("retry-after")) or (
            datetime.now(UTC) + timedelta(seconds=window)
        )
        return RateLimited(message, retry_at=retry_at, **common)
    if status == 401 or code in (14, 57):
        return AuthError(message, **common)
    if status == 403:
        return PermissionDenied(message, **common)
    if code == 1001:
        return Conflict(message, **common)
    if status == 404 or code == 1002:
        return NotFound(message, **common)
    if status >= 500:
        return default_classify(response, endpoint)
    return ValidationRejected(message, **common)


# -- pure request building and parsing --------------------------------------------------
def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _parse_time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value or ""))
    except ValueError:
        return datetime.now(UTC)
    if parsed.tzinfo is None:
        return datetime.now(UTC)
    return parsed.astimezone(UTC)


def parse_item_levels(item: Mapping[str, Any], *, per_warehouse: bool) -> list[StockLevel]:
    """Levels of one item: one per warehouse (detail answers), else the organisation total."""
    sku = str(item.get("sku") or "")
    if not sku:
        return []
    stamp = item.get("last_modified_time")
    as_of = _parse_time(stamp)
    version = str(stamp) if stamp else None
    if per_warehouse and item.get("warehouses"):
        out = []
        for w in item["warehouses"]:
            on_hand = _decimal(w.get("warehouse_stock_on_hand"))
            available = _decimal(w.get("warehouse_available_stock", on_hand))
            out.append(
                StockLevel(
                    sku=sku,
                    location=str(w["warehouse_id"]),
                    on_hand=on_hand,
                    committed=max(on_hand - available, Decimal(0)),
                    as_of=as_of,
                    version=version,
                )
            )
        return out
    on_hand = _decimal(item.get("stock_on_hand"))
    available = _decimal(item.get("available_stock", on_hand))
    return [
        StockLevel(
            sku=sku,
            on_hand=on_hand,
            committed=max(on_hand - available, Decimal(0)),
            as_of=as_of,
            version=version,
        )
    ]


def build_adjustment(
    adjustment: StockAdjustment, item_id: str, when: datetime, warehouse_id: str | None
) -> dict[str, Any]:
    """The ``POST /inventoryadjustments`` body of one delta."""
    line: dict[str, Any] = {"item_id": item_id, "quantity_adjusted": _json_number(adjustment.delta)}
    if warehouse_id:
        line["warehouse_id"] = warehouse_id
    return {
        "date": when.astimezone(UTC).date().isoformat(),
        "reason": adjustment.reason,
        "adjustment_type": "quantity",
        "reference_number": adjustment.reference,
        "line_items": [line],
    }


def build_purchase_order(
    order: PurchaseOrder, item_ids: Mapping[str, str], warehouse_id: str | None
) -> dict[str, Any]:
    """The ``POST /purchaseorders`` body (sent with ``ignore_auto_number_generation``)."""
    body: dict[str, Any] = {
        "vendor_id": order.supplier_id,
        "purchaseorder_number": order.reference,
        "reference_number": order.reference,
        "date": order.created_at.astimezone(UTC).date().isoformat(),
        "line_items": [
            {"item_id": item_ids[line.sku], "quantity": _json_number(line.quantity)}
            for line in order.lines
        ],
    }
    if warehouse_id:
        body["warehouse_id"] = warehouse_id
    if order.status.value == "draft":
        body["status"] = "draft"
    return body


def _json_number(value: Decimal) -> int | float:
    # Zoho reads JSON numbers; quantities have few decimals, so float is exact enough here.
    return int(value) if value == value.to_integral_value() else float(value)


def parse_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secret: SecretStr,
    *,
    per_warehouse: bool = False,
    now: datetime | None = None,
    tolerance: float = _WEBHOOK_TOLERANCE,
) -> list[StockUpdate]:
    """Verify an item webhook and read the levels it reports.

    Raises:
        WebhookError: ``malformed``, ``bad_signature`` or ``too_old``.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    parts = dict(
        p.split("=", 1) for p in lowered.get("x-zoho-webhook-signature", "").split(",") if "=" in p
    )
    stamp, signature = parts.get("t"), parts.get("v")
    if not stamp or not signature:
        raise WebhookError("webhook is not signed", vendor=VENDOR, code="malformed")
    expected = hmac.new(
        secret.get_secret_value().encode(), stamp.encode() + b"." + body, "sha256"
    ).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise WebhookError("webhook signature does not match", vendor=VENDOR, code="bad_signature")
    try:
        sent = int(stamp) / 1000
    except ValueError:
        raise WebhookError("bad webhook timestamp", vendor=VENDOR, code="malformed") from None
    age = (now or datetime.now(UTC)).timestamp() - sent
    if abs(age) > tolerance:
        raise WebhookError(f"webhook is {age:.0f}s old", vendor=VENDOR, code="too_old")
    try:
        item = json.loads(body)["item"]
    except (ValueError, KeyError, TypeError):
        raise WebhookError("webhook body is not an item", vendor=VENDOR, code="malformed") from None
    return [
        StockUpdate(
            event_id=f"zoho:{item.get('item_id')}:{level.location}:{level.version}",
            source=VENDOR,
            level=level,
        )
        for level in parse_item_levels(item, per_warehouse=per_warehouse)
    ]


def _check_adjustment(adjustment: StockAdjustment) -> None:
    if not adjustment.delta.is_finite() or adjustment.delta == 0:
        raise InvalidInput(
            "an adjustment needs a non-zero delta",
            errors=[FieldError(("delta",), f"{adjustment.delta} is not a change", "zero")],
            vendor=VENDOR,
        )


# -- the adapter ------------------------------------------------------------------------
class ZohoInventory:
    """Zoho Inventory as an :class:`~dixis_integrations.protocols.InventorySource`."""

    name = VENDOR
    needs_oauth = True  # calls carry OAuth2 tokens only
    oauth_token_endpoint_auth = "client_secret_post"  # noqa: S105 - a method name
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
        config: ZohoConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        if config.webhook_secret is not None:
            register_secret(config.webhook_secret.get_secret_value())
        if isinstance(auth, OAuth2Auth):
            auth = ZohoAuth(auth.manager)  # same tokens, Zoho's own header scheme
        self.config = config
        self.tenant = tenant
        windows = [Window(100, 60.0, "per_minute")]
        if config.daily_limit is not None:
            windows.append(Window(config.daily_limit, 86_400.0, "per_day"))
        limits = Limits(
            windows=tuple(windows),
            concurrency=10 if config.paid_plan else 5,
            time_scale=time_scale,
        )
        self.endpoint = Endpoint(
            vendor=VENDOR,
            base_url=config.base_url,
            tenant=tenant,
            auth=auth,
            limits=limits,
            classify=classify,
        )

    def __repr__(self) -> str:
        return f"ZohoInventory(organization_id={self.config.organization_id!r})"

    def _get(self, path: str, operation: str, **params: Any) -> httpx.Request:
        query = {"organization_id": self.config.organization_id, **params}
        return self.endpoint.request("GET", path, operation=operation, params=query)

    def _warehouse(self, location: str) -> str | None:
        return None if location == "default" else location

    def _item_by_sku(self, sku: str) -> Operation[dict[str, Any]]:
        response = yield self._get("/items", "zoho.find_item", sku=sku)
        items = _body(response).get("items") or []
        match = [i for i in items if i.get("sku") == sku]
        if not match:
            raise NotFound(f"no item with SKU {sku!r}", vendor=VENDOR)
        if self.config.per_warehouse:
            detail = yield self._get(f"/items/{match[0]['item_id']}", "zoho.get_item")
            item: dict[str, Any] = _body(detail)["item"]
            return item
        return dict(match[0])

    def _level_of(self, item: Mapping[str, Any], sku: str, location: str) -> StockLevel:
        for level in parse_item_levels(item, per_warehouse=location != "default"):
            if level.location == location:
                return level
        raise NotFound(f"{sku!r} has no stock record at {location!r}", vendor=VENDOR)

    # -- InventorySource -------------------------------------------------------------------
    def check(self) -> Operation[HealthStatus]:
        """One cheap call: the organisation is reachable with these credentials."""
        yield self._get("/organizations", "zoho.organizations")
        return HealthStatus(self.name, True, f"organization {self.config.organization_id}")

    def stock_page(self, cursor: str | None = None) -> Operation[StockPage]:
        """A page of up to 200 items; the cursor is the next page number."""
        page = int(cursor or "1")
        response = yield self._get("/items", "zoho.list_items", page=page, per_page=PAGE_SIZE)
        body = _body(response)
        levels: list[StockLevel] = []
        for item in body.get("items") or []:
            if self.config.per_warehouse:
                detail = yield self._get(f"/items/{item['item_id']}", "zoho.get_item")
                item = _body(detail).get("item") or item
            levels.extend(parse_item_levels(item, per_warehouse=self.config.per_warehouse))
        more = bool((body.get("page_context") or {}).get("has_more_page"))
        return StockPage(levels=tuple(levels), next_cursor=str(page + 1) if more else None)

    def stock_level(self, sku: str, location: str = "default") -> Operation[StockLevel]:
        """The level of one SKU (``location`` is a warehouse id, or ``"default"``)."""
        item = yield from self._item_by_sku(sku)
        return self._level_of(item, sku, location)

    def adjust(self, adjustment: StockAdjustment) -> Operation[StockLevel]:
        """Post an inventory adjustment, once per ``adjustment.reference``."""
        _check_adjustment(adjustment)
        item = yield from self._item_by_sku(adjustment.sku)
        seen = yield self._get(
            "/inventoryadjustments", "zoho.find_adjustment", reference_number=adjustment.reference
        )
        if not (_body(seen).get("inventory_adjustments") or []):
            body = build_adjustment(
                adjustment,
                str(item["item_id"]),
                datetime.now(UTC),
                self._warehouse(adjustment.location),
            )
            yield self.endpoint.request(
                "POST",
                "/inventoryadjustments",
                operation="zoho.create_adjustment",
                params={"organization_id": self.config.organization_id},
                json=body,
            )
        fresh = yield self._get(f"/items/{item['item_id']}", "zoho.get_item")
        return self._level_of(_body(fresh)["item"], adjustment.sku, adjustment.location)

    def set_level(
        self, level: StockLevel, *, expected_version: str | None = None
    ) -> Operation[StockLevel]:
        """Write an absolute on-hand level as the adjustment that reaches it.

        Zoho has no compare-and-set: the item is read first and ``Conflict`` is raised when
        its ``last_modified_time`` is not ``expected_version`` (detection, not atomicity).
        """
        if level.on_hand < 0:
            raise InvalidInput(
                "negative stock",
                vendor=VENDOR,
                errors=[FieldError(("on_hand",), "must not be negative")],
            )
        response = yield self._get("/items", "zoho.find_item", sku=level.sku)
        items = [i for i in _body(response).get("items") or [] if i.get("sku") == level.sku]
        if not items:
            raise NotFound(f"no item with SKU {level.sku!r}", vendor=VENDOR)
        detail = yield self._get(f"/items/{items[0]['item_id']}", "zoho.get_item")
        item = _body(detail)["item"]
        current = self._level_of(item, level.sku, level.location)
        if expected_version is not None and current.version != expected_version:
            raise Conflict(
                f"{level.sku} changed at Zoho since version {expected_version}",
                vendor=VENDOR,
                vendor_code="stale_version",
            )
        delta = level.on_hand - current.on_hand
        if delta:
            stamp = current.version or str(int(time.time()))
            adjustment = StockAdjustment(
                sku=level.sku,
                location=level.location,
                delta=delta,
                reason="stock count",
                reference=f"set:{level.sku}:{level.location}:{stamp}"[:100],
            )
            body = build_adjustment(
                adjustment, str(item["item_id"]), datetime.now(UTC), self._warehouse(level.location)
            )
            yield self.endpoint.request(
                "POST",
                "/inventoryadjustments",
                operation="zoho.create_adjustment",
                params={"organization_id": self.config.organization_id},
                json=body,
            )
        fresh = yield self._get(f"/items/{item['item_id']}", "zoho.get_item")
        return self._level_of(_body(fresh)["item"], level.sku, level.location)

    def create_purchase_order(self, order: PurchaseOrder) -> Operation[PurchaseOrder]:
        """Create the purchase order (numbered with our reference), or return the one that
        already carries it.
        """
        found = yield self._get(
            "/purchaseorders", "zoho.find_purchase_order", purchaseorder_number=order.reference
        )
        existing = _body(found).get("purchaseorders") or []
        if existing:
            return order.model_copy(update={"external_id": str(existing[0]["purchaseorder_id"])})
        item_ids: dict[str, str] = {}
        for line in order.lines:
            item = yield from self._item_by_sku(line.sku)
            item_ids[line.sku] = str(item["item_id"])
        body = build_purchase_order(order, item_ids, self._warehouse(order.location))
        try:
            response = yield self.endpoint.request(
                "POST",
                "/purchaseorders",
                operation="zoho.create_purchase_order",
                params={
                    "organization_id": self.config.organization_id,
                    "ignore_auto_number_generation": "true",
                },
                json=body,
            )
        except Conflict:
            # Created by an earlier attempt whose answer was lost: find it by number.
            again = yield self._get(
                "/purchaseorders", "zoho.find_purchase_order", purchaseorder_number=order.reference
            )
            rows = _body(again).get("purchaseorders") or []
            if not rows:
                raise
            return order.model_copy(update={"external_id": str(rows[0]["purchaseorder_id"])})
        created = _body(response)["purchaseorder"]
        return order.model_copy(update={"external_id": str(created["purchaseorder_id"])})

    # -- webhooks ------------------------------------------------------------------------
    def read_webhook(self, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
        """Verify and read a delivery as it arrived; see :meth:`parse_webhook`."""
        return list(self.parse_webhook(dict(request.headers), request.body))

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, *, now: datetime | None = None
    ) -> list[StockUpdate]:
        """Verify and read an item webhook with the configured secret.

        Raises:
            ConfigurationError: no ``webhook_secret`` configured.
            WebhookError: a bad signature, an old delivery, or a body that is not an item.
        """
        if self.config.webhook_secret is None:
            raise ConfigurationError(
                "needed to verify webhooks", key="webhook_secret", vendor=VENDOR
            )
        return parse_webhook(
            headers,
            body,
            self.config.webhook_secret,
            per_warehouse=self.config.per_warehouse,
            now=now,
        )
