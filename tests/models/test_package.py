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


@pytest.mark.parametrize(
    "model",
    [
        models.Money,
        models.Address,
        models.Customer,
        models.Product,
        models.Order,
        models.OrderTotals,
        models.Payment,
        models.Refund,
        models.VatRate,
        models.OrderCreated,
        models.ShipmentStatusChanged,
    ],
    ids=lambda m: m.__name__,
)
def test_json_schema_can_be_generated_for_the_docs(model: type[models.Money]) -> None:
    for mode in ("validation", "serialization"):
        schema = model.model_json_schema(mode=mode)
        assert schema["additionalProperties"] is False
        assert schema["properties"]


def test_money_schema_says_the_amount_is_a_string_in_json() -> None:
    schema = models.Money.model_json_schema(mode="serialization")
    assert schema["properties"]["amount"]["type"] == "string"
