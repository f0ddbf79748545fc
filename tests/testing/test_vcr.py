"""The cassette recorder: strict replay by default, secrets filtered before anything is
written, httpx sync and async, and a cassette with unplayed interactions failing the test."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from vcr.errors import CannotOverwriteExistingCassetteException

from dixis_integrations.http import register_secret
from dixis_integrations.sandbox.kit import Emulator, json_response, read_json, route
from dixis_integrations.testing.vcr import (
    RECORD_ENV,
    Recorder,
    UnplayedInteractions,
    scrub_body,
    scrub_url,
)

HERE = Path(__file__).parent
REGISTERED = "sk-registered-xyz987-secret"
SECRETS = (
    "Bearer at-live-1234567890",
    "ak-0987654321",
    "query-key-123456",
    "cs-client-secret-abcdef",
    "pw-hunter2-hunter2",
    "nested-token-777777",
    REGISTERED,
    "fresh-access-token-42",
    "fresh-refresh-token-43",
)


class Farm(Emulator):
    """Answers with tokens, as an OAuth server would: they must not reach the cassette."""

    @route("GET", r"/crops/(?P<crop>[a-z]+)")
    def crop(self, request: httpx.Request, crop: str) -> httpx.Response:
        return json_response(200, {"crop": crop, "price": "2.40"})

    @route("POST", r"/token")
    def token(self, request: httpx.Request) -> httpx.Response:
        body = read_json(request) or {}
        return json_response(
            200,
            {
                "access_token": "fresh-access-token-42",
                "refresh_token": "fresh-refresh-token-43",
                "note": body.get("note"),
            },
        )

    @route("POST", r"/form")
    def form(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"ok": True})


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"replay must not reach the network: {request.url}")


def _record_all(client: httpx.Client) -> list[dict[str, Any]]:
    register_secret(REGISTERED)
    headers = {"Authorization": "Bearer at-live-1234567890", "X-Api-Key": "ak-0987654321"}
    out = []
    out.append(
        client.get(
            "https://farm.test/crops/figs", params={"api_key": "query-key-123456"}, headers=headers
        ).json()
    )
    body = {
        "client_secret": "cs-client-secret-abcdef",
        "user": {"password": "pw-hunter2-hunter2", "tokens": [{"token": "nested-token-777777"}]},
        "note": f"free text carrying {REGISTERED}",
    }
    out.append(client.post("https://farm.test/token", json=body, headers=headers).json())
    form = {"client_secret": "cs-client-secret-abcdef", "grant_type": "client_credentials"}
    out.append(client.post("https://farm.test/form", data=form).json())
    return out


def test_recording_filters_secrets_and_replay_gives_the_same_answers(tmp_path: Path) -> None:
    farm = Farm()
    with Recorder(tmp_path, record_mode="new_episodes").use("farm") as cassette:
        with httpx.Client(transport=farm.transport()) as client:
            live = _record_all(client)
        assert len(cassette.data) == 3
    text = (tmp_path / "farm.yaml").read_text()
    for secret in SECRETS:
        assert secret not in text, secret
    assert "***" in text
    assert "grant_type=client_credentials" in text  # non-secret fields stay readable
    assert "figs" in text

    with Recorder(tmp_path).use("farm") as cassette:
        with httpx.Client(transport=httpx.MockTransport(_unreachable)) as client:
            replayed = _record_all(client)
        assert cassette.play_count == 3
    assert replayed[0] == live[0]
    assert replayed[1]["access_token"] == "***"  # the recorded token was masked
    assert replayed[2] == live[2]


def test_async_clients_are_recorded_and_replayed(tmp_path: Path) -> None:
    farm = Farm()

    async def fetch(transport: httpx.AsyncBaseTransport) -> Any:
        async with httpx.AsyncClient(transport=transport) as client:
            return (await client.get("https://farm.test/crops/figs")).json()

    with Recorder(tmp_path, record_mode="new_episodes").use("async"):
        live = asyncio.run(fetch(farm.transport()))
    with Recorder(tmp_path).use("async"):
        replayed = asyncio.run(fetch(httpx.MockTransport(_unreachable)))
    assert replayed == live == {"crop": "figs", "price": "2.40"}


def test_an_unplayed_interaction_fails_the_test(tmp_path: Path) -> None:
    farm = Farm()
    with (
        Recorder(tmp_path, record_mode="new_episodes").use("two"),
        httpx.Client(transport=farm.transport()) as client,
    ):
        client.get("https://farm.test/crops/figs")
        client.get("https://farm.test/crops/olives")
    with (
        pytest.raises(UnplayedInteractions, match="1 recorded interaction"),
        Recorder(tmp_path).use("two"),
        httpx.Client(transport=farm.transport()) as client,
    ):
        client.get("https://farm.test/crops/figs")


def test_replay_never_reaches_the_network_for_a_new_request(tmp_path: Path) -> None:
    source = HERE / "cassettes" / "test_vcr"
    shutil.copytree(source, tmp_path, dirs_exist_ok=True)
    name = "test_the_cassette_fixture_replays_a_hand_written_cassette"
    with (
        pytest.raises(CannotOverwriteExistingCassetteException),
        Recorder(tmp_path).use(name),
        httpx.Client(transport=Farm().transport()) as client,
    ):
        client.get("https://farm.test/crops/figs")


def test_the_cassette_fixture_replays_a_hand_written_cassette(cassette: Any) -> None:
    with httpx.Client(transport=httpx.MockTransport(_unreachable)) as client:
        response = client.get(
            "https://farm.test/crops/olives", headers={"Authorization": "Bearer real-one-123"}
        )
    assert response.json()["name"] == "Ελιές Καλαμών"
    assert cassette.play_count == 1


@pytest.mark.parametrize(
    ("value", "mode"),
    [("", "none"), ("1", "new_episodes"), ("once", "all"), ("no", "none")],
)
def test_the_record_switch(monkeypatch: pytest.MonkeyPatch, value: str, mode: str) -> None:
    monkeypatch.setenv(RECORD_ENV, value)
    recorder = Recorder("unused")
    assert recorder.record_mode == mode
    assert recorder.recording is (mode != "none")


def test_scrubbing_helpers_leave_ordinary_data_alone() -> None:
    assert (
        scrub_url("https://x.test/a?page=2&token=abc") == "https://x.test/a?page=2&token=%2A%2A%2A"
    )
    assert scrub_body(b"%PDF-1.4 binary", "application/pdf") == b"%PDF-1.4 binary"
    assert scrub_body('{"sku": "A-1"}', "application/json") == '{"sku": "A-1"}'
    assert scrub_body(None) is None
