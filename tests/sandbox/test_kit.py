"""The emulator kit: routing, hooks, fault injection, rate windows, mounts and webhooks."""

from __future__ import annotations

import base64
import time
from collections import deque

import httpx
import pytest

from dixis_integrations.sandbox.kit import (
    Emulator,
    Fault,
    FaultPlan,
    FixedWindow,
    SandboxClock,
    json_response,
    paths,
    read_json,
    route,
    sign_hmac_sha256,
    xml_response,
)
from dixis_integrations.webhooks import verify_signature


class Farm(Emulator):
    name = "farm"

    def __init__(self, faults: FaultPlan | None = None, time_scale: float = 1.0) -> None:
        super().__init__(faults=faults, time_scale=time_scale)
        self.window = FixedWindow(2, 60.0, self.clock, name="per-minute")

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("authorization") != "Bearer good":
            return json_response(401, {"error": "invalid_token"})
        return None

    def limit(self, request: httpx.Request) -> httpx.Response | None:
        allowed, _, reset = self.window.hit("tenant")
        if not allowed:
            return json_response(429, {"error": "slow"}, {"Retry-After": f"{reset:.0f}"})
        return None

    @route("GET", r"/crops/(?P<crop>[a-z]+)")
    def crop(self, request: httpx.Request, crop: str) -> httpx.Response:
        return json_response(200, {"crop": crop, "price": "2.40"})

    @route("POST", r"/crops")
    def add(self, request: httpx.Request) -> httpx.Response:
        return json_response(201, read_json(request))

    @route("GET", r"/soap")
    def soap(self, request: httpx.Request) -> httpx.Response:
        return xml_response(200, "<Envelope/>")


def _client(emulator: Emulator) -> httpx.Client:
    return httpx.Client(
        transport=emulator.transport(),
        base_url="https://farm.test",
        headers={"Authorization": "Bearer good"},
    )


def test_routes_match_the_whole_path_and_pass_named_groups() -> None:
    farm = Farm()
    farm.window = FixedWindow(100, 60.0, farm.clock)
    with _client(farm) as client:
        assert client.get("/crops/olives").json() == {"crop": "olives", "price": "2.40"}
        assert client.get("/crops/olives/extra").status_code == 404
        assert client.delete("/crops/olives").status_code == 404
    assert paths(farm.requests) == [
        "GET /crops/olives",
        "GET /crops/olives/extra",
        "DELETE /crops/olives",
    ]


def test_json_bodies_keep_greek_text_and_xml_has_its_content_type() -> None:
    farm = Farm()
    farm.window = FixedWindow(100, 60.0, farm.clock)
    with _client(farm) as client:
        assert client.post("/crops", json={"name": "Ελιές"}).json() == {"name": "Ελιές"}
        soap = client.get("/soap")
    assert soap.headers["content-type"].startswith("text/xml")
    assert read_json(httpx.Request("POST", "https://x", content=b"not json")) is None
    assert read_json(httpx.Request("GET", "https://x")) is None


def test_authenticate_runs_before_the_route() -> None:
    with httpx.Client(transport=Farm().transport(), base_url="https://farm.test") as client:
        assert client.get("/crops/figs").status_code == 401


def test_a_fixed_window_throttles_with_the_time_to_reset() -> None:
    farm = Farm()
    with _client(farm) as client:
        codes = [client.get("/crops/figs").status_code for _ in range(3)]
        throttled = client.get("/crops/figs")
    assert codes == [200, 200, 429]
    assert 0 < float(throttled.headers["retry-after"]) <= 60
    assert farm.window.rejected == 2


def test_a_scaled_clock_shortens_the_window_but_reports_vendor_seconds() -> None:
    clock = SandboxClock(scale=0.001)  # a vendor minute lasts 60 ms
    window = FixedWindow(1, 60.0, clock)
    assert window.hit("k")[0] is True
    allowed, remaining, reset = window.hit("k")
    assert (allowed, remaining) == (False, 0)
    assert 0 < reset <= 60.0  # in the vendor's seconds
    time.sleep(0.07)
    assert window.hit("k")[0] is True
    assert window.hit("other")[0] is True  # keys are counted apart
    with pytest.raises(ValueError, match="positive"):
        SandboxClock(scale=0)


