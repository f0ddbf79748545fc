"""Redaction: URLs, mappings, registered secrets and the logging filter."""

from __future__ import annotations

import logging

import httpx
import pytest

from dixis_integrations.http import (
    CallRecord,
    Driver,
    Endpoint,
    redact_mapping,
    redact_url,
    register_secret,
)
from dixis_integrations.http.redact import REDACTED, is_sensitive_name, redact_text


def test_sensitive_query_parameters_and_user_info_are_masked() -> None:
    url = redact_url("https://user:pw@shop.test/a?access_token=abc&page=2&apikey=zz")
    assert "abc" not in url
    assert "zz" not in url
    assert "pw" not in url
    assert "page=2" in url


def test_mappings_are_masked_by_key_at_any_depth() -> None:
    data = {"client_secret": "s3cr3t", "nested": {"Authorization": "Bearer x"}, "n": 1}
    assert redact_mapping(data) == {
        "client_secret": REDACTED,
        "nested": {"Authorization": REDACTED},
        "n": 1,
    }


@pytest.mark.parametrize("name", ["refresh_token", "X-Api-Key", "password", "code", "key"])
def test_secret_looking_names(name: str) -> None:
    assert is_sensitive_name(name)


@pytest.mark.parametrize("name", ["page", "sku", "postcode", "keyword"])
def test_ordinary_names(name: str) -> None:
    assert not is_sensitive_name(name)


def test_registered_secrets_are_scrubbed_from_text_and_log_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_secret("zq-registered-secret-42")
    register_secret("abc")  # too short to scrub safely: ignored
    assert redact_text("value zq-registered-secret-42 here") == f"value {REDACTED} here"
    assert redact_text("abc") == "abc"
    logger = logging.getLogger("dixis_integrations.http")
    with caplog.at_level(logging.DEBUG, logger="dixis_integrations.http"):
        logger.debug("sent %s", "zq-registered-secret-42")
    assert "zq-registered-secret-42" not in caplog.text
    assert REDACTED in caplog.text


def test_a_secret_registered_after_a_url_was_redacted_is_masked_in_it_from_then_on() -> None:
    # clean URLs are cached by the parsed URL: a later secret must not be served stale
    url = httpx.URL("https://shop.test/accounts/zq-late-secret-77/items?page=2")
    assert redact_url(url) == str(url)
    assert redact_url(httpx.URL(str(url))) == str(url)  # a new object, the cached text
    register_secret("zq-late-secret-77")
    assert redact_url(url) == f"https://shop.test/accounts/{REDACTED}/items?page=2"
    assert redact_url(str(url)) == f"https://shop.test/accounts/{REDACTED}/items?page=2"


def test_the_driver_records_the_url_with_a_secret_registered_after_earlier_calls() -> None:
    endpoint = Endpoint(vendor="shop", base_url="https://shop.test")
    records: list[CallRecord] = []
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    with Driver(client, on_call=records.append) as driver:
        request = endpoint.request("GET", "/u/zq-later-secret-88", operation="shop.get")
        driver.send(request)
        register_secret("zq-later-secret-88")
        driver.send(endpoint.request("GET", "/u/zq-later-secret-88", operation="shop.get"))
    client.close()
    assert [r.url for r in records] == [
        "https://shop.test/u/zq-later-secret-88",
        f"https://shop.test/u/{REDACTED}",
    ]
