"""Email and marketing records: subscribers with consent, messages, send results, batches.

Provider-neutral: each adapter maps these to its own wire format.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dixis_integrations.models._types import WireStrEnum
from dixis_integrations.models.crm import UpsertResult
from dixis_integrations.models.customer import ConsentStatus, MarketingConsent

__all__ = [
    "BatchState",
    "BatchSubmission",
    "ConsentChange",
    "EmailMessage",
    "MarketingEvent",
    "SendResult",
    "Subscriber",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Subscriber(BaseModel):
    """A person on a marketing list, with the consent that allows it."""

    model_config = _FROZEN
    email: str
    first_name: str | None = None
    last_name: str | None = None
    consent: MarketingConsent
    tags: tuple[str, ...] = ()
    attributes: dict[str, str] = Field(default_factory=dict)
    language: str = "el"


class EmailMessage(BaseModel):
    """One message to one person; ``idempotency_key`` makes a resend a no-op."""

    model_config = _FROZEN
    to: str
    subject: str
    html: str | None = None
    text: str | None = None
    template_id: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    idempotency_key: str
    tags: tuple[str, ...] = ()
    transactional: bool = False


class SendResult(BaseModel):
    """The provider's answer to a send."""

    model_config = _FROZEN
    provider: str
    message_id: str | None
    accepted: bool
    duplicate: bool = False
    reason: str | None = None


class BatchState(WireStrEnum):
    """Where an asynchronous provider batch stands."""

    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"


class BatchSubmission(BaseModel):
    """A batch handed to a provider: what was submitted, what was refused before sending
    (no consent, bad address), and the provider's progress once it is polled."""

    model_config = _FROZEN
    provider: str
    batch_id: str | None
    state: BatchState
    submitted: int
    finished: int = 0
    errored: int = 0
    rejected: tuple[UpsertResult, ...] = ()
    result_url: str | None = None


class MarketingEvent(BaseModel):
    """Something a person did, sent to a provider to drive its automations."""

    model_config = _FROZEN
    email: str
    name: str
    occurred_at: AwareDatetime
    properties: dict[str, str | int | bool] = Field(default_factory=dict)


class ConsentChange(BaseModel):
    """A person changed their consent at a provider (an unsubscribe link, a signup form):
    the host updates its own consent record, which the journey runner reads at send time."""

    model_config = _FROZEN
    provider: str
    email: str
    status: ConsentStatus
    at: AwareDatetime
    reason: str | None = None
