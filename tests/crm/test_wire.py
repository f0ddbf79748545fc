"""Shared CRM wire helpers: exact JSON numbers, cursors, static-credential auth."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from dixis_integrations.crm._wire import (
    HeaderAuth,
    decode_cursor,
    dumps_exact,
    encode_cursor,
    exact_amount,
)
from dixis_integrations.errors import InvalidInput
from dixis_integrations.models import Money


def test_decimals_become_exact_json_numbers() -> None:
    out = dumps_exact({"a": Decimal("45.60"), "b": [Decimal("-0.10")], "c": "Μέλι"})
    assert out == '{"a":45.60,"b":[-0.10],"c":"Μέλι"}'.encode()


def test_a_string_cannot_forge_a_number_marker() -> None:
    evil = '\x00dec:1,"admin":true,"x":"\x00'
    out = dumps_exact({"name": evil, "n": Decimal("1.5")})
    assert json.loads(out) == {"name": evil, "n": 1.5}


def test_non_finite_decimals_are_refused() -> None:
    with pytest.raises(TypeError):
        dumps_exact({"n": Decimal("NaN")})


def test_exact_amount_rounds_half_up_to_the_minor_unit() -> None:
    assert exact_amount(Money.of("2.345")) == Decimal("2.35")
    assert exact_amount(Money.of("7", "JPY")) == Decimal("7")


def test_cursor_round_trips_and_foreign_cursors_are_refused() -> None:
    state = {"since": "2026-03-14 09:30:00", "start": 0}
    assert decode_cursor(encode_cursor(state), "x") == state
    with pytest.raises(InvalidInput, match="cursor"):
        decode_cursor("not a cursor!", "x")


def test_header_auth_sets_the_secret_and_hides_it_in_repr() -> None:
    auth = HeaderAuth("Authorization", SecretStr("pat-123"), "Bearer ")
    request = next(auth.auth_flow(httpx.Request("GET", "https://x.test/")))
    assert request.headers["Authorization"] == "Bearer pat-123"
    assert "pat-123" not in repr(auth)
