"""Sync 20,000 customers into each CRM sandbox with the vendor's limits enforced.

For each vendor the emulator runs in its own process (so this process's CPU time is the
client's alone), with its real limits on scaled time. We report:

- throughput as a share of the ceiling the limits allow (the binding window's calls,
  spaced as tightly as the window permits), which must be at least 90%;
- how many throttling answers the emulator gave and how many ``RateLimited`` errors
  reached the caller (both must be zero: the client-side budget keeps us under);
- client CPU per contact against a raw-httpx baseline sending the same wire payloads in
  the same run (to an emulator without limits), which must be at most 1.5x;
- for context, not judged: the client's CPU under the baseline's own conditions
  (``unpaced``: limits lifted on both ends) and, for Pipedrive, the baseline paced by
  plain sleeps to the same search rate (``paced-baseline``).

Garbage is collected before each clock starts, so no side pays for another's.

Run: ``.venv/bin/python benchmarks/crm/bench_sync.py`` (HubSpot and Salesforce about
two and a half minutes, Pipedrive about ten). ``--contacts N`` and ``--vendor NAME``
make shorter runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from dixis_integrations.crm.hubspot import HubSpot, HubSpotConfig
from dixis_integrations.crm.pipedrive import Pipedrive, PipedriveConfig
from dixis_integrations.crm.salesforce import Salesforce, SalesforceConfig, SalesforceJWTAuth
from dixis_integrations.errors import RateLimited
from dixis_integrations.http import Budgets, Driver, Operation
from dixis_integrations.models import AcquisitionSource, ConsentStatus, MarketingConsent, Money
from dixis_integrations.models.crm import CRMContact, UpsertResult, UpsertStatus

HERE = Path(__file__).parent
WORKERS = 4


def make_contacts(n: int) -> list[CRMContact]:
    return [
        CRMContact(
            reference=f"cus_{i}",
            email=f"buyer{i}@example.gr",
            first_name="Μαρία",
            last_name=f"Παπαδοπούλου{i}",
            phone=f"+3069{i:08d}",  # as contact_from_customer gives it (E.164)
            total_orders=i % 17,
            total_spent=Money.of(f"{i % 997}.{i % 100:02d}"),
            last_order_date=date(2026, 1 + i % 12, 1 + i % 28),
            segment=("loyal", "new", "lapsed")[i % 3],
            acquisition=AcquisitionSource(channel="organic"),
            consent=MarketingConsent(status=ConsentStatus.GRANTED),
        )
        for i in range(n)
    ]


class Server:
    """One emulator in a child process."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_serve.py"), name, json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.credentials: dict[str, str] = json.loads(self.proc.stdout.readline())

    def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        tail = self.proc.stdout.readline()
        self.proc.wait(timeout=10)
        return json.loads(tail) if tail else {}


@dataclass
class Run:
    elapsed: float
    cpu: float
    results: list[UpsertResult]
    surfaced: int


def _drive(ops: Sequence[Operation[list[UpsertResult]]]) -> tuple[list[UpsertResult], int]:
    """Run the operations on worker threads, one sync driver each, sharing one budget.

    Threads rather than asyncio: with httpcore 1.0.9 and no ``sniffio`` installed, every
    async request pays a failed import (about 1.5 ms of CPU), which would swamp both the
    client and the baseline alike.
    """
    budgets = Budgets()
    surfaced = 0
    lock = threading.Lock()

    def one(op: Operation[list[UpsertResult]]) -> list[UpsertResult]:
        nonlocal surfaced
        with httpx.Client(timeout=30.0) as client:
            try:
                return Driver(client, budgets=budgets).run(op)
            except RateLimited:
                with lock:
                    surfaced += 1
                return []

    with ThreadPoolExecutor(max_workers=len(ops)) as pool:
        parts = list(pool.map(one, ops))
    return [r for part in parts for r in part], surfaced


def run_one(op: Operation[Any]) -> Any:
    """Run one set-up operation (not measured)."""
    with httpx.Client(timeout=30.0) as client:
        return Driver(client).run(op)


