"""A separate OS process for the auth tests: hold a store lock, or race for a token.

Run as ``python _worker.py hold <kind> <target> <provider> <tenant>`` (prints ``locked`` and
holds the lock until stdin closes) or ``python _worker.py race <kind> <target> <provider>
<tenant> <token_url> <client_id> <client_secret> <start_file>`` (waits for the start file,
calls ``TokenManager.token()`` once and prints the access token's SHA-256).
The key comes from ``DIXIS_TOKEN_KEY``.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import httpx

from dixis_integrations.auth import (
    OAuth2Config,
    PostgresTokenStore,
    SQLiteTokenStore,
    TokenCipher,
    TokenManager,
    TokenStore,
)


def _store(kind: str, target: str) -> TokenStore:
    cipher = TokenCipher.from_env()
    if kind == "postgres":
        return PostgresTokenStore(target, cipher)
    return SQLiteTokenStore(target, cipher)


def _hold(kind: str, target: str, provider: str, tenant: str) -> None:
    with _store(kind, target).lock(provider, tenant, timeout=10):
        print("locked", flush=True)
        sys.stdin.read()


def _race(argv: list[str]) -> None:
    kind, target, provider, tenant, token_url, client_id, secret, start_file = argv
    config = OAuth2Config(
        provider=provider,
        client_id=client_id,
        client_secret=secret,
        token_url=token_url,
        refresh_margin_seconds=60,
    )
    manager = TokenManager(
        config,
        tenant,
        _store(kind, target),
        lambda: httpx.Client(timeout=10),
        lock_timeout=10,
    )
    print("ready", flush=True)
    deadline = time.monotonic() + 20
    while not Path(start_file).exists():
        if time.monotonic() > deadline:
            raise SystemExit("start file never appeared")
        time.sleep(0.001)
    token = manager.token()
    print(hashlib.sha256(token.access_token.get_secret_value().encode()).hexdigest(), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        _hold(*sys.argv[2:6])
    else:
        _race(sys.argv[2:])
