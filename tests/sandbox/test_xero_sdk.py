"""Xero's official Python SDK (``xero-python``) against the served Xero sandbox.

It must create an invoice and read it back: that is how we know the sandbox speaks the
real protocol. Skipped when the SDK is not installed (``pip install -e .[contract]``), except
under ``CI=true``, where CI installs the extra and a missing SDK is a FAILURE.
"""

from __future__ import annotations

import importlib.util
import os
import time
from decimal import Decimal

import pytest

from dixis_integrations.sandbox.serve import serve
from dixis_integrations.sandbox.xero import XeroSandbox


def _sdk_missing() -> str | None:
    if importlib.util.find_spec("xero_python") is None:
        return "xero-python is not installed (extra 'contract')"
    return None


def _require_sdk() -> None:
    """Skip without the SDK, but FAIL under ``CI=true``: CI installs the extra."""
    missing = _sdk_missing()
    if missing is None:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{missing} (CI=true: the SDK test must run, not skip)", pytrace=False)
    pytest.skip(missing)


def test_a_missing_sdk_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        _require_sdk()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        _require_sdk()


def test_the_official_sdk_creates_and_reads_an_invoice() -> None:
    _require_sdk()
    from xero_python.accounting import (
        AccountingApi,
        Contact,
        Invoice,
        Invoices,
        LineAmountTypes,
        LineItem,
    )
    from xero_python.api_client import ApiClient
    from xero_python.api_client.configuration import Configuration
    from xero_python.api_client.oauth2 import OAuth2Token

    sandbox = XeroSandbox()
    with serve(sandbox.handle) as served:
        sandbox.bind(served.base_url)
        creds = sandbox.credentials()
        token = {
            "access_token": creds["access_token"],
            "refresh_token": creds["refresh_token"],
            "token_type": "Bearer",
            "expires_in": 1800,
            "expires_at": time.time() + 1800,
            "scope": ["offline_access", "accounting.transactions"],
        }
        store = {"token": token}
        client = ApiClient(
            Configuration(
                oauth2_token=OAuth2Token(
                    client_id=creds["client_id"], client_secret=creds["client_secret"]
                )
            ),
            pool_threads=1,
            oauth2_token_getter=lambda: store["token"],
            oauth2_token_saver=lambda new: store.update(token=new),
        )
        api = AccountingApi(client, base_url=creds["base_url"])
        invoice = Invoice(
            type="ACCREC",
            contact=Contact(name="Γιώργος Παπαδόπουλος"),
            line_items=[
                LineItem(
                    description="Ελαιόλαδο",
                    quantity=2.0,
                    unit_amount=6.2,
                    tax_type="TAX002",
                    account_code="200",
                )
            ],
            line_amount_types=LineAmountTypes.INCLUSIVE,
            invoice_number="SDK-1",
            status="AUTHORISED",
        )
        created = api.create_invoices(
            creds["tenant_id"], Invoices(invoices=[invoice]), summarize_errors=False,
            idempotency_key="sdk-1",
        )  # fmt: skip
        made = created.invoices[0]
        assert made.has_errors is False
        fetched = api.get_invoice(creds["tenant_id"], made.invoice_id).invoices[0]
    assert fetched.invoice_number == "SDK-1"
    assert Decimal(str(fetched.total)) == Decimal("12.40")
    assert Decimal(str(fetched.total_tax)) == Decimal("1.43")
    assert fetched.line_items[0].tax_type == "TAX002"
