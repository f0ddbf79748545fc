"""Recorded vendor conversations (cassettes) with secrets filtered, replayed strictly.

:class:`Recorder` wraps vcrpy (``httpx`` sync and async included): by default it only
replays (``record_mode="none"``), so a test never reaches a vendor by accident;
``DIXIS_RECORD=1`` records new interactions (``DIXIS_RECORD=once`` re-records a cassette
from scratch). Before anything is written, credentials are masked in headers, query
parameters and JSON or form bodies (of requests and responses alike), and so is every
value registered with :func:`dixis_integrations.http.register_secret`. A cassette with
interactions the test never played fails the test: an unused cassette is a stale one.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import vcr
from vcr.cassette import Cassette

from dixis_integrations.http.redact import REDACTED, is_sensitive_name, redact_text

__all__ = ["RECORD_ENV", "Recorder", "UnplayedInteractions", "scrub_body", "scrub_url"]

RECORD_ENV = "DIXIS_RECORD"
_TEXTUAL = ("json", "x-www-form-urlencoded", "text", "xml")


class UnplayedInteractions(AssertionError):
    """The cassette holds interactions the test did not make."""


def _scrub_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: REDACTED if is_sensitive_name(str(k)) else _scrub_value(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub_value(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def scrub_url(url: str) -> str:
    """``url`` with sensitive query parameters and registered secrets masked."""
    parts = urlsplit(url)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if is_sensitive_name(k) else v) for k, v in pairs])
        parts = parts._replace(query=query)
    return redact_text(urlunsplit(parts))


def scrub_body(body: bytes | str | None, content_type: str = "") -> bytes | str | None:
    """A body with secrets masked: JSON and form fields by name, any text by value.

    Bodies of other types (PDF labels...) are left as they are.
    """
    if not body:
        return body
    as_bytes = isinstance(body, bytes)
    try:
        text = body.decode() if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        return body
    kind = content_type.lower()
    scrubbed: str | None = None
    if "json" in kind or (not kind and text.lstrip()[:1] in ("{", "[")):
        try:
            scrubbed = json.dumps(_scrub_value(json.loads(text)), ensure_ascii=False)
        except ValueError:
            scrubbed = None
    elif "x-www-form-urlencoded" in kind:
        pairs = parse_qsl(text, keep_blank_values=True)
        scrubbed = urlencode([(k, REDACTED if is_sensitive_name(k) else v) for k, v in pairs])
    if scrubbed is None:
        if kind and not any(t in kind for t in _TEXTUAL):
            return body
        scrubbed = redact_text(text)
    return scrubbed.encode() if as_bytes else scrubbed


def _header(headers: Mapping[str, Any], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else str(value)
    return ""


def _scrub_request(request: Any) -> Any:
    for name in list(request.headers):
        if is_sensitive_name(name):
            request.headers[name] = REDACTED
        else:
            request.headers[name] = redact_text(str(request.headers[name]))
    request.uri = scrub_url(request.uri)
    request.body = scrub_body(request.body, _header(request.headers, "content-type"))
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers: dict[str, list[str]] = response.get("headers", {})
    for name in list(headers):
        if is_sensitive_name(name):
            headers[name] = [REDACTED]
        else:
            headers[name] = [redact_text(v) for v in headers[name]]
    body = response.get("body", {})
    if "string" in body:
        body["string"] = scrub_body(body["string"], _header(headers, "content-type"))
    return response


def _record_mode(explicit: str | None) -> str:
    if explicit is not None:
        return explicit
    flag = os.environ.get(RECORD_ENV, "").strip().lower()
    if flag in ("1", "true", "yes", "new_episodes"):
        return "new_episodes"
    if flag in ("once", "all"):
        return "all"
    return "none"


class Recorder:
    """Cassettes in ``directory``, named per test.

    Args:
        directory: where cassettes live (YAML files).
        record_mode: vcrpy's mode; default ``"none"`` unless ``DIXIS_RECORD`` says to record.
        match_on: what makes a request the same as a recorded one.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        record_mode: str | None = None,
        match_on: tuple[str, ...] = ("method", "scheme", "host", "port", "path", "query"),
    ) -> None:
        self.directory = Path(directory)
        self.record_mode = _record_mode(record_mode)
        self._vcr = vcr.VCR(
            cassette_library_dir=str(self.directory),
            record_mode=self.record_mode,
            match_on=match_on,
            before_record_request=_scrub_request,
            before_record_response=_scrub_response,
            decode_compressed_response=True,
        )

    @property
    def recording(self) -> bool:
        """Whether new interactions are written (else strict replay)."""
        return self.record_mode != "none"

    @contextlib.contextmanager
    def use(self, name: str) -> Iterator[Cassette]:
        """Replay (or record) the cassette ``name``; fail if any interaction went unplayed.

        Raises:
            UnplayedInteractions: on exit, when replaying left interactions unused.
        """
        path = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
        with self._vcr.use_cassette(path, allow_playback_repeats=False) as cassette:
            yield cassette
        if not self.recording and not cassette.all_played:
            unplayed = len(cassette.data) - cassette.play_count
            raise UnplayedInteractions(
                f"cassette {path}: {unplayed} recorded interaction(s) were never played"
            )
