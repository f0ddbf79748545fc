"""A Geniki Taxydromiki emulator: SOAP ``JobServicesV2.asmx`` as its Web API (V2) describes.

``Authenticate`` hands out a key that expires (error 11); every answer carries ``Result``
(0 success, 1 auth, 3 no data, 4 invalid operation, 700-706 validation, 9 not found, 11
key expired, 15 rate limit). Labels come from ``GetVouchersPdf`` over HTTP GET as real PDF
bytes, or as ZPL. Jobs can be cancelled until ``ClosePendingJobs``; tracking advances on
the (scaled) clock after that, and can include a checkpoint that is later retracted.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx

from dixis_integrations.sandbox._soap import (
    minimal_pdf,
    read_soap,
    soap_fault,
    soap_response,
    zpl_label,
)
from dixis_integrations.sandbox.kit import Emulator, Fault, FaultPlan, FixedWindow, route

__all__ = ["GenikiSandbox"]

_NS = "http://tempuri.org/"
_USER, _PASSWORD, _APP_KEY = "dixis", "sandbox-geniki-pass", "sandbox-geniki-app-key"
_KNOWN_SERVICES = {"ΑΜ", "ΑΝ", "ΑΣ", "5Σ", "3Σ", "ΕΨ", "ΧΠ"}
_CALENDAR = datetime(2026, 11, 2, 10, 0)  # Geniki sends local (Athens) times, no offset
# (vendor seconds after ClosePendingJobs, code, status text, shop)
_JOURNEY: dict[str, tuple[tuple[int, str, str, str], ...]] = {
    "delivered": (
        (2 * 3600, "C_H1", "ΑΦΙΞΗ ΣΤΟ ΚΕΝΤΡΟ ΔΙΑΛΟΓΗΣ", "ΑΘΗΝΑ HUB"),
        (8 * 3600, "C_H2", "ΑΝΑΧΩΡΗΣΗ ΑΠΟ ΚΕΝΤΡΟ ΔΙΑΛΟΓΗΣ", "ΑΘΗΝΑ HUB"),
        (14 * 3600, "C_A3", "ΣΕ ΔΙΑΝΟΜΗ", "ΚΑΤΑΣΤΗΜΑ ΠΡΟΟΡΙΣΜΟΥ"),
        (18 * 3600, "C_W2", "ΠΑΡΑΔΟΘΗΚΕ", "ΚΑΤΑΣΤΗΜΑ ΠΡΟΟΡΙΣΜΟΥ"),
    ),
    "retracted": (
        (2 * 3600, "C_H1", "ΑΦΙΞΗ ΣΤΟ ΚΕΝΤΡΟ ΔΙΑΛΟΓΗΣ", "ΑΘΗΝΑ HUB"),
        (14 * 3600, "C_A3", "ΣΕ ΔΙΑΝΟΜΗ", "ΚΑΤΑΣΤΗΜΑ ΠΡΟΟΡΙΣΜΟΥ"),
        (15 * 3600, "C_K9", "ΑΚΥΡΩΣΗ ΠΡΟΗΓΟΥΜΕΝΟΥ ΣΗΜΕΙΟΥ ΕΛΕΓΧΟΥ", "ΚΑΤΑΣΤΗΜΑ ΠΡΟΟΡΙΣΜΟΥ"),
        (20 * 3600, "C_EA_AS", "ΑΠΩΝ ΠΑΡΑΛΗΠΤΗΣ", "ΚΑΤΑΣΤΗΜΑ ΠΡΟΟΡΙΣΜΟΥ"),
    ),
    "returned": (
        (2 * 3600, "C_H1", "ΑΦΙΞΗ ΣΤΟ ΚΕΝΤΡΟ ΔΙΑΛΟΓΗΣ", "ΑΘΗΝΑ HUB"),
        (14 * 3600, "C_EA_AP", "ΑΡΝΗΣΗ ΠΑΡΑΛΑΒΗΣ", "ΚΑΤΑΣΤΗΜΑ ΠΡΟΟΡΙΣΜΟΥ"),
        (30 * 3600, "C_E1", "ΕΠΙΣΤΡΟΦΗ ΣΤΟΝ ΑΠΟΣΤΟΛΕΑ", "ΑΘΗΝΑ HUB"),
    ),
}
_SHOPS = (
    {
        "Code": "ΑΘ01",
        "Name": "Γενική Ταχυδρομική Ομόνοια",
        "Zip": "10431",
        "Latitude": "37.9841",
        "Longitude": "23.7280",
    },
    {
        "Code": "ΘΕ01",
        "Name": "Γενική Ταχυδρομική Θεσσαλονίκη",
        "Zip": "54625",
        "Latitude": "40.6401",
        "Longitude": "22.9444",
    },
)
_LOCKERS = (
    {
        "Code": "L1056",
        "Name": "Locker Σύνταγμα",
        "Zip": "10563",
        "Latitude": "37.9755",
        "Longitude": "23.7348",
    },
)


@dataclass
class _Job:
    job_id: int
    voucher: str
    record: dict[str, Any]
    created: float
    cancelled: bool = False
    closed_at: float | None = None
    outcome: str = "delivered"
    sub_vouchers: list[str] = field(default_factory=list)


class GenikiSandbox(Emulator):
    """Geniki's JobServicesV2 in memory.

    Knobs: :meth:`expire_keys` (the next call gets error 11), :meth:`set_outcome`
    (``delivered``, ``retracted`` or ``returned``), :meth:`advance` (the vendor clock).
    """

    name: ClassVar[str] = "geniki"

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
        key_lifetime: float = 3600,
        calls_per_minute: int = 600,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.key_lifetime = key_lifetime
        self.keys: dict[str, float] = {}
        self.authentications = 0
        self.jobs: dict[int, _Job] = {}
        self.by_voucher: dict[str, _Job] = {}
        self.window = FixedWindow(calls_per_minute, 60.0, self.clock, "geniki-per-minute")
        self._job_ids = itertools.count(1001)
        self._vouchers = itertools.count(4_601_000_001)
        self._offset = 0.0
        self._start = self._now()

    def credentials(self) -> dict[str, str]:
        """What a Geniki client config needs."""
        return {"username": _USER, "password": _PASSWORD, "application_key": _APP_KEY}

    def expire_keys(self) -> None:
        """Every key handed out so far expires now."""
        self.keys = dict.fromkeys(self.keys, 0.0)

    def set_outcome(self, voucher: str, outcome: str) -> None:
        """How the voucher's journey goes: delivered, retracted or returned."""
        self.by_voucher[voucher].outcome = outcome

    def advance(self, vendor_seconds: float) -> None:
        """Move the vendor clock forward."""
        self._offset += vendor_seconds

    def _now(self) -> float:
        return self.clock.monotonic() / self.clock.scale + self._offset

    def _local(self, vendor_time: float) -> str:
        return (_CALENDAR + timedelta(seconds=vendor_time - self._start)).isoformat()

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.SERVER_ERROR:
            return soap_fault("Server", "Server was unable to process request.")
        if fault is Fault.MALFORMED:
            return httpx.Response(200, content=b"<?xml version='1.0'?><soap:Envelope><soap:Bo")
        if fault is Fault.EXPIRED_TOKEN:
            return soap_response("Expired", {"Result": 11}, _NS)
        if fault is Fault.RATE_LIMIT:
            return soap_response("Throttled", {"Result": 15}, _NS)
        return super().fault_response(fault, request)

    # -- dispatch --------------------------------------------------------------------
    @route("POST", r"/JobServicesV2\.asmx")
    def _soap(self, request: httpx.Request) -> httpx.Response:
        call = read_soap(request)
        if call is None:
            return soap_fault("Client", "Server was unable to read request.", 400)
        operation, params = call
        action = request.headers.get("SOAPAction", "").strip('"')
        if action != _NS + operation:
            return soap_fault("Client", f"Server did not recognize SOAPAction: {action}.")
        if operation == "Authenticate":
            return self._authenticate(params)
        handler = getattr(self, "_op_" + operation, None)
        if handler is None:
            return soap_fault("Client", f"Unknown operation {operation}.")
        key = str(params.get("sAuthKey") or params.get("authKey") or "")
        expiry = self.keys.get(key)
        if expiry is None:
            return soap_response(operation, {"Result": 1}, _NS)
        if expiry <= self._now():
            return soap_response(operation, {"Result": 11}, _NS)
        allowed, _, _ = self.window.hit(key)
        if not allowed:
            return soap_response(operation, {"Result": 15}, _NS)
        result: dict[str, Any] = handler(params)
        return soap_response(operation, result, _NS)

    def _authenticate(self, params: dict[str, Any]) -> httpx.Response:
        self.authentications += 1
        given = (params.get("sUsrName"), params.get("sUsrPwd"), params.get("applicationKey"))
        if given != (_USER, _PASSWORD, _APP_KEY):
            return soap_response("Authenticate", {"Result": 1, "Key": None}, _NS)
        key = secrets.token_hex(16)
        self.keys[key] = self._now() + self.key_lifetime
        return soap_response("Authenticate", {"Result": 0, "Key": key}, _NS)

    # -- operations -------------------------------------------------------------------
    def _check_record(self, record: dict[str, Any]) -> int:
        for name in ("OrderId", "Name", "Address", "City"):
            if not str(record.get(name) or "").strip():
                return 700
        services = {s for s in str(record.get("Services") or "").split(",") if s}
        if services - _KNOWN_SERVICES:
            return 704
        try:
            cod = Decimal(str(record.get("CodAmount") or "0"))
            weight = Decimal(str(record.get("Weight") or "0"))
        except InvalidOperation:
            return 703
        if cod > 0 and not services & {"ΑΜ", "ΑΝ"}:
            return 701
        if cod <= 0 and services & {"ΑΜ", "ΑΝ"}:
            return 702
        if not 0 < weight <= 40:
            return 703
        zipcode = str(record.get("Zip") or "")
        if zipcode and not (len(zipcode) == 5 and zipcode.isdigit()):
            return 705
        return 0

    def _op_CreateJob(self, params: dict[str, Any]) -> dict[str, Any]:
        record = params.get("oVoucher")
        if not isinstance(record, dict):
            return {"Result": 4}
        if params.get("eType") not in ("Voucher", "Pickup", "SendAndReturn"):
            return {"Result": 4}
        problem = self._check_record(record)
        if problem:
            return {"Result": problem, "JobId": 0, "Voucher": None}
        job = _Job(next(self._job_ids), str(next(self._vouchers)), record, self._now())
        pieces = int(record.get("Pieces") or 1)
        job.sub_vouchers = [f"{job.voucher}{i:02d}" for i in range(2, pieces + 1)]
        self.jobs[job.job_id] = job
        self.by_voucher[job.voucher] = job
        return {
            "Result": 0,
            "JobId": job.job_id,
            "Voucher": job.voucher,
            "SubVouchers": {"string": job.sub_vouchers} if job.sub_vouchers else None,
        }

    def _op_CancelJob(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            job = self.jobs.get(int(params.get("nJobId") or 0))
        except ValueError:
            job = None
        if job is None or job.cancelled:
            return {"Result": 9}
        if job.closed_at is not None:
            return {"Result": 4}
        job.cancelled = params.get("bCancel") == "true"
        return {"Result": 0}

    def _op_ClosePendingJobs(self, params: dict[str, Any]) -> dict[str, Any]:
        pending = [j for j in self.jobs.values() if not j.cancelled and j.closed_at is None]
        if not pending:
            return {"Result": 3}
        now = self._now()
        for job in pending:
            job.closed_at = now
        return {"Result": 0}

    def _op_GetVoucherZPL(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.by_voucher.get(str(params.get("voucherNo") or ""))
        if job is None:
            return {"Result": 9}
        return {"Result": 0, "Zpl": zpl_label(job.voucher, [str(job.record.get("Name"))])}

    def _op_TrackAndTrace(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.by_voucher.get(str(params.get("voucherNo") or ""))
        if job is None:
            return {"Result": 9}
        checkpoints = [
            {
                "StatusCode": "C_NW",
                "Status": "ΝΕΑ ΑΠΟΣΤΟΛΗ",
                "StatusDate": self._local(job.created),
                "Shop": "ΑΘΗΝΑ",
            }
        ]
        if job.cancelled:
            checkpoints.append(
                {
                    "StatusCode": "C_P4",
                    "Status": "ΑΚΥΡΩΜΕΝΗ",
                    "StatusDate": self._local(job.created),
                    "Shop": "ΑΘΗΝΑ",
                }
            )
        elif job.closed_at is not None:
            elapsed = self._now() - job.closed_at
            for offset, code, status, shop in _JOURNEY[job.outcome]:
                if elapsed >= offset:
                    checkpoints.append(
                        {
                            "StatusCode": code,
                            "Status": status,
                            "StatusDate": self._local(job.closed_at + offset),
                            "Shop": shop,
                        }
                    )
        delivered = checkpoints[-1]["StatusCode"] == "C_W2"
        return {
            "Result": 0,
            "Checkpoints": {"Checkpoint": checkpoints},
            "Status": "DELIVERED" if delivered else "IN TRANSIT",
            "Consignee": job.record.get("Name") if delivered else None,
        }

    def _op_GetShopsList(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Result": 0, "Shops": {"Shop": list(_SHOPS)}}

    def _op_GetLockersList(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Result": 0, "Lockers": {"Locker": list(_LOCKERS)}}

    @route("GET", r"/JobServicesV2\.asmx/GetVouchersPdf")
    def _pdf(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        expiry = self.keys.get(params.get("authKey", ""))
        if expiry is None or expiry <= self._now():
            return soap_response("GetVouchersPdf", {"Result": 1 if expiry is None else 11}, _NS)
        numbers = [v for v in params.get("voucherNumbers", "").split(",") if v]
        if not numbers or any(n not in self.by_voucher for n in numbers):
            return soap_response("GetVouchersPdf", {"Result": 9}, _NS)
        size = params.get("format", "Flyer")
        pdf = minimal_pdf(f"GENIKI {size} " + " ".join(numbers))
        return httpx.Response(200, content=pdf, headers={"content-type": "application/pdf"})
