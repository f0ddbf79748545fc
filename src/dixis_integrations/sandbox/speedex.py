"""A Speedex emulator: SOAP ``accesspoint.asmx`` as the public integrations call it.

``CreateSession`` opens a session (``returnCode`` 1; 100 for bad credentials) that expires
after a while of vendor time; calls with an unknown or expired session get ``returnCode``
300. ``CreateBOL`` takes 1 to 10 BOLs; ``GetBOLPdf`` returns base64 PDFs; ``CancelBOL``
works until the parcel is picked up; ``GetTraceByVoucher`` returns checkpoints with free
text statuses that advance on the (scaled) clock.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx

from dixis_integrations.sandbox._soap import minimal_pdf, read_soap, soap_fault, soap_response
from dixis_integrations.sandbox.kit import Emulator, Fault, FaultPlan, route

__all__ = ["SpeedexSandbox"]

_NS = "http://tempuri.org/"
_USER, _PASSWORD = "DEMO", "sandbox-speedex-pass"
_CUSTOMER, _AGREEMENT = "DEMO0001", "003001"
_CALENDAR = datetime(2026, 11, 2, 10, 0)
_JOURNEY = (
    (3 * 3600, "1", "ΠΑΡΑΛΗΦΘΗΚΕ ΑΠΟ ΤΟΝ ΑΠΟΣΤΟΛΕΑ", "ΑΘΗΝΑ"),
    (9 * 3600, "2", "ΑΦΙΞΗ ΣΤΟ ΚΕΝΤΡΟ ΔΙΑΛΟΓΗΣ", "ΜΕΤΑΜΟΡΦΩΣΗ"),
    (15 * 3600, "3", "ΣΕ ΔΙΑΝΟΜΗ", "ΚΑΤΑΣΤΗΜΑ ΠΡΟΟΡΙΣΜΟΥ"),
    (19 * 3600, "4", "ΠΑΡΑΔΟΘΗΚΕ", "ΚΑΤΑΣΤΗΜΑ ΠΡΟΟΡΙΣΜΟΥ"),
)
_BRANCHES = (
    {"BranchID": "101", "BranchName": "SPEEDEX ΑΘΗΝΑ ΚΕΝΤΡΟ", "Zip": "10431"},
    {"BranchID": "540", "BranchName": "SPEEDEX ΘΕΣΣΑΛΟΝΙΚΗ", "Zip": "54625"},
)


def _listed(params: dict[str, Any], outer: str, inner: str) -> list[Any]:
    """The repeated ``inner`` elements of ``outer`` (one element reads as a list of one)."""
    holder = params.get(outer)
    value = holder.get(inner) if isinstance(holder, dict) else None
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass
class _Bol:
    voucher: str
    fields: dict[str, Any]
    created: float
    cancelled: bool = False


class SpeedexSandbox(Emulator):
    """Speedex's access point in memory.

    Knobs: :meth:`expire_sessions`, :meth:`advance` (the vendor clock), ``pickup_after``
    (vendor seconds after which a BOL counts as picked up and can no longer be cancelled).
    """

    name: ClassVar[str] = "speedex"

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
        session_lifetime: float = 1800,
        pickup_after: float = 3 * 3600,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.session_lifetime = session_lifetime
        self.pickup_after = pickup_after
        self.sessions: dict[str, float] = {}
        self.sessions_opened = 0
        self.bols: dict[str, _Bol] = {}
        self.create_calls = 0
        self._vouchers = itertools.count(700_000_000_001)
        self._offset = 0.0
        self._start = self._now()

    def credentials(self) -> dict[str, str]:
        """What a Speedex client config needs."""
        return {
            "username": _USER,
            "password": _PASSWORD,
            "customer_id": _CUSTOMER,
            "agreement_id": _AGREEMENT,
        }

    def expire_sessions(self) -> None:
        """Every open session expires now."""
        self.sessions = dict.fromkeys(self.sessions, 0.0)

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
            return httpx.Response(200, content=b"<?xml version='1.0'?><soap:Env")
        if fault is Fault.EXPIRED_TOKEN:
            return soap_response(
                "Expired", {"returnCode": 300, "returnMessage": "Invalid session"}, _NS
            )
        return super().fault_response(fault, request)

    @staticmethod
    def _ok(operation: str, **values: Any) -> httpx.Response:
        return soap_response(operation, {"returnCode": 1, "returnMessage": "OK", **values}, _NS)

    @staticmethod
    def _error(operation: str, code: int, message: str) -> httpx.Response:
        return soap_response(operation, {"returnCode": code, "returnMessage": message}, _NS)

    @route("POST", r"/accesspoint\.asmx")
    def _soap(self, request: httpx.Request) -> httpx.Response:
        call = read_soap(request)
        if call is None:
            return soap_fault("Client", "Server was unable to read request.", 400)
        operation, params = call
        if request.headers.get("SOAPAction", "").strip('"') != _NS + operation:
            return soap_fault(
                "Client", "Server did not recognize the value of HTTP Header SOAPAction."
            )
        if operation == "CreateSession":
            self.sessions_opened += 1
            if (params.get("username"), params.get("password")) != (_USER, _PASSWORD):
                return self._error(operation, 100, "Invalid username or password")
            session = secrets.token_hex(12)
            self.sessions[session] = self._now() + self.session_lifetime
            return self._ok(operation, sessionId=session)
        handler = getattr(self, "_op_" + operation, None)
        if handler is None:
            return soap_fault("Client", f"Unknown operation {operation}.")
        session = str(params.get("sessionID") or "")
        expiry = self.sessions.get(session)
        if expiry is None or expiry <= self._now():
            return self._error(operation, 300, "Invalid session")
        result: httpx.Response = handler(operation, params)
        return result

    # -- operations -------------------------------------------------------------------
    def _op_DestroySession(self, operation: str, params: dict[str, Any]) -> httpx.Response:
        self.sessions.pop(str(params.get("sessionID")), None)
        return self._ok(operation)

    def _check(self, fields: dict[str, Any]) -> str | None:
        for name in ("RCV_Name", "RCV_Addr1", "RCV_Zip_Code"):
            if not str(fields.get(name) or "").strip():
                return f"{name} is required"
        if (fields.get("SND_Customer_Id"), fields.get("Snd_agreement_id")) != (
            _CUSTOMER,
            _AGREEMENT,
        ):
            return "Unknown customer or agreement"
        try:
            weight = Decimal(str(fields.get("Voucher_Weight") or "0"))
            cod = Decimal(str(fields.get("Pod_Amount_Cash") or "0"))
        except InvalidOperation:
            return "Invalid number"
        if weight < Decimal("0.5"):
            return "Voucher_Weight must be at least 0.5"
        if cod > 0 and fields.get("Pod_Amount_Description") not in ("M", "E"):
            return "Pod_Amount_Description must be M or E for COD"
        return None

    def _op_CreateBOL(self, operation: str, params: dict[str, Any]) -> httpx.Response:
        self.create_calls += 1
        listed = (
            (params.get("inListPod") or {}).get("BOL")
            if isinstance(params.get("inListPod"), dict)
            else None
        )
        bols = listed if isinstance(listed, list) else [listed] if isinstance(listed, dict) else []
        if not 1 <= len(bols) <= 10:
            return self._error(operation, 2, "inListPod must hold 1 to 10 BOLs")
        for fields in bols:
            problem = self._check(fields)
            if problem is not None:
                return self._error(operation, 2, problem)
        made = []
        for fields in bols:
            voucher = str(next(self._vouchers))
            self.bols[voucher] = _Bol(voucher, fields, self._now())
            made.append({"voucher_code": voucher, "Comments_2853_1": fields.get("Comments_2853_1")})
        return self._ok(operation, outListPod={"BOL": made})

    def _op_GetBOLPdf(self, operation: str, params: dict[str, Any]) -> httpx.Response:
        ids = (
            (params.get("voucherIDs") or {}).get("string")
            if isinstance(params.get("voucherIDs"), dict)
            else None
        )
        numbers = ids if isinstance(ids, list) else [ids] if ids else []
        if not numbers or any(n not in self.bols for n in numbers):
            return self._error(operation, 4, "Voucher not found")
        kind = "A6" if str(params.get("paperType")) == "2" else "A4"
        pdfs = [
            {"voucherID": n, "pdf": base64.b64encode(minimal_pdf(f"SPEEDEX {kind} {n}")).decode()}
            for n in numbers
        ]
        return self._ok(operation, GetBOLPdfResult={"BOLPdf": pdfs})

    def _picked_up(self, bol: _Bol) -> bool:
        return self._now() - bol.created >= self.pickup_after

    def _op_CancelBOL(self, operation: str, params: dict[str, Any]) -> httpx.Response:
        bol = self.bols.get(str(params.get("voucherID") or ""))
        if bol is None or bol.cancelled:
            return self._error(operation, 4, "Voucher not found")
        if self._picked_up(bol):
            return self._error(operation, 5, "Voucher already picked up: cannot cancel")
        bol.cancelled = True
        return self._ok(operation)

    def _op_GetTraceByVoucher(self, operation: str, params: dict[str, Any]) -> httpx.Response:
        bol = self.bols.get(str(params.get("VoucherID") or ""))
        if bol is None:
            return self._error(operation, 4, "Voucher not found")
        checkpoints = []
        if bol.cancelled:
            checkpoints.append(
                {
                    "StatusCode": "9",
                    "StatusDesc": "ΑΚΥΡΩΜΕΝΗ ΑΠΟΣΤΟΛΗ",
                    "Branch": "ΑΘΗΝΑ",
                    "CheckpointDate": self._local(bol.created),
                }
            )
        else:
            elapsed = self._now() - bol.created
            for offset, code, text, branch in _JOURNEY:
                if elapsed >= offset:
                    checkpoints.append(
                        {
                            "StatusCode": code,
                            "StatusDesc": text,
                            "Branch": branch,
                            "CheckpointDate": self._local(bol.created + offset),
                            "ClientRef1": str(bol.fields.get("Comments_2853_1") or ""),
                        }
                    )
        return self._ok(operation, checkpoints={"Checkpoint": checkpoints})

    def _op_GetBranches(self, operation: str, params: dict[str, Any]) -> httpx.Response:
        zipcode = str(params.get("zip") or "")
        rows = sorted(_BRANCHES, key=lambda b: b["Zip"][:2] != zipcode[:2])
        return self._ok(operation, branches={"Branch": [dict(b) for b in rows]})
