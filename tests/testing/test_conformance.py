"""The conformance suite itself: it passes a carrier that keeps the contract, and fails
carriers that claim what they cannot do, or do what they did not claim."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dixis_integrations.http import Driver
from dixis_integrations.models.shipping import ShipmentRequest
from dixis_integrations.testing import ShippingCarrierSuite

from ._partial import PartialCarrier, PartialSandbox, plain_request

HERE = Path(__file__).parent


class TestPartialCarrier(ShippingCarrierSuite):
    """Rates and tracking only: every other operation must be refused, and is."""

    @pytest.fixture
    def carrier(self) -> PartialCarrier:
        return PartialCarrier()

    @pytest.fixture
    def driver(self) -> Iterator[Driver]:
        with Driver(httpx.Client(transport=PartialSandbox().transport())) as driver:
            yield driver

    @pytest.fixture
    def shipment_request(self) -> ShipmentRequest:
        return plain_request()


_VARIANT = """
import httpx, pytest, sys
sys.path.insert(0, {here!r})
from _partial import PartialCarrier, PartialSandbox, plain_request
from dixis_integrations.http import Driver
from dixis_integrations.protocols import Capability
from dixis_integrations.testing import ShippingCarrierSuite

{carrier}

class TestVariant(ShippingCarrierSuite):
    @pytest.fixture
    def carrier(self):
        return Variant()

    @pytest.fixture
    def driver(self):
        with Driver(httpx.Client(transport=PartialSandbox().transport())) as driver:
            yield driver

    @pytest.fixture
    def shipment_request(self):
        return plain_request()
"""


def _run_variant(pytester: pytest.Pytester, carrier: str) -> pytest.RunResult:
    source = _VARIANT.format(here=str(HERE), carrier=textwrap.dedent(carrier))
    pytester.makepyfile(test_variant=source)
    return pytester.runpytest("-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def test_the_suite_fails_a_carrier_that_declares_labels_it_cannot_print(
    pytester: pytest.Pytester,
) -> None:
    result = _run_variant(
        pytester,
        """
        class Variant(PartialCarrier):
            capabilities = PartialCarrier.capabilities | {Capability.LABELS}
        """,
    )
    result.assert_outcomes(failed=1, passed=17, skipped=1)
    result.stdout.fnmatch_lines(["*test_label_per_capability*"])


def test_the_suite_fails_an_undeclared_operation_that_calls_the_vendor(
    pytester: pytest.Pytester,
) -> None:
    result = _run_variant(
        pytester,
        """
        from dixis_integrations.errors import NotSupported

        class Variant(PartialCarrier):
            def cancel(self, shipment):
                yield self.endpoint.request("DELETE", f"/shipments/{shipment.tracking_number}",
                                            operation="partial.cancel")
                raise NotSupported("cancel", vendor=self.name)
        """,
    )
    result.assert_outcomes(failed=1, passed=17, skipped=1)
    result.stdout.fnmatch_lines(["*test_cancel_per_capability*"])


def test_the_suite_fails_a_carrier_that_accepts_an_option_it_does_not_offer(
    pytester: pytest.Pytester,
) -> None:
    result = _run_variant(
        pytester,
        """
        class Variant(PartialCarrier):
            def validate(self, request):
                return None
        """,
    )
    result.assert_outcomes(failed=4, passed=14, skipped=1)
    result.stdout.fnmatch_lines(["*test_options_per_capability*cod*"])


def test_the_suite_fails_a_carrier_that_is_not_a_carrier(pytester: pytest.Pytester) -> None:
    result = _run_variant(
        pytester,
        """
        class Variant(PartialCarrier):
            name = "Not A Name"
            finalise = None
        """,
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 2
    result.stdout.fnmatch_lines(["*test_name_is_a_short_lowercase_identifier*"])
    result.stdout.fnmatch_lines(["*test_satisfies_its_protocol*"])
