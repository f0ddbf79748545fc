"""The private helpers the adapters share: SOAP envelopes, exact JSON, session caches."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import httpx
import pytest

from dixis_integrations.errors import ProviderError, TransientError
from dixis_integrations.models.address import Address
from dixis_integrations.shipping._base import (
    SessionCache,
    json_bytes,
    national_phone,
    street_and_number,
)
from dixis_integrations.shipping._soap import child_text, children, envelope, parse_body, to_dict


def _response(body: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=body, request=httpx.Request("POST", "http://x"))


def test_envelope_nests_mappings_repeats_sequences_and_formats_values() -> None:
    body = envelope(
        "Op",
        {"a": Decimal("1.50"), "b": True, "c": date(2026, 1, 2), "d": None, "e": {"f": ["1", "2"]}},
        "urn:t",
    )
    root = parse_body(_response(body), "t")  # the first element in the Body: the call
    assert root.tag == "{urn:t}Op"
    assert child_text(root, "a") == "1.50"
    assert child_text(root, "b") == "true"
    assert child_text(root, "c") == "2026-01-02"
    assert child_text(root, "d", "missing") == "missing"  # an empty element has no text
    assert [c.text for c in children(root, "f")] == ["1", "2"]
    assert to_dict(root)["a"] == "1.50"


def test_parse_body_types_faults_and_junk() -> None:
    fault = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
        b"<faultcode>s:Client</faultcode><faultstring>bad</faultstring></s:Fault></s:Body></s:Envelope>"
    )
    with pytest.raises(ProviderError) as info:
        parse_body(_response(fault, 500), "t")
    assert not isinstance(info.value, TransientError)
    assert info.value.vendor_code == "s:Client"
    with pytest.raises(TransientError):
        parse_body(_response(b"<html>"), "t")
    with pytest.raises(TransientError):
        parse_body(_response(b"<E/>"), "t")


def test_json_bytes_writes_decimals_as_exact_numbers() -> None:
    data = json_bytes({"w": Decimal("0.10"), "n": [Decimal("-2"), 3], "s": "Ερμού"})
    assert data == '{"w":0.10,"n":[-2,3],"s":"Ερμού"}'.encode()
    assert json.loads(data)["n"] == [-2, 3]


def test_session_cache_expires_and_forgets_only_the_rejected_key() -> None:
    cache = SessionCache()
    assert cache.get() is None
    cache.set("k1")
    cache.forget("other")
    assert cache.get() == "k1"
    cache.forget("k1")
    assert cache.get() is None
    cache.set("k2", lifetime=-1)
    assert cache.get() is None
    assert "k2" not in repr(cache)


def test_phone_and_street_helpers() -> None:
    assert national_phone("+306912345678") == "6912345678"
    assert national_phone("+35799123456") == "99123456"
    assert national_phone(None) == ""
    address = Address(name="x", street="25ης Μαρτίου 14", city="Αθήνα", postcode="10431")
    assert street_and_number(address) == ("25ης Μαρτίου", "14")
    numbered = Address(name="x", street="Ερμού", number="3Α", city="Αθήνα", postcode="10431")
    assert street_and_number(numbered) == ("Ερμού", "3Α")
