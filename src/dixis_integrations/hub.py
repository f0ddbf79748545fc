"""The facade a host holds: configured adapters, their drivers, the journal and the engine.

``Integrations.from_config("dixis.toml")`` builds everything from one file (checked before
any call); ``Integrations.sandbox()`` builds it on every installed emulator, in-process,
with the journal in a temporary folder and no credentials. ``hub.shipping("acs")`` is the
adapter with its operations run by the hub's driver; :class:`AsyncIntegrations` is the
asyncio twin, for direct calls and for the engine (:class:`~.sync.aengine.AsyncEngine`).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast
from urllib.parse import urlsplit

import httpx

from dixis_integrations.auth.tokens import TokenStore
from dixis_integrations.config import (
    JournalSettings,
    OAuthAppSettings,
    Settings,
    check_oauth,
    config_class_of,
    load_settings,
    validate_integration,
)
from dixis_integrations.errors import ConfigurationError, DixisError, PluginLoadError
from dixis_integrations.http.budget import Budgets
from dixis_integrations.http.driver import AsyncDriver, Driver, Operation, RetryPolicy
from dixis_integrations.models.events import Event
from dixis_integrations.protocols import KINDS, HealthStatus
from dixis_integrations.registry import Registry
from dixis_integrations.sync.aengine import AsyncCallRecorder, AsyncEngine
from dixis_integrations.sync.engine import (
    CallRecorder,
    Connection,
    DrainSummary,
    Engine,
    JobPolicy,
    Router,
)
from dixis_integrations.sync.history import JournalOrderHistory
from dixis_integrations.sync.journal import Journal, SQLiteJournal, open_journal
from dixis_integrations.sync.marketday import SENDER
from dixis_integrations.sync.steps import StepSettings
from dixis_integrations.webhooks import MemoryDeliveryStore, SQLiteDeliveryStore

if TYPE_CHECKING:
    from dixis_integrations.auth.oauth import OAuth2Config
    from dixis_integrations.sync.inbound import Inbox
    from dixis_integrations.sync.monitor import Freshness

__all__ = [
    "AsyncIntegrations",
    "Bound",
    "Integrations",
    "SandboxSkip",
    "oauth_app_config",
    "open_token_store",
]

T = TypeVar("T")
A = TypeVar("A")


class _Bearer(httpx.Auth):
    """A static bearer token (sandboxes whose token does not expire during a run)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "_Bearer(<token>)"

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class Bound(Generic[A]):
    """An adapter whose operations run through a driver: ``bound.post_invoice(order)``
    returns the invoice. Plain attributes (``name``, ``capabilities``) pass through."""

    def __init__(self, adapter: A, driver: Driver) -> None:
        self.adapter = adapter
        self._driver = driver

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self.adapter, attr)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            result: Any = value(*args, **kwargs)
            if inspect.isgenerator(result):
                operation = cast("Operation[Any]", result)
                return self._driver.run(operation)
            return result

        return call

    def __repr__(self) -> str:
        return f"Bound({self.adapter!r})"


class _AsyncBound(Generic[A]):
    """The asyncio twin of :class:`Bound`: every operation is awaited."""

    def __init__(self, adapter: A, driver: AsyncDriver) -> None:
        self.adapter = adapter
        self._driver = driver

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self.adapter, attr)
        if not callable(value):
            return value

        async def call(*args: Any, **kwargs: Any) -> Any:
            result: Any = value(*args, **kwargs)
            if inspect.isgenerator(result):
                operation = cast("Operation[Any]", result)
                return await self._driver.run(operation)
            return result

        return call


@dataclass(frozen=True)
class SandboxSkip:
    """An adapter the sandbox hub could not set up, and why."""

    kind: str
    name: str
    reason: str


