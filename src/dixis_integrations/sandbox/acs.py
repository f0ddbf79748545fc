"""An ACS Courier emulator: the ``ACSAutoRest`` JSON envelope, as ACS's REST guide shows it.

One endpoint, ``POST /ACSRestServices/api/ACSAutoRest``, dispatching on ``ACSAlias``.
It keeps ACS's quirks: HTTP 403 for a bad ``AcsApiKey``, HTTP 406 beyond 10 calls a
second, ``ACSExecution_HasError`` for bad credentials and, for validation failures,
HTTP 200 with ``HasError`` false and the message in ``ACSValueOutput[0].Error_Message``.
Vouchers must be printed before the pickup list and cannot be deleted after it; tracking
histories advance on the (scaled) clock once a voucher is on a pickup list.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx

from dixis_integrations.sandbox._soap import minimal_pdf
from dixis_integrations.sandbox.kit import (
    Emulator,
    Fault,
    FaultPlan,
    FixedWindow,
    json_response,
    read_json,
    route,
)

__all__ = ["ACSSandbox"]

_API_KEY = "sandbox-acs-api-key"
_COMPANY = ("DEMO", "demo-company-pass", "demo", "demo-user-pass")
# (vendor seconds after the pickup list, action, location)
_JOURNEY = (
    (0, "ΠΑΡΑΛΑΒΗ ΑΠΟ ΑΠΟΣΤΟΛΕΑ", "ΑΘΗΝΑ"),
    (6 * 3600, "ΑΦΙΞΗ ΣΤΟ ΚΕΝΤΡΟ ΔΙΑΛΟΓΗΣ", "ΑΣΠΡΟΠΥΡΓΟΣ"),
    (12 * 3600, "ΠΡΟΣ ΠΑΡΑΔΟΣΗ", "ΚΑΤΑΣΤΗΜΑ ΠΡΟΟΡΙΣΜΟΥ"),
)
_FINAL_AT = 16 * 3600
_PAYOUT_DAYS = 2  # days from delivery to ACS's COD payout, in this emulator
_CALENDAR = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
_STATIONS = (
    {
        "station_id": "ΑΘ",
        "station_description": "ΑΘΗΝΑ ΚΕΝΤΡΟ",
        "station_kind": "1",
        "Zip_Code": "10431",
        "lat": "37.9838",
        "lon": "23.7275",
    },
    {
        "station_id": "ΘΕ",
        "station_description": "ΘΕΣΣΑΛΟΝΙΚΗ",
        "station_kind": "1",
        "Zip_Code": "54621",
        "lat": "40.6401",
        "lon": "22.9444",
    },
    {
        "station_id": "SP1043",
        "station_description": "ACS SMARTPOINT ΟΜΟΝΟΙΑ",
        "station_kind": "7",
        "Zip_Code": "10431",
        "lat": "37.9841",
        "lon": "23.7280",
    },
    {
        "station_id": "SP5462",
        "station_description": "ACS SMARTPOINT ΤΣΙΜΙΣΚΗ",
        "station_kind": "7",
        "Zip_Code": "54621",
        "lat": "40.6330",
        "lon": "22.9430",
    },
)
_ZONES = {
    "10": "ΑΘ",
    "11": "ΑΘ",
    "12": "ΑΘ",
    "15": "ΑΘ",
    "17": "ΑΘ",
    "18": "ΠΕ",
    "54": "ΘΕ",
    "55": "ΘΕ",
    "56": "ΘΕ",
    "70": "ΗΡ",
    "71": "ΗΡ",
    "84": "ΣΥ",
    "85": "ΡΟ",
}


@dataclass
class _Voucher:
    number: str
    params: dict[str, Any]
    printed: bool = False
    deleted: bool = False
    created: float = 0.0
    pickup_list: str | None = None
    listed_at: float | None = None
    outcome: str = "delivered"
    extra: list[tuple[float, str, str]] = field(default_factory=list)


class ACSSandbox(Emulator):
    """ACS's ``ACSAutoRest`` service in memory.

    Knobs: :meth:`set_outcome` decides how a voucher's journey ends (``delivered``,
    ``absent``, ``refused``, ``returned``); :meth:`advance` moves the vendor clock.
    """

    name: ClassVar[str] = "acs"

    def __init__(
        self,
        *,
        faults: FaultPlan | None = None,
        time_scale: float = 1.0,
        webhook_client: httpx.Client | None = None,
        calls_per_second: int = 10,
    ) -> None:
        super().__init__(faults=faults, time_scale=time_scale, webhook_client=webhook_client)
        self.window = FixedWindow(calls_per_second, 1.0, self.clock, "acs-per-second")
        self.vouchers: dict[str, _Voucher] = {}
        self.pickup_lists: dict[str, list[str]] = {}
        self._numbers = itertools.count(7_400_000_001)
        self._lists = itertools.count(1)
        self._offset = 0.0
        self._start = self._now()
        self._card_cod: set[str] = set()

    # -- knobs -----------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        """What an ACS client config needs."""
        company_id, company_password, user_id, user_password = _COMPANY
        return {
            "api_key": _API_KEY,
            "company_id": company_id,
            "company_password": company_password,
            "user_id": user_id,
            "user_password": user_password,
            "billing_code": "2ΑΘ999999",
        }

    def advance(self, vendor_seconds: float) -> None:
        """Move the emulator's clock forward (tracking histories advance with it)."""
        self._offset += vendor_seconds

    def set_outcome(self, voucher: str, outcome: str) -> None:
        """How the journey of ``voucher`` ends: delivered, absent, refused or returned."""
        self.vouchers[voucher].outcome = outcome

    def _now(self) -> float:
        return self.clock.monotonic() / self.clock.scale + self._offset

    # -- hooks -------------------------------------------------------------------------
    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("AcsApiKey") != _API_KEY:
            return json_response(
                403, {"Message": "Authorization has been denied for this request."}
            )
        return None

    def limit(self, request: httpx.Request) -> httpx.Response | None:
        allowed, _, _ = self.window.hit(request.headers.get("AcsApiKey", ""))
        if not allowed:
            return json_response(406, {"Message": "Too many requests. Limit 10 calls/second."})
        return None

    def fault_response(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            return json_response(406, {"Message": "Too many requests. Limit 10 calls/second."})
        if fault is Fault.EXPIRED_TOKEN:
            return json_response(
                403, {"Message": "Authorization has been denied for this request."}
            )
        return super().fault_response(fault, request)

    # -- envelope --------------------------------------------------------------------
    @staticmethod
    def _answer(
        values: list[dict[str, Any]] | None = None,
        table: list[dict[str, Any]] | None = None,
        objects: list[dict[str, Any]] | None = None,
    ) -> httpx.Response:
        return json_response(
            200,
            {
                "ACSExecution_HasError": False,
                "ACSExecutionErrorMessage": "",
                "ACSOutputResponce": {
                    "ACSValueOutput": values if values is not None else [{"Error_Message": None}],
                    "ACSTableOutput": {"Table_Data": table or []},
                    "ACSObjectOutput": objects,
                },
            },
        )

    @classmethod
    def _silent_error(cls, message: str) -> httpx.Response:
        return cls._answer(values=[{"Error_Message": message}])

    @route("POST", r"/ACSRestServices/api/ACSAutoRest")
    def _auto_rest(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("ACSInputParameters"), dict):
            return json_response(400, {"Message": "The request is invalid."})
        params: dict[str, Any] = body["ACSInputParameters"]
        given = tuple(
            str(params.get(k, ""))
            for k in ("Company_ID", "Company_Password", "User_ID", "User_Password")
        )
        if given != _COMPANY:
            return json_response(
                200,
                {
                    "ACSExecution_HasError": True,
                    "ACSExecutionErrorMessage": "Invalid Company/User credentials",
                    "ACSOutputResponce": None,
                },
            )
        alias = str(body.get("ACSAlias", ""))
        handler = getattr(self, "_" + alias.lower(), None)
        if handler is None:
            return json_response(
                200,
                {
                    "ACSExecution_HasError": True,
                    "ACSExecutionErrorMessage": f"Alias {alias} not found",
                    "ACSOutputResponce": None,
                },
            )
        result: httpx.Response = handler(params)
        return result

    # -- aliases -----------------------------------------------------------------------
    def _acs_area_find_by_zip_code(self, params: dict[str, Any]) -> httpx.Response:
        zipcode = str(params.get("Zip_Code") or "")
        station = _ZONES.get(zipcode[:2]) if len(zipcode) == 5 and zipcode.isdigit() else None
        if station is None and len(zipcode) == 5 and zipcode.isdigit() and zipcode[0] != "0":
            station = "ΚΕ"
        table = (
            []
            if station is None
            else [
                {
                    "Station_ID": station,
                    "Station_Description": station,
                    "DP_Area": "",
                    "Inaccessible_Area": "ΟΧΙ",
                }
            ]
        )
        return self._answer(table=table)

    def _acs_price_calculation(self, params: dict[str, Any]) -> httpx.Response:
        if not params.get("Acs_Station_Origin") or not params.get("Acs_Station_Destination"):
            return self._silent_error("Άγνωστο κατάστημα παραλαβής")
        try:
            weight = Decimal(str(params.get("Weight")))
        except InvalidOperation:
            return self._silent_error("Invalid Weight")
        base = Decimal("2.57") if params["Acs_Station_Destination"] == "ΑΘ" else Decimal("3.09")
        if params["Acs_Station_Destination"] in ("ΗΡ", "ΣΥ", "ΡΟ"):
            base = Decimal("4.12")
        total = base + max(Decimal(0), weight - Decimal("0.5")) * Decimal("0.83")
        products = str(params.get("Acs_Delivery_Products") or "")
        if "COD" in products:
            total += Decimal("1.50")
        if "SAT" in products:
            total += Decimal("4.00")
        return self._answer(
            values=[{"Error_Message": None, "Total_Ammount": str(total.quantize(Decimal("0.01")))}]
        )

    def _validate_voucher(self, params: dict[str, Any]) -> str | None:
        for name in ("Recipient_Name", "Recipient_Address", "Recipient_Zipcode", "Billing_Code"):
            if not str(params.get(name) or "").strip():
                return f"Το πεδίο {name} είναι υποχρεωτικό"
        try:
            weight = Decimal(str(params.get("Weight")))
        except InvalidOperation:
            return "Invalid Weight"
        if not Decimal("0.5") <= weight <= Decimal(999):
            return "Weight must be between 0.5 and 999"
        quantity = int(params.get("Item_Quantity") or 1)
        if not 1 <= quantity <= 99:
            return "Item_Quantity must be between 1 and 99"
        products = {p.strip() for p in str(params.get("Acs_Delivery_Products") or "").split(",")}
        if {"SAT", "REC"} <= products:
            return "Products SAT and REC cannot be combined"
        if params.get("Recipient_Country") == "CY" and not params.get("Content_Type_ID"):
            return "Content_Type_ID is required for Cyprus"
        if Decimal(str(params.get("Insurance_Ammount") or 0)) > 3000:
            return "Insurance_Ammount cannot exceed 3000"
        cod = Decimal(str(params.get("Cod_Ammount") or 0))
        if cod > 0 and "COD" not in products:
            return "Cod_Ammount requires the COD product"
        branch = params.get("Acs_Station_Branch_Destination")
        if branch and str(branch).startswith("SP") and not params.get("Recipient_Cell_Phone"):
            return "Smartpoint delivery requires Recipient_Cell_Phone"
        return None

    def _acs_create_voucher(self, params: dict[str, Any]) -> httpx.Response:
        problem = self._validate_voucher(params)
        if problem is not None:
            return self._silent_error(problem)
        number = str(next(self._numbers))
        self.vouchers[number] = _Voucher(number, dict(params), created=self._now())
        quantity = int(params.get("Item_Quantity") or 1)
        multi = ",".join(f"{number}{i:02d}" for i in range(1, quantity + 1)) if quantity > 1 else ""
        return self._answer(
            values=[{"Error_Message": None, "Voucher_No": number, "Voucher_No_Multi": multi}]
        )

    def _acs_print_voucher(self, params: dict[str, Any]) -> httpx.Response:
        numbers = [v.strip() for v in str(params.get("Voucher_No") or "").split(",") if v.strip()]
        if not numbers or len(numbers) > 10:
            return self._silent_error("Voucher_No: 1 to 10 vouchers")
        for number in numbers:
            voucher = self.vouchers.get(number)
            if voucher is None or voucher.deleted:
                return self._silent_error(f"Voucher {number} not found")
        for number in numbers:
            self.vouchers[number].printed = True
        kind = "THERMAL" if str(params.get("Print_Type")) == "1" else "A4"
        pdf = minimal_pdf(f"ACS {kind} " + " ".join(numbers))
        return self._answer(objects=[{"voucher": base64.b64encode(pdf).decode()}])

    def _acs_delete_voucher(self, params: dict[str, Any]) -> httpx.Response:
        numbers = [v.strip() for v in str(params.get("Voucher_No") or "").split(",") if v.strip()]
        if not numbers or len(numbers) > 20:
            return self._silent_error("Voucher_No: 1 to 20 vouchers")
        for number in numbers:
            voucher = self.vouchers.get(number)
            if voucher is None or voucher.deleted:
                return self._silent_error(f"Voucher {number} not found")
            if voucher.pickup_list is not None:
                return self._silent_error(
                    f"Voucher {number} is on pickup list {voucher.pickup_list}: cannot delete"
                )
        for number in numbers:
            self.vouchers[number].deleted = True
        return self._answer()

    def _acs_issue_pickup_list(self, params: dict[str, Any]) -> httpx.Response:
        pending = [v for v in self.vouchers.values() if not v.deleted and v.pickup_list is None]
        if not pending:
            return self._silent_error("Δεν υπάρχουν vouchers για λίστα παραλαβής")
        unprinted = [v.number for v in pending if not v.printed]
        if unprinted:
            return self._silent_error(f"Unprinted vouchers: {', '.join(unprinted)}")
        number = f"PL{next(self._lists):06d}"
        now = self._now()
        for voucher in pending:
            voucher.pickup_list = number
            voucher.listed_at = now
        self.pickup_lists[number] = [v.number for v in pending]
        return self._answer(values=[{"Error_Message": None, "PickupList_No": number}])

    def _history(self, voucher: _Voucher) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        summary: dict[str, Any] = {
            "voucher_no": voucher.number,
            "shipment_status": "0",
            "delivery_flag": "0",
            "returned_flag": "0",
            "non_delivery_reason_code": "",
        }
        if voucher.deleted:
            at = voucher.created
            return [self._checkpoint(at, "ΑΚΥΡΩΣΗ ΑΠΟΣΤΟΛΗΣ", "ΑΘΗΝΑ")], summary
        if voucher.listed_at is None:
            return [], summary
        elapsed = self._now() - voucher.listed_at
        rows = []
        for offset, action, location in _JOURNEY:
            if elapsed >= offset:
                rows.append(self._checkpoint(voucher.listed_at + offset, action, location))
        if elapsed >= _FINAL_AT:
            at = voucher.listed_at + _FINAL_AT
            if voucher.outcome == "delivered":
                rows.append(self._checkpoint(at, "ΠΑΡΑΔΟΘΗΚΕ", "ΠΑΡΑΛΗΠΤΗΣ"))
                summary.update(shipment_status="4", delivery_flag="1")
            elif voucher.outcome == "absent":
                rows.append(self._checkpoint(at, "ΑΠΟΥΣΙΑ ΠΑΡΑΛΗΠΤΗ", "ΚΑΤΑΣΤΗΜΑ"))
                summary.update(shipment_status="3", non_delivery_reason_code="ΑΣ1")
            elif voucher.outcome == "refused":
                rows.append(self._checkpoint(at, "ΑΡΝΗΣΗ ΠΑΡΑΛΑΒΗΣ", "ΚΑΤΑΣΤΗΜΑ"))
                summary.update(shipment_status="1", non_delivery_reason_code="ΑΠ1")
            elif voucher.outcome == "returned":
                rows.append(self._checkpoint(at, "ΕΠΙΣΤΡΑΦΗΚΕ ΣΤΟΝ ΑΠΟΣΤΟΛΕΑ", "ΑΘΗΝΑ"))
                # ACS's trap: delivery_flag is 1 on a return too.
                summary.update(shipment_status="7", delivery_flag="1", returned_flag="1")
        return rows, summary

    def _checkpoint(self, vendor_time: float, action: str, location: str) -> dict[str, Any]:
        # Vendor seconds since the emulator started, shown on a fixed calendar.
        moment = _CALENDAR + timedelta(seconds=vendor_time - self._start)
        return {
            "checkpoint_date_time": moment.isoformat(),
            "checkpoint_action": action,
            "checkpoint_location": location,
        }

    def _tracked(self, params: dict[str, Any]) -> _Voucher | None:
        return self.vouchers.get(str(params.get("Voucher_No") or ""))

    def _acs_trackingdetails(self, params: dict[str, Any]) -> httpx.Response:
        voucher = self._tracked(params)
        if voucher is None:
            return self._answer(table=[])
        rows, _ = self._history(voucher)
        return self._answer(table=rows)

    def _acs_trackingsummary(self, params: dict[str, Any]) -> httpx.Response:
        voucher = self._tracked(params)
        if voucher is None:
            return self._answer(table=[])
        _, summary = self._history(voucher)
        return self._answer(table=[summary])

    def pay_cod_by_card(self, voucher: str) -> None:
        """The recipient of ``voucher`` pays its COD by card (cash otherwise)."""
        self._card_cod.add(voucher)

    def _acs_cod_beneficiary_info(self, params: dict[str, Any]) -> httpx.Response:
        # ACS pays COD out _PAYOUT_DAYS after delivery; the date asked for is that day
        # only, not "since". Amounts are JSON numbers, as in ACS's documented example.
        try:
            day = datetime.strptime(str(params.get("COD_Payment_Date") or ""), "%Y-%m-%d").date()
        except ValueError:
            return self._answer(values=[{"Error_msg": "Μη έγκυρη ημερομηνία COD_Payment_Date"}])
        rows = []
        for voucher in self.vouchers.values():
            try:
                amount = Decimal(str(voucher.params.get("Cod_Ammount") or "0"))
            except InvalidOperation:
                continue
            if amount <= 0 or voucher.deleted or voucher.listed_at is None:
                continue
            if voucher.outcome != "delivered" or self._now() - voucher.listed_at < _FINAL_AT:
                continue
            delivered = _CALENDAR + timedelta(seconds=voucher.listed_at + _FINAL_AT - self._start)
            picked_up = _CALENDAR + timedelta(seconds=voucher.listed_at - self._start)
            if (delivered + timedelta(days=_PAYOUT_DAYS)).date() != day:
                continue
            by_card = voucher.number in self._card_cod
            rows.append(
                {
                    "Customer_Code": "2ΑΘ999999",
                    "POD": voucher.number,
                    "Parcel_Sender": "Sender",
                    "Parcel_Receiver": str(voucher.params.get("Recipient_Name") or ""),
                    "Parcel_Pickup_Date": picked_up.strftime("%Y-%m-%dT00:00:00"),
                    "Parcel_Delivery_Date": delivered.strftime("%Y-%m-%dT00:00:00"),
                    "Parcel_COD_Amount": float(amount),
                    "Customer_RefNo_1": str(voucher.params.get("Reference_Key1") or ""),
                    "Customer_RefNo_2": str(voucher.params.get("Reference_Key2") or ""),
                    "COD_Amount_Cach": 0.0 if by_card else float(amount),
                    "COD_Amount_CreditCard": float(amount) if by_card else 0.0,
                }
            )
        return self._answer(values=[{"Error_msg": None}], table=rows)

    def _acs_stations(self, params: dict[str, Any]) -> httpx.Response:
        zipcode = str(params.get("Zip_Code") or "")
        rows = [dict(s) for s in _STATIONS]
        if zipcode:
            rows.sort(key=lambda s: (s["Zip_Code"][:2] != zipcode[:2], s["station_id"]))
        return self._answer(table=rows)

    def _acs_address_validation(self, params: dict[str, Any]) -> httpx.Response:
        text = str(params.get("Address") or "")
        digits = [w for w in text.replace(",", " ").split() if w.isdigit() and len(w) == 5]
        if not digits:
            return self._answer(table=[])
        return self._answer(
            table=[{"Resolved_As": text.upper(), "Station_ID": _ZONES.get(digits[0][:2], "ΚΕ")}]
        )
