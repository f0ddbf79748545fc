"""Products the marketplace sells and the suppliers (farmers) who restock them.

Prices are VAT-inclusive :class:`Money`; quantities and weights are ``Decimal`` (produce
is sold by the kilo), never float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from dixis_integrations.models._types import (
    Email,
    ExactDecimal,
    NonEmptyStr,
    Reference,
    WireStrEnum,
)
from dixis_integrations.models.money import Money
from dixis_integrations.models.tax import VatCategory

__all__ = ["Product", "SaleUnit", "Sku", "Supplier"]


class SaleUnit(WireStrEnum):
    """How a product is counted: by piece, or by weight/volume."""

    PIECE = "piece"
    KG = "kg"
    G = "g"
    L = "l"


Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S(?:.*\S)?$")]
"""A stock-keeping unit: 1 to 64 characters, no whitespace at either end."""

_NonNegative = Annotated[ExactDecimal, Field(ge=0)]
_Positive = Annotated[ExactDecimal, Field(gt=0)]


class Supplier(BaseModel):
    """A producer who restocks products; orders go in multiples of ``pack_size``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Reference
    name: NonEmptyStr
    email: Email | None = None
    webhook_url: AnyHttpUrl | None = None
    pack_size: _Positive = Decimal(1)


class Product(BaseModel):
    """A sellable item. ``price`` is per ``unit`` and includes VAT (``vat_category``).

    ``cold_chain`` marks produce that needs refrigerated transport.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    name: NonEmptyStr
    unit: SaleUnit = SaleUnit.PIECE
    vat_category: VatCategory
    price: Money
    reorder_point: _NonNegative | None = None
    reorder_quantity: _Positive | None = None
    supplier: Supplier | None = None
    cold_chain: bool = False
    weight_kg: _Positive | None = None

    @field_validator("price")
    @classmethod
    def _price_not_negative(cls, value: Money) -> Money:
        if value.is_negative:
            raise ValueError("price must not be negative")
        return value