def _sandbox_auth(
    name: str,
    creds: dict[str, str],
    fields: set[str],
    transport: Callable[[], httpx.BaseTransport | None],
    tenant: str,
    store: Any = None,
) -> httpx.Auth | None:
    token = creds.get("access_token")
    if not token or "access_token" in fields:
        return None
    if creds.get("client_id") and not creds.get("token_url") and creds.get("discovery_url"):
        # OpenID discovery (Intuit): the token endpoint is in the document
        doc: dict[str, Any] = {}
        with httpx.Client(transport=transport(), timeout=10.0) as client:
            for _ in range(5):  # a sandbox may inject faults here too
                try:
                    resp = client.get(creds["discovery_url"])
                    if resp.status_code == 200:
                        doc = resp.json()
                        break
                except (httpx.HTTPError, ValueError):
                    continue
        creds = {**creds, "token_url": str(doc.get("token_endpoint") or "")}
    if creds.get("client_id") and creds.get("token_url"):
        from pydantic import SecretStr

        from dixis_integrations.auth import (
            MemoryTokenStore,
            OAuth2Auth,
            OAuth2Config,
            Token,
            TokenManager,
        )

        secret = creds.get("client_secret")
        oauth = OAuth2Config(
            provider=name,
            client_id=creds["client_id"],
            client_secret=SecretStr(secret) if secret else None,
            token_url=creds["token_url"],
            refresh_margin_seconds=0,
        )
        store = store if store is not None else MemoryTokenStore()
        refresh = creds.get("refresh_token")
        saved = Token(
            access_token=SecretStr(token),
            refresh_token=SecretStr(refresh) if refresh else None,
        )
        manager = TokenManager(
            oauth,
            tenant,
            store,
            client_factory=lambda: httpx.Client(transport=transport()),
        )
        if store.get(name, tenant) is None:  # a shared store keeps the rotated grant
            manager.save(saved)
        return OAuth2Auth(manager)
    return _Bearer(token)


def open_token_store(url: str) -> Any:
    """The token store at ``url`` (``sqlite:///PATH`` or ``postgresql://...``), encrypted
    with the key in ``$DIXIS_TOKEN_KEY``.

    Raises:
        ConfigurationError: no key, or an unknown URL scheme (``key`` names the setting).
    """
    from dixis_integrations.auth import KEY_ENV, PostgresTokenStore, SQLiteTokenStore, TokenCipher
    from dixis_integrations.errors import ConfigurationError

    key = os.environ.get(KEY_ENV)
    if not key:
        raise ConfigurationError(
            f"set {KEY_ENV} to the token encryption key "
            "(python -c 'from dixis_integrations.auth import TokenCipher; "
            "print(TokenCipher.generate_key())')",
            key="tokens.key",
        )
    cipher = TokenCipher(key)
    if url.startswith("sqlite:///"):
        return SQLiteTokenStore(url[len("sqlite:///") :], cipher)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresTokenStore(url, cipher)
    raise ConfigurationError("expected sqlite:///PATH or postgresql://...", key="tokens.url")


def oauth_app_config(
    name: str,
    app: OAuthAppSettings,
    adapter_cls: type[Any] | None = None,
    *,
    redirect_uri: str | None = None,
) -> OAuth2Config:
    """The OAuth2 settings of the ``[oauth.NAME]`` application, as ``connect`` and the hub
    use them: the client secret goes to the token endpoint as the table says, else as
    the adapter declares its vendor documents (``oauth_token_endpoint_auth``), else by
    HTTP Basic."""
    from dixis_integrations.auth import OAuth2Config

    method = app.token_endpoint_auth or getattr(
        adapter_cls, "oauth_token_endpoint_auth", "client_secret_basic"
    )
    return OAuth2Config(
        provider=name,
        client_id=app.client_id,
        client_secret=app.client_secret,
        authorize_url=app.authorize_url,
        token_url=app.token_url,
        scopes=app.scopes,
        use_pkce=app.use_pkce,
        redirect_uri=redirect_uri,
        authorize_params=app.authorize_params,
        token_endpoint_auth=method,
    )


def _oauth_auth(
    name: str, app: OAuthAppSettings, adapter_cls: type[Any], tenant: str, store: Any
) -> httpx.Auth:
    from dixis_integrations.auth import OAuth2Auth, TokenManager

    config = oauth_app_config(name, app, adapter_cls)
    return OAuth2Auth(TokenManager(config, tenant, store))


def _adapter_kwargs(adapter_cls: type[Any]) -> set[str]:
    return set(inspect.signature(adapter_cls).parameters)


