"""The hub: built from configuration or on the sandboxes, adapters run through its drivers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from dixis_integrations.config import parse_settings
from dixis_integrations.errors import ConfigurationError
from dixis_integrations.hub import AsyncIntegrations, Integrations
from dixis_integrations.models.crm import CRMContact, UpsertStatus
from dixis_integrations.models.events import CustomerCreated
from dixis_integrations.models.money import Money
from dixis_integrations.registry import Registry
from dixis_integrations.sandbox.hubspot import HubSpotSandbox
from dixis_integrations.sync.journal import JobState
from dixis_integrations.sync.marketday import market_day


@pytest.fixture
def registry() -> Registry:
    r = Registry(discover=False)
    r.register("crm", "hubspot", "dixis_integrations.crm.hubspot:HubSpot")
    return r


@pytest.fixture
def sandbox() -> HubSpotSandbox:
    return HubSpotSandbox()


def configured(tmp_path: Path, sandbox: HubSpotSandbox, registry: Registry) -> Integrations:
    settings = parse_settings(
        {
            "journal": {"url": f"sqlite:///{tmp_path / 'j.db'}"},
            "integrations": {"crm": {"hubspot": {"access_token": "${TOKEN}"}}},
        },
        env={"TOKEN": sandbox.access_token},
    )
    return Integrations.from_settings(
        settings, registry=registry, transports={"hubspot": sandbox.transport()}
    )


def contact() -> CRMContact:
    return CRMContact(reference="C1", email="maria@example.gr", total_spent=Money.of("10"))


def test_hub_runs_an_adapter_operation_through_its_driver(
    tmp_path: Path, sandbox: HubSpotSandbox, registry: Registry
) -> None:
    with configured(tmp_path, sandbox, registry) as hub:
        result = hub.crm("hubspot").upsert_contact(contact())
        assert result.status is UpsertStatus.CREATED
        assert hub.crm().name == "hubspot"  # the default of its kind
        writes = hub.journal.calls(writes_only=True)
        assert writes
        assert {c.vendor for c in writes} == {"hubspot"}
        assert all(sandbox.access_token not in c.url for c in writes)


def test_hub_dispatch_runs_the_event_plan(
    tmp_path: Path, sandbox: HubSpotSandbox, registry: Registry
) -> None:
    with configured(tmp_path, sandbox, registry) as hub:
        event = next(
            e for e in market_day(orders=3, seed=2).events if isinstance(e, CustomerCreated)
        )
        keys = hub.dispatch(event)
        (job,) = [hub.journal.get(k) for k in keys]
        assert job is not None
        assert job.step == "crm_contact"
        assert job.state is JobState.DONE
        assert job.external_id


def test_hub_health_checks_every_integration(
    tmp_path: Path, sandbox: HubSpotSandbox, registry: Registry
) -> None:
    with configured(tmp_path, sandbox, registry) as hub:
        (status,) = hub.health(timeout=5)
        assert status.name == "hubspot"
        assert status.ok


def test_an_integration_not_configured_names_the_key(
    tmp_path: Path, sandbox: HubSpotSandbox, registry: Registry
) -> None:
    with configured(tmp_path, sandbox, registry) as hub, pytest.raises(ConfigurationError) as info:
        hub.shipping("acs")
    assert info.value.key == "integrations.shipping.acs"


def test_an_adapter_that_is_not_installed_fails_before_any_call(tmp_path: Path) -> None:
    settings = parse_settings({"integrations": {"shipping": {"nowhere": {}}}}, env={})
    with pytest.raises(ConfigurationError) as info:
        Integrations.from_settings(settings, registry=Registry(discover=False))
    assert info.value.key == "integrations.shipping.nowhere"


def test_sandbox_hub_wires_emulators_and_lists_what_it_skipped(registry: Registry) -> None:
    registry.register("shipping", "nowhere", "no.such.module:Carrier")
    with Integrations.sandbox(registry=registry) as hub:
        assert hub.names("crm") == ["hubspot"]
        assert [(s.kind, s.name) for s in hub.skipped] == [("shipping", "nowhere")]
        assert hub.crm("hubspot").upsert_contact(contact()).status is UpsertStatus.CREATED
        tempdir = hub._tempdir
        assert tempdir is not None
        assert Path(tempdir).exists()
    assert not Path(tempdir).exists()


def test_async_twin_awaits_the_same_operations(
    tmp_path: Path, sandbox: HubSpotSandbox, registry: Registry
) -> None:
    async def main() -> None:
        async with AsyncIntegrations(configured(tmp_path, sandbox, registry)) as hub:
            result = await hub.crm("hubspot").upsert_contact(contact())
            assert result.status is UpsertStatus.CREATED
            (status,) = await hub.health(timeout=5)
            assert status.ok

    asyncio.run(main())
    assert isinstance(sandbox.transport(), httpx.MockTransport)


def test_an_oauth_integration_uses_the_token_saved_by_connect(
    tmp_path: Path,
    sandbox: HubSpotSandbox,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import SecretStr

    from dixis_integrations.auth import KEY_ENV, Token, TokenCipher
    from dixis_integrations.hub import open_token_store

    monkeypatch.setenv(KEY_ENV, TokenCipher.generate_key())
    tokens_url = f"sqlite:///{tmp_path / 'tokens.db'}"
    open_token_store(tokens_url).save(
        "hubspot", "default", Token(access_token=SecretStr(sandbox.access_token))
    )
    settings = parse_settings(
        {
            "journal": {"url": f"sqlite:///{tmp_path / 'j.db'}"},
            "tokens": {"url": tokens_url},
            "oauth": {
                "hubspot": {
                    "client_id": "app",
                    "authorize_url": "https://app.hubspot.com/oauth/authorize",
                    "token_url": "https://api.hubapi.com/oauth/v1/token",
                }
            },
            "integrations": {"crm": {"hubspot": {"oauth_app": True}}},
        },
        env={},
    )
    with Integrations.from_settings(
        settings, registry=registry, transports={"hubspot": sandbox.transport()}
    ) as hub:
        assert hub.crm("hubspot").upsert_contact(contact()).status is UpsertStatus.CREATED


def test_the_hub_refuses_an_oauth_only_vendor_without_its_oauth_table(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "journal": {"url": f"sqlite:///{tmp_path / 'j.db'}"},
            "integrations": {"inventory": {"zoho": {"organization_id": "20001"}}},
        },
        env={},
    )
    with pytest.raises(ConfigurationError) as refused:
        Integrations.from_settings(settings)
    assert refused.value.key == "oauth.zoho"
    assert not (tmp_path / "j.db").exists()  # refused before anything was opened
