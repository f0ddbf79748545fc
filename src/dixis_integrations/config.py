"""Configuration: one TOML file, secrets from environment variables, checked before any call.

A value written ``"${NAME}"`` is read from the environment variable ``NAME``; any field of
an integration can also be set with ``DIXIS_<KIND>_<NAME>_<FIELD>`` (upper case). Every
problem raises :class:`~dixis_integrations.errors.ConfigurationError` whose ``key`` is
the dotted path of the setting (``integrations.accounting.xero.client_secret``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from dixis_integrations.errors import ConfigurationError
from dixis_integrations.models.address import Address
from dixis_integrations.protocols import KINDS

__all__ = [
    "ENV_PREFIX",
    "IntegrationSettings",
    "JournalSettings",
    "OAuthAppSettings",
    "PolicySettings",
    "RunnerSettings",
    "Settings",
    "TokenSettings",
    "check_oauth",
    "config_class_of",
    "load_settings",
    "parse_settings",
    "validate_integration",
]

ENV_PREFIX = "DIXIS_"
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_STRICT = ConfigDict(frozen=True, extra="forbid")


class JournalSettings(BaseModel):
    """Where the journal lives: ``sqlite:///PATH`` (default) or ``postgresql://...``."""

    model_config = _STRICT
    url: str = "sqlite:///dixis-journal.db"


class PolicySettings(BaseModel):
    """Job retries and leases (see :class:`~dixis_integrations.sync.engine.JobPolicy`)."""

    model_config = _STRICT
    max_attempts: int = Field(default=8, ge=1)
    max_rate_limited: int = Field(default=100, ge=1)
    backoff_initial: float = Field(default=2.0, ge=0)
    backoff_max: float = Field(default=600.0, ge=0)
    lease_seconds: float = Field(default=300.0, gt=0)


class RunnerSettings(BaseModel):
    """Which runner executes jobs."""

    model_config = _STRICT
    kind: Literal["inline", "pool", "celery", "dramatiq"] = "inline"
    workers: int = Field(default=4, ge=1)
    broker_url: str | None = None


class ShippingSettings(BaseModel):
    """What the shipment step needs: where parcels leave from, a default weight."""

    model_config = _STRICT
    sender: Address | None = None
    parcel_weight_kg: Decimal = Field(default=Decimal("2"), gt=0)


class OAuthAppSettings(BaseModel):
    """An OAuth2 application registered with a vendor (for ``dixis-integrations connect``).

    ``token_endpoint_auth``: how the client secret reaches the token endpoint, HTTP Basic
    (``client_secret_basic``) or form fields (``client_secret_post``); by default the
    method the vendor documents, declared by its adapter (``oauth_token_endpoint_auth``),
    else Basic.
    """

    model_config = _STRICT
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    use_pkce: bool = True
    authorize_params: dict[str, str] = Field(default_factory=dict)
    token_endpoint_auth: Literal["client_secret_basic", "client_secret_post"] | None = None


class TokenSettings(BaseModel):
    """Where OAuth2 tokens are kept (encrypted with the key in ``$DIXIS_TOKEN_KEY``)."""

    model_config = _STRICT
    url: str = "sqlite:///dixis-tokens.db"


class WebhookSettings(BaseModel):
    """Where verified webhook deliveries are recorded, and how fresh they must be.

    ``store``: the path of a SQLite delivery store shared by the processes that receive
    webhooks (``None``: in memory, one process). ``max_age_seconds``: after this long
    without a verified delivery an integration's webhooks are stale. ``required``: the
    integrations whose health is down while their webhooks are stale (others only
    report the age).
    """

    model_config = _STRICT
    store: str | None = None
    max_age_seconds: float = Field(default=86_400.0, gt=0)
    required: tuple[str, ...] = ()


class IntegrationSettings(BaseModel):
    """One configured adapter: its kind, name and raw settings (checked against its
    own ``<Vendor>Config`` by :func:`validate_integration`)."""

    model_config = _STRICT
    kind: str
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    default: bool = False

    @property
    def key(self) -> str:
        """``integrations.<kind>.<name>``: the prefix of its settings' keys."""
        return f"integrations.{self.kind}.{self.name}"


class Settings(BaseModel):
    """The whole configuration."""

    model_config = _STRICT
    tenant: str = "default"
    time_scale: float = Field(default=1.0, gt=0)
    journal: JournalSettings = JournalSettings()
    policy: PolicySettings = PolicySettings()
    runner: RunnerSettings = RunnerSettings()
    shipping: ShippingSettings = ShippingSettings()
    plan: dict[str, list[str]] = Field(default_factory=dict)
    tokens: TokenSettings = TokenSettings()
    webhooks: WebhookSettings = WebhookSettings()
    oauth: dict[str, OAuthAppSettings] = Field(default_factory=dict)
    integrations: tuple[IntegrationSettings, ...] = ()
    path: str | None = None

    def integration(self, kind: str, name: str) -> IntegrationSettings | None:
        """The settings of one integration, if configured."""
        for i in self.integrations:
            if i.kind == kind and i.name == name:
                return i
        return None


