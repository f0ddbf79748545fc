"""Enums of the models write the same JSON, Python dumps and JSON schemas as a plain
``StrEnum`` would, whatever serialiser writes them."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

import dixis_integrations.models  # noqa: F401 - imports every model module
from dixis_integrations.models import Order, OrderStatus, PaymentMethod, VatCategory
from dixis_integrations.models._types import WireStrEnum


def _subclasses(cls: type[Any]) -> list[type[Any]]:
    found: list[type[Any]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


_ENUMS = sorted(_subclasses(WireStrEnum), key=lambda cls: cls.__qualname__)


def _plain_twin(cls: type[StrEnum]) -> type[StrEnum]:
    twin = StrEnum(cls.__name__, {member.name: member.value for member in cls})  # type: ignore[misc]
    twin.__doc__ = cls.__doc__
    return twin


def test_every_enum_of_the_models_is_covered() -> None:
    assert len(_ENUMS) >= 10
    assert VatCategory in _ENUMS
    assert OrderStatus in _ENUMS
    assert PaymentMethod in _ENUMS


@pytest.mark.parametrize("cls", _ENUMS, ids=lambda cls: cls.__qualname__)
def test_an_enum_dumps_as_a_plain_str_enum_does(cls: type[StrEnum]) -> None:
    ours: TypeAdapter[Any] = TypeAdapter(cls)
    plain: TypeAdapter[Any] = TypeAdapter(_plain_twin(cls))
    for member in cls:
        twin = plain.validate_python(member.value)
        assert ours.dump_json(member) == plain.dump_json(twin) == json.dumps(member.value).encode()
        assert ours.dump_python(member) is member  # Python mode keeps the member
        dumped = ours.dump_python(member, mode="json")
        assert type(dumped) is str
        assert dumped == member.value
        assert ours.validate_json(ours.dump_json(member)) is member
    for mode in ("validation", "serialization"):
        assert ours.json_schema(mode=mode) == plain.json_schema(mode=mode)


def test_enum_fields_in_a_model_dump_the_same_in_every_mode() -> None:
    class Row(BaseModel):
        status: OrderStatus
        method: PaymentMethod | None = None
        many: list[VatCategory] = []

    row = Row(status="paid", method="cod", many=["reduced", "zero"])
    assert row.model_dump_json() == ('{"status":"paid","method":"cod","many":["reduced","zero"]}')
    assert row.model_dump() == {
        "status": OrderStatus.PAID,
        "method": PaymentMethod.COD,
        "many": [VatCategory.REDUCED, VatCategory.ZERO],
    }
    assert type(row.model_dump()["status"]) is OrderStatus
    assert [type(v) for v in row.model_dump(mode="json").values()] == [str, str, list]
    with pytest.raises(ValidationError):
        Row(status="nope")


def test_an_order_json_names_its_enums_by_value() -> None:
    schema = Order.model_json_schema(mode="serialization")
    assert schema["$defs"]["VatCategory"]["enum"] == [c.value for c in VatCategory]
    assert schema["$defs"]["OrderStatus"]["type"] == "string"
