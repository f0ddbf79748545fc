"""OAuth2 client flows and the TokenManager, against the sandbox authorization server."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from dixis_integrations.auth import (
    AuthorizationRequest,
    MemoryTokenStore,
    OAuth2Auth,
    OAuth2Config,
    Token,
    TokenLockTimeout,
    TokenManager,
    aclient_credentials,
    aexchange_code,
    authorization_url,
    client_credentials,
    code_from_callback,
    exchange_code,
)
from dixis_integrations.errors import (
    AuthError,
    InvalidInput,
    ProviderTimeout,
    RateLimited,
    ReauthorizationRequired,
    TransientError,
)
from dixis_integrations.sandbox import Fault, FaultPlan
from dixis_integrations.sandbox.oauth import OAuthServer, SandboxClient
from dixis_integrations.sandbox.serve import serve

BASE = "https://vendor.test"
SECRET = "client-secret-for-tests-0c1d"
REDIRECT = "http://127.0.0.1:8765/callback"


def _server(**kwargs: object) -> OAuthServer:
    client = SandboxClient(client_id="app", client_secret=SECRET, redirect_uris=(REDIRECT,))
    return OAuthServer(clients=[client], base_url=BASE, **kwargs)  # type: ignore[arg-type]


def _config(base: str = BASE, **overrides: object) -> OAuth2Config:
    values: dict[str, object] = {
        "provider": "sandbox",
        "client_id": "app",
        "client_secret": SECRET,
        "authorize_url": f"{base}/oauth2/authorize",
        "token_url": f"{base}/oauth2/token",
        "redirect_uri": REDIRECT,
        "scopes": ("accounting", "offline_access"),
        **overrides,
    }
    return OAuth2Config.model_validate(values)


def _manager(
    server: OAuthServer, store: MemoryTokenStore, config: OAuth2Config | None = None
) -> TokenManager:
    return TokenManager(
        config or _config(),
        "t1",
        store,
        lambda: httpx.Client(transport=server.transport()),
        async_client_factory=lambda: httpx.AsyncClient(transport=server.transport()),
        lock_timeout=5,
    )


def _from_response(data: dict[str, object], *, expired: bool = False) -> Token:
    lifetime = -60 if expired else int(str(data["expires_in"]))
    return Token(
        access_token=SecretStr(str(data["access_token"])),
        refresh_token=SecretStr(str(data["refresh_token"])) if "refresh_token" in data else None,
        expires_at=datetime.now(UTC) + timedelta(seconds=lifetime),
    )


def _authorized(server: OAuthServer, token: Token) -> bool:
    request = httpx.Request(
        "GET",
        f"{BASE}/x",
        headers={"Authorization": f"Bearer {token.access_token.get_secret_value()}"},
    )
    return server.validate_bearer(request) is not None


# -- authorization code + PKCE ---------------------------------------------------------
def test_authorization_url_carries_state_and_an_s256_challenge() -> None:
    request = authorization_url(_config())
    query = parse_qs(urlsplit(request.url).query)
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["app"]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["scope"] == ["accounting offline_access"]
    assert query["state"] == [request.state]
    assert query["code_challenge_method"] == ["S256"]
    assert request.code_verifier is not None
    assert request.code_verifier.get_secret_value() not in request.url
    assert len(request.state) >= 32


def test_pkce_code_flow_end_to_end_against_the_served_server() -> None:
    server = _server(require_pkce=True)
    with serve(server) as served:
        server.bind(served.base_url)
        config = _config(served.base_url)
        request = authorization_url(config)
        with httpx.Client(timeout=5) as client:
            consent = client.get(request.url)
            assert consent.status_code == 302
            code = code_from_callback(request, consent.headers["location"])
            token = exchange_code(config, code, request, client)
            me = client.get(
                f"{served.base_url}/oauth2/userinfo",
                headers={"Authorization": f"Bearer {token.access_token.get_secret_value()}"},
            )
    assert me.status_code == 200
    assert me.json()["client_id"] == "app"
    assert token.refresh_token is not None
    assert token.scope == "accounting offline_access"
    assert token.expires_at is not None
    assert token.expires_at > datetime.now(UTC)
    sent = [r for r in server.requests if r.url.path == "/oauth2/token"]
    assert len(sent) == 1
    form = parse_qs(sent[0].content.decode())
    assert request.code_verifier is not None
    assert form["code_verifier"] == [request.code_verifier.get_secret_value()]
    assert form["grant_type"] == ["authorization_code"]


def test_code_exchange_with_the_wrong_verifier_is_refused() -> None:
    server = _server()
    config = _config()
    request = authorization_url(config)
    with httpx.Client(transport=server.transport()) as client:
        code = code_from_callback(request, client.get(request.url).headers["location"])
        forged = AuthorizationRequest(request.url, request.state, SecretStr("x" * 64))
        with pytest.raises(ReauthorizationRequired) as info:
            exchange_code(config, code, forged, client)
    assert info.value.vendor_code == "invalid_grant"
    assert info.value.status_code == 400


def test_callback_with_another_state_is_rejected_before_any_request() -> None:
    server = _server()
    config = _config()
    request = authorization_url(config)
    with httpx.Client(transport=server.transport()) as client:
        location = client.get(request.url).headers["location"]
        other = authorization_url(config)
        with pytest.raises(InvalidInput) as info:
            code_from_callback(other, location)
        assert [e.path for e in info.value.errors] == ["state"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        with pytest.raises(InvalidInput):
            exchange_code(config, code, request, client, state="forged-state")
    assert server.authorization_code_count == 0


def test_callback_carrying_an_error_is_an_auth_error() -> None:
    request = authorization_url(_config())
    with pytest.raises(AuthError, match="access_denied"):
        code_from_callback(request, f"{REDIRECT}?error=access_denied&state={request.state}")


def test_async_code_exchange_gives_a_working_token() -> None:
    server = _server()
    config = _config(token_endpoint_auth="client_secret_post")
    request = authorization_url(config)

    async def flow() -> Token:
        async with httpx.AsyncClient(transport=server.transport()) as client:
            location = (await client.get(request.url)).headers["location"]
            code = code_from_callback(request, location)
            return await aexchange_code(config, code, request, client)

    token = asyncio.run(flow())
    assert _authorized(server, token)
    form = parse_qs(server.requests[-1].content.decode())
    assert form["client_secret"] == [SECRET]  # client_secret_post puts it in the body
    assert "authorization" not in server.requests[-1].headers


# -- client credentials -----------------------------------------------------------------
def test_client_credentials_gives_a_token_without_refresh_token() -> None:
    server = _server()
    with httpx.Client(transport=server.transport()) as client:
        token = client_credentials(_config(scopes=()), client)
    assert token.refresh_token is None
    assert _authorized(server, token)
    assert server.client_credentials_count == 1
    assert server.requests[-1].headers["authorization"].startswith("Basic ")


def test_async_client_credentials_with_a_wrong_secret_is_an_auth_error() -> None:
    server = _server()

    async def flow() -> Token:
        async with httpx.AsyncClient(transport=server.transport()) as client:
            return await aclient_credentials(_config(client_secret="wrong-one"), client)

    with pytest.raises(AuthError) as info:
        asyncio.run(flow())
    assert info.value.vendor_code == "invalid_client"
    assert not isinstance(info.value, ReauthorizationRequired)


def test_manager_in_client_credentials_mode_refetches_instead_of_refreshing() -> None:
    server = _server(access_token_lifetime=3600)
    store = MemoryTokenStore()
    manager = _manager(server, store, _config(grant_type="client_credentials", scopes=()))
    first = manager.token()
    assert manager.token() == first
    server.expire_all()
    store.save("sandbox", "t1", first.model_copy(update={"expires_at": datetime.now(UTC)}))
    manager = _manager(server, store, _config(grant_type="client_credentials", scopes=()))
    second = manager.token()
    assert second.access_token != first.access_token
    assert _authorized(server, second)
    assert server.client_credentials_count == 2
    assert server.refresh_count == 0


# -- refresh ----------------------------------------------------------------------------
def test_fresh_token_is_returned_without_calling_the_server() -> None:
    server = _server()
    store = MemoryTokenStore()
    token = _from_response(server.issue_token("app"))
    store.save("sandbox", "t1", token)
    assert _manager(server, store).token() == token
    assert server.token_requests.total() == 0


def test_expiring_token_is_refreshed_and_the_rotated_one_saved() -> None:
    server = _server()
    store = MemoryTokenStore()
    old = _from_response(server.issue_token("app"), expired=True)
    store.save("sandbox", "t1", old)
    new = _manager(server, store).token()
    assert new.access_token != old.access_token
    assert new.refresh_token is not None
    assert new.refresh_token != old.refresh_token
    assert store.get("sandbox", "t1") == new
    assert _authorized(server, new)
    assert server.refresh_count == 1


def test_rotated_out_refresh_token_is_rejected_afterwards() -> None:
    server = _server()
    store = MemoryTokenStore()
    old = _from_response(server.issue_token("app"), expired=True)
    store.save("sandbox", "t1", old)
    _manager(server, store).token()
    assert old.refresh_token is not None
    with httpx.Client(transport=server.transport()) as client:
        reuse = client.post(
            f"{BASE}/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": old.refresh_token.get_secret_value(),
            },
            auth=("app", SECRET),
        )
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"


def test_non_rotating_vendor_keeps_the_refresh_token_we_had() -> None:
    server = _server(rotate_refresh_tokens=False)
    store = MemoryTokenStore()
    old = _from_response(server.issue_token("app"), expired=True)
    store.save("sandbox", "t1", old)
    new = _manager(server, store).token()
    assert new.refresh_token == old.refresh_token
    assert new.access_token != old.access_token


def test_vendor_extras_and_refresh_token_expiry_are_kept() -> None:
    server = _server(
        extra_token_fields={
            "x_refresh_token_expires_in": 8726400,
            "realmId": 9130,
            "id_token": "jwt",
        }
    )
    store = MemoryTokenStore()
    old = _from_response(server.issue_token("app"), expired=True)
    store.save("sandbox", "t1", old.model_copy(update={"extra": {"tenant_id": "abc"}}))
    new = _manager(server, store).token()
    assert new.extra == {"tenant_id": "abc", "realmId": "9130"}
    assert new.refresh_token_expires_at is not None
    assert new.refresh_token_expires_at - datetime.now(UTC) > timedelta(days=99)


def test_invalid_grant_raises_reauthorization_and_then_fails_fast() -> None:
    server = _server()
    store = MemoryTokenStore()
    store.save("sandbox", "t1", _from_response(server.issue_token("app"), expired=True))
    server.revoke_grants()
    manager = _manager(server, store)
    with pytest.raises(ReauthorizationRequired) as info:
        manager.token()
    assert info.value.vendor_code == "invalid_grant"
    with pytest.raises(ReauthorizationRequired):
        manager.token()
    assert server.refresh_count == 1  # the second call did not hammer the server
    # A person reconnects: a new grant is saved, and the manager works again.
    manager.save(_from_response(server.issue_token("app")))
    assert _authorized(server, manager.token())


def test_missing_token_needs_a_person_to_connect() -> None:
    with pytest.raises(ReauthorizationRequired, match="connect"):
        _manager(_server(), MemoryTokenStore()).token()


def test_expired_refresh_token_is_not_even_sent() -> None:
    server = _server()
    store = MemoryTokenStore()
    old = _from_response(server.issue_token("app"), expired=True)
    store.save(
        "sandbox",
        "t1",
        old.model_copy(update={"refresh_token_expires_at": datetime.now(UTC) - timedelta(1)}),
    )
    with pytest.raises(ReauthorizationRequired, match="expired"):
        _manager(server, store).token()
    assert server.token_requests.total() == 0


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.SERVER_ERROR, TransientError),
        (Fault.RATE_LIMIT, RateLimited),
        (Fault.TIMEOUT, ProviderTimeout),
        (Fault.RESET, TransientError),
        (Fault.MALFORMED, TransientError),
    ],
)
def test_token_endpoint_failures_map_to_the_error_tree(
    fault: Fault, error: type[Exception]
) -> None:
    server = _server(faults=FaultPlan(script=deque([fault]), retry_after=7))
    store = MemoryTokenStore()
    old = _from_response(server.issue_token("app"), expired=True)
    store.save("sandbox", "t1", old)
    manager = _manager(server, store)
    with pytest.raises(error) as info:
        manager.token()
    assert getattr(info.value, "retryable", False)
    if isinstance(info.value, RateLimited):
        wait = info.value.seconds_to_wait()
        assert wait is not None
        assert 5 < wait <= 7
    assert store.get("sandbox", "t1") == old  # nothing half-written
    assert _authorized(server, manager.token())  # and the next try works


def test_concurrent_async_tasks_share_one_refresh() -> None:
    server = _server()
    store = MemoryTokenStore()
    store.save("sandbox", "t1", _from_response(server.issue_token("app"), expired=True))
    manager = _manager(server, store)

    async def many() -> list[Token]:
        return await asyncio.gather(*(manager.atoken() for _ in range(10)))

    tokens = asyncio.run(many())
    assert len({t.access_token.get_secret_value() for t in tokens}) == 1
    assert server.refresh_count == 1


# -- OAuth2Auth ---------------------------------------------------------------------------
def _userinfo_status(client: httpx.Client) -> int:
    return client.get(f"{BASE}/oauth2/userinfo").status_code


def test_auth_sets_the_bearer_header_and_renews_once_on_401() -> None:
    server = _server()
    store = MemoryTokenStore()
    store.save("sandbox", "t1", _from_response(server.issue_token("app")))
    manager = _manager(server, store)
    with httpx.Client(transport=server.transport(), auth=OAuth2Auth(manager)) as client:
        assert _userinfo_status(client) == 200
        assert server.refresh_count == 0
        server.expire_all()  # the vendor drops our token before its announced expiry
        assert _userinfo_status(client) == 200
    assert server.refresh_count == 1
    sent = server.requests[-1].headers["authorization"]
    assert sent == f"Bearer {manager.token().access_token.get_secret_value()}"


def test_auth_gives_a_refusing_vendor_exactly_one_retry() -> None:
    server = _server()
    store = MemoryTokenStore()
    store.save("sandbox", "t1", _from_response(server.issue_token("app")))
    calls: list[str] = []

    def refusing(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["authorization"])
        return httpx.Response(401)

    with httpx.Client(
        transport=httpx.MockTransport(refusing), auth=OAuth2Auth(_manager(server, store))
    ) as client:
        assert client.get(f"{BASE}/api").status_code == 401
    assert len(calls) == 2
    assert calls[0] != calls[1]  # the retry carried the renewed token
    assert server.refresh_count == 1


def test_async_auth_renews_once_on_401() -> None:
    server = _server()
    store = MemoryTokenStore()
    store.save("sandbox", "t1", _from_response(server.issue_token("app")))
    manager = _manager(server, store)

    async def call() -> list[int]:
        async with httpx.AsyncClient(
            transport=server.transport(), auth=OAuth2Auth(manager)
        ) as client:
            first = (await client.get(f"{BASE}/oauth2/userinfo")).status_code
            server.expire_all()
            second = (await client.get(f"{BASE}/oauth2/userinfo")).status_code
            return [first, second]

    assert asyncio.run(call()) == [200, 200]
    assert server.refresh_count == 1


def test_auth_retries_post_bodies_intact() -> None:
    server = _server()
    store = MemoryTokenStore()
    store.save("sandbox", "t1", _from_response(server.issue_token("app")))
    seen: list[bytes] = []

    def resource(request: httpx.Request) -> httpx.Response:
        seen.append(request.read())
        return httpx.Response(200 if server.validate_bearer(request) else 401)

    server.expire_all()
    with httpx.Client(
        transport=httpx.MockTransport(resource), auth=OAuth2Auth(_manager(server, store))
    ) as client:
        assert (
            client.post(f"{BASE}/api", content=iter([b"chunk-1,", b"chunk-2"])).status_code == 200
        )
    assert seen == [b"chunk-1,chunk-2", b"chunk-1,chunk-2"]


def test_manager_gives_up_with_a_typed_error_when_the_lock_is_held_too_long() -> None:
    server = _server()
    store = MemoryTokenStore()
    store.save("sandbox", "t1", _from_response(server.issue_token("app"), expired=True))
    manager = TokenManager(
        _config(), "t1", store, lambda: httpx.Client(transport=server.transport()), lock_timeout=0.1
    )
    with store.lock("sandbox", "t1", timeout=1):  # another worker is refreshing, or stuck
        with pytest.raises(TokenLockTimeout) as info:
            manager.token()
        with pytest.raises(TokenLockTimeout):
            asyncio.run(manager.atoken())
    assert info.value.retryable
    assert server.token_requests.total() == 0
    assert _authorized(server, manager.token())  # free again: it refreshes


def test_refresh_starts_when_the_clock_enters_the_margin_and_not_before() -> None:
    server = _server()
    store = MemoryTokenStore()
    now = [datetime(2026, 5, 1, 9, 0, tzinfo=UTC)]
    issued = server.issue_token("app")
    store.save(
        "sandbox",
        "t1",
        Token(
            access_token=SecretStr(issued["access_token"]),
            refresh_token=SecretStr(issued["refresh_token"]),
            expires_at=now[0] + timedelta(seconds=3600),
        ),
    )
    manager = TokenManager(
        _config(refresh_margin_seconds=300),
        "t1",
        store,
        lambda: httpx.Client(transport=server.transport()),
        clock=lambda: now[0],
    )
    now[0] += timedelta(seconds=3299)
    first = manager.token()
    assert server.refresh_count == 0
    now[0] += timedelta(seconds=1)  # exactly 300 s left: inside the margin
    second = manager.token()
    assert server.refresh_count == 1
    assert second.access_token != first.access_token
    # The new expiry counts from the (fake) time the request was sent.
    assert second.expires_at == now[0] + timedelta(seconds=3600)


def test_json_encoded_token_requests_carry_the_credentials_in_the_body() -> None:
    seen: list[httpx.Request] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "tok", "expires_in": "3600"})

    config = OAuth2Config(
        provider="boxnow",
        client_id="app",
        client_secret=SECRET,
        token_url=f"{BASE}/api/v1/auth-sessions",
        grant_type="client_credentials",
        token_request_encoding="json",
    )
    with httpx.Client(transport=httpx.MockTransport(vendor)) as client:
        token = client_credentials(config, client)
    assert token.access_token.get_secret_value() == "tok"
    assert token.expires_at is not None
    assert seen[0].headers["content-type"] == "application/json"
    assert "authorization" not in seen[0].headers
    assert json.loads(seen[0].content) == {
        "grant_type": "client_credentials",
        "client_id": "app",
        "client_secret": SECRET,
    }


def test_short_lived_tokens_are_renewed_at_half_life_not_on_every_call() -> None:
    server = _server(access_token_lifetime=60)
    store = MemoryTokenStore()
    now = [datetime(2026, 5, 1, 9, 0, tzinfo=UTC)]
    issued = _from_response(server.issue_token("app"))
    store.save("sandbox", "t1", issued.model_copy(update={"expires_at": now[0]}))
    manager = TokenManager(
        _config(refresh_margin_seconds=300),  # longer than the whole 60 s lifetime
        "t1",
        store,
        lambda: httpx.Client(transport=server.transport()),
        clock=lambda: now[0],
    )
    first = manager.token()
    assert first.lifetime() == 60
    now[0] += timedelta(seconds=29)
    assert manager.token() == first
    assert server.refresh_count == 1
    now[0] += timedelta(seconds=1)
    assert manager.token() != first
    assert server.refresh_count == 2


class _WatchedStore(MemoryTokenStore):
    """Counts reads, so a test knows when every caller is past the fast path."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, provider: str, tenant: str) -> Token | None:
        self.reads += 1
        return super().get(provider, tenant)


