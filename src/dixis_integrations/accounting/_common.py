"""Helpers both ledger adapters share (private): dates, names, webhook signatures.

Nothing vendor-specific lives here: no vendor field names, only our own models.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date, datetime
from zoneinfo import ZoneInfo

from dixis_integrations.errors import FieldError, InvalidInput
from dixis_integrations.models.customer import Customer

__all__ = ["check_customer", "local_date", "signature_matches"]


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
