"""Customers, their marketing consent and where they came from; the Greek ΑΦΜ check.

A customer always has a valid, lower-cased email and a name or a company. Consent is
explicit: :meth:`MarketingConsent.allows_marketing` is the one question senders ask.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from dixis_integrations.models._types import (
    Email,
    NonEmptyStr,
    Reference,
    UtcDatetime,
    WireStrEnum,
    utcnow,
)
from dixis_integrations.models.address import Address, E164Phone

__all__ = [
    "AcquisitionSource",
    "ConsentStatus",
    "Customer",
    "DoubleOptIn",
    "LegalBasis",
    "MarketingConsent",
    "validate_afm",
]

_AFM_PREFIXES: Final = ("EL", "GR")


def validate_afm(afm: str) -> str:
    """Check a Greek tax number (ΑΦΜ) and return its 9 digits.

    The check digit is ``sum(d[i] * 2 ** (8 - i) for i in 0..7) % 11 % 10 == d[8]``.
    An ``EL`` (VIES) or ``GR`` prefix, spaces and dots are accepted and removed.

    Args:
        afm: e.g. ``"090000045"``, ``"EL090000045"`` or ``"090 000 045"``.

    Returns:
        The 9 digits.

    Raises:
        ValueError: if it is not 9 digits, is all zeros, or the check digit is wrong.
    """
    text = afm.strip().upper().replace(" ", "").replace(".", "")
    if text[:2] in _AFM_PREFIXES:
        text = text[2:]
    if len(text) != 9 or not text.isascii() or not text.isdigit():
        raise ValueError("a Greek VAT number (ΑΦΜ) has 9 digits")
    if text == "000000000":
        raise ValueError("000000000 is not a valid ΑΦΜ")
    total = sum(int(text[i]) << (8 - i) for i in range(8))
    if total % 11 % 10 != int(text[8]):
        raise ValueError("the ΑΦΜ check digit does not match")
    return text


class ConsentStatus(WireStrEnum):
    """What the person said about marketing messages."""

    GRANTED = "granted"
    PENDING = "pending"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    UNKNOWN = "unknown"


class LegalBasis(WireStrEnum):
    """The GDPR article 6 basis the processing relies on."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGITIMATE_INTEREST = "legitimate_interest"


class DoubleOptIn(WireStrEnum):
    """Whether a confirmation email is needed, and whether it was confirmed."""

    NOT_REQUIRED = "not_required"
    PENDING = "pending"
    CONFIRMED = "confirmed"


class MarketingConsent(BaseModel):
    """A customer's marketing consent, with its provenance (GDPR accountability).

    The default is ``UNKNOWN``, which does not allow marketing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: ConsentStatus = ConsentStatus.UNKNOWN
    source: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None = None
    timestamp: UtcDatetime | None = None
    legal_basis: LegalBasis = LegalBasis.CONSENT
    double_opt_in: DoubleOptIn = DoubleOptIn.NOT_REQUIRED

    def allows_marketing(self) -> bool:
        """True only when consent is granted and, if double opt-in applies, confirmed."""
        return (
            self.status is ConsentStatus.GRANTED and self.double_opt_in is not DoubleOptIn.PENDING
        )


class AcquisitionSource(BaseModel):
    """Where a customer came from: ``channel`` (``"organic"``, ``"paid_search"``,
    ``"referral"``, ``"social"``, ``"email"``...) plus the UTM-style details."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: NonEmptyStr
    campaign: NonEmptyStr | None = None
    medium: NonEmptyStr | None = None
    referrer: NonEmptyStr | None = None


_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(?:-[A-Z]{2})?$")]
_Afm = Annotated[str, AfterValidator(validate_afm)]


class Customer(BaseModel):
    """A buyer on the marketplace, identified by our own ``id``.

    ``email`` is stripped and lower-cased. At least one of ``first_name``,
    ``last_name`` or ``company`` is required (the error is reported at ``company``).
    ``vat_number`` is a Greek ΑΦΜ, stored as its 9 digits. ``created_at`` is aware UTC.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Reference
    email: Email
    first_name: _Name | None = None
    last_name: _Name | None = None
    company: _Name | None = Field(default=None, validate_default=True)
    phone: E164Phone | None = None
    vat_number: _Afm | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    consent: MarketingConsent = MarketingConsent()
    acquisition: AcquisitionSource | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)
    locale: _Locale = "el-GR"

    @field_validator("company")
    @classmethod
    def _require_a_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        data = info.data
        names_known = "first_name" in data and "last_name" in data  # both validated
        if value is None and names_known and not (data["first_name"] or data["last_name"]):
            raise ValueError("first_name, last_name or company is required")
        return value

    @property
    def full_name(self) -> str:
        """First and last name joined by a space (empty when neither is set)."""
        first, last = self.first_name, self.last_name
        if first and last:
            return f"{first} {last}"
        return first or last or ""

    @property
    def display_name(self) -> str:
        """The person's name if known, else the company name."""
        return self.full_name or self.company or self.email
