"""The AccountingProviderSuite, run against the built-in ledgers on their sandboxes."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import httpx
import pytest

from dixis_integrations.accounting.quickbooks import QuickBooks, QuickBooksConfig
from dixis_integrations.accounting.xero import Xero, XeroConfig
from dixis_integrations.http import Driver
from dixis_integrations.models import VatCategory
from dixis_integrations.sandbox.quickbooks import QuickBooksSandbox
from dixis_integrations.sandbox.xero import XeroSandbox
from dixis_integrations.testing import AccountingProviderSuite

_CATEGORIES = list(VatCategory)


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class TestXeroConforms(AccountingProviderSuite):
    @pytest.fixture
    def sandbox(self) -> XeroSandbox:
        return XeroSandbox()

    @pytest.fixture
    def provider(self, sandbox: XeroSandbox) -> Xero:
        creds = sandbox.credentials()
        codes = {c: f"TAX{i:03d}" for i, c in enumerate(_CATEGORIES, start=1)}
        codes[VatCategory.ZERO] = "ZERORATEDOUTPUT"
        codes[VatCategory.EXEMPT] = "EXEMPTOUTPUT"
        config = XeroConfig(
            base_url=creds["base_url"],
            connections_url=creds["connections_url"],
            tax_codes=codes,
            webhook_key=creds["webhook_key"],
        )
        return Xero(config, tenant="farm-a", auth=_Bearer(creds["access_token"]))

    @pytest.fixture
    def driver(self, sandbox: XeroSandbox) -> Iterator[Driver]:
        with Driver(httpx.Client(transport=sandbox.transport()), sleep=lambda _s: None) as d:
            yield d


class TestQuickBooksConforms(AccountingProviderSuite):
    @pytest.fixture
    def sandbox(self) -> QuickBooksSandbox:
        return QuickBooksSandbox()

    @pytest.fixture
    def provider(self, sandbox: QuickBooksSandbox) -> QuickBooks:
        creds = sandbox.credentials()
        config = QuickBooksConfig(
            base_url=creds["base_url"],
            realm_id=creds["realm_id"],
            tax_codes={c: str(i) for i, c in enumerate(_CATEGORIES, start=1)},
            fee_account_id="5",
            webhook_verifier_token=creds["webhook_verifier_token"],
        )
        return QuickBooks(config, tenant="farm-a", auth=_Bearer(creds["access_token"]))

    @pytest.fixture
    def driver(self, sandbox: QuickBooksSandbox) -> Iterator[Driver]:
        with Driver(httpx.Client(transport=sandbox.transport()), sleep=lambda _s: None) as d:
            yield d
