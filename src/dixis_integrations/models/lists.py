"""Validating and writing lists of domain models, as batch calls need them.

:class:`ListAdapter` behaves as ``pydantic.TypeAdapter(list[Model])`` (same results, same
errors, same JSON) and is faster for the models batch calls carry most (orders and
customers): the list is first validated with a schema that pydantic-core runs without
calling Python for each field, then one Python pass checks the cross-field rules. Any
input the fast path does not take, errors included, is validated again by the model's
own schema.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter

__all__ = ["ListAdapter"]

M = TypeVar("M", bound=BaseModel)


class ListAdapter(Generic[M]):
    """``TypeAdapter(list[model])`` with a fast path for whole batches.

    Args:
        model: the domain model of the items (e.g. :class:`~dixis_integrations.models.Order`).

    Example:
        ``ListAdapter(Order).validate_python(rows)`` returns a ``list[Order]`` or raises
        the ``pydantic.ValidationError`` that ``TypeAdapter(list[Order])`` raises, with
        locations such as ``(3, "lines", 0, "quantity")``.
    """

    def __init__(self, model: type[M]) -> None:
        from dixis_integrations.models._fast import fast_list_validator

        self.model = model
        self.adapter: TypeAdapter[list[M]] = TypeAdapter(list[model])  # type: ignore[valid-type]
        fast = fast_list_validator(model)
        self._fast = fast[0] if fast is not None else None
        self._finish = fast[1] if fast is not None else None

    def validate_python(self, rows: Any) -> list[M]:
        """Validate a list of rows (dicts or model instances) into models.

        Raises:
            pydantic.ValidationError: exactly as ``TypeAdapter(list[model])`` would.
        """
        if self._fast is not None and type(rows) is list:
            items = self._fast_items(rows)
            if items is not None:
                return items
        return self.adapter.validate_python(rows)

    def _fast_items(self, rows: list[Any]) -> list[M] | None:
        """The fast path's models, or ``None`` when it refuses (the full schema decides)."""
        assert self._fast is not None
        try:
            items: list[M] = self._fast.validate_python(rows)
            finish = self._finish
            ok = finish is None or finish(rows, items)
        except Exception:  # any refusal, errors included: the full schema reports them
            return None
        return items if ok else None

    def validate_json(self, data: str | bytes | bytearray) -> list[M]:
        """Validate a JSON array into models (the model's own schema).

        Raises:
            pydantic.ValidationError: if the JSON or an item is invalid.
        """
        return self.adapter.validate_json(data)

    def dump_json(self, items: list[M]) -> bytes:
        """The JSON array of ``items``, as ``TypeAdapter(list[model]).dump_json``."""
        return self.adapter.dump_json(items)

    def dump_python(self, items: list[M], *, mode: Literal["json", "python"] = "python") -> Any:
        """The items as plain Python data (``mode="json"`` for JSON-ready values)."""
        return self.adapter.dump_python(items, mode=mode)
