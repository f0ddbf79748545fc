"""Helpers both ledger adapters share (private): dates, names, webhook signatures, and
result models built from values that are already valid.

Nothing vendor-specific lives here: no vendor field names, only our own models.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from dixis_integrations.errors import FieldError, InvalidInput
from dixis_integrations.models.accounting import BatchItemResult, BatchItemStatus, PostedInvoice
from dixis_integrations.models.customer import Customer
from dixis_integrations.models.money import Money

__all__ = [
    "MONEY_FIELDS",
    "POSTED_FIELDS",
    "check_customer",
    "created_item",
    "local_date",
    "money",
    "posted_invoice",
    "signature_matches",
    "trusted",
]

_M = TypeVar("_M", bound=BaseModel)
_NEW: Final = object.__new__
_SET: Final = object.__setattr__
POSTED_FIELDS: Final = set(PostedInvoice.model_fields)
MONEY_FIELDS: Final = set(Money.model_fields)
_ITEM_FIELDS: Final = set(BatchItemResult.model_fields)


def trusted(cls: type[_M], fields: dict[str, Any], names: set[str] | None = None) -> _M:
    """An instance of a frozen result model from ``fields`` that are already valid, with
    no validation pass (what ``model_construct`` does, without its per-call field scan).

    Only for values the adapter computed from validated models, or checked itself: each
    result is otherwise validated twice per invoice on the bulk path. ``fields`` must
    name every field (defaults are not filled in) and becomes the instance's own dict.

    ``names``, when given, is the set of those names and becomes the instances' set of
    fields set, shared by every instance built with it (one object less per result,
    which a bulk push keeps by the thousand). Sharing is safe for frozen models:
    pydantic never adds to that set on a frozen model, and ``model_copy`` copies it
    before adding the updated names. It must not be changed in place.
    """
    new = _NEW(cls)
    _SET(new, "__dict__", fields)
    _SET(new, "__pydantic_fields_set__", set(fields) if names is None else names)
    _SET(new, "__pydantic_extra__", None)
    _SET(new, "__pydantic_private__", None)
    return new


def money(amount: Decimal, currency: str) -> Money:
    """A :class:`Money` from an amount computed from validated ones (no validation)."""
    return trusted(Money, {"amount": amount, "currency": currency}, MONEY_FIELDS)


def local_date(moment: datetime, timezone: str) -> date:
    """The calendar date of ``moment`` where the business is (e.g. ``Europe/Athens``)."""
    return moment.astimezone(ZoneInfo(timezone)).date()


def check_customer(customer: Customer, *, vendor: str, max_reference: int | None = None) -> str:
    """The name to show for ``customer``; refuse one without a name or an over-long id.

    Raises:
        InvalidInput: naming ``customer.name`` or ``customer.id``.
    """
    errors: list[FieldError] = []
    name = customer.full_name or customer.company or ""
    if not name.strip():
        errors.append(
            FieldError(("customer", "name"), "first_name, last_name or company is required")
        )
    if max_reference is not None and len(customer.id) > max_reference:
        errors.append(
            FieldError(
                ("customer", "id"),
                f"{len(customer.id)} characters; {vendor} allows at most {max_reference}",
                code="too_long",
            )
        )
    if errors:
        raise InvalidInput("customer cannot be sent", errors=errors, vendor=vendor)
    return name.strip()


def signature_matches(key: bytes, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` is the base64 HMAC-SHA256 of ``body``; constant time."""
    if not signature:
        return False
    expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def posted_invoice(
    *,
    provider: str,
    external_id: str,
    reference: str,
    number: str | None,
    status: str,
    total: Money,
    vendor_total: Money,
    created: bool,
    tax: Money | None,
    vendor_tax: Money | None,
) -> PostedInvoice:
    """A :class:`PostedInvoice` from typed parts (every ``Money`` already valid)."""
    return trusted(
        PostedInvoice,
        {
            "provider": provider,
            "external_id": external_id,
            "reference": reference,
            "number": number,
            "status": status,
            "total": total,
            "vendor_total": vendor_total,
            "created": created,
            "tax": tax,
            "vendor_tax": vendor_tax,
        },
        POSTED_FIELDS,
    )


def created_item(reference: str, invoice: PostedInvoice) -> BatchItemResult:
    """The :class:`BatchItemResult` of an invoice created by a bulk push."""
    return trusted(
        BatchItemResult,
        {
            "reference": reference,
            "status": BatchItemStatus.CREATED,
            "external_id": invoice.external_id,
            "error_code": None,
            "reason": None,
            "invoice": invoice,
        },
        _ITEM_FIELDS,
    )
