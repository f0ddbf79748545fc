"""Small pieces the marketing adapters share: static-key auth and reading JSON bodies.

Private: no vendor field names here, only transport mechanics.
"""

from __future__ import annotations

import base64
from collections.abc import Generator
from typing import Any

import httpx
from pydantic import SecretStr

from dixis_integrations.errors import FieldError, InvalidInput, TransientError
from dixis_integrations.models._types import normalize_email

__all__ = ["BasicKeyAuth", "HeaderKeyAuth", "body_of", "checked_email"]


class HeaderKeyAuth(httpx.Auth):
    """Puts a static API key in one header (Brevo's ``api-key``)."""

    def __init__(self, header: str, secret: SecretStr) -> None:
        self._header = header
        self._secret = secret

    def __repr__(self) -> str:
        return f"HeaderKeyAuth({self._header!r}, **********)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._secret.get_secret_value()
        yield request


class BasicKeyAuth(httpx.Auth):
    """HTTP Basic with any user name and the API key as password (Mailchimp)."""

    def __init__(self, secret: SecretStr, user: str = "dixis") -> None:
        self._secret = secret
        self._user = user

    def __repr__(self) -> str:
        return "BasicKeyAuth(**********)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raw = f"{self._user}:{self._secret.get_secret_value()}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        yield request


def body_of(response: httpx.Response, vendor: str) -> Any:
    """The response body as JSON (``None`` when empty); not JSON is a transient failure."""
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


def checked_email(value: str, vendor: str, loc: tuple[str | int, ...] = ("email",)) -> str:
    """The address lower-cased and checked, or :class:`InvalidInput` naming ``loc``."""
    try:
        return normalize_email(value)
    except ValueError as exc:
        raise InvalidInput(
            "invalid email address", errors=[FieldError(loc, str(exc), "email")], vendor=vendor
        ) from None
