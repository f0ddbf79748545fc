"""Suite-wide test set-up: the testing kit's fixtures, and the ``live`` marker's rule.

``@pytest.mark.live("XERO_CLIENT_ID", "XERO_CLIENT_SECRET")`` marks a test that talks to a
real vendor: it is skipped unless ``DIXIS_LIVE=1`` and every named variable is set.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Wall-clock deadlines make property tests flaky on a loaded 2-core machine; the
# properties themselves are what we check, not their speed (that is benchmarks/' job).
settings.register_profile("dixis", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dixis"))

pytest_plugins = ["pytester", "dixis_integrations.testing.pytest_plugin"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    live = os.environ.get("DIXIS_LIVE") == "1"
    for item in items:
        marker = item.get_closest_marker("live")
        if marker is None:
            continue
        if not live:
            item.add_marker(pytest.mark.skip(reason="talks to a real vendor: set DIXIS_LIVE=1"))
            continue
        missing = [name for name in marker.args if not os.environ.get(str(name))]
        if missing:
            reason = "live test needs " + ", ".join(map(str, missing))
            item.add_marker(pytest.mark.skip(reason=reason))