def settle() -> None:
    """Collect now, outside the clock, so neither side pays for garbage the other made
    (or for a full collection that building the 20,000 contacts left due)."""
    gc.collect()


def timed(ops: Sequence[Operation[list[UpsertResult]]]) -> Run:
    settle()
    cpu0, t0 = time.process_time(), time.perf_counter()
    results, surfaced = _drive(ops)
    return Run(time.perf_counter() - t0, time.process_time() - cpu0, results, surfaced)


def slices(items: list[CRMContact], k: int) -> list[list[CRMContact]]:
    size = math.ceil(len(items) / k)
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- raw httpx baselines: the same wire calls, no validation, no budgets ---------------------


def _hubspot_props(c: CRMContact) -> dict[str, str]:
    p = {
        "email": c.email,
        "dixis_reference": c.reference,
        "dixis_total_orders": str(c.total_orders),
        "dixis_total_spent": str(c.total_spent.amount),
        "dixis_currency": c.total_spent.currency,
        "dixis_marketing_consent": c.consent.status.value,
        "firstname": c.first_name or "",
        "lastname": c.last_name or "",
        "phone": c.phone or "",
        "dixis_last_order_date": c.last_order_date.isoformat() if c.last_order_date else "",
        "dixis_segment": c.segment or "",
        "dixis_acquisition_source": c.acquisition.channel if c.acquisition else "",
    }
    if c.total_orders:
        p["lifecyclestage"] = "customer"
    return p


def complete(run: Run, expected: int, what: str) -> Run:
    """``run``, once it is known to have written every contact: a baseline whose calls
    were refused would be timed on cheaper answers than ours, and prove nothing."""
    if len(run.results) != expected:
        raise RuntimeError(f"{what}: {len(run.results)} results for {expected} contacts")
    return run


def raw_run(jobs: list[Callable[[httpx.Client], list[Any]]], headers: dict[str, str]) -> Run:
    def one(job: Callable[[httpx.Client], list[Any]]) -> list[Any]:
        with httpx.Client(headers=headers, timeout=30.0) as client:
            return job(client)

    settle()
    cpu0, t0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        out = [x for part in pool.map(one, jobs) for x in part]
    return Run(time.perf_counter() - t0, time.process_time() - cpu0, out, 0)


def hubspot_baseline(url: str, token: str, contacts: list[CRMContact]) -> Run:
    def job(part: list[CRMContact]) -> Callable[[httpx.Client], list[Any]]:
        def go(client: httpx.Client) -> list[Any]:
            out: list[Any] = []
            for i in range(0, len(part), 100):
                chunk = part[i : i + 100]
                body = {"inputs": [{"idProperty": "email", "id": c.email,
                                    "objectWriteTraceId": c.reference,
                                    "properties": _hubspot_props(c)} for c in chunk]}  # fmt: skip
                r = client.post(f"{url}/crm/v3/objects/contacts/batch/upsert", json=body)
                out.extend((x["id"], x["new"]) for x in r.json()["results"])
            return out

        return go

    return raw_run(
        [job(p) for p in slices(contacts, WORKERS)], {"Authorization": f"Bearer {token}"}
    )


def sign_in(auth: SalesforceJWTAuth, base_url: str) -> float:
    """Run the JWT bearer flow's token request alone (no API call); its CPU seconds."""
    cpu0 = time.process_time()
    flow = auth.sync_auth_flow(httpx.Request("GET", f"{base_url}/services/data/v59.0/limits"))
    with httpx.Client(timeout=30.0) as client:
        request = next(flow)
        if "/oauth2/token" in request.url.path:
            flow.send(client.send(request))
    flow.close()
    return time.process_time() - cpu0