def _resolve_env(value: Any, key: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        m = _ENV_REF.match(value)
        if m is None:
            return value
        name = m.group(1)
        if name not in env:
            raise ConfigurationError(f"environment variable {name} is not set", key=key)
        return env[name]
    if isinstance(value, dict):
        return {k: _resolve_env(v, f"{key}.{k}", env) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, f"{key}[{i}]", env) for i, v in enumerate(value)]
    return value


def _loc_key(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_settings(
    data: Mapping[str, Any], *, env: Mapping[str, str] | None = None, path: str | None = None
) -> Settings:
    """Settings from parsed TOML data (environment references resolved).

    Raises:
        ConfigurationError: the first problem, with ``key`` naming the setting.
    """
    env = os.environ if env is None else env
    raw = dict(data)
    integrations_raw = raw.pop("integrations", {}) or {}
    if not isinstance(integrations_raw, dict):
        raise ConfigurationError("expected a table of kinds", key="integrations")
    integrations: list[IntegrationSettings] = []
    for kind, by_name in integrations_raw.items():
        if kind not in KINDS:
            raise ConfigurationError(
                f"unknown kind {kind!r}; known: {', '.join(KINDS)}", key=f"integrations.{kind}"
            )
        if not isinstance(by_name, dict):
            raise ConfigurationError("expected a table per adapter", key=f"integrations.{kind}")
        for name, options in by_name.items():
            key = f"integrations.{kind}.{name}"
            if not isinstance(options, dict):
                raise ConfigurationError("expected a table of settings", key=key)
            options = dict(_resolve_env(options, key, env))
            prefix = f"{ENV_PREFIX}{kind}_{name}_".upper().replace("-", "_")
            for var, value in env.items():
                if var.upper().startswith(prefix):
                    options[var[len(prefix) :].lower()] = value
            default = bool(options.pop("default", False))
            integrations.append(
                IntegrationSettings(kind=kind, name=name, options=options, default=default)
            )
    raw = _resolve_env(raw, "", env)
    if isinstance(raw.get("journal"), dict) and f"{ENV_PREFIX}JOURNAL_URL" in env:
        raw["journal"] = {**raw["journal"], "url": env[f"{ENV_PREFIX}JOURNAL_URL"]}
    try:
        return Settings.model_validate({**raw, "integrations": integrations, "path": path})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        key = _loc_key("", tuple(first["loc"]))
        raise ConfigurationError(first["msg"], key=key) from None


def load_settings(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> Settings:
    """Read and check a TOML configuration file.

    Raises:
        ConfigurationError: unreadable file, bad TOML, or a bad setting (named by ``key``).
    """
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {p}: {exc.strerror}", key="config") from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{p} is not valid TOML: {exc}", key="config") from None
    return parse_settings(data, env=env, path=str(p))


def config_class_of(adapter_cls: type[Any]) -> type[BaseModel] | None:
    """The pydantic config class an adapter's constructor takes (``config: XeroConfig``)."""
    import inspect
    import typing

    try:
        hints = typing.get_type_hints(adapter_cls.__init__)
    except Exception:
        hints = {}
    annotation = hints.get("config")
    if annotation is None:
        params = inspect.signature(adapter_cls).parameters
        first = next(iter(params.values()), None)
        annotation = first.annotation if first is not None else None
        if isinstance(annotation, str):
            module = inspect.getmodule(adapter_cls)
            annotation = getattr(module, annotation, None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def check_oauth(settings: Settings, item: IntegrationSettings, adapter_cls: type[Any]) -> None:
    """Refuse an integration whose adapter can only call with OAuth2 tokens
    (``needs_oauth``) when the configuration has no ``[oauth.NAME]`` table for it.

    Raises:
        ConfigurationError: ``key`` ``oauth.NAME``.
    """
    if getattr(adapter_cls, "needs_oauth", False) and item.name not in settings.oauth:
        raise ConfigurationError(
            f"{item.name} calls with OAuth2 tokens only: add an [oauth.{item.name}] table "
            f"and run `dixis-integrations connect {item.name}`",
            key=f"oauth.{item.name}",
        )


def validate_integration(settings: IntegrationSettings, adapter_cls: type[Any]) -> BaseModel:
    """The adapter's own config built from the settings.

    Raises:
        ConfigurationError: a missing or invalid field, ``key`` naming it in full.
    """
    config_cls = config_class_of(adapter_cls)
    if config_cls is None:
        raise ConfigurationError(
            f"{adapter_cls.__name__} does not declare a pydantic config class", key=settings.key
        )
    try:
        return config_cls.model_validate(settings.options)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        key = _loc_key(settings.key, tuple(first["loc"]))
        raise ConfigurationError(first["msg"], key=key, vendor=settings.name) from None
