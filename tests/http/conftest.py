"""Fixtures of the driver tests: ``harness`` is parametrised over the sync and the async
driver, so every behaviour is pinned once for both; sleeps are recorded, never slept.
"""

from __future__ import annotations

import pytest
from _driver_harness import Harness


@pytest.fixture(params=["sync", "async"])
def harness(request: pytest.FixtureRequest) -> Harness:
    return Harness(kind=str(request.param))
