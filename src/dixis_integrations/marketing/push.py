"""Push segmentation results to CRMs (the contact's ``segment`` property) and to email
providers (a tag, which Brevo maps to a list through ``tag_lists``), honouring consent.

One call, any configured providers: :func:`push_segments` (sync) or :func:`apush_segments`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dixis_integrations.errors import DixisError, FieldError, InvalidInput
from dixis_integrations.http.driver import Operation
from dixis_integrations.marketing.segmentation import CustomerSegment
from dixis_integrations.models.crm import CRMContact, UpsertResult, UpsertStatus
from dixis_integrations.models.email import Subscriber
from dixis_integrations.protocols import CRMProvider, EmailProvider

__all__ = ["FLAG_NAMES", "SegmentPush", "apush_segments", "push_segments", "segment_tags"]

FLAG_NAMES = ("high_value", "frequent_buyer", "at_risk")
"""The business flags, as tags when ``flags=True``."""

Runner = Callable[[Any, Operation[Any]], Any]
AsyncRunner = Callable[[Any, Operation[Any]], Awaitable[Any]]


@dataclass(frozen=True)
class SegmentPush:
    """What a push did, per provider name, one result per pushed customer in id order.

    Attributes:
        crm: CRM name -> results of the contact upserts (``segment`` set).
        email: email provider name -> results of the subscriber upserts (segment tag added);
            people without marketing consent come back ``REJECTED`` / ``no_consent``
            and nothing was sent for them.
        missing: customer ids that were scored but have no entry in ``people`` (not pushed).
    """

    crm: dict[str, list[UpsertResult]] = field(default_factory=dict)
    email: dict[str, list[UpsertResult]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def segment_tags(result: CustomerSegment, *, prefix: str = "", flags: bool = False) -> list[str]:
    """The tags a customer carries at email providers: the segment name (``Champions``),
    then, with ``flags``, each business flag that is true (``high_value``...)."""
    tags = [prefix + result.segment]
    if flags:
        values = (result.high_value, result.frequent_buyer, result.at_risk)
        tags.extend(prefix + name for name, on in zip(FLAG_NAMES, values, strict=True) if on)
    return tags


def _subscriber(contact: CRMContact, tags: Sequence[str]) -> Subscriber:
    return Subscriber(
        email=contact.email,
        first_name=contact.first_name,
        last_name=contact.last_name,
        consent=contact.consent,
        tags=tuple(tags),
    )


def _failed(reference: str, exc: DixisError) -> UpsertResult:
    return UpsertResult(
        reference=reference, status=UpsertStatus.REJECTED, error_code=exc.code, reason=str(exc)
    )


@dataclass(frozen=True)
class _Plan:
    contacts: list[CRMContact]
    subscribers: list[Subscriber]
    missing: list[str]


def _plan(
    results: Iterable[CustomerSegment],
    people: Mapping[str, CRMContact],
    prefix: str,
    flags: bool,
    batch: int,
) -> _Plan:
    if batch < 1:
        raise InvalidInput(
            "crm_batch must be at least 1", errors=[FieldError(("crm_batch",), f"{batch} < 1")]
        )
    contacts: list[CRMContact] = []
    subscribers: list[Subscriber] = []
    missing: list[str] = []
    for result in sorted(results, key=lambda r: r.customer_id):
        person = people.get(result.customer_id)
        if person is None:
            missing.append(result.customer_id)
            continue
        contact = person.model_copy(update={"segment": result.segment})
        contacts.append(contact)
        subscribers.append(_subscriber(contact, segment_tags(result, prefix=prefix, flags=flags)))
    return _Plan(contacts, subscribers, missing)


def push_segments(
    results: Iterable[CustomerSegment],
    people: Mapping[str, CRMContact],
    run: Runner,
    *,
    crm: Sequence[CRMProvider] = (),
    email: Sequence[EmailProvider] = (),
    tag_prefix: str = "",
    flags: bool = False,
    crm_batch: int = 100,
) -> SegmentPush:
    """Push each scored customer's segment to every given CRM and email provider.

    ``people`` maps a customer id to the contact we hold for them (email, names, order
    aggregates, consent). CRMs get ``upsert_contacts`` with ``segment`` set to the segment
    name, ``crm_batch`` contacts per call. Email providers get ``upsert_subscriber`` with
    the segment name as a tag (see :func:`segment_tags`): Mailchimp tags the member,
    Brevo adds the contact to the list its ``tag_lists`` maps the tag to. Consent is the
    provider's rule: without it nothing is sent for that person. ``run(provider,
    operation)`` runs one operation (usually with that provider's driver). A failure is
    reported in the results of the people it concerns (``REJECTED`` with the error's
    code) and never stops the other people or providers. Tags of a customer's previous
    segment are not removed (the ``EmailProvider`` protocol adds tags only).
    """
    plan = _plan(results, people, tag_prefix, flags, crm_batch)
    out = SegmentPush(missing=plan.missing)
    for provider in crm:
        crm_results: list[UpsertResult] = []
        for low in range(0, len(plan.contacts), crm_batch):
            part = plan.contacts[low : low + crm_batch]
            try:
                crm_results.extend(run(provider, provider.upsert_contacts(part)))
            except DixisError as exc:
                crm_results.extend(_failed(c.reference, exc) for c in part)
        out.crm[provider.name] = crm_results
    for sender in email:
        email_results: list[UpsertResult] = []
        for subscriber in plan.subscribers:
            try:
                email_results.append(run(sender, sender.upsert_subscriber(subscriber)))
            except DixisError as exc:
                email_results.append(_failed(subscriber.email, exc))
        out.email[sender.name] = email_results
    return out


async def apush_segments(
    results: Iterable[CustomerSegment],
    people: Mapping[str, CRMContact],
    run: AsyncRunner,
    *,
    crm: Sequence[CRMProvider] = (),
    email: Sequence[EmailProvider] = (),
    tag_prefix: str = "",
    flags: bool = False,
    crm_batch: int = 100,
) -> SegmentPush:
    """:func:`push_segments` on asyncio: the providers are pushed concurrently, each one's
    calls in order (its driver paces them within the vendor's limits)."""
    plan = _plan(results, people, tag_prefix, flags, crm_batch)

    async def to_crm(provider: CRMProvider) -> list[UpsertResult]:
        done: list[UpsertResult] = []
        for low in range(0, len(plan.contacts), crm_batch):
            part = plan.contacts[low : low + crm_batch]
            try:
                done.extend(await run(provider, provider.upsert_contacts(part)))
            except DixisError as exc:
                done.extend(_failed(c.reference, exc) for c in part)
        return done

    async def to_email(sender: EmailProvider) -> list[UpsertResult]:
        done: list[UpsertResult] = []
        for subscriber in plan.subscribers:
            try:
                done.append(await run(sender, sender.upsert_subscriber(subscriber)))
            except DixisError as exc:
                done.append(_failed(subscriber.email, exc))
        return done

    done = await asyncio.gather(*(to_crm(p) for p in crm), *(to_email(s) for s in email))
    return SegmentPush(
        crm={p.name: r for p, r in zip(crm, done[: len(crm)], strict=True)},
        email={s.name: r for s, r in zip(email, done[len(crm) :], strict=True)},
        missing=plan.missing,
    )
