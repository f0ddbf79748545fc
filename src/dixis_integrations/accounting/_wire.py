"""JSON with exact decimals, both ways, for the accounting adapters (private).

Amounts go on the wire as JSON numbers written from their ``Decimal`` text (never via
float) and come back as ``Decimal``. A parsed body is cached on the response, so a
classifier and a parser read it once between them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any, Final

import httpx
from pydantic_core import to_json

__all__ = [
    "MalformedBody",
    "dumps",
    "dumps_marked",
    "loads",
    "number",
    "plain",
    "quoted",
    "response_json",
    "take_json",
]

_MARK = "\x1f"
_CACHE = "dixis.accounting.json"
_ESCAPED = "\\u001f"
_ESCAPED_BYTES = b"\\u001f"


class _Encoder:
    """Writes each ``Decimal`` as a marked string, counting them, for :func:`dumps`."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, value: object) -> str:
        if isinstance(value, Decimal):
            self.count += 1
            return number(value)
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _Number(str):
    """A :func:`number` mark. Its type, not its text, tells it from a string that
    happens to read the same ("\\x1f12\\x1f" typed by a user stays a string)."""

    __slots__ = ()


def number(value: Decimal) -> str:
    """``value`` pre-marked for :func:`dumps` (cheaper than a ``Decimal`` in hot builders):
    it is written as the exact JSON number in plain notation, never as a string.
    """
    # str() is several times cheaper than format(); it only differs (scientific
    # notation, e.g. ``1E+1``) for the rare exponents plain notation must spell out.
    text = str(value)
    if "E" in text:
        text = f"{value:f}"
    return _Number(f"\x1f{text}\x1f")


def _carries_mark(value: object) -> bool:
    """Whether a string of ``value`` (a key or a value) other than a :func:`number` mark
    holds the marker character: text whose escapes the unwrapping must not touch."""
    if isinstance(value, str):
        return type(value) is not _Number and _MARK in value
    if isinstance(value, dict):
        return any(_carries_mark(key) or _carries_mark(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_carries_mark(item) for item in value)
    return False


def _retag(value: Any, tag: str, decimals: bool) -> Any:
    """``value`` with each :func:`number` mark (and, if ``decimals``, each bare
    ``Decimal``) as ``tag`` + number text + ``tag`` in a plain string."""
    if isinstance(value, str):
        if type(value) is _Number:
            return f"{tag}{value[1:-1]}{tag}"
        return value
    if decimals and isinstance(value, Decimal):
        return f"{tag}{plain(value)}{tag}"
    if isinstance(value, dict):
        return {key: _retag(item, tag, decimals) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_retag(item, tag, decimals) for item in value]
    return value


def _unwrap_exactly(body: Any, text: str, write: Callable[[Any], str], *, decimals: bool) -> bytes:
    """The JSON of a body whose text carries the marker character: its marks are written
    again with a tag found nowhere in ``text`` (the body's JSON, every string of it
    included), so only they are unwrapped, whatever the strings hold."""
    tag = secrets.token_hex(8)
    while tag in text:  # hex digits are never escaped: absent from the text, from every string
        tag = secrets.token_hex(8)
    marked = write(_retag(body, tag, decimals))
    return marked.replace(f'"{tag}', "").replace(f'{tag}"', "").encode()


def plain(value: Decimal) -> str:
    """``value`` as the exact JSON number :func:`dumps` writes for it (plain notation),
    for builders that write their JSON text themselves."""
    text = str(value)
    if "E" in text:
        text = f"{value:f}"
    return text


quoted: Final = encode_basestring
"""A ``str`` as the JSON string the writers here produce for it: UTF-8 kept as it is,
quotes, backslashes and control characters escaped (``\\n``, ``\\u001f``...)."""


def dumps(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON; ``Decimal`` values (and :func:`number` marks)
    become exact JSON numbers.
    """
    encoder = _Encoder()
    text = json.dumps(body, default=encoder, ensure_ascii=False, separators=(",", ":"))
    if _ESCAPED not in text:
        return text.encode()
    if _carries_mark(body):  # some text carried U+001F itself: only our marks unwrapped
        return _unwrap_exactly(body, text, _json_text, decimals=True)
    # Only our marks hold the escaped control character: two plain replaces.
    return text.replace('"' + _ESCAPED, "").replace(_ESCAPED + '"', "").encode()


def dumps_marked(body: Any) -> bytes:
    """:func:`dumps` for a body whose amounts are all :func:`number` marks (no bare
    ``Decimal``, no float): the bulk invoice bodies our builders write. One call of
    pydantic-core's JSON writer, several times faster than ``json.dumps``, then the
    marks are unwrapped on the bytes. Same output as :func:`dumps` for such a body.

    A bare ``Decimal`` would be written as a JSON *string* by that writer: only bodies
    built entirely with :func:`number` go through here (the builders' tests check that
    their bodies hold no bare ``Decimal``); anything else goes through :func:`dumps`.

    Raises:
        TypeError: a value JSON cannot hold.
    """
    raw = to_json(body, fallback=_refuse, serialize_unknown=False)
    if _ESCAPED_BYTES not in raw:
        return raw
    if _carries_mark(body):  # some text carried U+001F itself: only our marks unwrapped
        return _unwrap_exactly(body, raw.decode(), _marked_text, decimals=False)
    # Only our marks hold the escaped control character: two plain replaces.
    return raw.replace(b'"' + _ESCAPED_BYTES, b"").replace(_ESCAPED_BYTES + b'"', b"")


def _refuse(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_text(body: Any) -> str:
    return json.dumps(body, default=_refuse, ensure_ascii=False, separators=(",", ":"))


def _marked_text(body: Any) -> str:
    return to_json(body, fallback=_refuse, serialize_unknown=False).decode()


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


def take_json(response: httpx.Response) -> Any:
    """:func:`response_json` for its last reader: the parse is no longer kept on the
    response, so it is freed as soon as the caller drops it.

    An httpx response usually sits in a reference cycle (its streams refer back to it)
    and is only freed by the cyclic garbage collector; a bulk answer's parse cached on
    it (hundreds of dicts and lists per call) would live, and be traversed, until then.

    Raises:
        MalformedBody: the body is not JSON.
    """
    value = response_json(response)
    response.extensions.pop(_CACHE, None)
    return value
