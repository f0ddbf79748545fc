"""Rate shopping across the six carrier sandboxes, each answering with injected latency.

Claim checked: asking all six carriers at once takes at most 1.2x the time of the slowest
carrier asked alone, for both drivers, and a carrier that hangs still leaves the other
five quotes. Baselines (each carrier alone, and all six one after the other) are measured
in the same run, on the same sandboxes and latency.

    .venv/bin/python benchmarks/shipping/bench_rate_shopping.py [--latency 0.2] [--runs 5]

Two scenarios:
  configured  the carriers as shipped: ACS prices through its API (two calls), the other
              five price from their rate tables without a call.
  all-calls   every carrier first proves its credentials with ``check()`` (a real call to
              its sandbox: token, session or key included) and then quotes, so all six pay
              the latency; BOX NOW quotes a locker delivery, the others a door delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import httpx

from dixis_integrations.http import AsyncDriver, Driver, Operation
from dixis_integrations.models.address import Address
from dixis_integrations.models.shipping import (
    DeliveryType,
    Parcel,
    Quote,
    ShipmentRequest,
    ShippingOptions,
)
from dixis_integrations.protocols import ShippingCarrier
from dixis_integrations.sandbox.acs import ACSSandbox
from dixis_integrations.sandbox.boxnow import BoxNowSandbox
from dixis_integrations.sandbox.courier_center import CourierCenterSandbox
from dixis_integrations.sandbox.elta import ELTASandbox
from dixis_integrations.sandbox.geniki import GenikiSandbox
from dixis_integrations.sandbox.kit import Emulator
from dixis_integrations.sandbox.speedex import SpeedexSandbox
from dixis_integrations.shipping import (
    ACS,
    ELTA,
    ACSConfig,
    BoxNow,
    BoxNowConfig,
    CourierCenter,
    CourierCenterConfig,
    ELTAConfig,
    Geniki,
    GenikiConfig,
    Speedex,
    SpeedexConfig,
    ashop_rates,
    shop_rates,
)

SENDER = Address(
    name="Dixis Fresh",
    street="Συγγρού 120",
    city="Αθήνα",
    postcode="11745",
    phone="2101234567",
    email="ship@dixis.example",
)
RECIPIENT = Address(
    name="Μαρία Κ.",
    street="Ερμού 25",
    city="Αθήνα",
    postcode="10563",
    mobile="6912345678",
    email="maria@example.gr",
)


def request(locker: bool = False) -> ShipmentRequest:
    options = (
        ShippingOptions(delivery_type=DeliveryType.LOCKER, pickup_point_id="4")
        if locker
        else ShippingOptions()
    )
    return ShipmentRequest(
        reference="BENCH-1",
        sender=SENDER,
        recipient=RECIPIENT,
        parcels=(Parcel(weight_kg="2.5"),),
        options=options,
        ship_date=date(2026, 11, 2),
    )


def carriers() -> list[tuple[ShippingCarrier, Emulator]]:
    """Fresh carriers on fresh sandboxes: cold tokens, sessions and keys every time."""
    acs, boxnow, cc = ACSSandbox(), BoxNowSandbox(), CourierCenterSandbox()
    elta, geniki, speedex = ELTASandbox(), GenikiSandbox(), SpeedexSandbox()
    c: Any = {s.name: s.credentials() for s in (acs, boxnow, cc, elta, geniki, speedex)}
    return [
        (ACS(ACSConfig(base_url="http://acs/ACSRestServices/api", **c["acs"])), acs),
        (BoxNow(BoxNowConfig(base_url="http://boxnow", **c["boxnow"])), boxnow),
        (
            CourierCenter(
                CourierCenterConfig(base_url="http://cc/ccservice/api", **c["courier_center"])
            ),
            cc,
        ),
        (ELTA(ELTAConfig(base_url="http://elta", **c["elta"])), elta),
        (Geniki(GenikiConfig(base_url="http://g/JobServicesV2.asmx", **c["geniki"])), geniki),
        (Speedex(SpeedexConfig(base_url="http://s/accesspoint.asmx", **c["speedex"])), speedex),
    ]


class CheckedQuote:
    """A carrier whose quote first runs ``check()`` and prices its own kind of request."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.own = request(locker=inner.name == "boxnow")

    def validate(self, _: ShipmentRequest) -> None:
        self.inner.validate(self.own)

    def quote(self, _: ShipmentRequest) -> Operation[list[Quote]]:
        yield from self.inner.check()
        return (yield from self.inner.quote(self.own))


