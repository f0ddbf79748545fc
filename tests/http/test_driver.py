"""The transport driver, pinned once for both drivers: retries, Retry-After, idempotency,
errors thrown into operations, call records and deadlines (budgets: test_budgets.py).
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from _driver_harness import Harness

from dixis_integrations.errors import (
    Conflict,
    NotFound,
    NotSupported,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    TransientError,
)
from dixis_integrations.http import (
    CallRecord,
    Endpoint,
    Operation,
    RetryPolicy,
    completed,
    default_classify,
    idempotency_key,
    unsupported,
)
from dixis_integrations.sandbox.kit import Emulator, Fault, FaultPlan, json_response, route

ENDPOINT = Endpoint(vendor="shop", base_url="https://shop.test", tenant="t1")
KEYED = Endpoint(
    vendor="shop", base_url="https://shop.test", tenant="t1", idempotency_header="Idempotency-Key"
)


class Shop(Emulator):
    """A tiny vendor: items to read and create, a duplicate check, a request id."""

    name = "shop"

    def __init__(self, *faults: Fault | None, retry_after: float = 1.0) -> None:
        super().__init__(faults=FaultPlan(script=deque(faults)))
        self.faults.retry_after = retry_after
        self.items: dict[str, dict[str, Any]] = {}
        self.reply_headers: dict[str, str] = {}

    @route("GET", r"/items/(?P<sku>[^/]+)")
    def get_item(self, request: httpx.Request, sku: str) -> httpx.Response:
        item = self.items.get(sku)
        if item is None:
            return json_response(404, {"error": "no such item"}, {"x-request-id": "rq-404"})
        return json_response(200, item, {"x-request-id": "rq-ok", **self.reply_headers})

    @route("POST", r"/items")
    def create_item(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["sku"] in self.items:
            return json_response(409, {"error": "duplicate"}, {"x-request-id": "rq-dup"})
        self.items[body["sku"]] = body
        return json_response(201, body, {"x-request-id": "rq-new"})

    @route("GET", r"/throttled")
    def throttled(self, request: httpx.Request) -> httpx.Response:
        return json_response(429, {"error": "slow down"}, self.reply_headers)


def get(endpoint: Endpoint = ENDPOINT, path: str = "/items/a") -> httpx.Request:
    return endpoint.request("GET", path, operation="shop.get_item")


def post(endpoint: Endpoint = ENDPOINT, key: str | None = None, sku: str = "a") -> httpx.Request:
    return endpoint.request(
        "POST", "/items", operation="shop.create_item", json={"sku": sku}, idempotency_key=key
    )


def _seeded(*faults: Fault | None, retry_after: float = 1.0) -> Shop:
    shop = Shop(*faults, retry_after=retry_after)
    shop.items["a"] = {"sku": "a", "name": "Φέτα"}
    return shop


# -- retries of idempotent requests -------------------------------------------------


def test_get_is_retried_after_a_connection_reset(harness: Harness) -> None:
    shop = _seeded(Fault.RESET)
    response = harness.send(shop, get())
    assert response.json()["name"] == "Φέτα"
    assert len(shop.requests) == 2
    assert harness.sleeps == [0.5]
    assert harness.records[0].attempts == 2


def test_get_is_retried_after_5xx_with_growing_backoff(harness: Harness) -> None:
    shop = _seeded(Fault.SERVER_ERROR, Fault.SERVER_ERROR, Fault.TIMEOUT)
    response = harness.send(shop, get())
    assert response.status_code == 200
    assert len(shop.requests) == 4
    assert harness.sleeps == [0.5, 1.0, 2.0]


def test_retries_stop_at_max_attempts_with_the_last_error(harness: Harness) -> None:
    harness.retry = RetryPolicy(max_attempts=3, jitter=False)
    shop = _seeded(*[Fault.SERVER_ERROR] * 5)
    with pytest.raises(TransientError) as info:
        harness.send(shop, get())
    assert info.value.status_code == 503
    assert info.value.vendor == "shop"
    assert len(shop.requests) == 3
    assert len(harness.sleeps) == 2
    assert harness.records[0].attempts == 3
    assert harness.records[0].error_code == "transient"


def test_backoff_never_exceeds_its_maximum() -> None:
    policy = RetryPolicy(backoff_initial=1.0, backoff_max=4.0, jitter=True)
    for attempt in range(1, 12):
        wait = policy.backoff(attempt)
        assert 0 < wait <= 4.0


def test_client_errors_are_not_retried(harness: Harness) -> None:
    shop = _seeded()
    with pytest.raises(NotFound) as info:
        harness.send(shop, get(path="/items/nope"))
    assert info.value.request_id == "rq-404"
    assert len(shop.requests) == 1
    assert harness.sleeps == []


# -- Retry-After --------------------------------------------------------------------


def test_retry_after_in_seconds_is_honoured(harness: Harness) -> None:
    shop = _seeded(Fault.RATE_LIMIT, retry_after=7)
    assert harness.send(shop, get()).status_code == 200
    assert len(harness.sleeps) == 1
    assert 6.0 < harness.sleeps[0] <= 7.0


def test_retry_after_as_an_http_date_is_honoured(harness: Harness) -> None:
    shop = _seeded()
    when = datetime.now(UTC) + timedelta(seconds=30)
    shop.reply_headers = {"Retry-After": email.utils.format_datetime(when, usegmt=True)}
    with pytest.raises(RateLimited):
        harness.send(shop, get(path="/throttled"))
    # every attempt was throttled: the driver slept through each Retry-After
    assert len(shop.requests) == harness.retry.max_attempts
    assert all(27.0 < s <= 30.0 for s in harness.sleeps)
    assert len(harness.sleeps) == harness.retry.max_attempts - 1


def test_retry_after_beyond_the_cap_raises_rate_limited_without_sleeping(
    harness: Harness,
) -> None:
    harness.retry = RetryPolicy(max_retry_after=60.0, jitter=False)
    shop = _seeded(Fault.RATE_LIMIT, retry_after=3600)
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as info:
        harness.send(shop, get())
    assert harness.sleeps == []
    assert len(shop.requests) == 1
    retry_at = info.value.retry_at
    assert retry_at is not None
    assert before + timedelta(seconds=3590) < retry_at < before + timedelta(seconds=3610)
    assert harness.records[0].error_code == "rate_limited"


def test_429_without_retry_after_backs_off(harness: Harness) -> None:
    shop = _seeded()
    with pytest.raises(RateLimited) as info:
        harness.send(shop, get(path="/throttled"))
    assert info.value.retry_at is None
    assert harness.sleeps == [0.5, 1.0, 2.0]


# -- idempotency --------------------------------------------------------------------


def test_one_idempotency_key_is_sent_on_every_attempt(harness: Harness) -> None:
    key = idempotency_key("t1", "shop.create_item", "order-17")
    shop = Shop(Fault.SERVER_ERROR, Fault.RESET, Fault.RATE_LIMIT, Fault.TIMEOUT, retry_after=0)
    harness.retry = RetryPolicy(max_attempts=5, jitter=False)
    response = harness.send(shop, post(KEYED, key=key))
    assert response.status_code == 201
    seen = [r.headers.get("idempotency-key") for r in shop.requests]
    assert seen == [key] * 5
    assert harness.records[0].idempotency_key == key
    assert harness.records[0].attempts == 5


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.TIMEOUT, Fault.MALFORMED])
def test_a_write_without_a_key_is_not_retried_when_it_may_have_landed(
    harness: Harness, fault: Fault
) -> None:
    shop = Shop(fault)
    if fault is Fault.MALFORMED:
        # a 200 with a broken body reaches the operation, which decides what it means
        assert harness.send(shop, post()).status_code == 200
    else:
        with pytest.raises(TransientError) as info:
            harness.send(shop, post())
        if fault is Fault.TIMEOUT:
            assert isinstance(info.value, ProviderTimeout)
    assert len(shop.requests) == 1
    assert harness.sleeps == []


def test_a_write_without_a_key_is_not_retried_after_a_503_with_retry_after(
    harness: Harness,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, headers={"Retry-After": "1"})

    seen: list[httpx.Request] = []
    with pytest.raises(RateLimited):
        harness.send(handler, post())
    assert len(seen) == 1


def test_a_write_without_a_key_is_retried_after_429_and_connect_errors(
    harness: Harness,
) -> None:
    shop = Shop(Fault.RATE_LIMIT, Fault.RESET, retry_after=2)
    response = harness.send(shop, post())
    assert response.status_code == 201
    assert len(shop.requests) == 3
    assert shop.items == {"a": {"sku": "a"}}
    assert harness.sleeps[0] == pytest.approx(2.0, abs=0.5)


def test_a_connect_timeout_is_retried_for_a_write() -> None:
    # a connect timeout means nothing was sent: safe for any request
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectTimeout("no route", request=request)
        return httpx.Response(201)

    h = Harness(kind="sync")
    assert h.send(handler, post()).status_code == 201
    assert len(calls) == 2


def test_the_idempotent_flag_can_force_a_retry_or_forbid_it(harness: Harness) -> None:
    forced = ENDPOINT.request("POST", "/items", operation="x", json={"sku": "b"}, idempotent=True)
    shop = Shop(Fault.SERVER_ERROR)
    assert harness.send(shop, forced).status_code == 201
    assert len(shop.requests) == 2

    forbidden = ENDPOINT.request("GET", "/items/a", operation="x", idempotent=False)
    shop = _seeded(Fault.SERVER_ERROR)
    with pytest.raises(TransientError):
        harness.send(shop, forbidden)
    assert len(shop.requests) == 1


# -- operations ---------------------------------------------------------------------


def create_or_fetch(sku: str) -> Operation[dict[str, Any]]:
    """Create an item; when it exists already, read the existing one instead."""
    try:
        response = yield post(sku=sku)
    except Conflict:
        response = yield get(path=f"/items/{sku}")
    body: dict[str, Any] = response.json()
    return body


def test_a_vendor_error_thrown_into_an_operation_can_be_caught(harness: Harness) -> None:
    shop = _seeded()
    assert harness.run(shop, create_or_fetch("a")) == {"sku": "a", "name": "Φέτα"}
    assert [f"{r.method} {r.url.path}" for r in shop.requests] == ["POST /items", "GET /items/a"]
    assert [r.error_code for r in harness.records] == ["conflict", None]
    assert harness.records[0].request_id == "rq-dup"


def test_an_uncaught_vendor_error_leaves_the_operation_typed(harness: Harness) -> None:
    def fetch() -> Operation[str]:
        response = yield get(path="/items/missing")
        return str(response.status_code)

    with pytest.raises(NotFound) as info:
        harness.run(_seeded(), fetch())
    assert info.value.vendor == "shop"
    assert info.value.status_code == 404
    assert info.value.request_id == "rq-404"


def test_completed_and_unsupported_run_without_a_call(harness: Harness) -> None:
    def no_call(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    assert harness.run(no_call, completed(42)) == 42
    with pytest.raises(NotSupported) as info:
        harness.run(no_call, unsupported("label", "shop", "no labels here"))
    assert info.value.vendor == "shop"
    assert "no labels here" in str(info.value)


def test_a_request_not_built_by_an_endpoint_is_refused(harness: Harness) -> None:
    with pytest.raises(TypeError, match=r"Endpoint\.request"):
        harness.send(_seeded(), httpx.Request("GET", "https://shop.test/items/a"))


def test_the_endpoint_auth_is_applied_on_every_attempt(harness: Harness) -> None:
    endpoint = Endpoint(vendor="shop", base_url="https://shop.test", auth=httpx.BasicAuth("u", "p"))
    shop = _seeded(Fault.SERVER_ERROR)
    harness.send(shop, get(endpoint))
    assert [r.headers["authorization"] for r in shop.requests] == ["Basic dTpw"] * 2


# -- call records -------------------------------------------------------------------


def test_the_call_record_says_what_happened_without_secrets(harness: Harness) -> None:
    endpoint = Endpoint(
        vendor="shop",
        base_url="https://shop.test",
        tenant="t9",
        headers={"Authorization": "Bearer sk_live_topsecret_value"},
    )
    shop = _seeded(Fault.SERVER_ERROR)
    request = endpoint.request(
        "GET", "/items/a", operation="shop.get_item", params={"api_key": "k-secret-123456", "q": 1}
    )
    harness.send(shop, request)
    (record,) = harness.records
    assert record.vendor == "shop"
    assert record.tenant == "t9"
    assert record.operation == "shop.get_item"
    assert record.method == "GET"
    assert record.status_code == 200
    assert record.attempts == 2
    assert record.request_id == "rq-ok"
    assert record.error_code is None
    assert record.started_at.tzinfo is not None
    assert record.elapsed >= 0
    assert "q=1" in record.url
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.url = "changed"  # type: ignore[misc]
    text = repr(record)
    assert "k-secret-123456" not in text
    assert "topsecret" not in text


def test_a_call_record_is_a_complete_dataclass(harness: Harness) -> None:
    # The start is kept as a float until read; the record must not show it.
    endpoint = Endpoint(vendor="shop", base_url="https://shop.test")
    before = datetime.now(UTC)
    harness.send(_seeded(), endpoint.request("GET", "/items/a", operation="shop.get_item"))
    (record,) = harness.records
    as_dict = dataclasses.asdict(record)
    assert list(as_dict) == [f.name for f in dataclasses.fields(CallRecord)]
    started = as_dict["started_at"]
    assert type(started) is datetime
    assert started.tzinfo is UTC
    assert before - timedelta(seconds=1) <= started <= datetime.now(UTC)
    assert record.started_at == started
    assert record.started_at is record.started_at  # made once
    assert "started_at=datetime.datetime(" in repr(record)
    same = CallRecord(**as_dict)
    assert same == record
    assert hash(same) == hash(record)
    assert dataclasses.replace(record, attempts=9).started_at == started
    with pytest.raises(AttributeError):
        record.no_such_field  # type: ignore[attr-defined]  # noqa: B018


# -- deadlines ----------------------------------------------------------------------


def test_no_retry_whose_backoff_would_pass_the_deadline(harness: Harness) -> None:
    endpoint = Endpoint(vendor="shop", base_url="https://shop.test", deadline=3.0)
    harness.retry = RetryPolicy(backoff_initial=5.0, jitter=False)
    shop = _seeded(Fault.SERVER_ERROR)
    with pytest.raises(TransientError):
        harness.send(shop, get(endpoint))
    assert len(shop.requests) == 1
    assert harness.sleeps == []


def test_a_retry_after_past_the_deadline_raises_rate_limited(harness: Harness) -> None:
    endpoint = Endpoint(vendor="shop", base_url="https://shop.test", deadline=10.0)
    shop = _seeded(Fault.RATE_LIMIT, retry_after=30)
    with pytest.raises(RateLimited):
        harness.send(shop, get(endpoint))
    assert harness.sleeps == []


def test_each_attempt_timeout_is_cut_to_what_is_left_of_the_deadline(harness: Harness) -> None:
    endpoint = Endpoint(vendor="shop", base_url="https://shop.test", deadline=2.0)
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(200)

    harness.send(handler, get(endpoint))
    (timeouts,) = seen
    assert set(timeouts) == {"connect", "read", "write", "pool"}
    assert all(0 < t <= 2.0 for t in timeouts.values())
    assert timeouts["connect"] < 5.0


def test_a_passed_deadline_sends_nothing_and_raises_a_timeout(harness: Harness) -> None:
    endpoint = Endpoint(vendor="shop", base_url="https://shop.test", deadline=1e-9)
    shop = _seeded()
    with pytest.raises(ProviderTimeout, match="deadline"):
        harness.send(shop, get(endpoint))
    assert shop.requests == []


def test_a_vendor_throttle_signal_in_a_200_is_retried_like_a_429(harness: Harness) -> None:
    def classify(response: httpx.Response, endpoint: Endpoint) -> ProviderError | None:
        if response.json().get("error") == "throttled":  # e.g. a SOAP vendor's HTTP-200 error
            return RateLimited(
                "throttled",
                retry_at=datetime.now(UTC) + timedelta(seconds=3),
                vendor=endpoint.vendor,
                status_code=response.status_code,
            )
        return default_classify(response, endpoint)

    replies = deque([{"error": "throttled"}, {"error": "throttled"}, {"id": "v-1"}])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=replies.popleft())

    endpoint = Endpoint(vendor="soapy", base_url="https://soapy.test", classify=classify)
    write = endpoint.request("POST", "/vouchers", operation="soapy.create", json={})
    assert harness.send(handler, write).json() == {"id": "v-1"}
    assert len(seen) == 3
    assert all(2.0 < s <= 3.0 for s in harness.sleeps)
