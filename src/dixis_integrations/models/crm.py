"""CRM records: contacts with order aggregates, leads, upsert outcomes and changes.

Aggregates (orders, total spent, last order date) are computed by the library from our
orders, so every CRM receives the same numbers.
"""

from __future__ import annotations

from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dixis_integrations.models._types import WireStrEnum
from dixis_integrations.models.customer import AcquisitionSource, MarketingConsent
from dixis_integrations.models.money import Money

__all__ = [
    "CRMContact",
    "CRMEvent",
    "CRMEventKind",
    "ContactChange",
    "ContactChangePage",
    "ErasureResult",
    "Lead",
    "LeadStatus",
    "UpsertResult",
    "UpsertStatus",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class CRMContact(BaseModel):
    """A customer as a CRM sees them."""

    model_config = _FROZEN
    reference: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    total_orders: int = Field(default=0, ge=0)
    total_spent: Money
    last_order_date: date | None = None
    segment: str | None = None
    acquisition: AcquisitionSource | None = None
    consent: MarketingConsent = MarketingConsent()


class UpsertStatus(WireStrEnum):
    """The outcome of one upsert."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


class UpsertResult(BaseModel):
    """One record of an upsert (single or bulk, in input order).

    A ``REJECTED`` result with ``error_code="rate_limited"`` was not sent because the
    vendor's budget ran out mid-bulk; ``retry_at`` says when it may be sent again.
    """

    model_config = _FROZEN
    reference: str
    status: UpsertStatus
    external_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    retry_at: AwareDatetime | None = None


class LeadStatus(WireStrEnum):
    """Where a lead stands."""

    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    CONVERTED = "converted"
    LOST = "lost"


class Lead(BaseModel):
    """A prospective customer, created in the CRM and kept locally."""

    model_config = _FROZEN
    id: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    phone: str | None = None
    source: str | None = None
    status: LeadStatus = LeadStatus.NEW
    provider: str | None = None
    crm_id: str | None = None
    created_at: AwareDatetime


class ErasureResult(BaseModel):
    """The outcome of a GDPR erase at one system."""

    model_config = _FROZEN
    provider: str
    email: str
    erased: bool
    detail: str | None = None


class ContactChange(BaseModel):
    """A contact changed (or was deleted) in the CRM since the last pull."""

    model_config = _FROZEN
    provider: str
    external_id: str
    email: str | None = None
    deleted: bool = False
    changed_at: AwareDatetime
    properties: dict[str, str] = Field(default_factory=dict)


class ContactChangePage(BaseModel):
    """One page of changes and the cursor to resume from."""

    model_config = _FROZEN
    changes: tuple[ContactChange, ...]
    cursor: str | None = None
    has_more: bool = False


class CRMEventKind(WireStrEnum):
    """What a CRM webhook says happened to a record."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    MERGED = "merged"
    PRIVACY_DELETED = "privacy_deleted"
    OTHER = "other"


class CRMEvent(BaseModel):
    """One verified webhook notification from a CRM, in one shape for every vendor.

    ``vendor_type`` keeps the vendor's own event name (``contact.propertyChange``,
    ``change.person``) for whatever the normalised ``kind`` does not say.
    """

    model_config = _FROZEN
    provider: str
    event_id: str
    kind: CRMEventKind
    object_type: str
    object_id: str
    occurred_at: AwareDatetime
    vendor_type: str
    property_name: str | None = None
    property_value: str | None = None
