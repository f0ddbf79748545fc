"""Shipping: Greek carriers behind one Protocol, with rate shopping, tracking and validation.

The shared logic is imported eagerly (validation, rate tables and shopping, tracking and
the poller); the six carrier adapters (``ACS``, ``BoxNow``, ``CourierCenter``, ``ELTA``,
``Geniki``, ``Speedex``) and their configs are imported on first use, so importing this
package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dixis_integrations.shipping.rates import (
    GREEK_VAT,
    CarrierQuotes,
    RateBand,
    RateShop,
    RateTable,
    Zone,
    ZoneResolver,
    ashop_rates,
    shop_rates,
)
from dixis_integrations.shipping.tracking import (
    FINAL_STATUSES,
    CheckpointStore,
    MemoryCheckpointStore,
    PollResult,
    StatusMap,
    TrackedShipment,
    TrackingPoller,
    build_tracking,
    drop_retracted,
)
from dixis_integrations.shipping.validation import (
    CarrierRules,
    check_request,
    latin,
    parse_shipment_request,
    raise_if_invalid,
)

if TYPE_CHECKING:
    from dixis_integrations.shipping.acs import ACS, ACSConfig
    from dixis_integrations.shipping.boxnow import BoxNow, BoxNowConfig
    from dixis_integrations.shipping.courier_center import CourierCenter, CourierCenterConfig
    from dixis_integrations.shipping.elta import ELTA, ELTAConfig
    from dixis_integrations.shipping.geniki import Geniki, GenikiConfig
    from dixis_integrations.shipping.speedex import Speedex, SpeedexConfig

__all__ = [
    "ACS",
    "ELTA",
    "FINAL_STATUSES",
    "GREEK_VAT",
    "ACSConfig",
    "BoxNow",
    "BoxNowConfig",
    "CarrierQuotes",
    "CarrierRules",
    "CheckpointStore",
    "CourierCenter",
    "CourierCenterConfig",
    "ELTAConfig",
    "Geniki",
    "GenikiConfig",
    "MemoryCheckpointStore",
    "PollResult",
    "RateBand",
    "RateShop",
    "RateTable",
    "Speedex",
    "SpeedexConfig",
    "StatusMap",
    "TrackedShipment",
    "TrackingPoller",
    "Zone",
    "ZoneResolver",
    "ashop_rates",
    "build_tracking",
    "check_request",
    "drop_retracted",
    "latin",
    "parse_shipment_request",
    "raise_if_invalid",
    "shop_rates",
]

_LAZY = {
    "ACS": "acs",
    "ACSConfig": "acs",
    "BoxNow": "boxnow",
    "BoxNowConfig": "boxnow",
    "CourierCenter": "courier_center",
    "CourierCenterConfig": "courier_center",
    "ELTA": "elta",
    "ELTAConfig": "elta",
    "Geniki": "geniki",
    "GenikiConfig": "geniki",
    "Speedex": "speedex",
    "SpeedexConfig": "speedex",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
