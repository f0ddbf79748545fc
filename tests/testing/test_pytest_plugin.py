"""The opt-in pytest fixtures: drivers over sandboxes, and a sleep that only records."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from dixis_integrations.http import Endpoint, RetryPolicy
from dixis_integrations.sandbox.kit import Fault
from dixis_integrations.testing.pytest_plugin import (
    AsyncDriverFactory,
    DriverFactory,
    FakeSleep,
)

from ._partial import PartialSandbox

# the inner sessions need none of the heavy plugins of this one
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio")
EP = Endpoint(vendor="partial", base_url="https://partial.test")


def test_sandbox_driver_talks_to_the_emulator_and_retries_on_fake_sleep(
    sandbox_driver: DriverFactory, fake_sleep: FakeSleep
) -> None:
    sandbox = PartialSandbox()
    sandbox.faults.script.extend([Fault.SERVER_ERROR, Fault.SERVER_ERROR])
    driver = sandbox_driver(sandbox, retry=RetryPolicy(jitter=False))
    response = driver.send(EP.request("GET", "/ping", operation="ping"))
    assert response.json() == {"ok": True}
    assert fake_sleep.calls == [0.5, 1.0]
    assert fake_sleep.total == 1.5


def test_async_sandbox_driver_uses_the_same_fake_sleep(
    async_sandbox_driver: AsyncDriverFactory, fake_sleep: FakeSleep
) -> None:
    sandbox = PartialSandbox()
    sandbox.faults.script.append(Fault.RESET)
    driver = async_sandbox_driver(sandbox, retry=RetryPolicy(jitter=False))
    response = asyncio.run(driver.send(EP.request("GET", "/ping", operation="ping")))
    assert response.status_code == 200
    assert fake_sleep.calls == [0.5]


def test_a_plain_function_is_a_sandbox_too(sandbox_driver: DriverFactory) -> None:
    driver = sandbox_driver(lambda request: httpx.Response(418))
    with pytest.raises(Exception, match="HTTP 418"):
        driver.send(EP.request("GET", "/teapot", operation="tea"))


def test_live_tests_are_skipped_without_the_switch(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((Path(__file__).parents[1] / "conftest.py").read_text())
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.live("SOME_VENDOR_KEY")
        def test_vendor():
            raise AssertionError("must not run")
        """
    )
    result = pytester.runpytest("-q", "-rs", *QUIET)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*DIXIS_LIVE=1*"])
