"""Exact decimals on the wire, both ways."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from dixis_integrations.accounting._wire import (
    MalformedBody,
    dumps,
    loads,
    number,
    response_json,
    take_json,
)


def test_decimals_and_marked_numbers_are_written_as_exact_json_numbers() -> None:
    body = {"a": Decimal("12.30"), "b": [number(Decimal("-1.250")), "Ελλάδα"], "c": 1}
    assert dumps(body) == '{"a":12.30,"b":[-1.250,"Ελλάδα"],"c":1}'.encode()
    assert loads(dumps(body)) == {"a": Decimal("12.30"), "b": [Decimal("-1.250"), "Ελλάδα"],
                                  "c": 1}  # fmt: skip


def test_text_that_carries_the_marker_character_is_left_intact() -> None:
    body = {"note": "\x1fstarts", "mid": "a\x1fb", "amount": Decimal("1.00")}
    assert loads(dumps(body)) == {"note": "\x1fstarts", "mid": "a\x1fb",
                                  "amount": Decimal("1.00")}  # fmt: skip


def test_floats_never_appear_and_other_types_are_refused() -> None:
    assert isinstance(loads(b'{"x": 0.1}')["x"], Decimal)
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_response_json_parses_once_and_reports_malformed_bodies() -> None:
    response = httpx.Response(200, content=b'{"Total": 12.40}')
    first = response_json(response)
    assert first is response_json(response)
    assert first == {"Total": Decimal("12.40")}
    with pytest.raises(MalformedBody):
        response_json(httpx.Response(200, content=b'{"Total": '))


def test_take_json_reads_the_cached_parse_and_keeps_nothing_on_the_response() -> None:
    response = httpx.Response(200, content=b'{"Total": 12.40}')
    first = response_json(response)  # as a classifier does
    assert take_json(response) is first  # not parsed a second time
    assert "dixis.accounting.json" not in response.extensions
    again = take_json(response)  # a later reader parses again, to the same value
    assert again == first
    assert again is not first
    assert response.extensions == {}
    with pytest.raises(MalformedBody):
        take_json(httpx.Response(200, content=b"{"))


def test_results_built_without_validation_behave_as_validated_ones() -> None:
    from dixis_integrations.accounting.xero import parse_invoice
    from dixis_integrations.models import Money
    from dixis_integrations.models.accounting import PostedInvoice

    data = {
        "InvoiceID": "i-1",
        "InvoiceNumber": "o-1",
        "Status": "AUTHORISED",
        "Total": Decimal("12.40"),
        "TotalTax": Decimal("1.43"),
        "CurrencyCode": "EUR",
    }
    first = parse_invoice(data, total=Money.of("12.40"), tax=Money.of("1.43"))
    second = parse_invoice({**data, "InvoiceID": "i-2"})
    validated = PostedInvoice.model_validate(first.model_dump())
    assert first == validated
    assert first.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
    changed = first.model_copy(update={"status": "PAID"})
    assert (changed.status, first.status) == ("PAID", "AUTHORISED")
    # The shared set of fields set is never changed by a copy.
    assert first.model_fields_set == second.model_fields_set == set(PostedInvoice.model_fields)
    assert hash(first.total) == hash(Money.of("12.40"))