def salesforce_baseline(url: str, token: str, contacts: list[CRMContact]) -> Run:
    def job(part: list[CRMContact]) -> Callable[[httpx.Client], list[Any]]:
        def go(client: httpx.Client) -> list[Any]:
            out: list[Any] = []
            for i in range(0, len(part), 200):
                records = [{"attributes": {"type": "Contact"},
                            "Dixis_Customer_Id__c": c.reference, "LastName": c.last_name,
                            "FirstName": c.first_name, "Email": c.email, "Phone": c.phone,
                            "Dixis_Total_Orders__c": c.total_orders,
                            "Dixis_Total_Spent__c": float(c.total_spent.amount),
                            "Dixis_Last_Order_Date__c": str(c.last_order_date),
                            "Dixis_Segment__c": c.segment,
                            "Dixis_Marketing_Consent__c": c.consent.status.value}
                           for c in part[i : i + 200]]  # fmt: skip
                r = client.patch(
                    f"{url}/services/data/v59.0/composite/sobjects/Contact/Dixis_Customer_Id__c",
                    json={"allOrNone": False, "records": records},
                )
                out.extend((x.get("id"), x.get("created")) for x in r.json())
            return out

        return go

    return raw_run(
        [job(p) for p in slices(contacts, WORKERS)], {"Authorization": f"Bearer {token}"}
    )


def pipedrive_baseline(
    url: str, token: str, contacts: list[CRMContact], keys: dict[str, str], interval: float = 0.0
) -> Run:
    """The raw calls; with ``interval``, searches are paced by plain sleeps to one per
    ``interval`` seconds across the threads (the control for what pacing itself costs)."""
    lock = threading.Lock()
    slot = [time.monotonic()]

    def pace() -> None:
        with lock:
            now = time.monotonic()
            mine = max(now, slot[0])
            slot[0] = mine + interval
        if mine > now:
            time.sleep(mine - now)

    def job(part: list[CRMContact]) -> Callable[[httpx.Client], list[Any]]:
        def go(client: httpx.Client) -> list[Any]:
            out: list[Any] = []
            for c in part:
                if interval:
                    pace()
                r = client.get(
                    f"{url}/api/v2/persons/search",
                    params={"term": c.email, "fields": "email", "exact_match": "true", "limit": 1},
                )
                items = r.json()["data"]["items"]
                body = {"name": f"{c.first_name} {c.last_name}",
                        "emails": [{"value": c.email, "primary": True, "label": "work"}],
                        "phones": [{"value": c.phone, "primary": True, "label": "mobile"}],
                        "custom_fields": {keys["total_orders"]: c.total_orders,
                                          keys["total_spent"]: {"value": str(c.total_spent.amount),
                                                                "currency": "EUR"},
                                          keys["reference"]: c.reference,
                                          keys["last_order_date"]: str(c.last_order_date),
                                          keys["segment"]: c.segment,
                                          keys["acquisition_source"]: c.acquisition.channel
                                          if c.acquisition else None,
                                          keys["marketing_consent"]:
                                          c.consent.status.value}}  # fmt: skip
                if items:
                    pid = items[0]["item"]["id"]
                    r = client.patch(f"{url}/api/v2/persons/{pid}", json=body)
                else:
                    r = client.post(f"{url}/api/v2/persons", json=body)
                out.append(r.json()["data"]["id"])
            return out

        return go

    return raw_run([job(p) for p in slices(contacts, WORKERS)], {"x-api-token": token})


# -- the three vendors -----------------------------------------------------------------------


@dataclass
class Report:
    vendor: str
    contacts: int
    calls: int
    ideal: float
    elapsed: float
    throttled_answers: int
    surfaced: int
    cpu_per_contact_us: float
    baseline_cpu_per_contact_us: float
    all_created: bool
    setup_cpu_ms: float = 0.0  # one-time set-up before the clock (Salesforce sign-in)
    unpaced_cpu_per_contact_us: float = 0.0  # ours against the baseline's free emulator
    paced_baseline_cpu_per_contact_us: float = 0.0  # the baseline paced by plain sleeps

    @property
    def unpaced_ratio(self) -> float:
        return self.unpaced_cpu_per_contact_us / self.baseline_cpu_per_contact_us

    @property
    def ceiling_share(self) -> float:
        return self.ideal / self.elapsed

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_per_contact_us / self.baseline_cpu_per_contact_us


def _ideal(calls: int, limit: int, window_real: float) -> float:
    """Seconds ``calls`` take at the sustained rate the binding window allows."""
    return calls * window_real / limit