def sync_drivers(pairs: Sequence[tuple[Any, Emulator]], latency: float) -> dict[str, Driver]:
    def delayed(emulator: Emulator) -> Callable[[httpx.Request], httpx.Response]:
        def handle(req: httpx.Request) -> httpx.Response:
            time.sleep(latency)
            return emulator.handle(req)

        return handle

    return {
        c.name: Driver(httpx.Client(transport=httpx.MockTransport(delayed(e)))) for c, e in pairs
    }


def async_drivers(pairs: Sequence[tuple[Any, Emulator]], latency: float) -> dict[str, AsyncDriver]:
    def delayed(emulator: Emulator) -> Any:
        async def handle(req: httpx.Request) -> httpx.Response:
            await asyncio.sleep(latency)
            return emulator.handle(req)

        return handle

    return {
        c.name: AsyncDriver(httpx.AsyncClient(transport=httpx.MockTransport(delayed(e))))
        for c, e in pairs
    }


def build(scenario: str) -> list[tuple[Any, Emulator]]:
    pairs = carriers()
    if scenario == "all-calls":
        return [(CheckedQuote(c), e) for c, e in pairs]
    return [(c, e) for c, e in pairs]


def time_sync(scenario: str, latency: float, only: str | None) -> tuple[float, int]:
    pairs = build(scenario)
    if only is not None:
        pairs = [p for p in pairs if p[0].name == only]
    drivers = sync_drivers(pairs, latency)
    t0 = time.perf_counter()
    shop = shop_rates(request(), [c for c, _ in pairs], drivers, timeout=30)
    elapsed = time.perf_counter() - t0
    return elapsed, len(shop.quotes())


def time_async(scenario: str, latency: float, only: str | None) -> tuple[float, int]:
    pairs = build(scenario)
    if only is not None:
        pairs = [p for p in pairs if p[0].name == only]

    async def go() -> tuple[float, int]:
        drivers = async_drivers(pairs, latency)
        t0 = time.perf_counter()
        shop = await ashop_rates(request(), [c for c, _ in pairs], drivers, timeout=30)
        elapsed = time.perf_counter() - t0
        for d in drivers.values():
            await d.client.aclose()
        return elapsed, len(shop.quotes())

    return asyncio.run(go())


def hanging_carrier_still_leaves_five(latency: float) -> int:
    pairs = build("all-calls")
    gate = threading.Event()
    drivers = sync_drivers(pairs, latency)
    acs_emulator = pairs[0][1]

    def hang(req: httpx.Request) -> httpx.Response:
        gate.wait(10)
        return acs_emulator.handle(req)

    drivers["acs"] = Driver(httpx.Client(transport=httpx.MockTransport(hang)))
    try:
        shop = shop_rates(request(), [c for c, _ in pairs], drivers, timeout=latency * 6)
    finally:
        gate.set()
    assert "acs" in shop.failures()
    return len(shop.quotes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    names = [c.name for c, _ in carriers()]
    worst = 0.0
    for scenario in ("configured", "all-calls"):
        for label, timer in (("sync", time_sync), ("async", time_async)):
            alone = {
                n: statistics.median(timer(scenario, args.latency, n)[0] for _ in range(args.runs))
                for n in names
            }
            together = [timer(scenario, args.latency, None) for _ in range(args.runs)]
            shop = statistics.median(t for t, _ in together)
            quotes = together[0][1]
            slowest_name = max(alone, key=lambda n: alone[n])
            ratio = shop / alone[slowest_name]
            worst = max(worst, ratio)
            print(
                f"{scenario:10s} {label:5s}  six at once {shop * 1000:7.1f} ms ({quotes} quotes)"
                f"  slowest alone {slowest_name} {alone[slowest_name] * 1000:7.1f} ms"
                f"  one after another {sum(alone.values()) * 1000:7.1f} ms"
                f"  ratio {ratio:.3f}"
            )
    five = hanging_carrier_still_leaves_five(args.latency)
    print(f"ACS hanging past the timeout: {five} quotes from the other five")
    print(f"worst ratio {worst:.3f} (claim: <= 1.2)")
    if worst > 1.2 or five != 5:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
