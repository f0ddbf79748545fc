"""An emulator of the Example Parcels API, built on the dixis-integrations sandbox kit.

Written from the (imaginary) vendor's documentation, not from the adapter: API key in
``X-Api-Key``, vouchers created by POST with an ``Idempotency-Key``, labels as PDF,
tracking events, cancellation until the parcel is picked up.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import httpx

from dixis_integrations.sandbox.kit import Emulator, FaultPlan, json_response, read_json, route

__all__ = ["ExampleSandbox"]

_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


class ExampleSandbox(Emulator):
    """The Example Parcels API in memory."""

    name = "example"

    def __init__(self, *, api_key: str = "ex-sandbox-key-0001", faults: FaultPlan | None = None):
        super().__init__(faults=faults)
        self.api_key = api_key
        self.vouchers: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, str] = {}
        self._numbers = itertools.count(1)

    def credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("x-api-key") != self.api_key:
            return json_response(401, {"error": "bad api key"})
        return None

    @route("GET", r"/v1/ping")
    def ping(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"ok": True})

    @route("POST", r"/v1/vouchers")
    def create(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        if key and key in self._by_key:
            return json_response(200, self.vouchers[self._by_key[key]])
        body = read_json(request) or {}
        missing = [f for f in ("reference", "recipient", "weight_kg") if not body.get(f)]
        if missing:
            return json_response(422, {"error": "missing fields", "fields": missing})
        number = f"EX{next(self._numbers):08d}"
        now = datetime.now(UTC).isoformat()
        voucher = {
            "voucher": number,
            "reference": body["reference"],
            "status": "created",
            "created_at": now,
            "cod": body.get("cod"),
            "events": [{"code": "CR", "at": now, "text": "Voucher created"}],
        }
        self.vouchers[number] = voucher
        if key:
            self._by_key[key] = number
        return json_response(201, voucher)

    @route("GET", r"/v1/vouchers/(?P<number>EX\d+)/label")
    def label(self, request: httpx.Request, number: str) -> httpx.Response:
        if number not in self.vouchers:
            return json_response(404, {"error": "no such voucher"})
        return httpx.Response(200, content=_PDF, headers={"content-type": "application/pdf"})

    @route("GET", r"/v1/vouchers/(?P<number>EX\d+)")
    def show(self, request: httpx.Request, number: str) -> httpx.Response:
        voucher = self.vouchers.get(number)
        if voucher is None:
            return json_response(404, {"error": "no such voucher"})
        return json_response(200, voucher)

    @route("DELETE", r"/v1/vouchers/(?P<number>EX\d+)")
    def cancel(self, request: httpx.Request, number: str) -> httpx.Response:
        voucher = self.vouchers.get(number)
        if voucher is None:
            return json_response(404, {"error": "no such voucher"})
        if voucher["status"] != "cancelled":
            voucher["status"] = "cancelled"
            now = datetime.now(UTC).isoformat()
            voucher["events"].append({"code": "CX", "at": now, "text": "Cancelled"})
        return json_response(200, voucher)
