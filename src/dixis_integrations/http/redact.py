"""Keeping secrets out of logs: URL and mapping redaction, and a logging filter.

Adapters register every secret they hold (``register_secret``); the filter installed on
the library's loggers replaces any registered value that reaches a log record. Names
that look secret (``token``, ``secret``, ``password``, ``apikey``...) are masked wherever
they appear as query parameters or mapping keys.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

import httpx

__all__ = [
    "REDACTED",
    "SecretFilter",
    "install_secret_filter",
    "is_sensitive_name",
    "redact_mapping",
    "redact_text",
    "redact_url",
    "register_secret",
]

REDACTED = "***"
_SENSITIVE = re.compile(
    r"(token|secret|password|passwd|pwd|api[_-]?key|apikey|authorization|auth|signature|"
    r"session|cookie|credential|private|client_assertion|code_verifier|^code$|^key$)",
    re.IGNORECASE,
)
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def is_sensitive_name(name: str) -> bool:
    """Whether a header, field or parameter name suggests a secret value."""
    return bool(_SENSITIVE.search(name))


def register_secret(value: str | None) -> None:
    """Remember a secret so that it is scrubbed from every log record of the library.

    Values shorter than 6 characters are ignored (too likely to match ordinary text).
    """
    global _pattern
    if not value or len(value) < 6:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact_text(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    pattern = _pattern
    if pattern is None:
        return text
    return pattern.sub(REDACTED, text)


@functools.lru_cache(maxsize=1024)  # the same few queries come back on every call
def _query_is_clean(query: bytes) -> bool:
    for part in query.split(b"&"):
        name = unquote_plus(part.split(b"=", 1)[0].decode("ascii", "replace"))
        if is_sensitive_name(name):
            return False
    return True


# parsed URL -> (the secrets' pattern, its redacted text), for URLs with no name to mask
_clean_urls: dict[object, tuple[re.Pattern[str] | None, str]] = {}
_CLEAN_URLS_MAX = 1024


def redact_url(url: httpx.URL | str) -> str:
    """The URL with sensitive query parameters and user info masked."""
    u = url if isinstance(url, httpx.URL) else httpx.URL(url)
    # Turning an httpx.URL back into text is Python code, and the same few URLs come
    # back on every call: the redacted text of those with no name to mask is kept, keyed
    # by the parsed URL (user info and query included, so a hit needs no further check)
    # and valid while no new secret is registered (the pattern it was redacted with).
    parsed = getattr(u, "_uri_reference", None)
    if parsed is not None:
        hit = _clean_urls.get(parsed)
        if hit is not None and hit[0] is _pattern:
            return hit[1]
    if not u.userinfo and (not u.query or _query_is_clean(u.query)):
        pattern = _pattern  # read before redacting: a later secret makes the entry stale
        text = str(u)  # the common case: nothing to rebuild
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        if parsed is not None:
            if len(_clean_urls) >= _CLEAN_URLS_MAX:
                _clean_urls.clear()
            _clean_urls[parsed] = (pattern, text)
        return text
    if u.userinfo:
        u = u.copy_with(username=REDACTED, password=None)
    if u.params:
        params = [(k, REDACTED if is_sensitive_name(k) else v) for k, v in u.params.multi_items()]
        u = u.copy_with(params=params)
    return redact_text(str(u))


def _redact_request_url(url: httpx.URL) -> str:
    """``redact_url(url)``, its cached text looked up first: a call record needs it for
    every call, and the same few URLs come back."""
    hit = _clean_urls.get(getattr(url, "_uri_reference", None))
    if hit is not None and hit[0] is _pattern:
        return hit[1]
    return redact_url(url)


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` (nested) with values under sensitive names masked."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if is_sensitive_name(str(key)):
            out[key] = REDACTED
        elif isinstance(value, Mapping):
            out[key] = redact_mapping(value)
        elif isinstance(value, str):
            out[key] = redact_text(value)
        else:
            out[key] = value
    return out


class SecretFilter(logging.Filter):
    """Scrubs registered secrets from a record's formatted message.

    The message is formatted once and, only when it held a secret, replaced by its
    redacted text (with no arguments left), whatever the types of the arguments (URLs,
    requests...) that carried the secret.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


def install_secret_filter(logger: logging.Logger) -> None:
    """Attach :class:`SecretFilter` to ``logger`` once."""
    if not any(isinstance(f, SecretFilter) for f in logger.filters):
        logger.addFilter(SecretFilter())
