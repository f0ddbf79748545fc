"""No token, code verifier or client secret reaches a log line, a repr or an exception.

A full flow against the served sandbox, failures included, with every logger at DEBUG.
"""

from __future__ import annotations

import logging
import traceback
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from dixis_integrations.auth import (
    MemoryTokenStore,
    OAuth2Auth,
    OAuth2Config,
    SQLiteTokenStore,
    TokenCipher,
    TokenManager,
    authorization_url,
    client_credentials,
    code_from_callback,
    exchange_code,
)
from dixis_integrations.errors import DixisError
from dixis_integrations.sandbox import Fault
from dixis_integrations.sandbox.oauth import OAuthServer, SandboxClient
from dixis_integrations.sandbox.serve import serve

SECRET = "redaction-client-secret-a9f1c3"
WRONG_SECRET = "redaction-wrong-secret-77d0e2"
# The emulator's own server library logs what it issues: that is the vendor's side.
_VENDOR_SIDE_LOGGERS = ("authlib.oauth2.rfc6749",)


def _expect(kind: type[BaseException], errors: list[BaseException], action: object) -> None:
    assert callable(action)
    with pytest.raises(kind) as info:
        action()
    errors.append(info.value)


def test_full_flow_with_failures_never_exposes_secrets(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    server = OAuthServer(
        clients=[
            SandboxClient(
                client_id="app", client_secret=SECRET, redirect_uris=("http://127.0.0.1/cb",)
            )
        ]
    )
    errors: list[BaseException] = []
    shown: list[str] = []
    with serve(server) as served:
        server.bind(served.base_url)
        config = OAuth2Config(
            provider="sandbox",
            client_id="app",
            client_secret=SECRET,
            authorize_url=f"{served.base_url}/oauth2/authorize",
            token_url=f"{served.base_url}/oauth2/token",
            redirect_uri="http://127.0.0.1/cb",
        )
        cipher = TokenCipher(TokenCipher.generate_key())
        store = SQLiteTokenStore(tmp_path / "t.db", cipher)
        manager = TokenManager(config, "t1", store, lambda: httpx.Client(timeout=5))
        auth = OAuth2Auth(manager)
        request = authorization_url(config)
        with httpx.Client(timeout=5) as client:
            # The person's browser, not this library, follows the consent redirect.
            consent = server.handle(httpx.Request("GET", request.url))
            code = code_from_callback(request, consent.headers["location"])
            token = exchange_code(config, code, request, client)
            manager.save(token)
            _expect(DixisError, errors, lambda: exchange_code(config, code, request, client))
            bad = OAuth2Config.model_validate(
                {**config.model_dump(), "client_secret": WRONG_SECRET}
            )
            _expect(DixisError, errors, lambda: client_credentials(bad, client))
            app_token = client_credentials(config, client)
        userinfo = f"{served.base_url}/oauth2/userinfo"
        with httpx.Client(auth=auth, timeout=5) as client:
            assert client.get(userinfo).status_code == 200
            server.expire_all()
            assert client.get(userinfo).status_code == 200  # 401, refresh, retry

            expired = manager.token().model_copy(
                update={"expires_at": datetime.now(UTC) - timedelta(seconds=1)}
            )
            fresh_manager = TokenManager(config, "t1", store, lambda: httpx.Client(timeout=0.5))
            for fault in (Fault.SERVER_ERROR, Fault.RATE_LIMIT, Fault.TIMEOUT, Fault.RESET):
                store.save("sandbox", "t1", expired)
                server.faults.script = deque([fault])
                _expect(DixisError, errors, fresh_manager.token)
            server.faults.script = deque()
            server.revoke_grants()
            _expect(DixisError, errors, fresh_manager.token)
            _expect(DixisError, errors, fresh_manager.token)
            server.expire_all()
            _expect(DixisError, errors, lambda: client.get(userinfo))
        with httpx.Client(auth=OAuth2Auth(TokenManager(config, "x", MemoryTokenStore()))) as c:
            _expect(DixisError, errors, lambda: c.get(userinfo))

        shown += [repr(o) for o in (config, manager, auth, store, cipher, request, token)]
        shown += [str(o) for o in (config, token, app_token)]
        shown.append(repr(config.model_dump()))

    assert len(errors) == 10
    for exc in errors:
        shown += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    # Everything the run logged, at every level, from every logger but the vendor's.
    for record in caplog.records:
        if record.name.startswith(_VENDOR_SIDE_LOGGERS):
            continue
        shown.append(record.getMessage())
        if record.exc_info:
            shown.append("".join(traceback.format_exception(*record.exc_info)))
    assert any("refresh" in line for line in shown)  # the log really was captured

    assert request.code_verifier is not None
    secrets = {SECRET, WRONG_SECRET, code, request.code_verifier.get_secret_value()}
    # Every access and refresh token the vendor issued during the run.
    secrets |= set(server._by_access) | {r for r in server._by_refresh if r}
    assert len(secrets) > 8
    text = "\n".join(shown)
    leaked = sorted(s for s in secrets if s in text)
    assert leaked == []
