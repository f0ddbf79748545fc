"""Where the client's CPU per contact goes, in process, without a network or a server.

Two views, for HubSpot and Salesforce, on the same 20,000 contacts as ``bench_sync.py``:

- per phase, best of five: our checks, our wire encoding, our parse of a canned
  answer into typed results, each next to what the raw-httpx baseline does instead
  (dicts then ``json.dumps``; ``json.loads``; a tuple per row);
- end to end on one thread through an ``httpx.MockTransport`` that answers with canned
  bytes at no cost: ``Driver.run(adapter.upsert_contacts(...))`` against the baseline's
  own loop, so the figures are the client code alone (no sockets, no emulator, no other
  thread); ``--profile`` adds a cProfile of one run of ours.

Run: ``.venv/bin/python benchmarks/crm/bench_phases.py [--profile]`` (under a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import itertools
import json
import pstats
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).parent))

import bench_sync as sync  # the same contacts and baselines

from dixis_integrations.crm.contacts import validate_contact
from dixis_integrations.crm.hubspot import (
    HubSpot,
    HubSpotConfig,
    encode_upsert_batch,
    parse_upsert_batch,
)
from dixis_integrations.crm.salesforce import (
    Salesforce,
    SalesforceConfig,
    encode_upsert_collection,
    parse_upsert_collection,
)
from dixis_integrations.http import Driver
from dixis_integrations.models.crm import CRMContact

N = 20_000
URL = "http://crm.test"
FIELD = "Dixis_Customer_Id__c"


def best(work: Callable[[], object], repeat: int = 5) -> float:
    """Best CPU seconds of ``repeat`` runs, garbage collected before each."""
    out = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        work()
        out = min(out, time.process_time() - start)
    return out


def us(seconds: float) -> str:
    return f"{seconds / N * 1e6:5.2f} us"


def hubspot_answer(chunk: Sequence[CRMContact]) -> bytes:
    stamp = "2026-01-01T00:00:00.000Z"
    return json.dumps({"status": "COMPLETE", "startedAt": stamp, "completedAt": stamp,
                       "results": [{"id": str(1000 + i), "new": True, "archived": False,
                                    "createdAt": stamp, "updatedAt": stamp,
                                    "properties": {"email": c.email, "createdate": stamp,
                                                   "hs_object_id": str(1000 + i),
                                                   "lastmodifieddate": stamp}}
                                   for i, c in enumerate(chunk)]}).encode()  # fmt: skip


def salesforce_answer(chunk: Sequence[CRMContact]) -> bytes:
    return json.dumps([{"id": f"003{i:015d}", "success": True, "errors": [], "created": True}
                       for i, _ in enumerate(chunk)]).encode()  # fmt: skip


def hubspot_dicts(chunk: Sequence[CRMContact]) -> bytes:
    """The baseline's body (as ``hubspot_baseline`` builds it)."""
    return json.dumps({"inputs": [{"idProperty": "email", "id": c.email,
                                   "objectWriteTraceId": c.reference,
                                   "properties": sync._hubspot_props(c)}
                                  for c in chunk]}).encode()  # fmt: skip


def salesforce_dicts(chunk: Sequence[CRMContact]) -> bytes:
    """The baseline's body (as ``salesforce_baseline`` builds it)."""
    return json.dumps({"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, FIELD: c.reference, "LastName": c.last_name,
         "FirstName": c.first_name, "Email": c.email, "Phone": c.phone,
         "Dixis_Total_Orders__c": c.total_orders,
         "Dixis_Total_Spent__c": float(c.total_spent.amount),
         "Dixis_Last_Order_Date__c": str(c.last_order_date), "Dixis_Segment__c": c.segment,
         "Dixis_Marketing_Consent__c": c.consent.status.value}
        for c in chunk]}).encode()  # fmt: skip