class Integrations:
    """Configured adapters, drivers, the journal and the engine, closed together.

    Build with :meth:`from_config` or :meth:`sandbox`; use as a context manager.
    """

    def __init__(
        self,
        *,
        journal: Journal,
        connections: Iterable[Connection],
        settings: Settings | None = None,
        recorder: CallRecorder | None = None,
        plan: dict[str, list[str]] | None = None,
        defaults: dict[str, str] | None = None,
        step_settings: StepSettings | None = None,
        policy: JobPolicy | None = None,
        skipped: Iterable[SandboxSkip] = (),
        emulators: dict[str, Any] | None = None,
        tempdir: str | None = None,
        router: Router | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.journal = journal
        self.recorder = recorder or CallRecorder(journal)
        self.connections = {(c.kind, c.name): c for c in connections}
        self.skipped = list(skipped)
        self.emulators = emulators or {}
        self._tempdir = tempdir
        self._deliveries: MemoryDeliveryStore | SQLiteDeliveryStore | None = None
        self.engine = Engine(
            journal,
            self.connections.values(),
            plan=plan if plan is not None else self.settings.plan,
            defaults=defaults,
            settings=step_settings,
            policy=policy,
            router=router,
        )

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        path: str | Path,
        *,
        registry: Registry | None = None,
        transports: dict[str, httpx.BaseTransport] | None = None,
    ) -> Integrations:
        """Everything from one TOML file (see :mod:`dixis_integrations.config`).

        Every integration's settings are checked against its adapter's config class
        before anything is built; nothing is called.

        Raises:
            ConfigurationError: naming the bad key.
        """
        return cls.from_settings(load_settings(path), registry=registry, transports=transports)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        registry: Registry | None = None,
        transports: dict[str, httpx.BaseTransport] | None = None,
    ) -> Integrations:
        """Everything from parsed settings (see :meth:`from_config`)."""
        registry = registry or Registry()
        built: list[tuple[str, str, Any, Any]] = []
        for item in settings.integrations:
            try:
                adapter_cls = registry.load(item.kind, item.name)
            except PluginLoadError as exc:
                raise ConfigurationError(str(exc), key=item.key) from None
            except ConfigurationError as exc:
                raise ConfigurationError(exc.message, key=item.key) from None
            config = validate_integration(item, adapter_cls)
            check_oauth(settings, item, adapter_cls)
            built.append((item.kind, item.name, adapter_cls, config))
        configured = {item.name for item in settings.integrations}
        for name in settings.webhooks.required:
            if name not in configured:
                raise ConfigurationError(
                    f"webhooks are required of {name!r}, which is not configured",
                    key="webhooks.required",
                )
        journal = open_journal(settings.journal.url)
        recorder = CallRecorder(journal)
        budgets = Budgets()
        connections: list[Connection] = []
        store: Any = None
        for kind, name, adapter_cls, config in built:
            kwargs: dict[str, Any] = {"tenant": settings.tenant}
            params = _adapter_kwargs(adapter_cls)
            if "time_scale" in params:
                kwargs["time_scale"] = settings.time_scale
            app = settings.oauth.get(name)
            if app is not None and "auth" in params:
                # the token saved by `dixis-integrations connect NAME`, refreshed once
                if store is None:
                    store = open_token_store(settings.tokens.url)
                kwargs["auth"] = _oauth_auth(name, app, adapter_cls, settings.tenant, store)
            adapter = adapter_cls(config, **kwargs)
            transport = (transports or {}).get(name)
            client = httpx.Client(transport=transport, timeout=httpx.Timeout(30.0))
            driver = Driver(client, budgets=budgets, on_call=recorder)
            connections.append(Connection(kind, name, adapter, driver))
        defaults = {i.kind: i.name for i in settings.integrations if i.default}
        p = settings.policy
        return cls(
            journal=journal,
            connections=connections,
            settings=settings,
            recorder=recorder,
            defaults=defaults,
            step_settings=StepSettings(
                sender=settings.shipping.sender,
                parcel_weight_kg=settings.shipping.parcel_weight_kg,
                history=JournalOrderHistory(journal),
            ),
            policy=JobPolicy(
                max_attempts=p.max_attempts,
                max_rate_limited=p.max_rate_limited,
                backoff_initial=p.backoff_initial,
                backoff_max=p.backoff_max,
                lease=p.lease_seconds,
            ),
        )

    @classmethod
    def sandbox(
        cls,
        *,
        registry: Registry | None = None,
        data_dir: str | Path | None = None,
        only: Iterable[str] | None = None,
        faults: Any = None,
        time_scale: float = 1.0,
        sleep: Callable[[float], None] | None = None,
        policy: JobPolicy | None = None,
        router: Router | None = None,
    ) -> Integrations:
        """Every installed adapter that has an emulator, all in-process, no credentials.

        The journal is a SQLite file in ``data_dir`` (default: a temporary folder removed
        on close). Adapters without an emulator, or whose set-up fails, are listed in
        :attr:`skipped` with the reason, never fatal.
        """
        from dixis_integrations.sandbox import catalog

        registry = registry or Registry()
        tempdir = None
        if data_dir is None:
            tempdir = tempfile.mkdtemp(prefix="dixis-sandbox-")
            data_dir = tempdir
        journal = SQLiteJournal(Path(data_dir) / "journal.db")
        recorder = CallRecorder(journal)
        wanted = set(only) if only is not None else None
        connections: list[Connection] = []
        skipped: list[SandboxSkip] = []
        emulators: dict[str, Any] = {}
        for kind in KINDS:
            for info in registry.list(kind):
                name = info.name
                if wanted is not None and name not in wanted:
                    continue
                if name not in catalog.SANDBOXES:
                    skipped.append(SandboxSkip(kind, name, "no emulator in the catalog"))
                    continue
                try:
                    adapter_cls = registry.load(kind, name)
                    emulator = emulators.get(name) or catalog.load(name)(
                        **({"faults": faults} if faults is not None else {}),
                        time_scale=time_scale,
                    )
                    adapter = _sandbox_adapter(
                        name,
                        adapter_cls,
                        dict(emulator.credentials()),
                        emulator.transport,
                        time_scale,
                    )
                except (DixisError, TypeError, ValueError, ImportError) as exc:
                    skipped.append(SandboxSkip(kind, name, f"{type(exc).__name__}: {exc}"))
                    continue
                emulators[name] = emulator
                client = httpx.Client(transport=emulator.transport())
                driver = (
                    Driver(client, on_call=recorder, sleep=sleep)
                    if sleep is not None
                    else Driver(client, on_call=recorder)
                )
                connections.append(Connection(kind, name, adapter, driver))
        return cls(
            journal=journal,
            connections=connections,
            settings=Settings(
                journal=JournalSettings(url=f"sqlite:///{Path(data_dir) / 'journal.db'}")
            ),
            recorder=recorder,
            step_settings=StepSettings(
                sender=SENDER,
                email_templates=_SANDBOX_TEMPLATES,
                history=JournalOrderHistory(journal),
            ),
            policy=policy,
            skipped=skipped,
            emulators=emulators,
            tempdir=tempdir,
            router=router,
        )

    @classmethod
    def attach(
        cls,
        sandboxes: Mapping[str, Mapping[str, str]],
        *,
        journal_url: str,
        registry: Registry | None = None,
        time_scale: float = 1.0,
        policy: JobPolicy | None = None,
        router: Router | None = None,
        token_store: TokenStore | None = None,
        plan: dict[str, list[str]] | None = None,
        retry: RetryPolicy | None = None,
    ) -> Integrations:
        """Connect over HTTP to emulators served elsewhere (``dixis-integrations sandbox
        serve NAME`` prints, per emulator, the ``base_url`` and credentials expected here:
        ``{"acs": {"base_url": "http://127.0.0.1:8123", ...}}``).

        Several processes can attach to the same served sandboxes and share one journal;
        give them one persistent ``token_store`` too, so a rotated refresh token is seen
        by all (the one in ``sandboxes`` is only used when the store has none).

        Raises:
            ConfigurationError: no installed adapter is called like a sandbox given.
        """
        registry = registry or Registry()
        journal = open_journal(journal_url)
        recorder = CallRecorder(journal)
        connections: list[Connection] = []
        for name, details in sandboxes.items():
            kind = next((k for k in KINDS if name in registry.names(k)), None)
            if kind is None:
                raise ConfigurationError(f"no adapter called {name!r}", key=f"sandboxes.{name}")
            creds = {k: v for k, v in details.items() if k != "name"}
            served = details["base_url"]
            adapter = _sandbox_adapter(
                name,
                registry.load(kind, name),
                creds,
                lambda: None,
                time_scale,
                served,
                token_store,
            )
            client = httpx.Client(timeout=httpx.Timeout(10.0))
            driver = Driver(client, on_call=recorder, retry=retry)
            connections.append(Connection(kind, name, adapter, driver))
        return cls(
            journal=journal,
            connections=connections,
            settings=Settings(journal=JournalSettings(url=journal_url)),
            recorder=recorder,
            plan=plan,
            step_settings=StepSettings(
                sender=SENDER,
                email_templates=_SANDBOX_TEMPLATES,
                history=JournalOrderHistory(journal),
            ),
            policy=policy,
            router=router,
        )

    # -- use ------------------------------------------------------------------------
    def __enter__(self) -> Integrations:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close drivers, the journal and the delivery store; remove the sandbox's
        temporary folder."""
        self.engine.close()
        if isinstance(self._deliveries, SQLiteDeliveryStore):
            self._deliveries.close()
        self._deliveries = None
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def names(self, kind: str) -> list[str]:
        """The configured integrations of one kind."""
        return [name for (k, name) in self.connections if k == kind]

    def connection(self, kind: str, name: str | None = None) -> Connection:
        """One configured integration (the default of its kind when ``name`` is omitted).

        Raises:
            ConfigurationError: none such is configured.
        """
        chosen = name or self.engine.default_provider(kind)
        if chosen is None or (kind, chosen) not in self.connections:
            known = ", ".join(self.names(kind)) or "none"
            raise ConfigurationError(
                f"no {kind} integration {chosen or ''!r} is configured (configured: {known})",
                key=f"integrations.{kind}.{chosen or ''}".rstrip("."),
            )
        return self.connections[(kind, chosen)]

    def _bound(self, kind: str, name: str | None) -> Bound[Any]:
        c = self.connection(kind, name)
        return Bound(c.adapter, c.driver)

    def accounting(self, name: str | None = None) -> Bound[Any]:
        """An accounting adapter, its operations run by the hub."""
        return self._bound("accounting", name)

    def shipping(self, name: str | None = None) -> Bound[Any]:
        """A carrier, its operations run by the hub."""
        return self._bound("shipping", name)

    def inventory(self, name: str | None = None) -> Bound[Any]:
        """An inventory source, its operations run by the hub."""
        return self._bound("inventory", name)

    def crm(self, name: str | None = None) -> Bound[Any]:
        """A CRM, its operations run by the hub."""
        return self._bound("crm", name)

    def email(self, name: str | None = None) -> Bound[Any]:
        """An email provider, its operations run by the hub."""
        return self._bound("email", name)

    def run(self, operation: Operation[T], *, kind: str | None = None) -> T:
        """Run any operation with a driver of the hub (of ``kind``'s default, if given)."""
        if kind is not None:
            return self.connection(kind).driver.run(operation)
        driver = next(iter(self.connections.values())).driver if self.connections else Driver()
        return driver.run(operation)

    def submit(self, event: Event) -> list[str]:
        """Record an event's jobs in the journal (a runner executes them)."""
        return self.engine.submit(event)

    def dispatch(self, event: Event) -> list[str]:
        """Record an event's jobs and execute them inline now."""
        keys = self.engine.submit(event)
        self.engine.drain(wait=False)
        return keys

    def delivery_store(self) -> MemoryDeliveryStore | SQLiteDeliveryStore:
        """The webhook delivery store of the configuration (``[webhooks] store``): a
        SQLite file shared by the processes that receive webhooks, else one in memory.
        The inbox records each verified delivery in it; health reads freshness from it."""
        if self._deliveries is None:
            path = self.settings.webhooks.store
            self._deliveries = SQLiteDeliveryStore(path) if path else MemoryDeliveryStore()
        return self._deliveries

    def inbox(self, **options: Any) -> Inbox:
        """An :class:`~dixis_integrations.sync.inbound.Inbox` on this hub's engine and
        delivery store; ``options`` are the inbox's other keyword arguments."""
        from dixis_integrations.sync.inbound import Inbox

        options.setdefault("store", self.delivery_store())
        return Inbox(self.engine, **options)

    def freshness(self) -> Freshness | None:
        """The configured webhook freshness rule (``None`` when the configuration names
        neither a delivery store nor integrations that require webhooks)."""
        hooks = self.settings.webhooks
        if hooks.store is None and not hooks.required:
            return None
        from dixis_integrations.sync.monitor import Freshness

        return Freshness(
            log=self.delivery_store(),
            max_age=hooks.max_age_seconds,
            required=frozenset(hooks.required),
        )

    def health(
        self, *, timeout: float = 10.0, freshness: Freshness | None = None
    ) -> list[HealthStatus]:
        """Every integration's ``check()``, concurrently, each bounded by ``timeout``,
        with webhook freshness (``freshness``, else the configured rule) added."""
        from dixis_integrations.sync.monitor import check_all, webhook_freshness

        statuses = check_all(self.connections.values(), timeout=timeout)
        rule = freshness if freshness is not None else self.freshness()
        return statuses if rule is None else webhook_freshness(statuses, rule)


_SANDBOX_OPTIONS: dict[str, dict[str, Any]] = {
    # The emulated organisation's own tax codes (its /TaxRates), as a host would map them.
    "xero": {
        "tax_codes": {
            "standard": "TAX001",
            "reduced": "TAX002",
            "super_reduced": "TAX003",
            "island_standard": "TAX004",
            "island_reduced": "TAX005",
            "island_super_reduced": "TAX006",
            "zero": "ZERORATEDOUTPUT",
            "exempt": "EXEMPTOUTPUT",
        }
    },
}
"""Settings a host would add for each emulated account (beyond its credentials)."""
_SANDBOX_TEMPLATES = {"brevo": "8"}
"""The order email's template in each emulated email account."""
_SANDBOX_OPTIONS["quickbooks"] = {
    "tax_codes": {
        "standard": "1",
        "reduced": "2",
        "super_reduced": "3",
        "island_standard": "4",
        "island_reduced": "5",
        "island_super_reduced": "6",
        "zero": "7",
        "exempt": "8",
    }
}


def _sandbox_adapter(
    name: str,
    adapter_cls: type[Any],
    creds: dict[str, str],
    transport: Callable[[], httpx.BaseTransport | None],
    time_scale: float,
    served_url: str | None = None,
    token_store: Any = None,
) -> Any:
    config_cls = config_class_of(adapter_cls)
    if config_cls is None:
        raise TypeError(f"{adapter_cls.__name__} has no pydantic config class")
    fields = set(config_cls.model_fields)
    data = {k: v for k, v in _SANDBOX_OPTIONS.get(name, {}).items() if k in fields}
    data.update({k: v for k, v in creds.items() if k in fields and v != ""})
    given = creds.get("base_url") or served_url
    if given and "base_url" in fields and urlsplit(given).path in {"", "/"}:
        # the emulator answers on the vendor's own paths: keep the default URL's path
        default = config_cls.model_fields["base_url"].default
        path = urlsplit(default).path if isinstance(default, str) else ""
        data["base_url"] = given.rstrip("/") + path
    config = config_cls.model_validate(data)
    kwargs: dict[str, Any] = {}
    params = _adapter_kwargs(adapter_cls)
    auth = _sandbox_auth(name, creds, fields, transport, "default", token_store)
    if auth is not None and "auth" in params:
        kwargs["auth"] = auth
    if "time_scale" in params:
        kwargs["time_scale"] = time_scale
    return adapter_cls(config, **kwargs)


class AsyncIntegrations:
    """The asyncio twin of :class:`Integrations`: direct adapter calls and the engine.

    Wraps a built hub (its adapters, journal and settings) with ``AsyncDriver``s over the
    same transports, retry policies and budgets; ``await
    hub.shipping("acs").create_shipment(request)``. ``await hub.submit(event)`` and
    ``await hub.drain()`` run the hub's engine on asyncio (:attr:`engine`, at most
    ``concurrency`` jobs at once), with the same journal and outcomes as the sync hub.
    Vendor calls are recorded in the journal from worker threads, off the event loop.
    """

    def __init__(self, hub: Integrations, *, concurrency: int = 8) -> None:
        self.hub = hub
        self.recorder = AsyncCallRecorder(hub.recorder)
        self._drivers: dict[tuple[str, str], AsyncDriver] = {}
        for key, c in hub.connections.items():
            transport = c.driver.client._transport
            async_transport = _async_transport(transport)
            client = httpx.AsyncClient(transport=async_transport)
            self._drivers[key] = AsyncDriver(
                client, retry=c.driver.retry, budgets=c.driver.budgets, on_call=self.recorder
            )
        self.engine = AsyncEngine(
            hub.engine, self._drivers, concurrency=concurrency, on_idle=self.recorder.flush
        )

    @classmethod
    def from_config(
        cls, path: str | Path, *, concurrency: int = 8, **kwargs: Any
    ) -> AsyncIntegrations:
        """See :meth:`Integrations.from_config`."""
        return cls(Integrations.from_config(path, **kwargs), concurrency=concurrency)

    @classmethod
    def sandbox(cls, *, concurrency: int = 8, **kwargs: Any) -> AsyncIntegrations:
        """See :meth:`Integrations.sandbox`."""
        return cls(Integrations.sandbox(**kwargs), concurrency=concurrency)

    async def __aenter__(self) -> AsyncIntegrations:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the async drivers and the hub (after the calls still being recorded)."""
        await self.recorder.flush()
        for d in self._drivers.values():
            await d.client.aclose()
        await asyncio.to_thread(self.hub.close)

    async def submit(self, event: Event) -> list[str]:
        """Record an event's jobs in the journal (:meth:`drain` or a runner executes them)."""
        return await self.engine.submit(event)

    async def dispatch(self, event: Event) -> list[str]:
        """Record an event's jobs and execute what is due now, concurrently."""
        return await self.engine.dispatch(event)

    async def drain(self, *, wait: bool = True, max_wait: float | None = None) -> DrainSummary:
        """Execute every due job, awaiting rescheduled ones (up to ``max_wait`` seconds)."""
        return await self.engine.drain(wait=wait, max_wait=max_wait)

    def _bound(self, kind: str, name: str | None) -> _AsyncBound[Any]:
        c = self.hub.connection(kind, name)
        return _AsyncBound(c.adapter, self._drivers[(c.kind, c.name)])

    def accounting(self, name: str | None = None) -> _AsyncBound[Any]:
        """An accounting adapter, its operations awaited."""
        return self._bound("accounting", name)

    def shipping(self, name: str | None = None) -> _AsyncBound[Any]:
        """A carrier, its operations awaited."""
        return self._bound("shipping", name)

    def inventory(self, name: str | None = None) -> _AsyncBound[Any]:
        """An inventory source, its operations awaited."""
        return self._bound("inventory", name)

    def crm(self, name: str | None = None) -> _AsyncBound[Any]:
        """A CRM, its operations awaited."""
        return self._bound("crm", name)

    def email(self, name: str | None = None) -> _AsyncBound[Any]:
        """An email provider, its operations awaited."""
        return self._bound("email", name)

    async def run(self, operation: Operation[T], *, kind: str) -> T:
        """Run an operation with the async driver of ``kind``'s default integration."""
        c = self.hub.connection(kind)
        return await self._drivers[(c.kind, c.name)].run(operation)

    async def health(self, *, timeout: float = 10.0) -> list[HealthStatus]:
        """Every integration's ``check()``, concurrently, each bounded by ``timeout``."""
        from dixis_integrations.sync.monitor import status_of_error

        async def one(key: tuple[str, str]) -> HealthStatus:
            c = self.hub.connections[key]
            try:
                op = c.adapter.check()
                result: HealthStatus = await asyncio.wait_for(self._drivers[key].run(op), timeout)
                return result
            except Exception as exc:
                return status_of_error(c.name, exc, timeout)

        return list(await asyncio.gather(*(one(k) for k in self.hub.connections)))


def _async_transport(transport: Any) -> httpx.AsyncBaseTransport | None:
    if isinstance(transport, httpx.MockTransport):
        return transport  # MockTransport serves both clients
    return None
