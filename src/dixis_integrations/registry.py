"""Finding adapters: entry points listed without importing, imported on first use.

Groups are ``dixis_integrations.<kind>`` for each kind in
:data:`~dixis_integrations.protocols.KINDS` (accounting, shipping, inventory, crm, email).
``pip install some-carrier-plugin`` is the whole registration. A plugin that fails to
import, or whose class does not satisfy its Protocol, is reported with the reason and
skipped; it never breaks the host (set ``DIXIS_RAISE_PLUGIN_ERRORS=1`` to raise instead).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import threading
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from dixis_integrations.errors import ConfigurationError, PluginLoadError

__all__ = [
    "GROUP_PREFIX",
    "AdapterInfo",
    "PluginStatus",
    "Registry",
    "conformance_problems",
    "default_registry",
]

GROUP_PREFIX = "dixis_integrations."
_KINDS = ("accounting", "shipping", "inventory", "crm", "email")
_REQUIRED_METHODS: dict[str, tuple[str, ...]] = {
    "accounting": (
        "check",
        "upsert_customer",
        "upsert_products",
        "post_invoice",
        "post_invoices",
        "find_invoice",
        "void_invoice",
        "record_payment",
        "record_refund",
    ),
    "shipping": (
        "check",
        "validate",
        "quote",
        "create_shipment",
        "label",
        "cancel",
        "track",
        "finalise",
        "pickup_points",
    ),
    "inventory": (
        "check",
        "stock_page",
        "stock_level",
        "adjust",
        "set_level",
        "create_purchase_order",
    ),
    "crm": (
        "check",
        "upsert_contact",
        "upsert_contacts",
        "create_lead",
        "convert_lead",
        "erase",
        "changes",
    ),
    "email": ("check", "upsert_subscriber", "send", "erase"),
}
log = logging.getLogger("dixis_integrations.registry")
_List = list


class PluginStatus(StrEnum):
    """Where an adapter stands after discovery."""

    LISTED = "listed"
    AVAILABLE = "available"
    FAILED = "failed"


@dataclass
class AdapterInfo:
    """One adapter known to the registry."""

    kind: str
    name: str
    target: str
    distribution: str | None
    status: PluginStatus = PluginStatus.LISTED
    error: str | None = None
    cls: type[Any] | None = None


def conformance_problems(kind: str, cls: Any) -> list[str]:
    """What keeps ``cls`` from being an adapter of ``kind`` (empty when it conforms).

    Checked on the class, without instantiating it: ``name`` (str), ``capabilities``
    (frozenset) and every method of the kind's Protocol.
    """
    if kind not in _REQUIRED_METHODS:
        raise ConfigurationError(f"unknown adapter kind {kind!r}", key="kind")
    problems: list[str] = []
    if not inspect.isclass(cls):
        return [f"{cls!r} is not a class"]
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        problems.append("missing class attribute 'name' (str)")
    caps = getattr(cls, "capabilities", None)
    if not isinstance(caps, frozenset):
        problems.append("missing class attribute 'capabilities' (frozenset of Capability)")
    for method in _REQUIRED_METHODS[kind]:
        if not callable(getattr(cls, method, None)):
            problems.append(f"missing method {method}()")
    return problems


class Registry:
    """Adapters by kind and name: entry points plus anything registered in code.

    No hidden singleton: the host owns its registry. :func:`default_registry` returns a
    new one over the installed entry points.
    """

    def __init__(self, *, discover: bool = True) -> None:
        self._lock = threading.Lock()
        self._adapters: dict[tuple[str, str], AdapterInfo] = {}
        if discover:
            self._discover()

    def _discover(self) -> None:
        for kind in _KINDS:
            for ep in entry_points(group=GROUP_PREFIX + kind):
                self._add_entry_point(kind, ep)

    def _add_entry_point(self, kind: str, ep: EntryPoint) -> None:
        dist = ep.dist.name if ep.dist is not None else None
        key = (kind, ep.name)
        if key in self._adapters:
            existing = self._adapters[key]
            log.warning(
                "two adapters claim %s:%s (%s and %s); keeping the first",
                kind,
                ep.name,
                existing.target,
                ep.value,
            )
            return
        self._adapters[key] = AdapterInfo(kind, ep.name, ep.value, dist)

    def register(self, kind: str, name: str, target: str | type[Any]) -> None:
        """Register an adapter in code: ``target`` is ``"module:Class"`` or the class."""
        if kind not in _KINDS:
            raise ConfigurationError(f"unknown adapter kind {kind!r}", key="kind")
        with self._lock:
            if isinstance(target, str):
                self._adapters[(kind, name)] = AdapterInfo(kind, name, target, None)
            else:
                info = AdapterInfo(kind, name, f"{target.__module__}:{target.__qualname__}", None)
                self._check(info, target)
                self._adapters[(kind, name)] = info

    def list(self, kind: str | None = None) -> list[AdapterInfo]:
        """Every adapter known, without importing any (sorted by kind and name)."""
        with self._lock:
            infos = [i for (k, _), i in self._adapters.items() if kind is None or k == kind]
        return sorted(infos, key=lambda i: (_KINDS.index(i.kind), i.name))

    def names(self, kind: str) -> _List[str]:
        """Names of the adapters of ``kind`` that have not failed to load."""
        return [i.name for i in self.list(kind) if i.status is not PluginStatus.FAILED]

    def load(self, kind: str, name: str) -> type[Any]:
        """Import (once) and return the adapter class of ``kind`` called ``name``.

        Raises:
            ConfigurationError: no adapter of that kind and name is installed.
            PluginLoadError: it failed to import or does not conform.
        """
        with self._lock:
            info = self._adapters.get((kind, name))
        if info is None:
            known = ", ".join(self.names(kind)) or "none"
            raise ConfigurationError(
                f"no {kind} adapter named {name!r} is installed (installed: {known})",
                key=f"{kind}.{name}",
            )
        if info.cls is not None:
            return info.cls
        if info.status is PluginStatus.FAILED:
            raise PluginLoadError(info.error or "failed", group=GROUP_PREFIX + kind, name=name)
        try:
            module_name, _, attr = info.target.partition(":")
            obj: Any = importlib.import_module(module_name)
            for part in attr.split(".") if attr else ():
                obj = getattr(obj, part)
        except (Exception, SystemExit) as exc:  # a plugin calling exit() must not end the host
            self._fail(info, f"import failed: {type(exc).__name__}: {exc}")
            if os.environ.get("DIXIS_RAISE_PLUGIN_ERRORS") == "1":
                raise
            raise PluginLoadError(info.error or "", group=GROUP_PREFIX + kind, name=name) from exc
        self._check(info, obj)
        return obj  # type: ignore[no-any-return]

    def _check(self, info: AdapterInfo, obj: Any) -> None:
        problems = conformance_problems(info.kind, obj)
        if problems:
            self._fail(info, "does not conform: " + "; ".join(problems))
            raise PluginLoadError(info.error or "", group=GROUP_PREFIX + info.kind, name=info.name)
        info.cls = obj
        info.status = PluginStatus.AVAILABLE
        info.error = None

    def _fail(self, info: AdapterInfo, reason: str) -> None:
        info.status = PluginStatus.FAILED
        info.error = reason
        log.warning("plugin %s:%s skipped: %s", info.kind, info.name, reason)

    def load_all(self, kind: str | None = None) -> _List[AdapterInfo]:
        """Try to load every adapter (of ``kind``); failures are recorded, not raised."""
        for info in self.list(kind):
            try:
                self.load(info.kind, info.name)
            except PluginLoadError:
                continue
        return self.list(kind)


def default_registry() -> Registry:
    """A new registry over the installed entry points."""
    return Registry()