def bench_hubspot(contacts: list[CRMContact], warm: bool = False) -> Report:
    # 10-second windows last 20 s: the emulator's own CPU must never pace a window, even
    # on a loaded machine (190 upserts of 100 take it about 10 s at load 15).
    scale = 2.0
    server = Server("hubspot", {"tier": "professional", "time_scale": scale})
    creds = server.credentials
    adapter = HubSpot(
        HubSpotConfig(access_token=SecretStr(creds["access_token"]), base_url=creds["base_url"],
                      tier="professional"),
        time_scale=scale,
    )  # fmt: skip
    run_one(adapter.ensure_properties())  # 4 calls, not counted below
    if not warm:
        time.sleep(10 * scale)  # let the emulator's window start afresh
    ours = timed([adapter.upsert_contacts(p) for p in slices(contacts, WORKERS)])
    stats = server.stop()
    calls = sum(math.ceil(len(p) / 100) for p in slices(contacts, WORKERS))
    free = Server("hubspot", {"tier": "enterprise", "_tweaks": {
        "ten_secondly.limit": 10**9, "daily.limit": 10**9}})  # fmt: skip
    # The baseline writes the same custom properties, so its server must have them too
    # (created before its clock, as ours are): without them every input is refused and
    # the baseline would be timed on 207 answers carrying errors and no contact written.
    run_one(HubSpot(HubSpotConfig(access_token=SecretStr(free.credentials["access_token"]),
                                  base_url=free.credentials["base_url"], tier="enterprise"))
            .ensure_properties())  # fmt: skip
    base = complete(hubspot_baseline(free.credentials["base_url"],
                                     free.credentials["access_token"], contacts),
                    len(contacts), "hubspot baseline")  # fmt: skip
    free.stop()
    # The same client under the baseline's conditions: limits lifted on both ends.
    free = Server("hubspot", {"tier": "enterprise", "_tweaks": {
        "ten_secondly.limit": 10**9, "daily.limit": 10**9}})  # fmt: skip
    unbound = HubSpot(HubSpotConfig(access_token=SecretStr(free.credentials["access_token"]),
                                    base_url=free.credentials["base_url"], tier="enterprise"),
                      time_scale=1e-9)  # fmt: skip
    run_one(unbound.ensure_properties())
    unpaced = timed([unbound.upsert_contacts(p) for p in slices(contacts, WORKERS)])
    free.stop()
    return Report("hubspot", len(contacts), calls, _ideal(calls, 190, 10 * scale), ours.elapsed,
                  int(stats.get("rate_limited_answers") or 0), ours.surfaced,
                  ours.cpu / len(contacts) * 1e6, base.cpu / len(contacts) * 1e6,
                  all(r.status is UpsertStatus.CREATED for r in ours.results)
                  and len(ours.results) == len(contacts),
                  unpaced_cpu_per_contact_us=unpaced.cpu / len(contacts) * 1e6)  # fmt: skip


