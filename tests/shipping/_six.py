"""The six built-in carriers, each wired to its own in-process sandbox (test helper)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dixis_integrations.protocols import ShippingCarrier
from dixis_integrations.sandbox.acs import ACSSandbox
from dixis_integrations.sandbox.boxnow import BoxNowSandbox
from dixis_integrations.sandbox.courier_center import CourierCenterSandbox
from dixis_integrations.sandbox.elta import ELTASandbox
from dixis_integrations.sandbox.geniki import GenikiSandbox
from dixis_integrations.sandbox.kit import Emulator
from dixis_integrations.sandbox.speedex import SpeedexSandbox
from dixis_integrations.shipping.acs import ACS, ACSConfig
from dixis_integrations.shipping.boxnow import BoxNow, BoxNowConfig
from dixis_integrations.shipping.courier_center import CourierCenter, CourierCenterConfig
from dixis_integrations.shipping.elta import ELTA, ELTAConfig
from dixis_integrations.shipping.geniki import Geniki, GenikiConfig
from dixis_integrations.shipping.speedex import Speedex, SpeedexConfig


@dataclass
class Wired:
    carrier: ShippingCarrier
    sandbox: Emulator


def six() -> dict[str, Wired]:
    """``name -> (carrier, sandbox)`` for the six built-ins, each on its own sandbox."""
    acs, boxnow, cc = ACSSandbox(), BoxNowSandbox(), CourierCenterSandbox()
    elta, geniki, speedex = ELTASandbox(), GenikiSandbox(), SpeedexSandbox()
    c: Any = {s.name: s.credentials() for s in (acs, boxnow, cc, elta, geniki, speedex)}
    return {
        "acs": Wired(ACS(ACSConfig(base_url="http://acs/ACSRestServices/api", **c["acs"])), acs),
        "boxnow": Wired(BoxNow(BoxNowConfig(base_url="http://boxnow", **c["boxnow"])), boxnow),
        "courier_center": Wired(
            CourierCenter(
                CourierCenterConfig(base_url="http://cc/ccservice/api", **c["courier_center"])
            ),
            cc,
        ),
        "elta": Wired(ELTA(ELTAConfig(base_url="http://elta", **c["elta"])), elta),
        "geniki": Wired(
            Geniki(GenikiConfig(base_url="http://geniki/JobServicesV2.asmx", **c["geniki"])),
            geniki,
        ),
        "speedex": Wired(
            Speedex(SpeedexConfig(base_url="http://speedex/accesspoint.asmx", **c["speedex"])),
            speedex,
        ),
    }
