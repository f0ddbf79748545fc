"""The sandbox OAuth2 authorization server, seen from the wire."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from dixis_integrations.sandbox import Emulator, Fault, FaultPlan, json_response, route
from dixis_integrations.sandbox.catalog import load
from dixis_integrations.sandbox.oauth import OAuthServer, SandboxClient
from dixis_integrations.sandbox.serve import serve

BASE = "https://vendor.test"
SECRET = "sandbox-test-secret-51aa"
REDIRECT = "https://app.example/callback"
VERIFIER = "v" * 43 + "-verifier-0123456789"
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _server(**kwargs: Any) -> OAuthServer:
    clients = [
        SandboxClient(client_id="app", client_secret=SECRET, redirect_uris=(REDIRECT,)),
        SandboxClient(client_id="spa", redirect_uris=(REDIRECT,)),
    ]
    return OAuthServer(clients=clients, base_url=BASE, **kwargs)


def _client(server: Emulator) -> httpx.Client:
    return httpx.Client(transport=server.transport(), base_url=BASE)


def _authorize(client: httpx.Client, **params: str) -> httpx.Response:
    query = {"response_type": "code", "client_id": "app", "redirect_uri": REDIRECT, **params}
    return client.get("/oauth2/authorize?" + urlencode(query))


def _code(client: httpx.Client, **params: str) -> str:
    response = _authorize(
        client, code_challenge=CHALLENGE.decode(), code_challenge_method="S256", **params
    )
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


def _token(
    client: httpx.Client, *, auth: tuple[str, str] | None = ("app", SECRET), **form: str
) -> httpx.Response:
    return client.post("/oauth2/token", data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)


def _bearer(token: str) -> httpx.Request:
    return httpx.Request("GET", f"{BASE}/api", headers={"Authorization": f"Bearer {token}"})


# -- authorize endpoint --------------------------------------------------------------
def test_authorize_auto_approves_and_redirects_with_code_and_state() -> None:
    with _client(_server()) as client:
        response = _authorize(client, state="st-123", scope="read write")
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["st-123"]
    assert len(query["code"][0]) >= 32


def test_authorize_refuses_unknown_clients_without_redirecting() -> None:
    with _client(_server()) as client:
        response = _authorize(client, client_id="nobody")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert "location" not in response.headers


def test_authorize_never_redirects_to_an_unregistered_uri() -> None:
    with _client(_server()) as client:
        response = _authorize(client, redirect_uri="https://evil.example/steal")
    assert response.status_code == 400
    assert "location" not in response.headers


def test_pkce_can_be_required() -> None:
    with _client(_server(require_pkce=True)) as client:
        response = _authorize(client, state="s1")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["s1"]
    assert "code" not in query


# -- token endpoint: authorization code ------------------------------------------------
def test_code_exchange_checks_the_pkce_verifier() -> None:
    server = _server()
    with _client(server) as client:
        good = _token(
            client,
            grant_type="authorization_code",
            code=_code(client),
            redirect_uri=REDIRECT,
            code_verifier=VERIFIER,
        )
        wrong = _token(
            client,
            grant_type="authorization_code",
            code=_code(client),
            redirect_uri=REDIRECT,
            code_verifier="w" * 64,
        )
        missing = _token(
            client, grant_type="authorization_code", code=_code(client), redirect_uri=REDIRECT
        )
    assert good.status_code == 200
    body = good.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"]
    assert server.validate_bearer(_bearer(body["access_token"])) is not None
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    assert server.authorization_code_count == 3


def test_a_code_is_single_use() -> None:
    with _client(_server()) as client:
        code = _code(client)

        def exchange() -> httpx.Response:
            return _token(
                client,
                grant_type="authorization_code",
                code=code,
                redirect_uri=REDIRECT,
                code_verifier=VERIFIER,
            )

        assert exchange().status_code == 200
        again = exchange()
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_public_client_exchanges_a_code_with_pkce_and_no_secret() -> None:
    with _client(_server()) as client:
        code = _code(client, client_id="spa")
        response = _token(
            client,
            auth=None,
            grant_type="authorization_code",
            client_id="spa",
            code=code,
            redirect_uri=REDIRECT,
            code_verifier=VERIFIER,
        )
        no_cc = _token(client, auth=None, grant_type="client_credentials", client_id="spa")
    assert response.status_code == 200
    assert no_cc.status_code in (400, 401)
    assert no_cc.json()["error"] == "invalid_client"


def test_wrong_client_secret_is_invalid_client_with_401() -> None:
    server = _server()
    with _client(server) as client:
        response = _token(client, auth=("app", "not-the-secret"), grant_type="client_credentials")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert server.client_credentials_count == 1  # counted even when refused


# -- refresh and rotation -------------------------------------------------------------
def test_refresh_rotates_and_the_old_refresh_token_is_then_invalid_grant() -> None:
    server = _server()
    first = server.issue_token("app")
    with _client(server) as client:
        renewed = _token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
        reused = _token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
        chained = _token(
            client, grant_type="refresh_token", refresh_token=renewed.json()["refresh_token"]
        )
    assert renewed.status_code == 200
    assert renewed.json()["refresh_token"] != first["refresh_token"]
    assert renewed.json()["access_token"] != first["access_token"]
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert chained.status_code == 200
    assert server.refresh_count == 3


def test_without_rotation_the_refresh_token_stays_valid() -> None:
    server = _server(rotate_refresh_tokens=False)
    first = server.issue_token("app")
    with _client(server) as client:
        one = _token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
        two = _token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert (one.status_code, two.status_code) == (200, 200)
    assert "refresh_token" not in one.json()


def test_refresh_token_of_another_client_is_invalid_grant() -> None:
    server = OAuthServer(
        clients=[SandboxClient("a", "secret-a"), SandboxClient("b", "secret-b")], base_url=BASE
    )
    token = server.issue_token("a")
    with _client(server) as client:
        response = _token(
            client,
            auth=("b", "secret-b"),
            grant_type="refresh_token",
            refresh_token=token["refresh_token"],
        )
    assert response.json()["error"] == "invalid_grant"


def test_lifetimes_pass_at_the_emulator_clock_scale() -> None:
    clock = _Clock()
    server = _server(access_token_lifetime=100, refresh_token_lifetime=1000, time_scale=0.5)
    server.clock.monotonic = clock  # type: ignore[method-assign]
    token = server.issue_token("app")
    clock.now += 49.9  # 99.8 vendor seconds
    assert server.validate_bearer(_bearer(token["access_token"])) is not None
    clock.now += 0.2
    assert server.validate_bearer(_bearer(token["access_token"])) is None
    clock.now += 500  # past the refresh token's 1000 vendor seconds
    with _client(server) as client:
        response = _token(client, grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert response.json()["error"] == "invalid_grant"


def test_revoke_grants_kills_every_refresh_token() -> None:
    server = _server()
    token = server.issue_token("app")
    server.revoke_grants()
    with _client(server) as client:
        response = _token(client, grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert response.json()["error"] == "invalid_grant"


# -- client credentials, extras, bearer checks -------------------------------------------
def test_client_credentials_issue_no_refresh_token_and_carry_extra_fields() -> None:
    seen: list[tuple[str, str]] = []

    def extras(client_id: str, grant_type: str) -> dict[str, object]:
        seen.append((client_id, grant_type))
        return {"instance_url": "https://eu1.example"}

    server = _server(extra_token_fields=extras)
    with _client(server) as client:
        body = _token(client, grant_type="client_credentials").json()
    assert "refresh_token" not in body
    assert body["instance_url"] == "https://eu1.example"
    assert seen == [("app", "client_credentials")]


def test_validate_bearer_rejects_unknown_malformed_and_expired_tokens() -> None:
    server = _server()
    token = server.issue_token("app", "read")
    info = server.validate_bearer(_bearer(token["access_token"]))
    assert info is not None
    assert (info.client_id, info.scope, info.subject) == ("app", "read", "sandbox-user")
    assert server.validate_bearer(_bearer("made-up")) is None
    assert server.validate_bearer(httpx.Request("GET", BASE)) is None
    basic = httpx.Request("GET", BASE, headers={"Authorization": "Basic " + token["access_token"]})
    assert server.validate_bearer(basic) is None
    server.expire_all()
    assert server.validate_bearer(_bearer(token["access_token"])) is None


def test_userinfo_answers_401_with_a_bearer_challenge_for_a_bad_token() -> None:
    server = _server()
    with _client(server) as client:
        response = client.get("/oauth2/userinfo", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_injected_faults_reach_the_token_endpoint() -> None:
    server = _server(faults=FaultPlan(script=deque([Fault.SERVER_ERROR])))
    with _client(server) as client:
        assert _token(client, grant_type="client_credentials").status_code == 503
        assert _token(client, grant_type="client_credentials").status_code == 200


# -- composition, catalogue, serving ------------------------------------------------------
class _Vendor(Emulator):
    name = "vendor"

    def __init__(self) -> None:
        super().__init__()
        self.oauth = OAuthServer(
            clients=[SandboxClient("app", SECRET)],
            token_path="/identity/connect/token",
            authorize_path="/identity/connect/authorize",
        )
        self.mount("/identity/", self.oauth)

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if self.oauth.validate_bearer(request) is None:
            return json_response(401, {"Title": "Unauthorized"})
        return None

    @route("GET", r"/api/things")
    def things(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"things": []})


def test_a_vendor_emulator_mounts_the_server_under_its_own_paths() -> None:
    vendor = _Vendor()
    with _client(vendor) as client:
        assert client.get("/api/things").status_code == 401
        token = client.post(
            "/identity/connect/token",
            data={"grant_type": "client_credentials"},
            auth=("app", SECRET),
        ).json()
        ok = client.get("/api/things", headers={"Authorization": f"Bearer {token['access_token']}"})
        assert client.post("/oauth2/token", data={}).status_code in (401, 404)
    assert ok.status_code == 200
    assert vendor.oauth.client_credentials_count == 1


def test_catalogue_name_loads_this_class() -> None:
    assert load("oauth") is OAuthServer


def test_served_over_http_with_credentials_pointing_at_it() -> None:
    server = OAuthServer()  # a generated client secret
    with serve(server) as served:
        server.bind(served.base_url)
        creds = server.credentials()
        assert creds["token_url"] == f"{served.base_url}/oauth2/token"
        response = httpx.post(
            creds["token_url"],
            data={"grant_type": "client_credentials"},
            auth=(creds["client_id"], creds["client_secret"]),
            timeout=5,
        )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert len(creds["client_secret"]) >= 24
    assert creds["client_secret"] not in repr(server.clients)


def test_command_line_serves_it_and_prints_working_urls(capsys: pytest.CaptureFixture[str]) -> None:
    from dixis_integrations.cli import main

    assert main(["sandbox", "serve", "oauth", "--once"]) == 0
    details = json.loads(capsys.readouterr().out)
    assert details["token_url"] == details["base_url"] + "/oauth2/token"
    assert details["authorize_url"] == details["base_url"] + "/oauth2/authorize"
    assert details["client_id"]
    assert details["client_secret"]
