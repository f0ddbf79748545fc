"""Endpoints: request building, retry flags, idempotency keys, Retry-After, classification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from dixis_integrations.errors import (
    AuthError,
    Conflict,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    TransientError,
    ValidationRejected,
)
from dixis_integrations.http import (
    Endpoint,
    default_classify,
    idempotency_key,
    parse_retry_after,
    request_id_of,
)
from dixis_integrations.http.endpoint import endpoint_of, is_idempotent, key_of, operation_of

EP = Endpoint(
    vendor="shop",
    base_url="https://shop.test/api/",
    headers={"Accept": "application/json"},
    idempotency_header="Idempotency-Key",
)


def test_a_request_carries_its_endpoint_operation_and_key() -> None:
    request = EP.request("post", "/orders", operation="shop.order", json={}, idempotency_key="k1")
    assert str(request.url) == "https://shop.test/api/orders"
    assert request.method == "POST"
    assert request.headers["accept"] == "application/json"
    assert request.headers["idempotency-key"] == "k1"
    assert endpoint_of(request) is EP
    assert operation_of(request) == "shop.order"
    assert key_of(request) == "k1"
    assert is_idempotent(request)


@pytest.mark.parametrize(
    ("method", "key", "expected"),
    [
        ("GET", None, True),
        ("PUT", None, True),
        ("DELETE", None, True),
        ("POST", None, False),
        ("PATCH", None, False),
        ("POST", "k", True),
    ],
)
def test_which_requests_are_retryable_by_default(
    method: str, key: str | None, expected: bool
) -> None:
    request = EP.request(method, "/x", operation="op", idempotency_key=key)
    assert is_idempotent(request) is expected


def test_an_absolute_url_is_used_as_it_is() -> None:
    request = EP.request("GET", "https://other.test/a", operation="op")
    assert str(request.url) == "https://other.test/a"


def test_a_key_without_a_vendor_header_is_not_sent_but_still_marks_the_retry() -> None:
    plain = Endpoint(vendor="shop", base_url="https://shop.test")
    request = plain.request("POST", "/x", operation="op", idempotency_key="k1")
    assert "idempotency-key" not in request.headers
    assert is_idempotent(request)


def test_idempotency_keys_are_deterministic_and_distinct() -> None:
    a = idempotency_key("t1", "invoice", "order-1")
    assert a == idempotency_key("t1", "invoice", "order-1")
    assert a != idempotency_key("t2", "invoice", "order-1")
    assert a != idempotency_key("t1", "invoice", "order-2")
    assert len(a) == 36


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == now + timedelta(seconds=120)
    assert parse_retry_after("Thu, 01 Jan 2026 12:05:00 GMT", now) == now + timedelta(minutes=5)
    assert parse_retry_after("-5", now) == now
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_the_request_id_is_read_from_the_usual_headers() -> None:
    response = httpx.Response(200, headers={"intuit_tid": "abc"})
    assert request_id_of(response) == "abc"
    response = httpx.Response(200, headers={"x-vendor-id": "v1", "x-request-id": "r1"})
    assert request_id_of(response, ("x-vendor-id",)) == "v1"
    assert request_id_of(httpx.Response(200)) is None


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (400, ValidationRejected, False),
        (401, AuthError, False),
        (403, PermissionDenied, False),
        (404, NotFound, False),
        (409, Conflict, False),
        (422, ValidationRejected, False),
        (429, RateLimited, True),
        (408, TransientError, True),
        (500, TransientError, True),
        (502, TransientError, True),
    ],
)
def test_statuses_map_onto_the_error_tree(
    status: int, error: type[ProviderError], retryable: bool
) -> None:
    request = EP.request("GET", "/x", operation="op")
    response = httpx.Response(status, request=request, headers={"x-request-id": "rid"})
    found = default_classify(response, EP)
    assert type(found) is error
    assert found is not None
    assert found.retryable is retryable
    assert found.status_code == status
    assert found.request_id == "rid"
    assert found.vendor == "shop"


def test_a_503_with_retry_after_is_a_rate_limit() -> None:
    request = EP.request("GET", "/x", operation="op")
    found = default_classify(httpx.Response(503, request=request, headers={"Retry-After": "5"}), EP)
    assert isinstance(found, RateLimited)
    assert found.retry_at is not None


def test_success_is_not_an_error() -> None:
    request = EP.request("GET", "/x", operation="op")
    assert default_classify(httpx.Response(204, request=request), EP) is None
