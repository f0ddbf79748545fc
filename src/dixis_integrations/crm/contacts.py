"""Turning customers into CRM contacts, and the checks every CRM adapter runs first.

``contact_from_customer`` joins a :class:`Customer` with its order aggregate;
``validate_contact`` and ``validate_lead`` normalise email and phone (E.164) and raise
:class:`InvalidInput` naming each bad field, so nothing malformed is ever sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import TypeAdapter

from dixis_integrations.crm.aggregates import CustomerAggregate
from dixis_integrations.errors import FieldError, InvalidInput, RateLimited
from dixis_integrations.models._types import EMAIL_PATTERN, normalize_email
from dixis_integrations.models.address import normalize_phone
from dixis_integrations.models.crm import CRMContact, Lead, UpsertResult, UpsertStatus
from dixis_integrations.models.customer import Customer

__all__ = [
    "chunks",
    "contact_from_customer",
    "merge_results",
    "rate_limited",
    "rejected",
    "screen",
    "upsert_result",
    "upsert_results",
    "validate_contact",
    "validate_lead",
]

_T = TypeVar("_T")
_E164_GR_CY = re.compile(r"\+(?:30[26]\d{9}|357\d{8})\Z")


def contact_from_customer(
    customer: Customer, aggregate: CustomerAggregate, *, segment: str | None = None
) -> CRMContact:
    """The CRM view of ``customer``, carrying the order figures of ``aggregate``.

    Raises:
        InvalidInput: the aggregate belongs to another customer (``customer_id``).
    """
    if aggregate.customer_id != customer.id:
        raise InvalidInput(
            "aggregate is for another customer",
            errors=(FieldError(("aggregate", "customer_id"), f"expected {customer.id}"),),
        )
    return CRMContact(
        reference=customer.id,
        email=customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name or customer.company,
        phone=customer.phone,
        total_orders=aggregate.total_orders,
        total_spent=aggregate.total_spent,
        last_order_date=aggregate.last_order_date,
        segment=segment,
        acquisition=customer.acquisition,
        consent=customer.consent,
    )


def _email(value: str, loc: tuple[str | int, ...], errors: list[FieldError]) -> str:
    if len(value) <= 254 and EMAIL_PATTERN.match(value) and value == value.lower():
        return value  # already normalised (a Customer's email always is)
    try:
        return normalize_email(value)
    except ValueError as exc:
        errors.append(FieldError(loc, str(exc), code="invalid_email"))
        return value


def _phone(
    value: str | None, loc: tuple[str | int, ...], errors: list[FieldError], country: str
) -> str | None:
    if value is None or not value.strip():
        return None
    if _E164_GR_CY.match(value):
        return value  # already normalised (a Customer's phone always is)
    try:
        return normalize_phone(value, country)
    except ValueError as exc:
        errors.append(FieldError(loc, str(exc), code="invalid_phone"))
        return value


def validate_contact(
    contact: CRMContact, *, vendor: str | None = None, default_country: str = "GR"
) -> CRMContact:
    """The contact with email lower-cased and phone in E.164.

    Raises:
        InvalidInput: listing every bad field (``email``, ``phone``, ``total_spent``).
    """
    email = contact.email
    phone = contact.phone
    if (  # the common case, a contact made from a Customer: nothing to change
        len(email) <= 254
        and EMAIL_PATTERN.match(email)
        and email == email.lower()
        and (phone is None or _E164_GR_CY.match(phone))
        and contact.total_spent.amount >= 0
    ):
        return contact
    errors: list[FieldError] = []
    email = _email(email, ("email",), errors)
    phone = _phone(phone, ("phone",), errors, default_country)
    if contact.total_spent.is_negative:
        errors.append(FieldError(("total_spent",), "must not be negative", code="negative"))
    if errors:
        raise InvalidInput("contact refused", errors=errors, vendor=vendor)
    if email == contact.email and phone == contact.phone:
        return contact
    return contact.model_copy(update={"email": email, "phone": phone})


def validate_lead(
    lead: Lead,
    *,
    required: Sequence[str] = (),
    vendor: str | None = None,
    default_country: str = "GR",
) -> Lead:
    """The lead with email and phone normalised and the CRM's required fields present.

    Args:
        lead: the lead to check.
        required: attribute names of :class:`Lead` the CRM cannot do without
            (Salesforce: ``last_name`` and ``company``).
        vendor: named in the error.
        default_country: assumed for phone numbers without a ``+`` prefix.

    Raises:
        InvalidInput: listing every bad or missing field.
    """
    errors: list[FieldError] = []
    email = _email(lead.email, ("email",), errors)
    phone = _phone(lead.phone, ("phone",), errors, default_country)
    for name in required:
        value = getattr(lead, name)
        if value is None or (isinstance(value, str) and not value.strip()):
            errors.append(FieldError((name,), "is required by this CRM", code="missing"))
    if errors:
        raise InvalidInput("lead refused", errors=errors, vendor=vendor)
    return lead.model_copy(update={"email": email, "phone": phone})


def screen(
    contacts: Sequence[CRMContact],
    check: Callable[[CRMContact], CRMContact],
    *,
    unique_emails: bool = False,
) -> tuple[list[CRMContact], dict[int, UpsertResult]]:
    """The contacts that pass ``check`` (as it returns them), and the ``REJECTED``
    results of the others by input position; with ``unique_emails``, a repeated email
    is refused as ``duplicate_in_batch``. Order is kept; see :func:`merge_results`."""
    passed: list[CRMContact] = []
    refused: dict[int, UpsertResult] = {}
    seen: set[str] = set()
    for i, contact in enumerate(contacts):
        try:
            checked = check(contact)
        except InvalidInput as exc:
            refused[i] = rejected(contact.reference, exc)
            continue
        if unique_emails:
            if checked.email in seen:
                refused[i] = upsert_result(
                    contact.reference,
                    UpsertStatus.REJECTED,
                    error_code="duplicate_in_batch",
                    reason=f"email: {checked.email} appears earlier in the same call",
                )
                continue
            seen.add(checked.email)
        passed.append(checked)
    return passed, refused


def merge_results(
    total: int, refused: Mapping[int, UpsertResult], sent: Sequence[UpsertResult]
) -> list[UpsertResult]:
    """One result per input position: the refused ones where they were, the results of
    the contacts sent (in order) everywhere else."""
    if not refused:
        return list(sent)
    rest = iter(sent)
    return [refused[i] if i in refused else next(rest) for i in range(total)]


def upsert_result(
    reference: str,
    status: UpsertStatus,
    external_id: str | None = None,
    error_code: str | None = None,
    reason: str | None = None,
) -> UpsertResult:
    """An :class:`UpsertResult` (positional arguments, for the adapters' parsers)."""
    return UpsertResult(
        reference=reference,
        status=status,
        external_id=external_id,
        error_code=error_code,
        reason=reason,
    )


_RESULTS: TypeAdapter[list[UpsertResult]] = TypeAdapter(list[UpsertResult])


def upsert_results(rows: list[dict[str, Any]]) -> list[UpsertResult]:
    """Many :class:`UpsertResult` from plain dicts, validated in one pass.

    The parsers of bulk answers collect plain rows and build the models here: one call
    into pydantic-core for a whole batch costs about half of one constructor per row.
    """
    return _RESULTS.validate_python(rows)


def rejected(reference: str, error: InvalidInput) -> UpsertResult:
    """The per-item result of a contact our own checks refused (it was not sent)."""
    return UpsertResult(
        reference=reference,
        status=UpsertStatus.REJECTED,
        error_code=error.code,
        reason="; ".join(str(e) for e in error.errors) or error.message,
    )


def rate_limited(reference: str, error: RateLimited) -> UpsertResult:
    """The per-item result of a contact not sent because the vendor's budget ran out."""
    return UpsertResult(
        reference=reference,
        status=UpsertStatus.REJECTED,
        error_code="rate_limited",
        reason=error.message,
        retry_at=error.retry_at,
    )


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """``items`` in consecutive slices of at most ``size``, order kept."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
