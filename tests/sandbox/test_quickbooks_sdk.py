"""The QuickBooks Python SDKs (``python-quickbooks`` with Intuit's ``intuit-oauth``)
against the served QuickBooks sandbox: create an invoice and read it back.

Skipped when the SDKs are not installed (``pip install -e .[contract]``), except under
``CI=true``, where CI installs the extra and a missing SDK is a FAILURE.
"""

from __future__ import annotations

import importlib.util
import os
from decimal import Decimal
from typing import Any

import pytest

from dixis_integrations.sandbox.quickbooks import QuickBooksSandbox
from dixis_integrations.sandbox.serve import serve


def _sdk_missing() -> str | None:
    names = {"quickbooks": "python-quickbooks", "intuitlib": "intuit-oauth"}
    absent = [dist for module, dist in names.items() if importlib.util.find_spec(module) is None]
    if absent:
        return " and ".join(absent) + " not installed (extra 'contract')"
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


def _ref(value: str) -> Any:
    from quickbooks.objects.base import Ref

    ref = Ref()
    ref.value = value
    return ref


def test_the_official_sdks_create_and_read_an_invoice(monkeypatch: pytest.MonkeyPatch) -> None:
    _require_sdk()
    from intuitlib.client import AuthClient
    from quickbooks import QuickBooks
    from quickbooks.objects.customer import Customer
    from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
    from quickbooks.objects.invoice import Invoice
    from quickbooks.objects.item import Item

    # requests-oauthlib refuses plain http unless told it is a local test.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    sandbox = QuickBooksSandbox()
    with serve(sandbox.handle) as served:
        sandbox.bind(served.base_url)
        creds = sandbox.credentials()
        # intuit-oauth takes a discovery URL in place of an environment name.
        auth = AuthClient(
            client_id=creds["client_id"],
            client_secret=creds["client_secret"],
            redirect_uri="http://127.0.0.1/callback",
            environment=creds["discovery_url"],
            access_token=creds["access_token"],
            refresh_token=creds["refresh_token"],
        )
        monkeypatch.setattr(QuickBooks, "api_url_v3", served.base_url + "/v3")
        client = QuickBooks(
            auth_client=auth,
            refresh_token=creds["refresh_token"],
            company_id=creds["realm_id"],
            minorversion=75,
            use_decimal=True,
        )
        customer = Customer()
        customer.DisplayName = "Γιώργος Παπαδόπουλος"
        customer.save(qb=client)
        item = Item()
        item.Name = "OIL-1L"
        item.Type = "Service"
        item.IncomeAccountRef = _ref("1")
        item.save(qb=client)

        detail = SalesItemLineDetail()
        detail.ItemRef = _ref(item.Id)
        detail.TaxCodeRef = _ref("2")
        detail.Qty = 2
        detail.UnitPrice = Decimal("6.20")
        detail.TaxInclusiveAmt = Decimal("12.40")
        line = SalesItemLine()
        line.Amount = Decimal("10.97")
        line.SalesItemLineDetail = detail
        invoice = Invoice()
        invoice.CustomerRef = customer.to_ref()
        invoice.DocNumber = "SDK-1"
        invoice.GlobalTaxCalculation = "TaxInclusive"
        invoice.Line = [line]
        invoice.save(qb=client, request_id="sdk-request-1")

        fetched = Invoice.get(invoice.Id, qb=client)
        found = Invoice.filter(DocNumber="SDK-1", qb=client)
    assert fetched.DocNumber == "SDK-1"
    assert Decimal(str(fetched.TotalAmt)) == Decimal("12.40")
    assert [i.Id for i in found] == [invoice.Id]
    assert set(sandbox.minor_versions) == {"75"}
