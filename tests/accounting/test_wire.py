"""Exact decimals on the wire, both ways."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dixis_integrations.accounting._wire import (
    MalformedBody,
    dumps,
    dumps_marked,
    loads,
    number,
    plain,
    quoted,
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


# Strings made of the marker character and of what a mark holds (digits, sign, point).
_marked_text = st.text(alphabet=st.sampled_from('\x1f0123456789-.a"\\'), max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_marked_text, _marked_text), max_size=4),
    st.lists(st.decimals(allow_nan=False, allow_infinity=False, places=2), max_size=3),
)
def test_text_shaped_like_a_mark_is_never_turned_into_a_number(
    texts: list[tuple[str, str]], amounts: list[Decimal]
) -> None:
    body: dict[str, object] = {"Amounts": [number(a) for a in amounts]}
    body |= {f"k{n}{key}": {"Description": value} for n, (key, value) in enumerate(texts)}
    body["Note"] = [value for _, value in texts]
    expected = {**body, "Amounts": [Decimal(plain(a)) for a in amounts]}
    # The same text as a writer that never marks anything: the strings as quoted().
    amounts_text = ",".join(plain(a) for a in amounts)
    written = "".join(f',{quoted(f"k{n}{key}")}:{{"Description":{quoted(value)}}}'
                      for n, (key, value) in enumerate(texts))  # fmt: skip
    notes = ",".join(quoted(value) for _, value in texts)
    text = f'{{"Amounts":[{amounts_text}]{written},"Note":[{notes}]}}'.encode()
    for writer in (dumps, dumps_marked):
        assert writer(body) == text
        assert loads(writer(body)) == expected


def test_a_description_reading_as_a_mark_stays_text_on_the_single_invoice_paths() -> None:
    from dixis_integrations.accounting.xero import Xero

    body = {"Description": "\x1f12\x1f", "Quantity": number(Decimal("1.250"))}
    assert dumps(body) == b'{"Description":"\\u001f12\\u001f","Quantity":1.250}'
    assert dumps_marked(body) == dumps(body)
    content = Xero._invoices_content([body])
    assert loads(content) == {"Invoices": [{"Description": "\x1f12\x1f",
                                            "Quantity": Decimal("1.250")}]}  # fmt: skip
