"""Configuration: one TOML file, secrets from the environment, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dixis_integrations.config import (
    IntegrationSettings,
    load_settings,
    parse_settings,
    validate_integration,
)
from dixis_integrations.crm.hubspot import HubSpot, HubSpotConfig
from dixis_integrations.errors import ConfigurationError

GOOD = """
tenant = "dixis"
[journal]
url = "sqlite:///{path}"
[policy]
max_attempts = 5
[shipping.sender]
name = "Dixis Fresh"
street = "Κηφισού"
number = "100"
city = "Αθήνα"
postcode = "122 41"
[plan]
"order.created" = ["invoice", "crm_contact:hubspot"]
[integrations.crm.hubspot]
access_token = "${HUBSPOT_TOKEN}"
tier = "starter"
default = true
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "dixis.toml"
    p.write_text(text.replace("{path}", str(tmp_path / "j.db")), encoding="utf-8")
    return p


def test_a_good_file_loads_with_secrets_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), env={"HUBSPOT_TOKEN": "pat-secret-1"})
    assert settings.tenant == "dixis"
    assert settings.policy.max_attempts == 5
    assert settings.shipping.sender is not None
    assert settings.shipping.sender.postcode == "12241"
    assert settings.plan == {"order.created": ["invoice", "crm_contact:hubspot"]}
    (hubspot,) = settings.integrations
    assert (hubspot.kind, hubspot.name, hubspot.default) == ("crm", "hubspot", True)
    config = validate_integration(hubspot, HubSpot)
    assert isinstance(config, HubSpotConfig)
    assert config.access_token is not None
    assert config.access_token.get_secret_value() == "pat-secret-1"
    assert config.tier == "starter"


def test_a_missing_environment_variable_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(write(tmp_path, GOOD), env={})
    assert info.value.key == "integrations.crm.hubspot.access_token"
    assert "HUBSPOT_TOKEN" in str(info.value)


def test_environment_overrides_any_integration_field(tmp_path: Path) -> None:
    env = {"HUBSPOT_TOKEN": "a", "DIXIS_CRM_HUBSPOT_TIER": "enterprise"}
    settings = load_settings(write(tmp_path, GOOD), env=env)
    assert settings.integrations[0].options["tier"] == "enterprise"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"policy": {"max_attempts": 0}}, "policy.max_attempts"),
        ({"runner": {"kind": "cron"}}, "runner.kind"),
        ({"journal": {"url": 5}}, "journal.url"),
        (
            {"shipping": {"sender": {"name": "x", "street": "y", "city": "z", "postcode": "1"}}},
            "shipping.sender.postcode",
        ),
        ({"integrations": {"warehouse": {"x": {}}}}, "integrations.warehouse"),
        ({"integrations": {"crm": {"hubspot": "token"}}}, "integrations.crm.hubspot"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_settings_name_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_settings(data, env={})
    assert info.value.key == key


def test_an_invalid_adapter_field_names_the_full_key_without_the_secret() -> None:
    item = IntegrationSettings(
        kind="crm", name="hubspot", options={"access_token": "pat-very-secret", "tier": "gold"}
    )
    with pytest.raises(ConfigurationError) as info:
        validate_integration(item, HubSpot)
    assert info.value.key == "integrations.crm.hubspot.tier"
    assert "pat-very-secret" not in str(info.value)


def test_unreadable_and_invalid_toml_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(tmp_path / "missing.toml")
    assert info.value.key == "config"
    bad = tmp_path / "bad.toml"
    bad.write_text("[journal\nurl=", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(bad)
