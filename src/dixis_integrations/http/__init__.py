"""The transport driver: operations, endpoints, budgets, retries and redaction.

Adapters build requests with :class:`Endpoint` and write operations as generators; the
:class:`Driver` and :class:`AsyncDriver` run them. Nothing else in the library retries,
sleeps for a vendor, or applies auth.
"""

from dixis_integrations.http.budget import Budget, Budgets
from dixis_integrations.http.driver import (
    AsyncDriver,
    CallRecord,
    Driver,
    Operation,
    RetryPolicy,
    completed,
    unsupported,
)
from dixis_integrations.http.endpoint import (
    Classifier,
    Endpoint,
    Limits,
    Window,
    default_classify,
    idempotency_key,
    parse_retry_after,
    request_id_of,
)
from dixis_integrations.http.redact import redact_mapping, redact_url, register_secret

__all__ = [
    "AsyncDriver",
    "Budget",
    "Budgets",
    "CallRecord",
    "Classifier",
    "Driver",
    "Endpoint",
    "Limits",
    "Operation",
    "RetryPolicy",
    "Window",
    "completed",
    "default_classify",
    "idempotency_key",
    "parse_retry_after",
    "redact_mapping",
    "redact_url",
    "register_secret",
    "request_id_of",
    "unsupported",
]
