"""Customers: ΑΦΜ check digit, consent semantics, name and email rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dixis_integrations.models import (
    AcquisitionSource,
    Address,
    ConsentStatus,
    Customer,
    DoubleOptIn,
    LegalBasis,
    MarketingConsent,
    validate_afm,
)

from .factories import FIXED_TIME, greek_text, make_customer

_AFM_WEIGHTS = (256, 128, 64, 32, 16, 8, 4, 2)


def _check_digit(first_eight: str) -> int:
    """Independent statement of the ΑΦΜ rule, with explicit weights."""
    return sum(int(d) * w for d, w in zip(first_eight, _AFM_WEIGHTS, strict=True)) % 11 % 10


# -- ΑΦΜ -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("090000045", "090000045"),
        ("EL090000045", "090000045"),
        ("gr 090 000 045", "090000045"),
        (" 090.000.045 ", "090000045"),
    ],
)
def test_validate_afm_accepts_prefixes_and_separators(raw: str, expected: str) -> None:
    assert validate_afm(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["090000046", "000000000", "09000004", "0900000450", "09000004X", "ELL090000045", "٠٩٠٠٠٠٠٤٥"],
)
def test_validate_afm_refuses_bad_numbers(raw: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        validate_afm(raw)


_eight_digits = st.from_regex(r"[0-9]{8}", fullmatch=True).filter(lambda s: s != "00000000")


@given(_eight_digits)
def test_afm_with_computed_check_digit_is_valid(first_eight: str) -> None:
    afm = first_eight + str(_check_digit(first_eight))
    assert validate_afm(afm) == afm


@given(_eight_digits, st.integers(min_value=0, max_value=8), st.integers(min_value=1, max_value=9))
def test_single_digit_change_is_invalid_unless_the_check_still_holds(
    first_eight: str, position: int, shift: int
) -> None:
    valid = first_eight + str(_check_digit(first_eight))
    digits = list(valid)
    digits[position] = str((int(digits[position]) + shift) % 10)
    changed = "".join(digits)
    still_valid = changed != "000000000" and _check_digit(changed[:8]) == int(changed[8])
    if still_valid:
        assert validate_afm(changed) == changed
    else:
        with pytest.raises(ValueError):  # noqa: PT011
            validate_afm(changed)


def test_customer_vat_number_is_validated_at_its_field() -> None:
    assert make_customer(vat_number="EL090000045").vat_number == "090000045"
    with pytest.raises(ValidationError) as info:
        make_customer(vat_number="090000046")
    assert info.value.errors()[0]["loc"] == ("vat_number",)


# -- consent ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "double_opt_in", "allowed"),
    [
        (ConsentStatus.GRANTED, DoubleOptIn.NOT_REQUIRED, True),
        (ConsentStatus.GRANTED, DoubleOptIn.CONFIRMED, True),
        (ConsentStatus.GRANTED, DoubleOptIn.PENDING, False),
        (ConsentStatus.PENDING, DoubleOptIn.PENDING, False),
        (ConsentStatus.DENIED, DoubleOptIn.NOT_REQUIRED, False),
        (ConsentStatus.WITHDRAWN, DoubleOptIn.CONFIRMED, False),
        (ConsentStatus.UNKNOWN, DoubleOptIn.NOT_REQUIRED, False),
    ],
)
def test_allows_marketing_only_when_granted_and_confirmed_if_required(
    status: ConsentStatus, double_opt_in: DoubleOptIn, allowed: bool
) -> None:
    consent = MarketingConsent(status=status, double_opt_in=double_opt_in)
    assert consent.allows_marketing() is allowed


def test_default_consent_is_unknown_and_does_not_allow_marketing() -> None:
    customer = make_customer()
    assert customer.consent.status is ConsentStatus.UNKNOWN
    assert customer.consent.legal_basis is LegalBasis.CONSENT
    assert not customer.consent.allows_marketing()


def test_consent_timestamp_must_be_aware_and_is_stored_in_utc() -> None:
    athens = timezone(timedelta(hours=2))
    consent = MarketingConsent(
        status=ConsentStatus.GRANTED,
        source="checkout",
        timestamp=datetime(2026, 1, 5, 12, 0, tzinfo=athens),
    )
    assert consent.timestamp == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert consent.timestamp is not None
    assert consent.timestamp.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError) as info:
        MarketingConsent(timestamp=datetime(2026, 1, 5, 12, 0))
    assert info.value.errors()[0]["loc"] == ("timestamp",)


# -- customer --------------------------------------------------------------------------


def test_email_is_lowercased_and_stripped() -> None:
    assert make_customer(email="  Maria.P@Example.GR ").email == "maria.p@example.gr"


@pytest.mark.parametrize(
    "email",
    ["maria", "maria@", "@example.gr", "maria@example", "ma ria@example.gr", "maria@@example.gr"],
)
def test_bad_email_is_reported_at_email(email: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_customer(email=email)
    assert info.value.errors()[0]["loc"] == ("email",)


def test_a_name_or_a_company_is_required_and_the_error_names_company() -> None:
    with pytest.raises(ValidationError) as info:
        make_customer(first_name=None, last_name=None)
    assert info.value.errors()[0]["loc"] == ("company",)
    assert "first_name" in info.value.errors()[0]["msg"]
    assert make_customer(first_name=None, last_name="Οικονόμου").display_name == "Οικονόμου"
    company = make_customer(first_name=None, last_name=None, company="Αγρόκτημα Κρήτης ΙΚΕ")
    assert company.display_name == "Αγρόκτημα Κρήτης ΙΚΕ"


def test_display_name_prefers_the_person() -> None:
    customer = make_customer(company="ACME ΑΕ")
    assert customer.display_name == "Μαρία Παπαδοπούλου"


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("Μαρία", "Παπαδοπούλου", "Μαρία Παπαδοπούλου"),
        ("Μαρία", None, "Μαρία"),
        (None, "Οικονόμου", "Οικονόμου"),
        (None, None, ""),
    ],
)
def test_full_name_joins_the_names_that_are_set(
    first: str | None, last: str | None, expected: str
) -> None:
    customer = make_customer(first_name=first, last_name=last, company="Αγρόκτημα ΙΚΕ")
    assert customer.full_name == expected


def test_phone_is_normalised_to_e164() -> None:
    assert make_customer(phone="691 234 5678").phone == "+306912345678"
    with pytest.raises(ValidationError) as info:
        make_customer(phone="12")
    assert info.value.errors()[0]["loc"] == ("phone",)


def test_created_at_must_be_aware() -> None:
    with pytest.raises(ValidationError) as info:
        make_customer(created_at=datetime(2026, 1, 1))
    assert info.value.errors()[0]["loc"] == ("created_at",)
    assert make_customer(created_at="2026-01-01T12:00:00+02:00").created_at.hour == 10


@pytest.mark.parametrize("locale", ["el", "en-GB", "el-GR"])
def test_locale_accepts_language_and_region(locale: str) -> None:
    assert make_customer(locale=locale).locale == locale


@pytest.mark.parametrize("locale", ["EL-gr", "el_GR", "greek"])
def test_bad_locale_is_reported_at_locale(locale: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_customer(locale=locale)
    assert info.value.errors()[0]["loc"] == ("locale",)


def test_nested_address_errors_carry_the_full_path() -> None:
    with pytest.raises(ValidationError) as info:
        make_customer(
            billing_address={
                "name": "Μαρία",
                "street": "Ερμού",
                "city": "Αθήνα",
                "postcode": "1056",
            }
        )
    assert info.value.errors()[0]["loc"] == ("billing_address", "postcode")


def test_customer_json_round_trip_with_everything_set() -> None:
    customer = make_customer(
        phone="2101234567",
        vat_number="090000045",
        company="Ταβέρνα Ο Μπάμπης",
        billing_address=Address(
            name="Μαρία Παπαδοπούλου",
            street="Λεωφ. Κηφισίας",
            number="10Α",
            city="Μαρούσι",
            postcode="151 24",
        ),
        consent=MarketingConsent(
            status=ConsentStatus.GRANTED,
            source="newsletter_form",
            timestamp=FIXED_TIME,
            double_opt_in=DoubleOptIn.CONFIRMED,
        ),
        acquisition=AcquisitionSource(channel="paid_search", campaign="spring-olive-oil"),
    )
    assert Customer.model_validate_json(customer.model_dump_json()) == customer


@given(greek_text, greek_text, st.sampled_from(ConsentStatus))
def test_customer_round_trips_greek_names_unchanged(
    first: str, last: str, status: ConsentStatus
) -> None:
    customer = make_customer(first_name=first, last_name=last, consent={"status": status})
    assert (customer.first_name, customer.last_name) == (first, last)
    assert Customer.model_validate_json(customer.model_dump_json()) == customer
