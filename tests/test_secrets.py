"""Secrets never show: not in DEBUG logs (ours or httpx's), reprs, call records or
exception messages, across the driver, endpoints, OAuth2 and webhooks."""

from __future__ import annotations

import logging
from collections import deque
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from dixis_integrations.auth import MemoryTokenStore, OAuth2Auth, OAuth2Config, Token, TokenManager
from dixis_integrations.errors import AuthError, DixisError, ReauthorizationRequired
from dixis_integrations.http import CallRecord, Driver, Endpoint, RetryPolicy, register_secret
from dixis_integrations.sandbox.kit import Emulator, Fault, FaultPlan, json_response, route
from dixis_integrations.sandbox.oauth import OAuthServer, SandboxClient
from dixis_integrations.webhooks import WebhookVerifier

API_KEY = "ak-live-5f2b9c1d7e3a"
QUERY_KEY = "qk-live-8a7b6c5d4e3f"
CLIENT_SECRET = "cs-live-0a1b2c3d4e5f6a7b"
ACCESS = "at-live-aaaabbbbccccdddd"
REFRESH = "rt-live-eeeeffff00001111"
WEBHOOK = "whsec-live-2222333344445555"
SECRETS = (API_KEY, QUERY_KEY, CLIENT_SECRET, ACCESS, REFRESH, WEBHOOK)


class Vendor(Emulator):
    @route("GET", r"/items")
    def items(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, [], {"x-request-id": "rq-1"})

    @route("POST", r"/items")
    def create(self, request: httpx.Request) -> httpx.Response:
        return json_response(401, {"error": "invalid token"})


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked: {secret[:6]}..."


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger, httpx's and httpcore's included
    return caplog


def test_the_driver_logs_records_and_errors_hold_no_secret(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    for secret in (API_KEY, QUERY_KEY):
        register_secret(secret)  # what every adapter does with what it holds
    endpoint = Endpoint(
        vendor="vendor",
        base_url="https://vendor.test",
        headers={"X-Api-Key": API_KEY},
        auth=httpx.BasicAuth("user", CLIENT_SECRET),
    )
    records: list[CallRecord] = []
    vendor = Vendor(faults=FaultPlan(script=deque([Fault.SERVER_ERROR, Fault.RESET])))
    errors: list[DixisError] = []
    with Driver(
        httpx.Client(transport=vendor.transport()),
        on_call=records.append,
        retry=RetryPolicy(jitter=False),
        sleep=lambda s: None,
    ) as driver:
        get = endpoint.request("GET", "/items", operation="v.items", params={"apikey": QUERY_KEY})
        driver.send(get)
        with pytest.raises(AuthError) as info:
            driver.send(endpoint.request("POST", "/items", operation="v.create", json={}))
        errors.append(info.value)
    assert debug_logs.records, "the DEBUG logs were captured"
    _assert_clean(debug_logs.text)
    _assert_clean(repr(records) + str(records))
    for error in errors:
        _assert_clean(str(error) + repr(error))
    _assert_clean(repr(endpoint) + str(endpoint))


def test_oauth_objects_show_no_secret_in_reprs_or_dumps() -> None:
    config = OAuth2Config(
        provider="vendor",
        client_id="app",
        client_secret=SecretStr(CLIENT_SECRET),
        token_url="https://vendor.test/token",
    )
    token = Token(
        access_token=SecretStr(ACCESS),
        refresh_token=SecretStr(REFRESH),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    manager = TokenManager(config, "t1", MemoryTokenStore())
    texts = [
        repr(config),
        str(config),
        config.model_dump_json(),
        repr(token),
        str(token),
        token.model_dump_json(),
        repr(manager),
        repr(OAuth2Auth(manager)),
    ]
    _assert_clean("\n".join(texts))


def test_failed_token_requests_leak_nothing(debug_logs: pytest.LogCaptureFixture) -> None:
    client = SandboxClient(client_id="app", client_secret=CLIENT_SECRET)
    server = OAuthServer(clients=[client], base_url="https://vendor.test")
    wrong = OAuth2Config(
        provider="vendor",
        client_id="app",
        client_secret=SecretStr(CLIENT_SECRET + "-wrong"),
        token_url="https://vendor.test/oauth2/token",
    )
    store = MemoryTokenStore()
    expired = Token(
        access_token=SecretStr(ACCESS),
        refresh_token=SecretStr(REFRESH),  # unknown to the server: invalid_grant
        expires_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    store.save("vendor", "t1", expired)
    manager = TokenManager(wrong, "t1", store, lambda: httpx.Client(transport=server.transport()))
    with pytest.raises((AuthError, ReauthorizationRequired)) as info:
        manager.token()
    _assert_clean(str(info.value) + repr(info.value))
    right = wrong.model_copy(update={"client_secret": SecretStr(CLIENT_SECRET)})
    manager = TokenManager(right, "t1", store, lambda: httpx.Client(transport=server.transport()))
    with pytest.raises(ReauthorizationRequired) as reauth:
        manager.token()
    _assert_clean(str(reauth.value) + repr(reauth.value))
    _assert_clean(debug_logs.text)


def test_a_webhook_verifier_keeps_its_secret() -> None:
    verifier = WebhookVerifier(secret=SecretStr(WEBHOOK), signature_header="X-Sig")
    _assert_clean(repr(verifier) + str(verifier))
    with pytest.raises(DixisError) as info:
        verifier.verify({"X-Sig": "bm9wZQ=="}, b"{}")
    _assert_clean(str(info.value) + repr(info.value))
