"""JSON with exact decimals, both ways, for the accounting adapters (private).

Amounts go on the wire as JSON numbers written from their ``Decimal`` text (never via
float) and come back as ``Decimal``. A parsed body is cached on the response, so a
classifier and a parser read it once between them.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import httpx

__all__ = ["MalformedBody", "dumps", "loads", "response_json"]

_MARK = "\x1f"
_PLACEHOLDER = re.compile(r'"\\u001f(-?[0-9]+(?:\.[0-9]+)?)\\u001f"')
_CACHE = "dixis.accounting.json"


def _default(value: object) -> str:
    if isinstance(value, Decimal):
        text = format(value, "f")
        return f"{_MARK}{text}{_MARK}"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON; ``Decimal`` values become exact JSON numbers."""
    text = json.dumps(body, default=_default, ensure_ascii=False, separators=(",", ":"))
    if _MARK in text or "\\u001f" in text:
        text = _PLACEHOLDER.sub(r"\1", text)
    return text.encode()


def loads(content: bytes | str) -> Any:
    """JSON with every non-integer number as ``Decimal``."""
    return json.loads(content, parse_float=Decimal)


class MalformedBody(ValueError):
    """The vendor answered with a body that is not the JSON it promised."""


def response_json(response: httpx.Response) -> Any:
    """The response body as JSON (decimals exact), parsed once and cached on it.

    Raises:
        MalformedBody: the body is not JSON.
    """
    cached = response.extensions.get(_CACHE)
    if cached is not None:
        return cached
    try:
        value = loads(response.content) if response.content else {}
    except ValueError as exc:
        raise MalformedBody(str(exc)) from None
    response.extensions[_CACHE] = value
    return value
