"""GDPR erasure across every CRM a person was sent to, with one result per system.

One operation runs each CRM's ``erase`` in turn; a failure at one system is reported in
its result and does not stop the others, so the caller always learns where the person
is gone and where a retry is needed. Leads kept locally are forgotten too.
"""

from __future__ import annotations

from collections.abc import Sequence

from dixis_integrations.crm.leads import LeadStore
from dixis_integrations.errors import DixisError, FieldError, InvalidInput
from dixis_integrations.http.driver import Operation
from dixis_integrations.models._types import normalize_email
from dixis_integrations.models.crm import ErasureResult
from dixis_integrations.protocols import CRMProvider

__all__ = ["erase_everywhere"]


def erase_everywhere(
    email: str, crms: Sequence[CRMProvider], *, leads: LeadStore | None = None
) -> Operation[list[ErasureResult]]:
    """Erase ``email`` from every CRM in ``crms`` (and from ``leads``), one result each.

    Raises:
        InvalidInput: ``email`` is not an email address (nothing is sent).
    """
    try:
        address = normalize_email(email)
    except ValueError as exc:
        raise InvalidInput(
            "bad email", errors=(FieldError(("email",), str(exc), code="invalid_email"),)
        ) from None
    results: list[ErasureResult] = []
    for crm in crms:
        try:
            results.append((yield from crm.erase(address)))
        except DixisError as exc:
            results.append(
                ErasureResult(provider=crm.name, email=address, erased=False, detail=str(exc))
            )
    if leads is not None:
        removed = leads.delete_email(address)
        results.append(
            ErasureResult(
                provider="local-leads", email=address, erased=True, detail=f"{removed} leads"
            )
        )
    return results
