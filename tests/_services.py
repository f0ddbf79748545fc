"""Where the tests find PostgreSQL, Redis and RabbitMQ on this machine, and the rule when absent.

``require_postgres()`` / ``require_redis()`` / ``require_rabbitmq()`` return the address of a
reachable service. When it is unreachable the calling test is SKIPPED with the reason, except
under ``CI=true``, where a missing service is a FAILURE (CI promised it). Addresses come from
``DIXIS_TEST_POSTGRES_DSN`` / ``DIXIS_TEST_REDIS_URL`` / ``DIXIS_TEST_RABBITMQ_URL`` first.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlsplit

import pytest

__all__ = ["require_postgres", "require_rabbitmq", "require_redis"]

_POSTGRES_DEFAULTS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://127.0.0.1:5432/test",
)
_REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
_RABBITMQ_DEFAULT = "amqp://guest:guest@127.0.0.1:5672/"
_PROBE_TIMEOUT = 3.0


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(reason)


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@functools.cache
def _probe_postgres() -> tuple[str | None, str]:
    try:
        import psycopg
    except ImportError:
        return None, "psycopg is not installed (pip install 'dixis-integrations[postgres]')"
    configured = os.environ.get("DIXIS_TEST_POSTGRES_DSN")
    candidates = (configured,) if configured else _POSTGRES_DEFAULTS
    for dsn in candidates:
        try:
            with psycopg.connect(dsn, connect_timeout=int(_PROBE_TIMEOUT)) as conn:
                conn.execute("SELECT 1")
            return dsn, ""
        except psycopg.Error:
            continue
    where = "DIXIS_TEST_POSTGRES_DSN" if configured else ", ".join(_POSTGRES_DEFAULTS)
    return None, f"PostgreSQL is not reachable at {where}"


@functools.cache
def _probe_redis() -> tuple[str | None, str]:
    url = os.environ.get("DIXIS_TEST_REDIS_URL", _REDIS_DEFAULT)
    host, port = _host_port(url, 6379)
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT) as sock:
            sock.settimeout(_PROBE_TIMEOUT)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            answer = sock.recv(64)
    except OSError:
        return None, f"Redis is not reachable at {host}:{port}"
    # "-NOAUTH" still proves a Redis server is there; the test brings its credentials.
    if answer.startswith((b"+PONG", b"-NOAUTH")):
        return url, ""
    return None, f"something that is not Redis answers at {host}:{port}"


@functools.cache
def _probe_rabbitmq() -> tuple[str | None, str]:
    url = os.environ.get("DIXIS_TEST_RABBITMQ_URL", _RABBITMQ_DEFAULT)
    host, port = _host_port(url, 5672)
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT) as sock:
            sock.settimeout(_PROBE_TIMEOUT)
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            answer = sock.recv(8)
    except OSError:
        return None, f"RabbitMQ is not reachable at {host}:{port}"
    # An AMQP 0-9-1 broker answers the protocol header with a method frame (type 1).
    if answer[:1] == b"\x01":
        return url, ""
    return None, f"something that is not an AMQP 0-9-1 broker answers at {host}:{port}"


def require_postgres() -> str:
    """A DSN of a reachable PostgreSQL, or skip (fail under ``CI=true``)."""
    dsn, reason = _probe_postgres()
    if dsn is None:
        _missing(reason)
    assert dsn is not None
    return dsn


def require_redis() -> str:
    """A URL of a reachable Redis, or skip (fail under ``CI=true``)."""
    url, reason = _probe_redis()
    if url is None:
        _missing(reason)
    assert url is not None
    return url


def require_rabbitmq() -> str:
    """A URL of a reachable RabbitMQ (AMQP 0-9-1), or skip (fail under ``CI=true``)."""
    url, reason = _probe_rabbitmq()
    if url is None:
        _missing(reason)
    assert url is not None
    return url
