"""The journey planner: a pure function of journeys, customer activities and the time.

``plan(journeys, activities, now)`` returns the sends due at ``now``, each with a
deterministic idempotency key per (customer, journey, step, occurrence). No I/O and no
clock: the same input gives the same sends on every machine, in any input order. A
redelivered activity (same ``event_id``) counts once; quiet hours are read in
Europe/Athens (``zoneinfo``), so a send that falls at night moves to the next morning.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from dixis_integrations.errors import FieldError, InvalidInput
from dixis_integrations.http.endpoint import idempotency_key
from dixis_integrations.marketing.journeys import (
    ConditionKind,
    ExitRule,
    Journey,
    Step,
    Trigger,
)

__all__ = [
    "Activity",
    "ActivityKind",
    "DueSend",
    "QuietHours",
    "activities_from_event",
    "memberships",
    "plan",
    "replenishment_cadence",
    "segment_changes",
    "send_key",
]


class ActivityKind(StrEnum):
    """What a customer did (or what happened to them) as journeys see it."""

    CUSTOMER_CREATED = "customer_created"
    ORDER_PLACED = "order_placed"
    ORDER_DELIVERED = "order_delivered"
    SEGMENT_ENTERED = "segment_entered"
    SEGMENT_LEFT = "segment_left"
    CART_ABANDONED = "cart_abandoned"
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True, slots=True)
class Activity:
    """One fact about one customer, at an aware instant.

    ``event_id`` identifies the fact: a redelivered event carries the same id and is
    counted once. ``reference`` is the order or cart id; ``segment`` the segment or flag
    name for segment entries and exits.
    """

    event_id: str
    customer_id: str
    kind: ActivityKind
    at: datetime
    reference: str | None = None
    segment: str | None = None

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        if not self.event_id:
            errors.append(FieldError(("event_id",), "must not be empty", "missing"))
        if not self.customer_id:
            errors.append(FieldError(("customer_id",), "must not be empty", "missing"))
        if not isinstance(self.at, datetime) or self.at.tzinfo is None:
            errors.append(FieldError(("at",), "must be a timezone-aware datetime", "naive"))
        if self.kind in (ActivityKind.SEGMENT_ENTERED, ActivityKind.SEGMENT_LEFT) and (
            not self.segment
        ):
            errors.append(FieldError(("segment",), "segment events name their segment"))
        if errors:
            raise InvalidInput("invalid activity", errors=errors)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No marketing mail between ``start`` and ``end`` local time in ``zone``.

    The default is 21:00 to 09:00 in Europe/Athens; a window may wrap midnight.
    """

    start: time = time(21, 0)
    end: time = time(9, 0)
    zone: str = "Europe/Athens"

    @property
    def tz(self) -> ZoneInfo:
        """The zone as a ``ZoneInfo``."""
        return ZoneInfo(self.zone)

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` (aware) falls inside the quiet window."""
        if self.start == self.end:
            return False
        t = moment.astimezone(self.tz).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def next_allowed(self, moment: datetime) -> datetime:
        """``moment`` itself, or the end of the quiet window it falls in (aware UTC)."""
        if not self.contains(moment):
            return moment.astimezone(UTC)
        local = moment.astimezone(self.tz)
        day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            day += timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=self.tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DueSend:
    """One message due now: what to send to whom, and the key that makes it happen once.

    ``scheduled_at`` is entry plus the step's delay; ``send_at`` is that moved out of
    quiet hours. ``occurrence`` tells runs of a repeating journey apart ("" for a
    journey each customer enters once).
    """

    key: str
    customer_id: str
    journey_id: str
    journey_version: int
    step_id: str
    occurrence: str
    template: str
    subject: str
    entered_at: datetime
    scheduled_at: datetime
    send_at: datetime
    transactional: bool = False
    recommendations: bool = False
    explanation: tuple[str, ...] = field(default=(), compare=False)


def send_key(tenant: str, journey_id: str, step_id: str, customer_id: str, occurrence: str) -> str:
    """The idempotency key of one (customer, journey, step, occurrence)."""
    return idempotency_key(
        tenant, f"journey:{journey_id}:{step_id}", f"{customer_id}\x1f{occurrence}"
    )


def replenishment_cadence(order_times: Sequence[datetime], min_orders: int = 3) -> timedelta | None:
    """The customer's own buying cadence: the median gap between consecutive orders.

    ``None`` with fewer than ``min_orders`` distinct order instants. The lower median
    is used, so the result is always one of the observed gaps.
    """
    times = sorted(set(order_times))
    if len(times) < max(2, min_orders):
        return None
    gaps = [int((b - a).total_seconds() * 1_000_000) for a, b in itertools.pairwise(times)]
    return timedelta(microseconds=statistics.median_low(gaps))


class _History:
    """One customer's activities, deduplicated by event id and sorted by time."""

    def __init__(self, activities: list[Activity]) -> None:
        self.items = activities
        self.orders = [a for a in activities if a.kind is ActivityKind.ORDER_PLACED]

    def of(self, kind: ActivityKind) -> list[Activity]:
        return [a for a in self.items if a.kind is kind]

    def ordered_between(self, after: datetime, until: datetime) -> bool:
        return any(after < a.at <= until for a in self.orders)

    def in_segment(self, segment: str, at: datetime) -> bool:
        member = False
        for a in self.items:
            if a.at > at:
                break
            if a.segment == segment and a.kind is ActivityKind.SEGMENT_ENTERED:
                member = True
            elif a.segment == segment and a.kind is ActivityKind.SEGMENT_LEFT:
                member = False
        return member

    def first_exit(self, journey: Journey, entered: datetime) -> Activity | None:
        for a in self.items:
            if a.at <= entered:
                continue
            if (
                (ExitRule.ORDERED in journey.exit_on and a.kind is ActivityKind.ORDER_PLACED)
                or (
                    ExitRule.UNSUBSCRIBED in journey.exit_on and a.kind is ActivityKind.UNSUBSCRIBED
                )
                or (
                    ExitRule.SEGMENT_LEFT in journey.exit_on
                    and a.kind is ActivityKind.SEGMENT_LEFT
                    and a.segment == journey.segment
                )
            ):
                return a
        return None


def _occurrence(a: Activity) -> str:
    return a.reference or a.event_id


def _entries(journey: Journey, h: _History, now: datetime) -> list[tuple[datetime, str, str]]:
    """(entered_at, occurrence, why) for each time the customer entered ``journey``."""
    trigger = journey.trigger
    found: list[tuple[datetime, str, str]] = []
    if trigger is Trigger.CUSTOMER_CREATED:
        found = [
            (a.at, a.event_id, "customer created") for a in h.of(ActivityKind.CUSTOMER_CREATED)
        ]
    elif trigger is Trigger.FIRST_ORDER:
        found = [(a.at, _occurrence(a), "first order") for a in h.orders[:1]]
    elif trigger is Trigger.ORDER_DELIVERED:
        found = [
            (a.at, _occurrence(a), f"order {_occurrence(a)} delivered")
            for a in h.of(ActivityKind.ORDER_DELIVERED)
        ]
    elif trigger is Trigger.CART_ABANDONED:
        found = [
            (a.at, _occurrence(a), f"cart {_occurrence(a)} abandoned")
            for a in h.of(ActivityKind.CART_ABANDONED)
        ]
    elif trigger is Trigger.SEGMENT_ENTERED:
        member = False
        for a in h.items:
            if a.segment != journey.segment:
                continue
            if a.kind is ActivityKind.SEGMENT_ENTERED and not member:
                member = True
                stamp = a.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                found.append((a.at, f"{a.segment}@{stamp}", f"entered segment {a.segment}"))
            elif a.kind is ActivityKind.SEGMENT_LEFT:
                member = False
    elif trigger is Trigger.NO_ORDER_FOR and h.orders and journey.days is not None:
        last = h.orders[-1]
        entered = last.at + timedelta(days=journey.days)
        if entered <= now:
            found = [(entered, _occurrence(last), f"no order for {journey.days} days")]
    elif trigger is Trigger.REPLENISHMENT_DUE and h.orders:
        cadence = replenishment_cadence([a.at for a in h.orders], journey.min_orders)
        if cadence is not None:
            last = h.orders[-1]
            entered = last.at + cadence - journey.lead
            if entered <= now:
                why = f"orders every {cadence}; next one expected {last.at + cadence:%Y-%m-%d}"
                found = [(entered, _occurrence(last), why)]
    found = [e for e in found if e[0] <= now]
    if not journey.repeat:
        return [(at, "", why) for at, _, why in found[:1]]
    return found


def _conditions_hold(step: Step, h: _History, entered: datetime, at: datetime) -> bool:
    for c in step.conditions:
        if c.kind is ConditionKind.NO_ORDER_SINCE_ENTRY and h.ordered_between(entered, at):
            return False
        if c.kind is ConditionKind.HAS_ORDERED and not any(a.at <= at for a in h.orders):
            return False
        if c.kind is ConditionKind.IN_SEGMENT and not h.in_segment(c.value or "", at):
            return False
    return True


def _histories(activities: Iterable[Activity], now: datetime) -> dict[str, _History]:
    # A stable order on every field makes duplicates and ties resolve the same way
    # whatever order the activities came in.
    def sort_key(a: Activity) -> tuple[Any, ...]:
        return (a.at, a.event_id, a.kind.value, a.reference or "", a.segment or "")

    seen: dict[str, Activity] = {}
    for a in activities:
        if not isinstance(a, Activity):
            raise InvalidInput("plan() takes Activity objects")
        if a.at > now:
            continue
        kept = seen.get(a.event_id)
        if kept is None or sort_key(a) < sort_key(kept):
            seen[a.event_id] = a
    by_customer: dict[str, list[Activity]] = {}
    for a in sorted(seen.values(), key=sort_key):
        by_customer.setdefault(a.customer_id, []).append(a)
    return {cid: _History(items) for cid, items in by_customer.items()}


def plan(
    journeys: Iterable[Journey],
    activities: Iterable[Activity],
    now: datetime,
    *,
    quiet_hours: QuietHours | None = QuietHours(),
    tenant: str = "default",
) -> list[DueSend]:
    """The sends due at ``now``, sorted by send time, customer, journey and step.

    A step is due when its send time (entry + delay, moved out of quiet hours unless the
    journey is transactional) has come, it is at most the journey's ``stale_after``
    late, its conditions hold at its send time, and no exit event of the journey
    happened between the entry and ``now``. Activities after ``now`` are ignored.
    Sends already made are not known here: the runner's log skips them.

    Raises:
        InvalidInput: ``now`` is naive.
    """
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise InvalidInput("now must be aware", errors=[FieldError(("now",), "naive datetime")])
    journeys = tuple(journeys)
    histories = _histories(activities, now)
    due: list[tuple[Any, ...]] = []
    for customer_id in sorted(histories):
        h = histories[customer_id]
        for journey in journeys:
            quiet = None if journey.transactional else quiet_hours
            for entered, occurrence, why in _entries(journey, h, now):
                exit_event = h.first_exit(journey, entered)
                if exit_event is not None and exit_event.at <= now:
                    continue
                for index, step in enumerate(journey.steps):
                    scheduled = entered + step.delay
                    send_at = quiet.next_allowed(scheduled) if quiet else scheduled.astimezone(UTC)
                    if send_at > now or now - send_at > journey.stale_after:
                        continue
                    if not _conditions_hold(step, h, entered, send_at):
                        continue
                    send = DueSend(
                        key=send_key(tenant, journey.id, step.id, customer_id, occurrence),
                        customer_id=customer_id,
                        journey_id=journey.id,
                        journey_version=journey.version,
                        step_id=step.id,
                        occurrence=occurrence,
                        template=step.template,
                        subject=step.subject,
                        entered_at=entered.astimezone(UTC),
                        scheduled_at=scheduled.astimezone(UTC),
                        send_at=send_at,
                        transactional=journey.transactional,
                        recommendations=step.recommendations,
                        explanation=(
                            f"entered {journey.id} v{journey.version}: {why}",
                            f"step {step.id} after {step.delay}",
                        ),
                    )
                    due.append((send_at, customer_id, journey.id, index, occurrence, send))
    due.sort(key=lambda row: row[:5])
    return [row[5] for row in due]


def activities_from_event(event: Any) -> list[Activity]:
    """The journey activities of a library event (``customer.created``, ``order.created``).

    Other events give no activity (delivery and segment events come from their own
    sources, with the customer id they lack).
    """
    from dixis_integrations.models.events import CustomerCreated, OrderCreated

    if isinstance(event, CustomerCreated):
        return [
            Activity(
                event_id=event.event_id,
                customer_id=event.customer.id,
                kind=ActivityKind.CUSTOMER_CREATED,
                at=event.customer.created_at,
            )
        ]
    if isinstance(event, OrderCreated):
        return [
            Activity(
                event_id=event.event_id,
                customer_id=event.order.customer.id,
                kind=ActivityKind.ORDER_PLACED,
                at=event.order.created_at,
                reference=event.order.id,
            )
        ]
    return []


_FLAGS = ("high_value", "frequent_buyer", "at_risk")


class _Segmented(Protocol):
    # the fields of a segmentation result that journeys read
    @property
    def customer_id(self) -> str: ...
    @property
    def segment(self) -> str: ...
    @property
    def high_value(self) -> bool: ...
    @property
    def frequent_buyer(self) -> bool: ...
    @property
    def at_risk(self) -> bool: ...


def memberships(results: Iterable[_Segmented]) -> dict[str, frozenset[str]]:
    """Customer id -> the named segment and the flags that are true (``at_risk``...), from
    segmentation results (:class:`~dixis_integrations.marketing.segmentation.CustomerSegment`)."""
    return {
        r.customer_id: frozenset({r.segment, *(f for f in _FLAGS if getattr(r, f))})
        for r in results
    }


def segment_changes(
    previous: Mapping[str, Collection[str]],
    current: Mapping[str, Collection[str]],
    at: datetime,
) -> list[Activity]:
    """The segment entries and exits between two segmentation runs, as activities.

    Event ids are derived from (customer, segment, direction, ``at``), so feeding the same
    pair of runs twice gives the same ids and the planner counts them once. A customer
    missing from ``current`` (no counting order any more) leaves every segment.
    """
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidInput("at must be aware", errors=[FieldError(("at",), "naive datetime")])
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out: list[Activity] = []
    for customer_id in sorted(set(previous) | set(current)):
        before = set(previous.get(customer_id, ()))
        after = set(current.get(customer_id, ()))
        for segment, kind in [
            *((s, ActivityKind.SEGMENT_LEFT) for s in sorted(before - after)),
            *((s, ActivityKind.SEGMENT_ENTERED) for s in sorted(after - before)),
        ]:
            direction = "entered" if kind is ActivityKind.SEGMENT_ENTERED else "left"
            out.append(
                Activity(
                    event_id=f"segment:{customer_id}:{segment}:{direction}:{stamp}",
                    customer_id=customer_id,
                    kind=kind,
                    at=at,
                    segment=segment,
                )
            )
    return out
