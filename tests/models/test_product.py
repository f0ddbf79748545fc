"""Products and suppliers: SKU rules, exact quantities, non-negative prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from dixis_integrations.models import Money, Product, SaleUnit, Supplier, VatCategory


def make_product(**overrides: Any) -> Product:
    data: dict[str, Any] = {
        "sku": "TOM-KG",
        "name": "Ντομάτες Κρήτης",
        "unit": SaleUnit.KG,
        "vat_category": VatCategory.REDUCED,
        "price": Money.of("2.99"),
    }
    data.update(overrides)
    return Product(**data)


def test_product_defaults() -> None:
    product = make_product()
    assert product.cold_chain is False
    assert product.supplier is None
    assert product.reorder_point is None
    assert make_product(unit="piece").unit is SaleUnit.PIECE


@pytest.mark.parametrize("sku", ["", " TOM", "TOM ", "X" * 65, "\tTOM"])
def test_bad_sku_is_reported_at_sku(sku: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_product(sku=sku)
    assert info.value.errors()[0]["loc"] == ("sku",)


def test_sku_may_contain_inner_spaces_and_be_64_long() -> None:
    assert make_product(sku="TOM KG").sku == "TOM KG"
    assert make_product(sku="X" * 64).sku == "X" * 64


@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        ("price", {"amount": 2.99}, ("price", "amount")),
        ("price", Money.of("-1"), ("price",)),
        ("reorder_point", "-1", ("reorder_point",)),
        ("reorder_quantity", 0, ("reorder_quantity",)),
        ("weight_kg", 0.5, ("weight_kg",)),
        ("vat_category", "luxury", ("vat_category",)),
        ("unit", "bunch", ("unit",)),
        ("supplier", {"id": "s1", "name": "Κτήμα", "pack_size": 0}, ("supplier", "pack_size")),
        (
            "supplier",
            {"id": "s1", "name": "Κτήμα", "webhook_url": "ftp://x"},
            ("supplier", "webhook_url"),
        ),
    ],
)
def test_bad_values_are_reported_at_their_path(
    field: str, value: object, loc: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as info:
        make_product(**{field: value})
    assert info.value.errors()[0]["loc"] == loc


def test_weights_and_quantities_are_exact_decimals() -> None:
    product = make_product(weight_kg="1.250", reorder_point=5, reorder_quantity="12.5")
    assert product.weight_kg == Decimal("1.250")
    assert product.reorder_quantity == Decimal("12.5")


def test_product_json_round_trip_with_supplier() -> None:
    product = make_product(
        cold_chain=True,
        supplier=Supplier(
            id="farm-7",
            name="Κτήμα Λυράκη",
            email="Info@Lyrakis.GR",
            webhook_url="https://lyrakis.example/hooks/orders",
            pack_size="6",
        ),
    )
    assert product.supplier is not None
    assert product.supplier.email == "info@lyrakis.gr"
    assert Product.model_validate_json(product.model_dump_json()) == product
