"""Marketing: customer segmentation, journeys and email providers."""

__all__: list[str] = []

# Journeys, consent, recommendations and the email providers, imported on first use so
# that the segment command does not pay for the HTTP adapters (import from the
# submodules, e.g. ``dixis_integrations.marketing.brevo``, for precise static types).
import importlib as _importlib
from typing import Any as _Any

_LAZY: dict[str, str] = {
    "Activity": "planner",
    "ActivityKind": "planner",
    "DueSend": "planner",
    "QuietHours": "planner",
    "plan": "planner",
    "memberships": "planner",
    "segment_changes": "planner",
    "BUILT_IN": "journeys",
    "Journey": "journeys",
    "Step": "journeys",
    "Trigger": "journeys",
    "journey_from_mapping": "journeys",
    "parse_journey": "journeys",
    "AsyncJourneyRunner": "runner",
    "Delivery": "runner",
    "DeliveryStatus": "runner",
    "JourneyRunner": "runner",
    "Recipient": "runner",
    "SQLiteSentLog": "runner",
    "PostgresSentLog": "runner",
    "ListAction": "consent",
    "aerase_everywhere": "consent",
    "erase_everywhere": "consent",
    "list_action": "consent",
    "SegmentPush": "push",
    "apush_segments": "push",
    "push_segments": "push",
    "segment_tags": "push",
    "Purchase": "recommend",
    "RecommendationModel": "recommend",
    "Brevo": "brevo",
    "BrevoConfig": "brevo",
    "Mailchimp": "mailchimp",
    "MailchimpConfig": "mailchimp",
    "SMTP": "smtp",
    "SMTPConfig": "smtp",
}
__all__ += list(_LAZY)


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_importlib.import_module(f"{__name__}.{module}"), name)
