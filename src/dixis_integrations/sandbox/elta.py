"""An ELTA Courier emulator: SOAP services with one ``READ`` operation each.

``CREATEAWB02`` (create), ``PELB64VG`` (label, base64 PDF), ``PELTT03`` (tracking, free
text statuses in ``web_status`` records, proof of delivery in ``pod_date``/``pod_name``)
and ``GETPUDODETAILS`` (PUDO points), as the public ELTA clients call them. Tracking
answers by AWB (``wpel_vg``, ``wpel_flag`` 1) or by the sender's ``pel_ref_no``
(``wpel_ref``, ``wpel_flag`` 2); every tracking answer names its AWB in ``vg_code``. Every answer
has ``st_flag`` (0 OK) and ``st_title``. There is no cancellation service.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx

from dixis_integrations.sandbox._soap import minimal_pdf, read_soap, soap_fault, soap_response
from dixis_integrations.sandbox.kit import Emulator, Fault, FaultPlan, route

__all__ = ["ELTASandbox"]

_USER, _PASSWORD, _APOST = "9999999", "sandbox-elta-pass", "999999999"
_CALENDAR = datetime(2026, 11, 2, 10, 0)
_JOURNEY = (
    (3 * 3600, "ΠΑΡΑΛΑΒΗ ΑΠΟΣΤΟΛΗΣ", "ΑΘΗΝΑ"),
    (10 * 3600, "ΑΠΟΣΤΟΛΗ ΠΡΟΣ ΚΑΤΑΣΤΗΜΑ ΠΡΟΟΡΙΣΜΟΥ", "ΚΕΝΤΡΟ ΔΙΑΛΟΓΗΣ"),
    (16 * 3600, "ΠΡΟΣ ΕΠΙΔΟΣΗ", "ΚΑΤΑΣΤΗΜΑ ΠΡΟΟΡΙΣΜΟΥ"),
)
_DELIVERED_AT = 20 * 3600
_PUDOS = (
    {
        "pudo_code": "P1001",
        "pudo_name": "ELTA PUDO Κολωνάκι",
        "tk": "10673",
        "lat": "37.9790",
        "lon": "23.7420",
    },
    {
        "pudo_code": "P5401",
        "pudo_name": "ELTA PUDO Τούμπα",
        "tk": "54351",
        "lat": "40.6100",
        "lon": "22.9700",
    },
)


@dataclass
class _Awb:
    code: str
    params: dict[str, Any]
    created: float


class ELTASandbox(Emulator):
    """ELTA Courier's web services in memory. Knob: :meth:`advance` (the vendor clock)."""

    name: ClassVar[str] = "elta"

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.awbs: dict[str, _Awb] = {}
        self._numbers = itertools.count(1)
        self._offset = 0.0
        self._start = self._now()

    def credentials(self) -> dict[str, str]:
        """What an ELTA client config needs."""
        return {"user_code": _USER, "password": _PASSWORD, "apost_code": _APOST}

    def advance(self, vendor_seconds: float) -> None:
        """Move the vendor clock forward."""
        self._offset += vendor_seconds

    def _now(self) -> float:
        return self.clock.monotonic() / self.clock.scale + self._offset

    def _moment(self, vendor_time: float) -> datetime:
        return _CALENDAR + timedelta(seconds=vendor_time - self._start)

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.SERVER_ERROR:
            return soap_fault("Server", "Internal server error")
        if fault is Fault.MALFORMED:
            return httpx.Response(200, content=b"<soap:Envelope><soap:Bo")
        return super().fault_response(fault, request)

    @staticmethod
    def _answer(flag: int, title: str, **values: Any) -> httpx.Response:
        return soap_response("READ", {"st_flag": flag, "st_title": title, **values}, "urn:elta")

    @route("POST", r"/(?P<service>CREATEAWB02|PELB64VG|PELTT03|PELTT01|GETPUDODETAILS)")
    def _service(self, request: httpx.Request, service: str) -> httpx.Response:
        call = read_soap(request)
        if call is None or call[0] != "READ":
            return soap_fault("Client", "Operation READ expected", 400)
        params = call[1]
        if service in ("PELTT03", "PELTT01"):
            given = (params.get("wpel_user"), params.get("wpel_pass"), params.get("wpel_code"))
        else:
            given = (
                params.get("pel_user_code"),
                params.get("pel_user_pass"),
                params.get("pel_apost_code"),
            )
        if given != (_USER, _PASSWORD, _APOST):
            return self._answer(1, "Λάθος κωδικός χρήστη")
        handler = getattr(self, "_" + service.lower())
        result: httpx.Response = handler(params)
        return result

    def _createawb02(self, params: dict[str, Any]) -> httpx.Response:
        for name in ("pel_paral_name", "pel_paral_address", "pel_paral_area", "pel_paral_tk"):
            if not str(params.get(name) or "").strip():
                return self._answer(2, f"Το πεδίο {name} είναι υποχρεωτικό")
        if params.get("pel_service") not in ("1", "2", "7"):
            return self._answer(3, "Μη αποδεκτή υπηρεσία")
        if params.get("pel_service") == "7" and not params.get("pel_pudo_code"):
            return self._answer(3, "Απαιτείται σημείο PUDO")
        try:
            weight = Decimal(str(params.get("pel_baros") or "0"))
        except InvalidOperation:
            return self._answer(4, "Μη αποδεκτό βάρος")
        if not 0 < weight <= 35:
            return self._answer(4, "Μη αποδεκτό βάρος")
        code = f"ZH{next(self._numbers):09d}GR"
        self.awbs[code] = _Awb(code, dict(params), self._now())
        return self._answer(0, "OK", vg_code=code)

    def _pelb64vg(self, params: dict[str, Any]) -> httpx.Response:
        awb = self.awbs.get(str(params.get("vg_code") or ""))
        if awb is None:
            return self._answer(5, "Η αποστολή δεν βρέθηκε")
        size = "A6" if str(params.get("paper_size")) == "1" else "A4"
        pdf = minimal_pdf(f"ELTA COURIER {size} {awb.code}")
        return self._answer(0, "OK", B64_STRING=base64.b64encode(pdf).decode())

    def _by_reference(self, reference: str) -> _Awb | None:
        # the latest AWB of that reference, as a lookup by reference would show it
        matches = [a for a in self.awbs.values() if a.params.get("pel_ref_no") == reference]
        return matches[-1] if reference and matches else None

    def _peltt03(self, params: dict[str, Any]) -> httpx.Response:
        if str(params.get("wpel_flag")) == "2":
            awb = self._by_reference(str(params.get("wpel_ref") or ""))
        else:
            awb = self.awbs.get(str(params.get("wpel_vg") or ""))
        if awb is None:
            return self._answer(5, "Η αποστολή δεν βρέθηκε")
        elapsed = self._now() - awb.created
        records = []
        for offset, title, station in _JOURNEY:
            if elapsed >= offset:
                moment = self._moment(awb.created + offset)
                records.append(
                    {
                        "web_date": moment.strftime("%d/%m/%Y"),
                        "web_time": moment.strftime("%H:%M"),
                        "web_station": station,
                        "web_status_title": title,
                    }
                )
        pod: dict[str, Any] = {"pod_date": "", "pod_time": "", "pod_name": ""}
        if elapsed >= _DELIVERED_AT:
            moment = self._moment(awb.created + _DELIVERED_AT)
            pod = {
                "pod_date": moment.strftime("%d/%m/%Y"),
                "pod_time": moment.strftime("%H:%M"),
                "pod_name": str(awb.params.get("pel_paral_name")),
            }
        return self._answer(0, "OK", vg_code=awb.code, web_status=records, **pod)

    _peltt01 = _peltt03

    def _getpudodetails(self, params: dict[str, Any]) -> httpx.Response:
        return self._answer(0, "OK", pudo=[dict(p) for p in _PUDOS])
