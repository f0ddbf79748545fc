"""Endpoints: request building, retry flags, idempotency keys, Retry-After, classification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _request_id_as_specified(headers: list[tuple[str, str]], extra: tuple[str, ...]) -> str | None:
    # The rule, written plainly: the vendor's names first, then the usual ones; the first
    # name that has a non-empty value wins, with the first such value.
    names = [n.lower() for n in extra] + [
        "x-request-id",
        "request-id",
        "x-correlation-id",
        "intuit_tid",
    ]
    for name in names:
        for key, value in headers:
            if key.lower() == name and value:
                return value
    return None


_HEADER_NAMES = st.sampled_from(
    [
        "X-Request-Id",
        "x-request-id",
        "Request-Id",
        "X-Correlation-ID",
        "intuit_tid",
        "X-Vendor-Id",
        "Content-Type",
        "Set-Cookie",
        "Date",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(
        st.tuples(_HEADER_NAMES, st.sampled_from(["", "r1", "r2", "abc-123", "caf\u00e9"])),
        max_size=8,
    ),
    extra=st.sampled_from([(), ("x-vendor-id",), ("X-Vendor-Id", "x-request-id"), ("intuit_tid",)]),
)
def test_the_request_id_follows_the_rule_for_any_headers(
    headers: list[tuple[str, str]], extra: tuple[str, ...]
) -> None:
    # repeated names, empty values, any case, any order, the vendor's own names first
    response = httpx.Response(200, headers=[(k, v.encode("latin-1")) for k, v in headers])
    expected = _request_id_as_specified(headers, extra)
    assert request_id_of(response, extra) == expected
    assert request_id_of(response, list(extra)) == expected  # type: ignore[arg-type]


def test_an_empty_first_request_id_gives_way_to_the_next_value() -> None:
    response = httpx.Response(200, headers=[("X-Request-Id", ""), ("x-request-id", "r2")])
    assert request_id_of(response) == "r2"
    response = httpx.Response(200, headers=[("X-Request-Id", ""), ("request-id", "r3")])
    assert request_id_of(response) == "r3"


def test_requests_carry_the_endpoint_headers_and_their_own() -> None:
    own = {"Accept": "application/json", "X-Tenant": "t1"}
    plain = Endpoint(vendor="shop", base_url="https://shop.test", headers=own)
    keyed = Endpoint(
        vendor="shop", base_url="https://shop.test", headers=own, idempotency_header="Idem-Key"
    )
    request = plain.request("GET", "/x", operation="op")
    assert list(request.headers.items())[-2:] == [
        ("accept", "application/json"),
        ("x-tenant", "t1"),
    ]
    request = plain.request("GET", "/x", operation="op", headers={"X-Tenant": "t2", "X-More": "1"})
    assert request.headers["x-tenant"] == "t2"
    assert request.headers["x-more"] == "1"
    request = keyed.request("POST", "/x", operation="op", idempotency_key="k-1")
    assert request.headers["idem-key"] == "k-1"
    request = keyed.request(
        "POST", "/x", operation="op", idempotency_key="k-1", headers={"Idem-Key": "mine"}
    )
    assert request.headers["idem-key"] == "mine"
    request.headers["X-Tenant"] = "changed"  # a request's headers are its own
    assert own == {"Accept": "application/json", "X-Tenant": "t1"}
    assert "idem-key" not in plain.request("POST", "/x", operation="op").headers


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
