"""A Courier Center emulator: the ``ccservice`` REST/JSON API of its WooCommerce plugin.

Every body carries ``Context`` (``UserAlias``, ``CredentialValue``, ``ApiKey``); answers
are ``{"Result": "Success", ...}`` or ``{"Result": "Failure", "Errors": [{"Code",
"Message"}]}`` with HTTP 200. Shipments can be voided until they are on a manifest;
their status advances on the (scaled) clock after that, ending at 29 (delivered).
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx

from dixis_integrations.sandbox._soap import minimal_pdf
from dixis_integrations.sandbox.kit import Emulator, FaultPlan, json_response, read_json, route

__all__ = ["CourierCenterSandbox"]

_CONTEXT = {
    "UserAlias": "CourierCenterAPITestUser",
    "CredentialValue": "sandbox-cc-credential",
    "ApiKey": "CourierCenterAPITestKey",
}
_ACCOUNT = "2100000001"
_CALENDAR = datetime(2026, 11, 2, 10, 0)
_JOURNEY = (
    (2 * 3600, "3", "ΠΑΡΑΛΑΒΗ ΑΠΟ ΑΠΟΣΤΟΛΕΑ", "ΑΘΗΝΑ"),
    (8 * 3600, "7", "ΔΙΑΚΙΝΗΣΗ ΠΡΟΣ ΣΤΑΘΜΟ ΠΡΟΟΡΙΣΜΟΥ", "ΑΣΠΡΟΠΥΡΓΟΣ"),
    (14 * 3600, "11", "ΣΕ ΔΙΑΝΟΜΗ", "ΣΤΑΘΜΟΣ ΠΡΟΟΡΙΣΜΟΥ"),
    (18 * 3600, "29", "ΠΑΡΑΔΟΘΗΚΕ", "ΣΤΑΘΜΟΣ ΠΡΟΟΡΙΣΜΟΥ"),
)
_SERVICES = {"211", "031", "051"}


@dataclass
class _Shipment:
    number: str
    body: dict[str, Any]
    created: float
    voided: bool = False
    manifested_at: float | None = None


def _failure(message: str, code: str = "VAL") -> httpx.Response:
    return json_response(200, {"Result": "Failure", "Errors": [{"Code": code, "Message": message}]})


class CourierCenterSandbox(Emulator):
    """Courier Center's ``ccservice`` in memory. Knob: :meth:`advance` (the vendor clock)."""

    name: ClassVar[str] = "courier_center"

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.shipments: dict[str, _Shipment] = {}
        self.manifests: list[list[str]] = []
        self._numbers = itertools.count(5_500_000_001)
        self._offset = 0.0
        self._start = self._now()

    def credentials(self) -> dict[str, str]:
        """What a Courier Center client config needs."""
        return {
            "user_alias": _CONTEXT["UserAlias"],
            "credential_value": _CONTEXT["CredentialValue"],
            "api_key": _CONTEXT["ApiKey"],
            "billing_account": _ACCOUNT,
        }

    def advance(self, vendor_seconds: float) -> None:
        """Move the vendor clock forward."""
        self._offset += vendor_seconds

    def _now(self) -> float:
        return self.clock.monotonic() / self.clock.scale + self._offset

    def _local(self, vendor_time: float) -> str:
        return (_CALENDAR + timedelta(seconds=vendor_time - self._start)).isoformat()

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        body = read_json(request)
        context = body.get("Context") if isinstance(body, dict) else None
        if context != _CONTEXT:
            return _failure("Invalid credentials: authentication failed", "AUTH")
        return None

    @route("POST", r"/ccservice/api/Shipment")
    def _create(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if (body.get("Requestor") or {}).get("CarrierBillingAccount") != _ACCOUNT:
            return _failure("Unknown CarrierBillingAccount")
        consignee = body.get("Consignee") or {}
        for name in ("ContactName", "Address", "City", "ZipCode"):
            if not str(consignee.get(name) or "").strip():
                return _failure(f"Consignee.{name} is required")
        if body.get("BasicService") not in _SERVICES:
            return _failure("BasicService is not valid")
        items = body.get("Items") or []
        if not items or len(items) != body.get("NoOfItems"):
            return _failure("NoOfItems must match Items")
        for item in items:
            try:
                weight = Decimal(str((item.get("Weight") or {}).get("Value")))
            except InvalidOperation:
                return _failure("Items[].Weight.Value must be a number")
            if not 0 < weight <= 35:
                return _failure("Items[].Weight.Value must be above 0 and at most 35")
        if body.get("CODs") and consignee.get("Country") != "GR":
            return _failure("COD is available for domestic shipments only")
        locker = body.get("LockerDeliveryInfo")
        if locker is not None:
            # A chosen BOX NOW locker is Prefix "ATH" with its Code; "BOXNOW" alone asks
            # for the locker nearest the consignee (Courier Center's WooCommerce plugin).
            prefix = (locker or {}).get("Prefix")
            if prefix not in ("ATH", "BOXNOW"):
                return _failure("LockerDeliveryInfo.Prefix is not valid")
            if prefix == "ATH" and not str(locker.get("Code") or "").strip():
                return _failure("LockerDeliveryInfo.Code is required")
        number = str(next(self._numbers))
        self.shipments[number] = _Shipment(number, body, self._now())
        answer: dict[str, Any] = {"Result": "Success", "ShipmentNumber": number, "Errors": []}
        if body.get("GenerateReturnAWB"):
            answer["ReturnShipmentNumber"] = str(next(self._numbers))
        return json_response(200, answer)

    def _find(self, number: Any) -> _Shipment | None:
        return self.shipments.get(str(number or ""))

    @route("POST", r"/ccservice/api/voucher")
    def _voucher(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        numbers = [n for n in str(body.get("ShipmentNumber") or "").split(",") if n]
        if not numbers or any(self._find(n) is None for n in numbers):
            return _failure("Shipment not found", "NF")
        if body.get("Template") not in ("cleanpdf", "single_100x150"):
            return _failure("Unknown Template")
        pdf = minimal_pdf(f"COURIER CENTER {body['Template']} " + " ".join(numbers))
        return httpx.Response(200, content=pdf, headers={"content-type": "application/pdf"})

    @route("POST", r"/ccservice/api/Shipment/Void")
    def _void(self, request: httpx.Request) -> httpx.Response:
        shipment = self._find(read_json(request).get("ShipmentNumber"))
        if shipment is None or shipment.voided:
            return _failure("Shipment not found", "NF")
        if shipment.manifested_at is not None:
            return _failure("Shipment is on a manifest and cannot be voided", "VOID")
        shipment.voided = True
        return json_response(200, {"Result": "Success", "Errors": []})

    @route("POST", r"/ccservice/api/Shipment/GetShipmentDetails")
    def _details(self, request: httpx.Request) -> httpx.Response:
        shipment = self._find(read_json(request).get("Identifier"))
        if shipment is None:
            return _failure("Shipment not found", "NF")
        history = [
            {
                "Status": "1",
                "StatusDesc": "ΚΑΤΑΧΩΡΗΘΗΚΕ",
                "Date": self._local(shipment.created),
                "Station": "ΑΘΗΝΑ",
            }
        ]
        if shipment.voided:
            history.append(
                {
                    "Status": "99",
                    "StatusDesc": "ΑΚΥΡΩΘΗΚΕ",
                    "Date": self._local(shipment.created),
                    "Station": "ΑΘΗΝΑ",
                }
            )
        elif shipment.manifested_at is not None:
            elapsed = self._now() - shipment.manifested_at
            for offset, code, text, station in _JOURNEY:
                if elapsed >= offset:
                    history.append(
                        {
                            "Status": code,
                            "StatusDesc": text,
                            "Date": self._local(shipment.manifested_at + offset),
                            "Station": station,
                        }
                    )
        last = history[-1]
        info = {
            "ShipmentNumber": shipment.number,
            "ShipmentStatus": last["Status"],
            "ShipmentStatusDesc": last["StatusDesc"],
            "History": history,
        }
        return json_response(200, {"Result": "Success", "ShipmentInfo": info, "Errors": []})

    @route("POST", r"/ccservice/api/Manifest")
    def _manifest(self, request: httpx.Request) -> httpx.Response:
        pending = [s for s in self.shipments.values() if not s.voided and s.manifested_at is None]
        if not pending:
            return _failure("No shipments to manifest", "EMPTY")
        now = self._now()
        for shipment in pending:
            shipment.manifested_at = now
        self.manifests.append([s.number for s in pending])
        pdf = minimal_pdf("MANIFEST " + " ".join(s.number for s in pending))
        return json_response(
            200,
            {
                "Result": "Success",
                "ManifestNumber": f"M{len(self.manifests):05d}",
                "Manifest": base64.b64encode(pdf).decode(),
                "Errors": [],
            },
        )
