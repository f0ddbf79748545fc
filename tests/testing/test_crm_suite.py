"""The CRMProviderSuite, run against the built-in CRMs on their sandboxes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from dixis_integrations.crm.hubspot import HubSpot, HubSpotConfig
from dixis_integrations.crm.pipedrive import Pipedrive, PipedriveConfig
from dixis_integrations.crm.salesforce import Salesforce, SalesforceConfig
from dixis_integrations.http import Driver
from dixis_integrations.sandbox.hubspot import HubSpotSandbox
from dixis_integrations.sandbox.pipedrive import PipedriveSandbox
from dixis_integrations.sandbox.salesforce import SalesforceSandbox
from dixis_integrations.testing import CRMProviderSuite


class TestHubSpotConforms(CRMProviderSuite):
    @pytest.fixture
    def sandbox(self) -> HubSpotSandbox:
        box = HubSpotSandbox()
        box.bind("http://hubspot.test")
        return box

    @pytest.fixture
    def crm(self, sandbox: HubSpotSandbox) -> HubSpot:
        creds = sandbox.credentials()
        return HubSpot(
            HubSpotConfig(
                access_token=SecretStr(creds["access_token"]),
                client_secret=SecretStr(creds["client_secret"]),
                base_url=creds["base_url"],
            )
        )

    @pytest.fixture
    def driver(self, sandbox: HubSpotSandbox) -> Iterator[Driver]:
        with Driver(httpx.Client(transport=sandbox.transport()), sleep=lambda _s: None) as d:
            yield d


class TestPipedriveConforms(CRMProviderSuite):
    @pytest.fixture
    def sandbox(self) -> PipedriveSandbox:
        box = PipedriveSandbox()
        box.bind("http://pipedrive.test")
        return box

    @pytest.fixture
    def crm(self, sandbox: PipedriveSandbox) -> Pipedrive:
        creds = sandbox.credentials()
        return Pipedrive(
            PipedriveConfig(api_token=SecretStr(creds["api_token"]), base_url=creds["base_url"])
        )

    @pytest.fixture
    def driver(self, sandbox: PipedriveSandbox) -> Iterator[Driver]:
        with Driver(httpx.Client(transport=sandbox.transport()), sleep=lambda _s: None) as d:
            yield d


class TestSalesforceConforms(CRMProviderSuite):
    @pytest.fixture
    def sandbox(self) -> SalesforceSandbox:
        box = SalesforceSandbox()
        box.bind("http://salesforce.test")
        return box

    @pytest.fixture
    def crm(self, sandbox: SalesforceSandbox) -> Salesforce:
        creds = sandbox.credentials()
        return Salesforce(
            SalesforceConfig(
                base_url=creds["base_url"],
                client_id=creds["client_id"],
                username=creds["username"],
                private_key=SecretStr(creds["private_key"]),
            )
        )

    @pytest.fixture
    def driver(self, sandbox: SalesforceSandbox) -> Iterator[Driver]:
        with Driver(httpx.Client(transport=sandbox.transport()), sleep=lambda _s: None) as d:
            yield d