def test_callers_waiting_on_a_failed_refresh_share_its_error_instead_of_retrying() -> None:
    store = _WatchedStore()
    store.save("sandbox", "t1", _from_response(_server().issue_token("app"), expired=True))
    calls: list[int] = []
    release = threading.Event()

    def failing_vendor(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        release.wait(10)  # hold the flight until every caller is queued behind it
        return httpx.Response(503, json={"error": "temporarily_unavailable"})

    manager = TokenManager(
        _config(), "t1", store, lambda: httpx.Client(transport=httpx.MockTransport(failing_vendor))
    )
    outcomes: list[BaseException | Token] = []

    def call() -> None:
        try:
            outcomes.append(manager.token())
        except TransientError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while (not calls or store.reads < 9) and time.monotonic() < deadline:
        time.sleep(0.01)  # 8 fast-path reads + the leader's re-read under the lock
    time.sleep(0.1)  # let the 7 others reach the flight lock
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(outcomes) == 8
    assert all(isinstance(o, TransientError) for o in outcomes)
    assert len(calls) == 1
    # Later callers, who did not wait on that flight, try again.
    release.set()
    with pytest.raises(TransientError):
        manager.token()
    assert len(calls) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_does_not_inherit_a_held_flight_lock() -> None:
    from dixis_integrations.auth import oauth

    held = oauth._key_lock("sandbox", "forked")
    assert held.acquire(timeout=1)  # another thread of the parent is mid-refresh
    try:
        pid = os.fork()
        if pid == 0:  # the child: it must be able to take the flight lock
            os._exit(0 if oauth._key_lock("sandbox", "forked").acquire(timeout=2) else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        held.release()
    assert os.waitstatus_to_exitcode(status) == 0


def test_token_requests_share_one_tls_context_per_process() -> None:
    """A fresh client per token request, but not a fresh CA bundle load each time."""
    from dixis_integrations.auth import oauth

    sync_client, async_client = oauth._default_client(), oauth._default_async_client()
    try:
        contexts = {
            id(sync_client._transport._pool._ssl_context),  # type: ignore[attr-defined]
            id(async_client._transport._pool._ssl_context),  # type: ignore[attr-defined]
            id(oauth._default_client()._transport._pool._ssl_context),  # type: ignore[attr-defined]
        }
        assert contexts == {id(oauth._tls())}
        assert oauth._tls().verify_mode.name == "CERT_REQUIRED"
    finally:
        sync_client.close()