def phases(contacts: list[CRMContact]) -> None:
    hs = [contacts[i : i + 100] for i in range(0, N, 100)]
    sf = [contacts[i : i + 200] for i in range(0, N, 200)]
    hs_answers = [json.loads(hubspot_answer(c)) for c in hs]
    sf_answers = [json.loads(salesforce_answer(c)) for c in sf]
    rows = [
        ("checks (validate_contact)", best(lambda: [validate_contact(c) for c in contacts]), 0.0),
        (
            "HubSpot encode / dicts + json.dumps",
            best(lambda: [encode_upsert_batch(c) for c in hs]),
            best(lambda: [hubspot_dicts(c) for c in hs]),
        ),
        (
            "HubSpot parse / tuples",
            best(lambda: [parse_upsert_batch(c, a) for c, a in zip(hs, hs_answers, strict=True)]),
            best(lambda: [[(x["id"], x["new"]) for x in a["results"]] for a in hs_answers]),
        ),
        (
            "Salesforce encode / dicts + json.dumps",
            best(lambda: [encode_upsert_collection(c, FIELD) for c in sf]),
            best(lambda: [salesforce_dicts(c) for c in sf]),
        ),
        (
            "Salesforce parse / tuples",
            best(
                lambda: [parse_upsert_collection(c, a) for c, a in zip(sf, sf_answers, strict=True)]
            ),
            best(lambda: [[(x.get("id"), x.get("created")) for x in a] for a in sf_answers]),
        ),
    ]
    print("per phase, CPU per contact (ours / the baseline's counterpart):")
    for name, ours, theirs in rows:
        print(f"  {name:40s} {us(ours)} / {us(theirs) if theirs else '   -    '}")


class Canned(httpx.BaseTransport):
    """Answers each request with the next canned body, in order."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.next = itertools.count()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        body = self.answers[next(self.next) % len(self.answers)]
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})


@contextlib.contextmanager
def canned(transport: Canned) -> Iterator[None]:
    """Every ``httpx.Client`` made meanwhile (ours and the baseline's) uses ``transport``;
    both sides are then timed by ``bench_sync`` itself, garbage collected first."""
    transport.next = itertools.count()
    real = httpx.Client

    def client(**kwargs: Any) -> httpx.Client:
        return real(transport=transport, **kwargs)

    httpx.Client = client  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        httpx.Client = real  # type: ignore[misc]


def end_to_end(contacts: list[CRMContact], profile: bool) -> None:
    print("end to end, one thread, canned answers (best of five):")
    sync.WORKERS = 1
    for vendor in ("hubspot", "salesforce"):
        size = 100 if vendor == "hubspot" else 200
        chunks = [contacts[i : i + size] for i in range(0, N, size)]
        make = hubspot_answer if vendor == "hubspot" else salesforce_answer
        transport = Canned([make(c) for c in chunks])
        adapter: Any
        if vendor == "hubspot":
            adapter = HubSpot(HubSpotConfig(access_token=SecretStr("pat"), base_url=URL),
                              time_scale=1e-9)  # fmt: skip
            adapter._properties_ready = True  # the set-up calls are not measured
        else:
            config = SalesforceConfig(access_token=SecretStr("00Dx"), base_url=URL,
                                      instance_url=URL, daily_api_requests=10**9)  # fmt: skip
            adapter = Salesforce(config)

        def ours(adapter: Any = adapter, transport: Canned = transport) -> float:
            with canned(transport):
                return sync.timed([adapter.upsert_contacts(contacts)]).cpu

        def theirs(vendor: str = vendor, transport: Canned = transport) -> float:
            with canned(transport):
                if vendor == "hubspot":
                    return sync.hubspot_baseline(URL, "pat", contacts).cpu
                return sync.salesforce_baseline(URL, "00Dx", contacts).cpu

        ours()
        theirs()
        a = min(ours() for _ in range(5))
        b = min(theirs() for _ in range(5))
        print(f"  {vendor:10s} ours {us(a)}  baseline {us(b)}  ratio {a / b:.2f}")
        if profile:
            prof = cProfile.Profile(time.process_time)
            with httpx.Client(transport=transport) as client:
                prof.runcall(Driver(client).run, adapter.upsert_contacts(contacts))
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    contacts = sync.make_contacts(N)
    phases(contacts)
    end_to_end(contacts, args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
