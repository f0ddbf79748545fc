"""Testing kit for host applications and plugin authors (needs the ``test`` extra).

Conformance suites to subclass (:mod:`.conformance`), pytest fixtures (:mod:`.pytest_plugin`,
opt in through ``pytest_plugins``) and a cassette recorder that filters secrets (:mod:`.vcr`).
"""

from dixis_integrations.testing.conformance import (
    AccountingProviderSuite,
    AdapterSuite,
    CRMProviderSuite,
    EmailProviderSuite,
    InventorySourceSuite,
    ShippingCarrierSuite,
    sent_calls,
)

__all__ = [
    "AccountingProviderSuite",
    "AdapterSuite",
    "CRMProviderSuite",
    "EmailProviderSuite",
    "InventorySourceSuite",
    "ShippingCarrierSuite",
    "sent_calls",
]