def bench_salesforce(contacts: list[CRMContact], warm: bool = False) -> Report:
    # Salesforce's only request limit is the rolling 24-hour allocation: shrink it to 33
    # calls a "day", and a day to 6 s (room for the emulator's CPU), so that it binds
    # three times over 100 calls.
    allocation, day = 33, 6.0
    scale = day / 86_400
    server = Server("salesforce", {"daily_api_requests": allocation, "time_scale": scale})
    creds = server.credentials
    auth = SalesforceJWTAuth(client_id=creds["client_id"], username=creds["username"],
                             private_key=SecretStr(creds["private_key"]),
                             login_url=creds["base_url"])  # fmt: skip
    adapter = Salesforce(
        SalesforceConfig(base_url=creds["base_url"], daily_api_requests=allocation),
        auth=auth,
        time_scale=scale,
    )
    # Sign in before the clock, as the baseline does (its token is fetched outside its
    # clock too): parsing and checking the RSA key costs about 60 ms of CPU once per
    # adapter, 3 us per contact of this run, which is set-up and not per-contact work.
    setup = sign_in(auth, creds["base_url"])
    ours = timed([adapter.upsert_contacts(p) for p in slices(contacts, WORKERS)])
    stats = server.stop()
    calls = sum(math.ceil(len(p) / 200) for p in slices(contacts, WORKERS))
    free = Server("salesforce", {"daily_api_requests": 10**9})
    fc = free.credentials
    token_auth = SalesforceJWTAuth(client_id=fc["client_id"], username=fc["username"],
                                   private_key=SecretStr(fc["private_key"]),
                                   login_url=fc["base_url"])  # fmt: skip
    with httpx.Client(auth=token_auth) as c:  # one token for the raw baseline
        c.get(f"{fc['base_url']}/services/data/v59.0/limits")
    token = token_auth._current()
    assert token is not None
    base = complete(
        salesforce_baseline(fc["base_url"], token[0].get_secret_value(), contacts),
        len(contacts),
        "salesforce baseline",
    )
    free.stop()
    # The same client under the baseline's conditions: no allocation to pace it.
    free = Server("salesforce", {"daily_api_requests": 10**9})
    fc = free.credentials
    unbound_auth = SalesforceJWTAuth(client_id=fc["client_id"], username=fc["username"],
                                     private_key=SecretStr(fc["private_key"]),
                                     login_url=fc["base_url"])  # fmt: skip
    unbound = Salesforce(SalesforceConfig(base_url=fc["base_url"], daily_api_requests=10**9),
                         auth=unbound_auth)  # fmt: skip
    sign_in(unbound_auth, fc["base_url"])
    unpaced = timed([unbound.upsert_contacts(p) for p in slices(contacts, WORKERS)])
    free.stop()
    return Report("salesforce", len(contacts), calls, _ideal(calls, allocation, day),
                  ours.elapsed, int(stats.get("rate_limited_answers") or 0), ours.surfaced,
                  ours.cpu / len(contacts) * 1e6, base.cpu / len(contacts) * 1e6,
                  all(r.status is UpsertStatus.CREATED for r in ours.results)
                  and len(ours.results) == len(contacts), setup * 1e3,
                  unpaced.cpu / len(contacts) * 1e6)  # fmt: skip


PIPEDRIVE_SCALE = [0.1]  # a 2-second burst window lasts 200 ms (see --pipedrive-scale)
PIPEDRIVE_CONTROL = [2_000]  # contacts for the paced-baseline control (--pipedrive-control)


