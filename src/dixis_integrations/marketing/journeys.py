"""Customer journeys as plain data: a trigger, timed steps with conditions, exit rules.

A :class:`Journey` is a frozen, validated value (loadable from a mapping, TOML or JSON);
it does nothing by itself. :mod:`.planner` turns journeys, activities and the time into
due sends; :mod:`.runner` sends them. The built-in journeys are listed in :data:`BUILT_IN`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dixis_integrations.errors import FieldError, InvalidInput

__all__ = [
    "BUILT_IN",
    "POST_DELIVERY_REVIEW",
    "REPLENISHMENT",
    "WELCOME",
    "WIN_BACK",
    "Condition",
    "ConditionKind",
    "ExitRule",
    "Journey",
    "Step",
    "Trigger",
    "journey_from_mapping",
    "parse_journey",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Trigger(StrEnum):
    """What makes a customer enter a journey."""

    CUSTOMER_CREATED = "customer_created"
    FIRST_ORDER = "first_order"
    ORDER_DELIVERED = "order_delivered"
    SEGMENT_ENTERED = "segment_entered"
    CART_ABANDONED = "cart_abandoned"
    NO_ORDER_FOR = "no_order_for"
    REPLENISHMENT_DUE = "replenishment_due"


class ExitRule(StrEnum):
    """What ends a journey early: no step is sent once it happened after the entry."""

    ORDERED = "ordered"
    UNSUBSCRIBED = "unsubscribed"
    SEGMENT_LEFT = "segment_left"


class ConditionKind(StrEnum):
    """A test on the customer's history at the step's send time."""

    NO_ORDER_SINCE_ENTRY = "no_order_since_entry"
    HAS_ORDERED = "has_ordered"
    IN_SEGMENT = "in_segment"


class Condition(BaseModel):
    """A step is skipped (the journey goes on) unless all its conditions hold.

    ``value`` names the segment for ``in_segment``.
    """

    model_config = _FROZEN
    kind: ConditionKind
    value: str | None = None

    @model_validator(mode="after")
    def _needs_value(self) -> Condition:
        if self.kind is ConditionKind.IN_SEGMENT and not self.value:
            raise ValueError("in_segment needs a value (the segment name)")
        return self


class Step(BaseModel):
    """One message of a journey, ``delay`` after the entry.

    ``template`` is the provider's template id (or our own template name); ``subject``
    is used by providers that send raw content. ``recommendations`` asks the runner to
    attach product recommendations to the message parameters.
    """

    model_config = _FROZEN
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")
    delay: timedelta = timedelta(0)
    template: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    conditions: tuple[Condition, ...] = ()
    recommendations: bool = False

    @model_validator(mode="after")
    def _delay_not_negative(self) -> Step:
        if self.delay < timedelta(0):
            raise ValueError("delay must not be negative")
        return self


class Journey(BaseModel):
    """A versioned journey: who enters (``trigger``), what they get, when it stops.

    Attributes:
        segment: the segment or flag name for ``segment_entered``.
        days: N for ``no_order_for``.
        repeat: ``False`` lets each customer enter once ever; ``True`` gives every
            trigger occurrence (each delivered order, each segment entry) its own run.
        transactional: sent without marketing consent (service messages only).
        stale_after: a step more than this late is dropped instead of sent late.
        min_orders: orders needed to learn a replenishment cadence.
        lead: how long before the expected next order a replenishment reminder goes.
    """

    model_config = _FROZEN
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")
    version: int = Field(default=1, ge=1)
    trigger: Trigger
    steps: tuple[Step, ...] = Field(min_length=1)
    exit_on: tuple[ExitRule, ...] = (ExitRule.UNSUBSCRIBED,)
    segment: str | None = None
    days: int | None = Field(default=None, ge=1)
    repeat: bool = False
    transactional: bool = False
    stale_after: timedelta = timedelta(days=3)
    min_orders: int = Field(default=3, ge=2)
    lead: timedelta = timedelta(days=1)

    @model_validator(mode="after")
    def _consistent(self) -> Journey:
        if self.trigger is Trigger.SEGMENT_ENTERED and not self.segment:
            raise ValueError("segment_entered needs 'segment'")
        if self.trigger is Trigger.NO_ORDER_FOR and self.days is None:
            raise ValueError("no_order_for needs 'days'")
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids must be unique")
        delays = [s.delay for s in self.steps]
        if delays != sorted(delays):
            raise ValueError("steps must be in delay order")
        return self


def _field_errors(exc: ValidationError) -> list[FieldError]:
    found = [
        FieldError(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors(include_url=False)
    ]
    # A container whose item failed is also reported as too short: the item says it all.
    return [
        f
        for f in found
        if not any(len(g.loc) > len(f.loc) and g.loc[: len(f.loc)] == f.loc for g in found)
    ]


def journey_from_mapping(data: Mapping[str, Any]) -> Journey:
    """A journey from plain data (delays as ``timedelta``, ISO 8601 durations or seconds).

    Raises:
        InvalidInput: naming every wrong field (``steps[1].delay``...).
    """
    try:
        return Journey.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidInput("invalid journey", errors=_field_errors(exc)) from None


def parse_journey(text: str, *, format: Literal["toml", "json"] = "toml") -> Journey:
    """A journey from TOML or JSON text.

    Raises:
        InvalidInput: the text does not parse, or the journey is not valid.
    """
    try:
        data = tomllib.loads(text) if format == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise InvalidInput(f"journey is not valid {format.upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("a journey is a table/object")
    return journey_from_mapping(data)


_NOT_ORDERED: Final = (Condition(kind=ConditionKind.NO_ORDER_SINCE_ENTRY),)
_STOP: Final = (ExitRule.ORDERED, ExitRule.UNSUBSCRIBED)

WELCOME: Final = Journey(
    id="welcome",
    trigger=Trigger.CUSTOMER_CREATED,
    steps=(
        Step(id="welcome", template="welcome", subject="Καλώς ήρθατε στο Dixis Fresh"),
        Step(
            id="recommendations",
            delay=timedelta(days=3),
            template="welcome_recommendations",
            subject="Φρέσκα προϊόντα για εσάς",
            conditions=_NOT_ORDERED,
            recommendations=True,
        ),
        Step(
            id="offer",
            delay=timedelta(days=7),
            template="welcome_offer",
            subject="Μια προσφορά για την πρώτη σας παραγγελία",
            conditions=_NOT_ORDERED,
        ),
    ),
    exit_on=_STOP,
)
"""Day 0 welcome, day 3 recommendations, day 7 offer; ordering ends it."""

POST_DELIVERY_REVIEW: Final = Journey(
    id="post_delivery_review",
    trigger=Trigger.ORDER_DELIVERED,
    steps=(
        Step(
            id="review",
            delay=timedelta(days=1),
            template="review_request",
            subject="Πώς σας φάνηκε η παραγγελία σας;",
        ),
    ),
    repeat=True,
)
"""A review request the day after each delivery."""

WIN_BACK: Final = Journey(
    id="win_back",
    trigger=Trigger.SEGMENT_ENTERED,
    segment="at_risk",
    steps=(
        Step(id="miss_you", template="win_back", subject="Σας περιμένουμε ξανά"),
        Step(
            id="offer",
            delay=timedelta(days=7),
            template="win_back_offer",
            subject="Μια προσφορά για την επιστροφή σας",
        ),
    ),
    exit_on=(ExitRule.ORDERED, ExitRule.UNSUBSCRIBED, ExitRule.SEGMENT_LEFT),
    repeat=True,
)
"""For customers flagged ``at_risk``: a reminder, then an offer a week later."""

REPLENISHMENT: Final = Journey(
    id="replenishment",
    trigger=Trigger.REPLENISHMENT_DUE,
    steps=(
        Step(
            id="reminder",
            template="replenishment",
            subject="Ώρα για φρέσκα προϊόντα;",
            recommendations=True,
        ),
    ),
    exit_on=_STOP,
    repeat=True,
)
"""A reminder a day before the customer's own cadence says the next order is due."""

BUILT_IN: Final[tuple[Journey, ...]] = (WELCOME, POST_DELIVERY_REVIEW, WIN_BACK, REPLENISHMENT)
