"""Email and marketing records: subscribers with consent, messages and send results."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dixis_integrations.models.customer import MarketingConsent

__all__ = ["EmailMessage", "SendResult", "Subscriber"]

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
