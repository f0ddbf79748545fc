"""A third-party carrier (the example plugin package) shops and tracks like a built-in.

The plugin's own packaging test (``tests/plugins``) proves ``pip install`` registers it;
here its classes are imported from its source tree and mixed with the six built-ins.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dixis_integrations.http import Driver
from dixis_integrations.models.shipping import TrackingStatus
from dixis_integrations.protocols import ShippingCarrier
from dixis_integrations.shipping import (
    MemoryCheckpointStore,
    TrackedShipment,
    TrackingPoller,
    shop_rates,
)

from ._six import six
from .conftest import shipment_request

SOURCE = Path(__file__).parents[1] / "plugins" / "dixis-carrier-example" / "src"


@pytest.fixture
def example() -> Iterator[Any]:
    if not (SOURCE / "dixis_carrier_example").is_dir():
        pytest.skip("the example plugin package is not in this tree")
    sys.path.insert(0, str(SOURCE))
    try:
        package = importlib.import_module("dixis_carrier_example")
        sandbox_module = importlib.import_module("dixis_carrier_example.sandbox")
        sandbox = sandbox_module.ExampleSandbox()
        carrier = package.ExampleCarrier(
            sandbox.credentials()["api_key"], base_url="http://example.test"
        )
        yield carrier, sandbox
    finally:
        sys.path.remove(str(SOURCE))


def test_a_plugin_carrier_is_quoted_next_to_the_built_ins(example: Any) -> None:
    plugin, plugin_sandbox = example
    assert isinstance(plugin, ShippingCarrier)
    wired = six()
    drivers = {
        name: Driver(httpx.Client(transport=w.sandbox.transport())) for name, w in wired.items()
    }
    drivers["example"] = Driver(httpx.Client(transport=plugin_sandbox.transport()))
    carriers = [*(w.carrier for w in wired.values()), plugin]
    shop = shop_rates(shipment_request(), carriers, drivers)
    assert shop.line("example").ok
    assert "example" in {q.carrier for q in shop.quotes()}
    assert len(shop.lines) == 7


def test_a_plugin_shipment_is_polled_like_a_built_in(example: Any) -> None:
    plugin, plugin_sandbox = example
    driver = Driver(httpx.Client(transport=plugin_sandbox.transport()))
    shipment = driver.run(plugin.create_shipment(shipment_request()))
    poller = TrackingPoller([plugin, *(w.carrier for w in six().values())], MemoryCheckpointStore())
    result = poller.poll(
        [TrackedShipment("example", shipment.tracking_number)], {"example": driver}
    )
    assert result.errors == {}
    assert all(isinstance(c.status, TrackingStatus) for c in result.changes)
    again = poller.poll([TrackedShipment("example", shipment.tracking_number)], {"example": driver})
    assert again.changes == ()
