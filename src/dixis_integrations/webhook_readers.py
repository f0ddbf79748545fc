"""How a vendor's webhook is checked and read: by the adapter's own ``read_webhook``.

A reader takes the configured adapter, the :class:`~dixis_integrations.webhooks.WebhookRequest`
and the host's webhook options for that integration (the credentials a vendor that signs
nothing sends back: Pipedrive's basic-auth pair, a secret in Brevo's or Mailchimp's URL,
Salesforce's organisation id), and returns the vendor-neutral facts the adapter's own
parser gives: :class:`~dixis_integrations.models.accounting.LedgerChange`,
:class:`~dixis_integrations.models.crm.CRMEvent`,
:class:`~dixis_integrations.models.inventory.StockUpdate`,
:class:`~dixis_integrations.models.email.ConsentChange` or
:class:`~dixis_integrations.models.events.ShipmentStatusChanged`.

Each adapter that receives webhooks reads its own, with a ``read_webhook(request,
options)`` method: the vendor's headers and signature scheme stay in its module. Every
reader verifies first (a bad signature is a
:class:`~dixis_integrations.errors.WebhookError`) and makes no call. For an adapter
without the method, a host can add a reader to :data:`READERS` (or pass ``readers``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from dixis_integrations.errors import WebhookError
from dixis_integrations.webhooks import WebhookRequest

__all__ = ["READERS", "WebhookReader", "read_webhook"]

WebhookReader = Callable[[Any, WebhookRequest, Mapping[str, Any]], list[Any]]
"""``(adapter, request, options) -> facts``."""


READERS: Final[dict[str, WebhookReader]] = {}
"""Readers for adapters without a ``read_webhook`` method (a host's own adapters), by
adapter name. Every built-in adapter that receives webhooks has the method."""


def read_webhook(
    adapter: Any,
    request: WebhookRequest,
    options: Mapping[str, Any] | None = None,
    *,
    readers: Mapping[str, WebhookReader] | None = None,
) -> list[Any]:
    """Verify and read one delivery with the adapter's own parser.

    Raises:
        WebhookError: the delivery does not verify, or does not parse.
        ConfigurationError: the secret needed to verify it is not configured.
        NotSupported: the adapter receives no webhooks.
    """
    from dixis_integrations.errors import NotSupported

    opts = options or {}
    name = str(getattr(adapter, "name", ""))
    own = getattr(adapter, "read_webhook", None)
    if callable(own):
        reader: WebhookReader | None = lambda a, r, o: list(own(r, o))  # noqa: E731
    else:
        reader = (readers if readers is not None else READERS).get(name)
    if reader is None:
        raise NotSupported(f"receiving webhooks from {name or type(adapter).__name__}")
    try:
        return reader(adapter, request, opts)
    except WebhookError:
        raise
    except (UnicodeDecodeError, ValueError, KeyError) as exc:
        raise WebhookError(
            f"the delivery does not parse: {type(exc).__name__}", vendor=name, code="malformed"
        ) from None
