"""Addresses: postcodes per country, E.164 phones, street splitting, Greek text kept."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dixis_integrations.models import (
    Address,
    is_greek_mobile,
    normalize_phone,
    normalize_postcode,
    split_street,
)

from .factories import greek_text


def make_address(**overrides: Any) -> Address:
    data: dict[str, Any] = {
        "name": "Γιώργος Παπαδόπουλος",
        "street": "Ερμού",
        "number": "25",
        "city": "Αθήνα",
        "postcode": "10563",
    }
    data.update(overrides)
    return Address(**data)


def first_loc(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[int | str, ...]:
    return exc.value.errors()[0]["loc"]


# -- postcodes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("104 31", "GR", "10431"),
        ("10431", "GR", "10431"),
        (" 85100 ", "GR", "85100"),
        ("1010", "CY", "1010"),
        ("SW1A 1AA", "GB", "SW1A 1AA"),
        ("75008", "FR", "75008"),
    ],
)
def test_postcode_is_normalised_per_country(raw: str, country: str, expected: str) -> None:
    assert normalize_postcode(raw, country) == expected
    assert make_address(postcode=raw, country=country).postcode == expected


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        ("1043", "GR"),
        ("104311", "GR"),
        ("10 431", "GR"),
        ("1O431", "GR"),
        ("١٠٤٣١", "GR"),  # Arabic-Indic digits are not a postcode
        ("10101", "CY"),
        ("", "DE"),
        ("X" * 17, "DE"),
    ],
)
def test_bad_postcode_is_reported_at_postcode(raw: str, country: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_address(postcode=raw, country=country)
    assert first_loc(info) == ("postcode",)


@given(st.from_regex(r"[0-9]{5}", fullmatch=True))
def test_any_five_digit_greek_postcode_is_accepted_with_or_without_space(digits: str) -> None:
    spaced = f"{digits[:3]} {digits[3:]}"
    assert normalize_postcode(spaced) == normalize_postcode(digits) == digits


@given(st.text(alphabet=st.sampled_from("0123456789 ١٢A-"), max_size=8) | st.text(max_size=8))
def test_greek_postcode_is_exactly_five_ascii_digits_with_an_optional_space(text: str) -> None:
    compact = text.strip()
    ascii_digits = set("0123456789")
    plain = len(compact) == 5 and set(compact) <= ascii_digits
    spaced = (
        len(compact) == 6 and compact[3] == " " and set(compact[:3] + compact[4:]) <= ascii_digits
    )
    if plain or spaced:
        assert normalize_postcode(text) == compact.replace(" ", "")
    else:
        with pytest.raises(ValueError, match="5 digits"):
            normalize_postcode(text, "GR")


# -- phones ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("210 1234567", "GR", "+302101234567"),
        ("6912345678", "GR", "+306912345678"),
        ("0030 691 234 5678", "GR", "+306912345678"),
        ("+30 210-123-4567", "GR", "+302101234567"),
        ("(210) 123.4567", "GR", "+302101234567"),
        ("306912345678", "GR", "+306912345678"),
        ("+357 99 123456", "GR", "+35799123456"),
        ("99 123456", "CY", "+35799123456"),
        ("+44 20 7946 0958", "GR", "+442079460958"),
    ],
)
def test_normalize_phone_to_e164(raw: str, country: str, expected: str) -> None:
    assert normalize_phone(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        ("", "GR"),
        ("call me", "GR"),
        ("12345", "GR"),
        ("691234567", "GR"),  # 9 digits
        ("+30 1234567890", "GR"),  # Greek numbers start with 2 or 6
        ("+357 9912345", "GR"),  # Cyprus: 8 digits
        ("2079460958", "GB"),  # no way to know the country code
        ("+1 2", "GR"),
        ("+30 69l2345678", "GR"),
        ("٦٩١٢٣٤٥٦٧٨", "GR"),  # non-ASCII digits
    ],
)
def test_normalize_phone_refuses_junk(raw: str, country: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        normalize_phone(raw, country)


def test_address_phones_are_stored_in_e164_and_errors_name_the_field() -> None:
    address = make_address(phone="210 1234567", mobile="6912345678")
    assert address.phone == "+302101234567"
    assert address.mobile == "+306912345678"
    with pytest.raises(ValidationError) as info:
        make_address(mobile="12345")
    assert first_loc(info) == ("mobile",)
    with pytest.raises(ValidationError) as info:
        make_address(phone="not a phone")
    assert first_loc(info) == ("phone",)


def test_address_phone_without_prefix_follows_the_address_country() -> None:
    address = make_address(country="CY", postcode="1010", phone="22 123456")
    assert address.phone == "+35722123456"


def test_is_greek_mobile() -> None:
    assert is_greek_mobile("+306912345678")
    assert not is_greek_mobile("+302101234567")
    assert not is_greek_mobile("+35799123456")
    assert not is_greek_mobile("+3069123")


_greek_national = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("26"),
    st.from_regex(r"[0-9]{9}", fullmatch=True),
)


@given(_greek_national, st.sampled_from(["{n}", "+30{n}", "0030 {n}", "+30 {a} {b}", "{a}-{b}"]))
def test_greek_phone_round_trips_through_any_format(national: str, shape: str) -> None:
    typed = shape.format(n=national, a=national[:3], b=national[3:])
    e164 = normalize_phone(typed)
    assert e164 == "+30" + national
    assert normalize_phone(e164) == e164  # idempotent
    assert is_greek_mobile(e164) == national.startswith("69")


# -- street splitting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "street", "number"),
    [
        ("Ερμού 25", "Ερμού", "25"),
        ("25 Ermou", "Ermou", "25"),
        ("Λεωφ. Κηφισίας 10Α", "Λεωφ. Κηφισίας", "10Α"),
        ("Ερμού 25-27", "Ερμού", "25-27"),
        ("Ερμού 25, ", "Ερμού", "25"),
        ("  Ερμού   25 ", "Ερμού", "25"),
        ("Ερμού", "Ερμού", None),
        ("Πλατεία Συντάγματος", "Πλατεία Συντάγματος", None),
        ("25ης Μαρτίου 4", "25ης Μαρτίου", "4"),
        ("28 Οκτωβρίου 14", "28 Οκτωβρίου", "14"),
        ("25 Μαρτίου", "25 Μαρτίου", None),  # a date-named street, not a number
    ],
)
def test_split_street(line: str, street: str, number: str | None) -> None:
    assert split_street(line) == (street, number)


# -- the model -------------------------------------------------------------------------


def test_address_defaults_to_greece_and_keeps_greek_text_exactly() -> None:
    address = make_address(notes="Κουδούνι: Παπαδόπουλος-Ξυδάκη", floor="3ος")
    assert address.country == "GR"
    assert address.name == "Γιώργος Παπαδόπουλος"
    assert address.notes == "Κουδούνι: Παπαδόπουλος-Ξυδάκη"
    again = Address.model_validate_json(address.model_dump_json())
    assert again == address
    assert again.street == "Ερμού"


def test_address_email_is_lowercased_and_checked() -> None:
    assert make_address(email=" Maria@Example.GR ").email == "maria@example.gr"
    with pytest.raises(ValidationError) as info:
        make_address(email="maria@")
    assert first_loc(info) == ("email",)


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "  "), ("street", ""), ("city", " "), ("country", "gr"), ("country", "GRC")],
)
def test_required_text_and_country_errors_name_the_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_address(**{field: value})
    assert first_loc(info) == (field,)


def test_address_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError) as info:
        make_address(zip="10563")
    assert first_loc(info) == ("zip",)


@given(greek_text, greek_text, greek_text)
def test_greek_text_round_trips_unchanged(name: str, street: str, city: str) -> None:
    address = make_address(name=name, street=street, city=city)
    assert (address.name, address.street, address.city) == (name, street, city)
    assert Address.model_validate_json(address.model_dump_json()) == address
