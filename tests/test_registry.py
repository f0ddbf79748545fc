"""The registry: entry points listed without importing, imported once on first use, and a
plugin that fails to import or to conform reported and skipped, never fatal."""

from __future__ import annotations

import sys
import textwrap
import uuid
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import dixis_integrations.registry as registry_module
from dixis_integrations.errors import ConfigurationError, PluginLoadError
from dixis_integrations.registry import PluginStatus, Registry, conformance_problems

_CARRIER = """
from dixis_integrations.http import completed, unsupported

class Carrier:
    name = "{name}"
    capabilities = frozenset()
    def check(self): return completed(None)
    def validate(self, request): return None
    def quote(self, request): return unsupported("quote", self.name)
    def create_shipment(self, request): return unsupported("create_shipment", self.name)
    def label(self, shipment, fmt): return unsupported("label", self.name)
    def cancel(self, shipment): return unsupported("cancel", self.name)
    def track(self, number): return unsupported("track", self.name)
    def finalise(self, shipments): return unsupported("finalise", self.name)
    def pickup_points(self, near=None): return unsupported("pickup_points", self.name)
"""


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Plugin modules on sys.path, under names unique to this test; name -> module."""
    tag = uuid.uuid4().hex[:8]
    sources = {
        "good": _CARRIER.format(name="good"),
        "boom": 'raise ImportError("needs a library that is not installed")',
        "exits": "import sys\nsys.exit(3)",
        "half": "class Carrier:\n    name = 'half'\n    capabilities = frozenset()\n",
    }
    modules = {}
    for key, source in sources.items():
        module = f"plug_{key}_{tag}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        modules[key] = module
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [
        EntryPoint(key, f"{module}:Carrier", "dixis_integrations.shipping")
        for key, module in modules.items()
    ]
    eps.append(EntryPoint("good", "elsewhere:Carrier", "dixis_integrations.shipping"))

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        return [ep for ep in eps if ep.group == group]

    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points)
    monkeypatch.delenv("DIXIS_RAISE_PLUGIN_ERRORS", raising=False)
    return modules


def test_listing_imports_nothing(plugins: dict[str, str]) -> None:
    registry = Registry()
    infos = registry.list("shipping")
    assert [i.name for i in infos] == ["boom", "exits", "good", "half"]
    assert all(i.status is PluginStatus.LISTED for i in infos)
    assert not [m for m in plugins.values() if m in sys.modules]


def test_the_first_of_two_entry_points_with_one_name_is_kept(plugins: dict[str, str]) -> None:
    (good,) = [i for i in Registry().list("shipping") if i.name == "good"]
    assert good.target == f"{plugins['good']}:Carrier"


def test_first_use_imports_and_checks_the_plugin_once(plugins: dict[str, str]) -> None:
    registry = Registry()
    cls = registry.load("shipping", "good")
    assert cls.name == "good"
    assert plugins["good"] in sys.modules
    del sys.modules[plugins["good"]]
    assert registry.load("shipping", "good") is cls  # cached: not imported again
    assert plugins["good"] not in sys.modules
    (info,) = [i for i in registry.list("shipping") if i.name == "good"]
    assert info.status is PluginStatus.AVAILABLE


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("boom", "import failed: ImportError: needs a library"),
        ("exits", "import failed: SystemExit: 3"),
        ("half", "does not conform: missing method check()"),
    ],
)
def test_a_broken_plugin_is_reported_with_its_reason(
    plugins: dict[str, str], name: str, reason: str
) -> None:
    registry = Registry()
    with pytest.raises(PluginLoadError) as info:
        registry.load("shipping", name)
    assert reason in str(info.value)
    assert info.value.name == name
    assert info.value.group == "dixis_integrations.shipping"
    (found,) = [i for i in registry.list("shipping") if i.name == name]
    assert found.status is PluginStatus.FAILED
    assert found.error is not None
    assert reason in found.error
    assert name not in registry.names("shipping")
    with pytest.raises(PluginLoadError):  # remembered, not retried
        registry.load("shipping", name)


def test_load_all_records_failures_and_carries_on(plugins: dict[str, str]) -> None:
    infos = Registry().load_all("shipping")
    assert {i.name: i.status for i in infos} == {
        "boom": PluginStatus.FAILED,
        "exits": PluginStatus.FAILED,
        "good": PluginStatus.AVAILABLE,
        "half": PluginStatus.FAILED,
    }


def test_the_raise_switch_surfaces_the_import_error(
    plugins: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIXIS_RAISE_PLUGIN_ERRORS", "1")
    with pytest.raises(ImportError, match="needs a library"):
        Registry().load("shipping", "boom")


def test_an_unknown_adapter_names_the_installed_ones(plugins: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        Registry().load("shipping", "nope")
    assert "good" in str(info.value)
    assert info.value.key == "shipping.nope"


def test_adapters_registered_in_code_are_checked() -> None:
    registry = Registry(discover=False)

    class Half:
        name = "half"
        capabilities: frozenset[str] = frozenset()

    with pytest.raises(PluginLoadError, match="missing method"):
        registry.register("shipping", "half", Half)
    with pytest.raises(ConfigurationError, match="unknown adapter kind"):
        registry.register("boats", "x", Half)
    registry.register("shipping", "later", "somewhere.not_imported:Carrier")
    assert [i.name for i in registry.list()] == ["later"]  # the refused class is not kept


def test_conformance_problems_lists_every_gap() -> None:
    class Bare:
        pass

    problems = conformance_problems("email", Bare)
    assert "missing class attribute 'name' (str)" in problems
    assert "missing method send()" in problems
    assert conformance_problems("email", "not a class") == ["'not a class' is not a class"]
    with pytest.raises(ConfigurationError):
        conformance_problems("boats", Bare)
