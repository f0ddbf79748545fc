"""``import dixis_integrations`` stays cheap: no adapter, area or model module is loaded,
and every public name still resolves on first access.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import dixis_integrations

_AREAS = ("accounting", "shipping", "inventory", "crm", "marketing")


def _modules_after(code: str) -> list[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_package_loads_no_area_module() -> None:
    loaded = _modules_after("import dixis_integrations")
    areas = [m for m in loaded if m.split(".")[:2][-1] in _AREAS and m.startswith("dixis_")]
    assert areas == []
    assert "dixis_integrations.models" not in loaded
    assert "pydantic" not in loaded


def test_a_public_name_imports_only_what_it_needs() -> None:
    loaded = _modules_after("from dixis_integrations import Driver, RateLimited")
    assert "dixis_integrations.http.driver" in loaded
    assert not [m for m in loaded if m.startswith("dixis_integrations.shipping")]


def test_every_public_name_resolves() -> None:
    for name in dixis_integrations.__all__:
        assert getattr(dixis_integrations, name) is not None, name
    assert set(dixis_integrations.__all__) <= set(dir(dixis_integrations))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        getattr(dixis_integrations, "NoSuchThing")  # noqa: B009
