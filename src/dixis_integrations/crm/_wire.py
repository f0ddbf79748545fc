"""Small pieces the CRM adapters share: static-credential auth, opaque cursors, JSON bodies.

Private: vendor field names never appear here, only transport mechanics.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
from pydantic import SecretStr

from dixis_integrations.errors import FieldError, InvalidInput, TransientError
from dixis_integrations.models.money import Money, minor_units

__all__ = [
    "HeaderAuth",
    "QueryAuth",
    "body_of",
    "decode_cursor",
    "dumps_exact",
    "encode_cursor",
    "exact_amount",
    "next_utc_midnight",
]


class HeaderAuth(httpx.Auth):
    """Puts a static secret in one header (``Authorization: Bearer ...``, ``x-api-token``)."""

    def __init__(self, header: str, secret: SecretStr, prefix: str = "") -> None:
        self._header = header
        self._secret = secret
        self._prefix = prefix

    def __repr__(self) -> str:
        return f"HeaderAuth({self._header!r}, **********)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._prefix + self._secret.get_secret_value()
        yield request


class QueryAuth(httpx.Auth):
    """Puts a static secret in one query parameter (Pipedrive's ``api_token``)."""

    def __init__(self, param: str, secret: SecretStr) -> None:
        self._param = param
        self._secret = secret

    def __repr__(self) -> str:
        return f"QueryAuth({self._param!r}, **********)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params({self._param: self._secret.get_secret_value()})
        yield request


def body_of(response: httpx.Response, vendor: str) -> Any:
    """The response body as JSON; a body that is not JSON is a transient failure."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise TransientError(
            f"malformed JSON in the answer to {response.request.url.path}",
            vendor=vendor,
            status_code=response.status_code,
        ) from None


def encode_cursor(state: dict[str, Any]) -> str:
    """An opaque, URL-safe cursor for ``state``."""
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, vendor: str) -> dict[str, Any]:
    """The state inside a cursor made by :func:`encode_cursor`.

    Raises:
        InvalidInput: the cursor was not made by this library (field ``cursor``).
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        state = None
    if not isinstance(state, dict):
        raise InvalidInput(
            "unreadable cursor", errors=(FieldError(("cursor",), "not ours"),), vendor=vendor
        )
    return state


def next_utc_midnight(now: datetime | None = None) -> datetime:
    """The next midnight UTC: when a daily quota that we cannot place better resets."""
    now = now or datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def dumps_exact(value: Any) -> bytes:
    """JSON with every ``Decimal`` written as an exact JSON number (never via float).

    Each Decimal is first written as a string carrying a random per-call marker, then
    unquoted; no input string can forge the marker, so none can inject raw JSON.
    """
    nonce = secrets.token_hex(8)

    def mark(item: Any) -> str:
        if isinstance(item, Decimal) and item.is_finite():
            return f"\x00{nonce}:{item:f}\x00"
        raise TypeError(f"{type(item).__name__} is not JSON serialisable")

    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=mark)
    pieces = text.split(f'"\\u0000{nonce}:')
    if len(pieces) == 1:
        return text.encode()
    out = [pieces[0]]
    for piece in pieces[1:]:
        number, _, rest = piece.partition('\\u0000"')
        out.append(number)
        out.append(rest)
    return "".join(out).encode()


@functools.lru_cache(maxsize=32)
def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def exact_amount(money: Money) -> Decimal:
    """The amount rounded half-up to the currency's minor unit (what CRMs store)."""
    return money.amount.quantize(_quantum(money.currency), rounding=ROUND_HALF_UP)
