"""The models package re-exports the public names of its modules."""

from __future__ import annotations

import importlib

import pytest

import dixis_integrations.models as models

_MODULES = ["money", "tax", "text", "address", "customer", "product", "order", "events"]


def test_every_name_in_all_exists() -> None:
    assert [name for name in models.__all__ if not hasattr(models, name)] == []


@pytest.mark.parametrize("module", _MODULES)
def test_public_names_of_each_module_are_re_exported(module: str) -> None:
    mod = importlib.import_module(f"dixis_integrations.models.{module}")
    missing = [name for name in mod.__all__ if name not in models.__all__]
    assert missing == []
    for name in mod.__all__:
        assert getattr(models, name) is getattr(mod, name)
