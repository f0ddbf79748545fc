"""The proof: 8 threads and 4 OS processes ask for an expired token at once; one refresh.

The sandbox authorization server is served over real HTTP on 127.0.0.1 and rotates refresh
tokens, so a second refresh with the same refresh token would fail with ``invalid_grant``:
the test passes only if the refresh happens exactly once and everybody gets its result.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from dixis_integrations.auth import OAuth2Auth, OAuth2Config, Token, TokenManager, TokenStore
from dixis_integrations.sandbox.oauth import OAuthServer, SandboxClient
from dixis_integrations.sandbox.serve import serve

WORKER = Path(__file__).with_name("_worker.py")
SECRET = "race-client-secret-3b7e"
THREADS = 8
PROCESSES = 4
TENANT = "race"


def _digest(token: Token) -> str:
    return hashlib.sha256(token.access_token.get_secret_value().encode()).hexdigest()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_one_refresh_for_8_threads_and_4_processes_and_401_recovery(
    store: TokenStore,
    store_kind: str,
    store_target: str,
    provider: str,
    token_key: str,
    tmp_path: Path,
) -> None:
    server = OAuthServer(clients=[SandboxClient(client_id="app", client_secret=SECRET)])
    with serve(server) as served:
        config = OAuth2Config(
            provider=provider,
            client_id="app",
            client_secret=SECRET,
            token_url=f"{served.base_url}/oauth2/token",
            refresh_margin_seconds=60,
        )

        def manager() -> TokenManager:
            return TokenManager(
                config, TENANT, store, lambda: httpx.Client(timeout=10), lock_timeout=10
            )

        issued = server.issue_token("app")
        seeded = Token(
            access_token=SecretStr(issued["access_token"]),
            refresh_token=SecretStr(issued["refresh_token"]),
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        store.save(provider, TENANT, seeded)
        stale = manager()
        assert stale.token() == seeded  # a worker that read the token before it went bad
        # Now it is expired for us, and the vendor rejects it too.
        store.save(
            provider,
            TENANT,
            seeded.model_copy(update={"expires_at": datetime.now(UTC) - timedelta(minutes=1)}),
        )
        server.expire_all()
        assert server.token_requests.total() == 0

        start_file = tmp_path / "go"
        env = {**os.environ, "DIXIS_TOKEN_KEY": token_key}
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER),
                    "race",
                    store_kind,
                    store_target,
                    provider,
                    TENANT,
                    config.token_url,
                    "app",
                    SECRET,
                    str(start_file),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(PROCESSES)
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"

            shared = manager()
            barrier = threading.Barrier(THREADS + 1)
            results: list[Token] = []
            errors: list[BaseException] = []

            def call() -> None:
                barrier.wait(10)
                try:
                    results.append(shared.token())
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=call) for _ in range(THREADS)]
            for thread in threads:
                thread.start()
            barrier.wait(10)
            start_file.touch()
            for thread in threads:
                thread.join(20)

            outputs = [proc.communicate(timeout=20) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)

        assert errors == []
        for proc, (_out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err
        process_digests = [out.strip() for out, _ in outputs]
        thread_digests = [_digest(t) for t in results]
        assert len(thread_digests) == THREADS
        assert len(process_digests) == PROCESSES
        # Every one of the 12 callers got the same, new access token...
        assert len(set(thread_digests + process_digests)) == 1
        assert thread_digests[0] != _digest(seeded)
        # ...from exactly one refresh request, and the rotated refresh token was saved.
        assert server.refresh_count == 1
        assert server.token_requests.total() == 1
        saved = store.get(provider, TENANT)
        assert saved is not None
        assert _digest(saved) == thread_digests[0]
        assert saved.refresh_token != seeded.refresh_token

        with httpx.Client(auth=OAuth2Auth(stale), timeout=10) as client:
            # The stale worker still holds the old token: 401, then it finds the token
            # the others saved (no new refresh) and the retry succeeds.
            assert client.get(f"{served.base_url}/oauth2/userinfo").status_code == 200
        assert server.refresh_count == 1

        server.expire_all()  # the vendor drops the new token before its expiry
        with httpx.Client(auth=OAuth2Auth(shared), timeout=10) as client:
            assert client.get(f"{served.base_url}/oauth2/userinfo").status_code == 200
        assert server.refresh_count == 2


def test_async_tasks_refresh_once_through_a_persistent_store(
    store: TokenStore, provider: str
) -> None:
    server = OAuthServer(clients=[SandboxClient(client_id="app", client_secret=SECRET)])
    config = OAuth2Config(
        provider=provider,
        client_id="app",
        client_secret=SECRET,
        token_url="https://vendor.test/oauth2/token",
    )
    issued = server.issue_token("app")
    store.save(
        provider,
        TENANT,
        Token(
            access_token=SecretStr(issued["access_token"]),
            refresh_token=SecretStr(issued["refresh_token"]),
            expires_at=datetime.now(UTC) - timedelta(minutes=1),
        ),
    )
    manager = TokenManager(
        config,
        TENANT,
        store,
        async_client_factory=lambda: httpx.AsyncClient(transport=server.transport()),
        lock_timeout=10,
    )

    async def many() -> list[Token]:
        return await asyncio.wait_for(asyncio.gather(*(manager.atoken() for _ in range(12))), 30)

    tokens = asyncio.run(many())
    assert len({_digest(t) for t in tokens}) == 1
    assert server.refresh_count == 1
    saved = store.get(provider, TENANT)
    assert saved is not None
    assert _digest(saved) == _digest(tokens[0])
