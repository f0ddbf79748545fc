"""How each vendor's webhook is checked and read: one reader per adapter name.

A reader takes the configured adapter, the :class:`~dixis_integrations.webhooks.WebhookRequest`
and the host's webhook options for that integration (the credentials a vendor that signs
nothing sends back: Pipedrive's basic-auth pair, a secret in Brevo's or Mailchimp's URL,
Salesforce's organisation id), and returns the vendor-neutral facts the adapter's own
parser gives: :class:`~dixis_integrations.models.accounting.LedgerChange`,
:class:`~dixis_integrations.models.crm.CRMEvent`,
:class:`~dixis_integrations.models.inventory.StockUpdate`,
:class:`~dixis_integrations.models.email.ConsentChange` or
:class:`~dixis_integrations.models.events.ShipmentStatusChanged`.

Every reader verifies first (a bad signature is a
:class:`~dixis_integrations.errors.WebhookError`) and makes no call. Hosts add readers for
their own adapters to :data:`READERS`, or give the adapter a ``read_webhook(request,
options)`` method, which is used first.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any, Final

from pydantic import SecretStr

from dixis_integrations.errors import ConfigurationError, WebhookError
from dixis_integrations.webhooks import WebhookRequest

__all__ = ["READERS", "WebhookReader", "read_webhook"]

WebhookReader = Callable[[Any, WebhookRequest, Mapping[str, Any]], list[Any]]
"""``(adapter, request, options) -> facts``."""


def _secret(options: Mapping[str, Any], key: str, integration: str) -> SecretStr:
    value = options.get(key)
    if value is None:
        raise ConfigurationError(
            f"webhooks of {integration} need {key!r}", key=f"webhooks.{integration}.{key}"
        )
    return value if isinstance(value, SecretStr) else SecretStr(str(value))


def _basic_auth(request: WebhookRequest) -> tuple[str, str] | None:
    header = request.header("authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _given_secret(request: WebhookRequest, options: Mapping[str, Any]) -> str | None:
    """The secret a delivery carried: in the URL's query (``secret`` unless the options'
    ``secret_param`` says otherwise), else as the basic-auth password."""
    given = request.query(str(options.get("secret_param", "secret")))
    if given is None:
        pair = _basic_auth(request)
        given = pair[1] if pair else None
    return given


def _quickbooks(adapter: Any, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
    return list(adapter.parse_webhook(request.body, request.header("intuit-signature")))


def _xero(adapter: Any, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
    return list(adapter.parse_webhook(request.body, request.header("x-xero-signature")))


def _boxnow(adapter: Any, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
    return [adapter.parse_webhook(request.body)]


def _stock(adapter: Any, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
    return list(adapter.parse_webhook(dict(request.headers), request.body))


def _hubspot(adapter: Any, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
    from dixis_integrations.crm.hubspot import verify_webhook

    secret = options.get("client_secret") or adapter.config.client_secret
    if secret is None:
        raise ConfigurationError(
            "HubSpot webhooks need the app's client_secret", key="hubspot.client_secret"
        )
    return list(
        verify_webhook(
            method=request.method,
            uri=str(options.get("url") or request.url),
            body=request.body,
            headers=dict(request.headers),
            client_secret=secret if isinstance(secret, SecretStr) else SecretStr(str(secret)),
        )
    )


def _pipedrive(adapter: Any, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
    from dixis_integrations.crm.pipedrive import verify_webhook

    return list(
        verify_webhook(
            body=request.body,
            headers=dict(request.headers),
            username=str(options.get("username") or ""),
            password=_secret(options, "password", "pipedrive"),
        )
    )


def _salesforce(adapter: Any, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
    from dixis_integrations.crm.salesforce import verify_outbound_message

    organization = options.get("organization_id")
    if not organization:
        raise ConfigurationError(
            "Salesforce outbound messages need organization_id",
            key="webhooks.salesforce.organization_id",
        )
    return list(verify_outbound_message(request.body, organization_id=str(organization)))


def _brevo(adapter: Any, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
    from dixis_integrations.marketing.brevo import parse_webhook

    change = parse_webhook(
        request.body,
        list_ids=getattr(adapter.config, "list_ids", None),
        secret=_secret(options, "secret", "brevo"),
        given_secret=_given_secret(request, options),
    )
    return [] if change is None else [change]


def _mailchimp(adapter: Any, request: WebhookRequest, options: Mapping[str, Any]) -> list[Any]:
    from dixis_integrations.marketing.mailchimp import parse_webhook

    change = parse_webhook(
        request.body,
        secret=_secret(options, "secret", "mailchimp"),
        given_secret=_given_secret(request, options),
        list_id=getattr(adapter.config, "list_id", None),
    )
    return [] if change is None else [change]


READERS: Final[dict[str, WebhookReader]] = {
    "quickbooks": _quickbooks,
    "xero": _xero,
    "boxnow": _boxnow,
    "zoho": _stock,
    "cin7": _stock,
    "hubspot": _hubspot,
    "pipedrive": _pipedrive,
    "salesforce": _salesforce,
    "brevo": _brevo,
    "mailchimp": _mailchimp,
}
"""The reader of each built-in adapter that receives webhooks, by adapter name."""


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
    own = getattr(adapter, "read_webhook", None)
    if callable(own):
        return list(own(request, opts))
    name = str(getattr(adapter, "name", ""))
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