def test_retry_after_is_whole_seconds_at_the_vendors_pace_and_real_seconds_when_scaled() -> None:
    real = SandboxClock()
    assert [real.retry_after(s) for s in (0.0, 0.2, 1.0, 1.01, 59.5)] == ["1", "1", "1", "2", "60"]
    scaled = SandboxClock(scale=0.01)  # a vendor minute lasts 0.6 s
    assert scaled.retry_after(59.5) == "0.595"  # what the scaled window still lasts
    assert scaled.retry_after(0.0) == "0.001"  # never zero: the client must still wait
    assert float(SandboxClock(scale=0.25).retry_after(30.0)) == 7.5


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault.RATE_LIMIT, 429),
        (Fault.SERVER_ERROR, 503),
        (Fault.MALFORMED, 200),
        (Fault.EXPIRED_TOKEN, 401),
    ],
)
def test_scripted_faults_answer_in_place_of_the_route(fault: Fault, status: int) -> None:
    farm = Farm(faults=FaultPlan(script=deque([fault]), retry_after=3))
    with _client(farm) as client:
        response = client.get("/crops/figs")
        assert response.status_code == status
        assert client.get("/crops/figs").status_code == 200  # the script is used up
    if fault is Fault.RATE_LIMIT:
        assert response.headers["retry-after"] == "3"
    if fault is Fault.MALFORMED:
        with pytest.raises(ValueError):  # noqa: PT011 - whatever json raises
            response.json()
    assert len(farm.requests) == 2  # faulted arrivals are recorded too


@pytest.mark.parametrize(
    ("fault", "error"), [(Fault.RESET, httpx.ConnectError), (Fault.TIMEOUT, httpx.ReadTimeout)]
)
def test_resets_and_timeouts_raise_transport_errors(
    fault: Fault, error: type[httpx.HTTPError]
) -> None:
    with _client(Farm(faults=FaultPlan(script=deque([fault])))) as client, pytest.raises(error):
        client.get("/crops/figs")


def test_random_faults_are_seeded_and_skip_listed_paths() -> None:
    def run(seed: int) -> list[Fault | None]:
        plan = FaultPlan(rate=0.5, seed=seed, kinds=(Fault.SERVER_ERROR, Fault.RATE_LIMIT))
        return [plan.next_fault("/crops") for _ in range(40)]

    first = run(7)
    assert first == run(7)
    assert set(first) == {None, Fault.SERVER_ERROR, Fault.RATE_LIMIT}
    plan = FaultPlan(rate=1.0, skip_paths=("/oauth",))
    assert plan.next_fault("/oauth/token") is None
    assert plan.next_fault("/crops") is not None
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultPlan(rate=1.5)


def test_a_mounted_emulator_answers_its_prefix() -> None:
    class Auth(Emulator):
        @route("POST", r"/oauth/token")
        def token(self, request: httpx.Request) -> httpx.Response:
            return json_response(200, {"access_token": "good"})

    farm, auth = Farm(), Auth()
    farm.mount("/oauth", auth)
    farm.bind("http://127.0.0.1:9999/")
    with _client(farm) as client:
        assert client.post("/oauth/token").json() == {"access_token": "good"}
    assert auth.base_url == "http://127.0.0.1:9999"
    assert paths(auth.requests) == ["POST /oauth/token"]
    assert farm.requests == []


def test_webhooks_are_delivered_signed_and_remembered() -> None:
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    farm = Farm()
    farm._webhook_client = httpx.Client(transport=httpx.MockTransport(receiver))
    body = b'{"event":"harvest"}'
    signature = sign_hmac_sha256("hook-secret", body)
    delivery = farm.deliver_webhook("https://host.test/hooks", body, {"X-Sig": signature})
    assert delivery.status == 204
    assert delivery.error is None
    assert farm.webhook_deliveries == [delivery]
    verify_signature("hook-secret", received[0].content, received[0].headers["x-sig"])


def test_a_failed_webhook_delivery_is_recorded_with_the_error() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    farm = Farm()
    farm._webhook_client = httpx.Client(transport=httpx.MockTransport(down))
    delivery = farm.deliver_webhook("https://host.test/hooks", b"{}", {})
    assert delivery.status is None
    assert delivery.error == "ConnectError"


def test_signatures_match_the_published_hmac_sha256_vector() -> None:
    message = b"The quick brown fox jumps over the lazy dog"
    expected = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert sign_hmac_sha256("key", message, encoding="hex") == expected
    assert sign_hmac_sha256(b"key", message) == base64.b64encode(bytes.fromhex(expected)).decode()


def test_exact_json_writes_amounts_as_numbers_and_leaves_every_string_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json as std_json
    from decimal import Decimal

    from dixis_integrations.sandbox import kit

    body = {
        "Total": Decimal("12.40"),
        "Tiny": Decimal("1E-7"),
        "Description": "\x1f12\x1f",
        "Note": "aaaa1111",
        "aaaa1111": [Decimal("3"), "x"],
    }
    tags = iter(["aaaa1111", "bbbb2222"])  # the first one is already in the body's text
    monkeypatch.setattr(kit.secrets, "token_hex", lambda n: next(tags))
    text = kit.json_bytes_exact(body)
    assert text == (
        b'{"Total":12.40,"Tiny":0.0000001,"Description":"\\u001f12\\u001f",'
        b'"Note":"aaaa1111","aaaa1111":[3,"x"]}'
    )
    assert std_json.loads(text)["Description"] == "\x1f12\x1f"
