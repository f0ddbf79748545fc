"""GDPR consent as the email providers need it: one decision per person, and erase-everywhere.

:func:`list_action` turns a :class:`~dixis_integrations.models.customer.MarketingConsent`
into what a provider may do with the person's list membership; every adapter maps that
action to its own fields, so nobody without consent is ever added to a marketing list.
:func:`erase_everywhere` runs a GDPR erase at every provider and reports each outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Protocol

from dixis_integrations.errors import DixisError
from dixis_integrations.http.driver import Operation
from dixis_integrations.models.crm import ErasureResult, UpsertResult, UpsertStatus
from dixis_integrations.models.customer import ConsentStatus, DoubleOptIn, MarketingConsent

__all__ = [
    "Erasable",
    "ListAction",
    "aerase_everywhere",
    "erase_everywhere",
    "list_action",
    "no_consent",
]


class ListAction(StrEnum):
    """What a provider may do with a person's marketing-list membership."""

    SUBSCRIBE = "subscribe"
    """Consent is granted (and confirmed, where double opt-in applies)."""
    CONFIRM = "confirm"
    """Consent was asked for and awaits the double opt-in click: send the confirmation
    email, and keep the person off the list until they confirm."""
    UNSUBSCRIBE = "unsubscribe"
    """Consent was refused or withdrawn: take an existing member off; never add."""
    SKIP = "skip"
    """No consent is known: send nothing at all."""


def list_action(consent: MarketingConsent) -> ListAction:
    """The one decision every provider adapter applies.

    ``GRANTED`` with double opt-in pending, or ``PENDING``, asks for confirmation;
    ``GRANTED`` otherwise subscribes; ``DENIED``/``WITHDRAWN`` unsubscribe an existing
    member; ``UNKNOWN`` does nothing.
    """
    status = consent.status
    if status is ConsentStatus.GRANTED:
        if consent.double_opt_in is DoubleOptIn.PENDING:
            return ListAction.CONFIRM
        return ListAction.SUBSCRIBE
    if status is ConsentStatus.PENDING:
        return ListAction.CONFIRM
    if status in (ConsentStatus.DENIED, ConsentStatus.WITHDRAWN):
        return ListAction.UNSUBSCRIBE
    return ListAction.SKIP


def no_consent(email: str) -> UpsertResult:
    """The result for a person sent nowhere because no consent is known."""
    return UpsertResult(
        reference=email,
        status=UpsertStatus.REJECTED,
        error_code="no_consent",
        reason="no marketing consent is known: nothing was sent",
    )


class Erasable(Protocol):
    """Anything with a GDPR ``erase(email)``: email providers and CRMs alike."""

    name: str

    def erase(self, email: str) -> Operation[ErasureResult]:
        """Delete the person from this system."""
        ...


def _failed(provider: Erasable, email: str, exc: DixisError) -> ErasureResult:
    return ErasureResult(
        provider=provider.name, email=email, erased=False, detail=f"failed: {exc.code}"
    )


def erase_everywhere(
    email: str,
    providers: Sequence[Erasable],
    run: Callable[[Erasable, Operation[ErasureResult]], ErasureResult],
) -> list[ErasureResult]:
    """Erase ``email`` at every provider; one result per provider, in input order.

    ``run(provider, operation)`` runs one provider's operation (usually with that
    provider's driver). A failure at one provider is reported in its result
    (``erased=False``, ``detail="failed: <code>"``) and does not stop the others, so
    the caller can retry exactly the ones that failed.
    """
    results: list[ErasureResult] = []
    for provider in providers:
        try:
            results.append(run(provider, provider.erase(email)))
        except DixisError as exc:
            results.append(_failed(provider, email, exc))
    return results


async def aerase_everywhere(
    email: str,
    providers: Sequence[Erasable],
    run: Callable[[Erasable, Operation[ErasureResult]], Awaitable[ErasureResult]],
) -> list[ErasureResult]:
    """:func:`erase_everywhere` on asyncio, the providers erased concurrently."""

    async def one(provider: Erasable) -> ErasureResult:
        try:
            return await run(provider, provider.erase(email))
        except DixisError as exc:
            return _failed(provider, email, exc)

    return list(await asyncio.gather(*(one(p) for p in providers)))