def bench_pipedrive(contacts: list[CRMContact], warm: bool = False) -> Report:
    scale = PIPEDRIVE_SCALE[0]
    options = {"plan": "ultimate", "seats": 6, "time_scale": scale}
    server = Server("pipedrive", options)
    creds = server.credentials
    adapter = Pipedrive(
        PipedriveConfig(api_token=SecretStr(creds["api_token"]), base_url=creds["base_url"],
                        plan="ultimate", seats=6),
        time_scale=scale,
    )  # fmt: skip
    run_one(adapter.ensure_fields())
    time.sleep(2 * scale)
    ours = timed([adapter.upsert_contacts(p) for p in slices(contacts, WORKERS)])
    stats = server.stop()
    free = Server("pipedrive", {"plan": "ultimate", "seats": 100, "_tweaks": {
        "burst.limit": 10**9, "search_burst.limit": 10**9}})  # fmt: skip
    fa = Pipedrive(PipedriveConfig(api_token=SecretStr(free.credentials["api_token"]),
                                   base_url=free.credentials["base_url"], plan="ultimate",
                                   seats=100))  # fmt: skip
    fkeys = run_one(fa.ensure_fields())
    base = complete(pipedrive_baseline(free.credentials["base_url"],
                                       free.credentials["api_token"], contacts, fkeys),
                    len(contacts), "pipedrive baseline")  # fmt: skip
    free.stop()
    # The same client under the baseline's conditions: no limits, budgets scaled to nothing.
    free = Server("pipedrive", {"plan": "ultimate", "seats": 100, "_tweaks": {
        "burst.limit": 10**9, "search_burst.limit": 10**9}})  # fmt: skip
    unbound = Pipedrive(PipedriveConfig(api_token=SecretStr(free.credentials["api_token"]),
                                        base_url=free.credentials["base_url"], plan="ultimate",
                                        seats=100), time_scale=1e-9)  # fmt: skip
    ukeys = run_one(unbound.ensure_fields())
    unpaced = timed([unbound.upsert_contacts(p) for p in slices(contacts, WORKERS)])
    # Control: the raw baseline paced by plain sleeps to the same search rate, on a share
    # of the contacts (a thread that sleeps between calls pays more CPU per call).
    control = [] if warm else contacts[: PIPEDRIVE_CONTROL[0]]
    paced_base = None
    if control:
        others = make_contacts(len(contacts) + len(control))[len(contacts) :]
        paced_base = complete(pipedrive_baseline(free.credentials["base_url"],
                                                 free.credentials["api_token"], others, ukeys,
                                                 interval=2 * scale / 10),
                              len(others), "pipedrive paced baseline")  # fmt: skip
    free.stop()
    searches = len(contacts)  # the binding window: 10 searches per 2 s
    return Report("pipedrive", len(contacts), 2 * len(contacts), _ideal(searches, 10, 2 * scale),
                  ours.elapsed, int(stats.get("rate_limited_answers") or 0), ours.surfaced,
                  ours.cpu / len(contacts) * 1e6, base.cpu / len(contacts) * 1e6,
                  all(r.status is UpsertStatus.CREATED for r in ours.results)
                  and len(ours.results) == len(contacts),
                  unpaced_cpu_per_contact_us=unpaced.cpu / len(contacts) * 1e6,
                  paced_baseline_cpu_per_contact_us=paced_base.cpu / len(control) * 1e6
                  if paced_base else 0.0)  # fmt: skip


BENCHES = {"hubspot": bench_hubspot, "salesforce": bench_salesforce, "pipedrive": bench_pipedrive}


def warm_up() -> None:
    """Import and exercise every code path once, so no run pays for first-use costs."""
    few = make_contacts(300)
    for name in ("hubspot", "salesforce", "pipedrive"):
        BENCHES[name](few, warm=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--vendor", choices=sorted(BENCHES), action="append")
    parser.add_argument("--pipedrive-scale", type=float, default=PIPEDRIVE_SCALE[0])
    parser.add_argument("--pipedrive-control", type=int, default=PIPEDRIVE_CONTROL[0])
    args = parser.parse_args()
    PIPEDRIVE_SCALE[0] = args.pipedrive_scale
    PIPEDRIVE_CONTROL[0] = args.pipedrive_control
    contacts = make_contacts(args.contacts)
    warm_up()
    failed = False
    for name in args.vendor or list(BENCHES):
        r = BENCHES[name](contacts)
        ok = (r.ceiling_share >= 0.9 and r.surfaced == 0 and r.throttled_answers == 0
              and r.cpu_ratio <= 1.5 and r.all_created)  # fmt: skip
        failed |= not ok
        print(
            f"{r.vendor:10s} contacts={r.contacts} calls={r.calls} elapsed={r.elapsed:.2f}s "
            f"ideal={r.ideal:.2f}s ceiling={r.ceiling_share:.1%} 429/403={r.throttled_answers} "
            f"RateLimited={r.surfaced} cpu/contact={r.cpu_per_contact_us:.0f}us "
            f"baseline={r.baseline_cpu_per_contact_us:.0f}us ratio={r.cpu_ratio:.2f} "
            + (f"setup={r.setup_cpu_ms:.0f}ms " if r.setup_cpu_ms else "")
            + (
                f"unpaced={r.unpaced_cpu_per_contact_us:.0f}us ({r.unpaced_ratio:.2f}) "
                if r.unpaced_cpu_per_contact_us
                else ""
            )
            + (
                f"paced-baseline={r.paced_baseline_cpu_per_contact_us:.0f}us "
                f"({r.cpu_per_contact_us / r.paced_baseline_cpu_per_contact_us:.2f}) "
                if r.paced_baseline_cpu_per_contact_us
                else ""
            )
            + ("OK" if ok else "FAIL"),
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
