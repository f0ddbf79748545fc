"""The checks every CRM adapter runs before sending, and the bulk screening helpers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from dixis_integrations.crm.contacts import merge_results, screen, validate_contact
from dixis_integrations.errors import InvalidInput
from dixis_integrations.models import Money
from dixis_integrations.models.crm import CRMContact, UpsertResult, UpsertStatus


def contact(i: int = 1, **overrides: Any) -> CRMContact:
    data: dict[str, Any] = {
        "reference": f"cus_{i}",
        "email": f"buyer{i}@example.gr",
        "last_name": "Ιωάννου",
        "phone": "+306912345678",
        "total_spent": Money.of("19.90"),
    }
    data.update(overrides)
    return CRMContact(**data)


def test_a_normalised_contact_is_returned_as_it_is() -> None:
    given = contact()
    assert validate_contact(given) is given
    assert validate_contact(contact(phone=None)).phone is None


@pytest.mark.parametrize(
    ("overrides", "email", "phone"),
    [
        ({"email": "Buyer1@Example.GR"}, "buyer1@example.gr", "+306912345678"),
        ({"phone": "6912345678"}, "buyer1@example.gr", "+306912345678"),
        ({"phone": "  "}, "buyer1@example.gr", None),
        ({"phone": "+30 691 234 5678"}, "buyer1@example.gr", "+306912345678"),
    ],
)
def test_email_and_phone_are_normalised(
    overrides: dict[str, Any], email: str, phone: str | None
) -> None:
    checked = validate_contact(contact(**overrides))
    assert (checked.email, checked.phone) == (email, phone)


def test_every_bad_field_is_named() -> None:
    bad = contact(
        email="nobody@", phone="+0", total_spent=Money(amount=Decimal("-1"), currency="EUR")
    )
    with pytest.raises(InvalidInput) as info:
        validate_contact(bad, vendor="hubspot")
    assert [e.path for e in info.value.errors] == ["email", "phone", "total_spent"]


def test_a_negative_total_alone_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_contact(contact(total_spent=Money(amount=Decimal("-0.01"), currency="EUR")))
    assert [e.path for e in info.value.errors] == ["total_spent"]


def test_screen_and_merge_keep_input_order() -> None:
    batch = [
        contact(1),
        contact(2, email="bad@"),
        contact(3, email="BUYER1@example.gr"),
        contact(4),
    ]
    passed, refused = screen(batch, validate_contact, unique_emails=True)
    assert [c.reference for c in passed] == ["cus_1", "cus_4"]
    assert sorted(refused) == [1, 2]
    assert refused[1].reason is not None
    assert refused[1].reason.startswith("email:")
    assert refused[2].error_code == "duplicate_in_batch"
    sent = [
        UpsertResult(reference=c.reference, status=UpsertStatus.CREATED, external_id=str(i))
        for i, c in enumerate(passed)
    ]
    merged = merge_results(len(batch), refused, sent)
    assert [(r.reference, r.status) for r in merged] == [
        ("cus_1", UpsertStatus.CREATED),
        ("cus_2", UpsertStatus.REJECTED),
        ("cus_3", UpsertStatus.REJECTED),
        ("cus_4", UpsertStatus.CREATED),
    ]


def test_without_unique_emails_a_repeat_is_passed_on() -> None:
    passed, refused = screen([contact(1), contact(1)], validate_contact)
    assert len(passed) == 2
    assert refused == {}
