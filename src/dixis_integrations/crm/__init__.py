"""CRM: customers as contacts with order aggregates, leads kept locally, GDPR erasure.

The vendor adapters live in their own modules (``crm.hubspot``, ``crm.salesforce``,
``crm.pipedrive``) and are imported only when named; this package re-exports the
vendor-neutral pieces.
"""

from dixis_integrations.crm.aggregates import (
    EXCLUDED_STATUSES,
    CustomerAggregate,
    aggregate_customer,
    aggregate_orders,
)
from dixis_integrations.crm.contacts import (
    chunks,
    contact_from_customer,
    validate_contact,
    validate_lead,
)
from dixis_integrations.crm.erasure import erase_everywhere
from dixis_integrations.crm.fingerprints import (
    ContactFingerprints,
    SQLiteContactFingerprints,
    fingerprint,
    skip_unchanged,
    sync_contacts,
)
from dixis_integrations.crm.leads import LeadBook, LeadStore, SQLiteLeadStore

__all__ = [
    "EXCLUDED_STATUSES",
    "ContactFingerprints",
    "CustomerAggregate",
    "LeadBook",
    "LeadStore",
    "SQLiteContactFingerprints",
    "SQLiteLeadStore",
    "aggregate_customer",
    "aggregate_orders",
    "chunks",
    "contact_from_customer",
    "erase_everywhere",
    "fingerprint",
    "skip_unchanged",
    "sync_contacts",
    "validate_contact",
    "validate_lead",
]
