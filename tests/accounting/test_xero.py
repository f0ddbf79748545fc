"""The Xero adapter: exact payloads, documented responses, and end to end on the sandbox."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.accounting.conftest import GREEK_XERO_CODES, Exchanges, Runner, StaticBearer
from tests.models.factories import make_customer, make_line, make_order, orders

from dixis_integrations.accounting._wire import dumps, dumps_marked, loads
from dixis_integrations.accounting.tax import TaxCodeMap, check_order, invoice_lines
from dixis_integrations.accounting.xero import (
    Xero,
    XeroConfig,
    build_contact,
    build_invoice,
    classify,
    merge_lines,
    parse_invoice,
    parse_ms_date,
    parse_tax_rates,
    parse_webhook,
    webhook_status,
)
from dixis_integrations.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
    NotSupported,
    RateLimited,
    TransientError,
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http import Driver, Endpoint
from dixis_integrations.models import (
    Money,
    Order,
    Payment,
    PaymentMethod,
    Refund,
    VatCategory,
)
from dixis_integrations.models.accounting import BatchItemStatus, LedgerChange, PostedInvoice
from dixis_integrations.sandbox.kit import Fault, FaultPlan, FixedWindow, sign_hmac_sha256
from dixis_integrations.sandbox.xero import XeroSandbox

ENDPOINT = Endpoint(vendor="xero", base_url="https://api.xero.com/api.xro/2.0")
CONFIG = XeroConfig(tenant_id="t-1", tax_codes=GREEK_XERO_CODES)
PAID_AT = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def _response(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    request = httpx.Request("PUT", "https://api.xero.com/api.xro/2.0/Invoices")
    return httpx.Response(status, content=content, headers=headers or {}, request=request)


def _order(**overrides: Any) -> Order:
    data: dict[str, Any] = {
        "lines": [
            make_line(),
            make_line(
                sku="HONEY-1",
                name="Θυμαρίσιο μέλι",
                quantity=Decimal("1.250"),
                unit_price=Money.of("9.99"),
                vat_category=VatCategory.SUPER_REDUCED,
                discount=Money.of("0.49"),
            ),
        ],
        "shipping_fee": Money.of("3.50"),
        "discount": Money.of("1.00"),
        "number": "D-1001",
    }
    data.update(overrides)
    return make_order(**data)


# -- pure builders -----------------------------------------------------------------------
def test_build_invoice_sends_inclusive_lines_with_our_vat() -> None:
    # The 1.00 discount is spread over the gross per category (3.50 / 12.40 / 12.00):
    # 0.13 / 0.44 / 0.43 (largest remainder), each with its own VAT.
    order = _order()
    body = build_invoice(
        order,
        invoice_lines(order),
        CONFIG,
        TaxCodeMap(codes=GREEK_XERO_CODES),
        tenant="t",
        contact={"ContactNumber": "cus_1", "Name": "Μαρία Παπαδοπούλου"},
    )
    assert loads(dumps(body)) == {
        "Type": "ACCREC",
        "Contact": {"ContactNumber": "cus_1", "Name": "Μαρία Παπαδοπούλου"},
        "Date": "2026-03-14",
        "DueDate": "2026-03-14",
        "LineAmountTypes": "Inclusive",
        "InvoiceNumber": "ord_1",
        "Reference": "D-1001",
        "CurrencyCode": "EUR",
        "Status": "AUTHORISED",
        "LineItems": [
            {
                "Description": "Ελαιόλαδο 1L",
                "Quantity": 1,
                "UnitAmount": Decimal("12.40"),
                "LineAmount": Decimal("12.40"),
                "TaxType": "TAX002",
                "TaxAmount": Decimal("1.43"),
                "AccountCode": "200",
                "ItemCode": "OIL-1L",
            },
            {
                "Description": "Θυμαρίσιο μέλι",
                "Quantity": Decimal("1.250"),
                "UnitAmount": Decimal("9.99"),
                "LineAmount": Decimal("12.00"),
                "TaxType": "TAX003",
                "TaxAmount": Decimal("0.68"),
                "AccountCode": "200",
                "DiscountAmount": Decimal("0.49"),
                "ItemCode": "HONEY-1",
            },
            {
                "Description": "Shipping",
                "Quantity": 1,
                "UnitAmount": Decimal("3.50"),
                "LineAmount": Decimal("3.50"),
                "TaxType": "TAX001",
                "TaxAmount": Decimal("0.68"),
                "AccountCode": "200",
            },
            {
                "Description": "Discount (standard)",
                "Quantity": 1,
                "UnitAmount": Decimal("-0.13"),
                "LineAmount": Decimal("-0.13"),
                "TaxType": "TAX001",
                "TaxAmount": Decimal("-0.03"),
                "AccountCode": "200",
            },
            {
                "Description": "Discount (reduced)",
                "Quantity": 1,
                "UnitAmount": Decimal("-0.44"),
                "LineAmount": Decimal("-0.44"),
                "TaxType": "TAX002",
                "TaxAmount": Decimal("-0.05"),
                "AccountCode": "200",
            },
            {
                "Description": "Discount (super_reduced)",
                "Quantity": 1,
                "UnitAmount": Decimal("-0.43"),
                "LineAmount": Decimal("-0.43"),
                "TaxType": "TAX003",
                "TaxAmount": Decimal("-0.02"),
                "AccountCode": "200",
            },
        ],
    }
    assert b"1.250" in dumps(body)  # exact decimals on the wire, never floats


def test_build_contact_carries_our_reference_as_contact_number() -> None:
    customer = make_customer(phone="+306912345678", vat_number="090000045")
    assert build_contact(customer, "Μαρία Παπαδοπούλου") == {
        "ContactNumber": "cus_1",
        "Name": "Μαρία Παπαδοπούλου",
        "EmailAddress": "maria@example.gr",
        "IsCustomer": True,
        "FirstName": "Μαρία",
        "LastName": "Παπαδοπούλου",
        "TaxNumber": "090000045",
        "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "+306912345678"}],
    }


# -- pure parsers ------------------------------------------------------------------------
DOC_INVOICE = {
    "Type": "ACCREC",
    "InvoiceID": "243216c5-369e-4056-ac67-05388f86dc81",
    "InvoiceNumber": "ord_1",
    "Status": "AUTHORISED",
    "CurrencyCode": "EUR",
    "SubTotal": Decimal("25.02"),
    "TotalTax": Decimal("2.72"),
    "Total": Decimal("27.74"),
    "UpdatedDateUTC": "/Date(1573755038314+0000)/",
}


def test_parse_invoice_reports_a_total_mismatch() -> None:
    posted = parse_invoice(DOC_INVOICE, total=Money.of("27.75"), tax=Money.of("2.72"))
    assert posted.external_id == "243216c5-369e-4056-ac67-05388f86dc81"
    assert posted.vendor_total == Money.of("27.74")
    assert posted.total_mismatch == Money.of("-0.01")
    assert posted.tax_mismatch is None


def test_parse_ms_date_is_aware_utc() -> None:
    assert parse_ms_date("/Date(1573755038314+0000)/") == datetime(
        2019, 11, 14, 18, 10, 38, 314000, tzinfo=UTC
    )


def test_parse_tax_rates_reads_effective_rate_and_status() -> None:
    body = {
        "TaxRates": [
            {"TaxType": "TAX002", "Name": "13%", "EffectiveRate": 13.0, "Status": "ACTIVE"},
            {"TaxType": "OLD", "EffectiveRate": 23, "Status": "ARCHIVED"},
        ]
    }
    rates = parse_tax_rates(body)
    assert [(r.code, r.rate, r.active) for r in rates] == [
        ("TAX002", Decimal("13.0"), True),
        ("OLD", Decimal(23), False),
    ]


def test_classify_validation_exception_lists_every_message() -> None:
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [
            {"ValidationErrors": [{"Message": "Account code '999' is not a valid code"}]},
            {"ValidationErrors": [{"Message": "Email address must be valid."}]},
        ],
    }
    error = classify(_response(400, body), ENDPOINT)
    assert isinstance(error, ValidationRejected)
    assert [e.message for e in error.errors] == [
        "Account code '999' is not a valid code",
        "Email address must be valid.",
    ]
    assert [e.path for e in error.errors] == ["Elements[0]", "Elements[1]"]
    assert error.vendor_code == "10"


def test_classify_duplicate_contact_name_is_a_conflict() -> None:
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Elements": [
            {
                "ValidationErrors": [
                    {"Message": "The contact name X is already assigned to another contact."}
                ]
            }
        ],
    }
    assert isinstance(classify(_response(400, body), ENDPOINT), Conflict)


def test_classify_daily_limit_fails_at_once_with_retry_at() -> None:
    response = _response(
        429,
        None,
        {"Retry-After": "43200", "X-Rate-Limit-Problem": "day", "X-DayLimit-Remaining": "0"},
    )
    error = classify(response, ENDPOINT)
    assert isinstance(error, RateLimited)
    assert error.retryable is False
    assert error.scope == "day"
    assert error.retry_at is not None
    assert 43100 < error.seconds_to_wait() <= 43200  # type: ignore[operator]


def test_classify_minute_limit_is_retryable() -> None:
    error = classify(
        _response(429, None, {"Retry-After": "5", "X-Rate-Limit-Problem": "minute"}), ENDPOINT
    )
    assert isinstance(error, RateLimited)
    assert error.retryable is True


def test_classify_malformed_200_is_transient() -> None:
    response = _response(200)
    response = httpx.Response(200, content=b'{"Invoices": [', request=response.request)
    assert isinstance(classify(response, ENDPOINT), TransientError)


def test_merge_lines_keeps_every_line_id() -> None:
    existing = [
        {"LineItemID": "a", "Description": "oil", "Quantity": 1},
        {"LineItemID": "b", "Description": "honey", "Quantity": 2},
    ]
    merged = merge_lines(existing, {"b": {"Quantity": 3}})
    assert merged == [
        {"LineItemID": "a", "Description": "oil", "Quantity": 1},
        {"LineItemID": "b", "Description": "honey", "Quantity": 3},
    ]
    with pytest.raises(InvalidInput):
        merge_lines(existing, {"zzz": {}})


# -- webhooks ----------------------------------------------------------------------------
WEBHOOK_BODY = json.dumps(
    {
        "events": [
            {
                "resourceUrl": "https://api.xero.com/api.xro/2.0/Invoices/4fa1",
                "resourceId": "4fa1",
                "eventDateUtc": "2026-03-14T09:30:00.000",
                "eventType": "UPDATE",
                "eventCategory": "INVOICE",
                "tenantId": "t-1",
                "tenantType": "ORGANISATION",
            }
        ],
        "firstEventSequence": 1,
        "lastEventSequence": 1,
        "entropy": "ABCDEF",
    }
).encode()


def test_webhook_intent_to_receive_answers_200_signed_and_401_unsigned() -> None:
    signature = sign_hmac_sha256("key", WEBHOOK_BODY)
    assert webhook_status(WEBHOOK_BODY, signature, "key") == 200
    assert webhook_status(WEBHOOK_BODY, None, "key") == 401
    assert webhook_status(WEBHOOK_BODY, sign_hmac_sha256("other", WEBHOOK_BODY), "key") == 401


def test_parse_webhook_gives_typed_changes() -> None:
    changes = parse_webhook(WEBHOOK_BODY, sign_hmac_sha256("key", WEBHOOK_BODY), "key")
    assert [(c.kind, c.external_id, c.operation, c.tenant) for c in changes] == [
        ("invoice", "4fa1", "update", "t-1")
    ]
    assert changes[0].changed_at == datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    with pytest.raises(WebhookError):
        parse_webhook(WEBHOOK_BODY, "bad", "key")


# -- end to end against the sandbox ------------------------------------------------------
@pytest.fixture
def sandbox() -> XeroSandbox:
    return XeroSandbox()


def _adapter(sandbox: XeroSandbox, **overrides: Any) -> Xero:
    creds = sandbox.credentials()
    settings: dict[str, Any] = {
        "base_url": creds["base_url"],
        "connections_url": creds["connections_url"],
        "tax_codes": GREEK_XERO_CODES,
        "webhook_key": creds["webhook_key"],
    }
    config = XeroConfig(**{**settings, **overrides})
    return Xero(config, tenant="farm-a", auth=StaticBearer(creds["access_token"]))


@pytest.fixture
def run(sandbox: XeroSandbox, make_runner: Callable[[Any], Runner]) -> Runner:
    return make_runner(sandbox)


def test_post_invoice_totals_agree_and_a_second_post_creates_nothing(
    sandbox: XeroSandbox, run: Runner
) -> None:
    xero = _adapter(sandbox)
    order = _order()
    posted = run(xero.post_invoice(order))
    assert posted.created is True
    assert posted.total == order.total == posted.vendor_total
    assert posted.total_mismatch is None
    assert posted.tax == order.totals().vat == posted.vendor_tax
    again = run(xero.post_invoice(order))
    assert again.created is False
    assert again.external_id == posted.external_id
    tenant = sandbox.tenants[sandbox.tenant_id]
    assert len(tenant.invoices) == 1
    assert run(xero.find_invoice("ord_1")) == again.model_copy(
        update={"total": posted.vendor_total, "tax": posted.vendor_tax}
    )


def test_replay_after_a_lost_response_creates_nothing_twice(
    sandbox: XeroSandbox, run: Runner
) -> None:
    xero = _adapter(sandbox)
    order = _order()
    run(xero.connect())
    # The PUT lands but the answer is lost (reset after processing): the driver may not
    # resend a write blindly... unless it carries an Idempotency-Key, which it does.
    original = sandbox.handle
    lost = {"done": False}

    def lose_first_put(request: httpx.Request) -> httpx.Response:
        response = original(request)
        if request.method == "PUT" and "/Invoices" in request.url.path and not lost["done"]:
            lost["done"] = True
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    lossy = Runner(run.mode, httpx.MockTransport(lose_first_put))
    posted = lossy(xero.post_invoice(order))
    assert posted.created is True
    assert len(sandbox.tenants[sandbox.tenant_id].invoices) == 1
    assert sandbox.replayed == 1


def test_post_invoices_keeps_input_order_with_per_item_results(
    sandbox: XeroSandbox, run: Runner
) -> None:
    xero = _adapter(sandbox)
    run(xero.post_invoice(make_order(id="o-3")))
    batch = [make_order(id=f"o-{i}") for i in range(120)]
    batch[7] = make_order(id="o-7", lines=[make_line(sku="S" * 31)])  # refused before sending
    results = run(xero.post_invoices(batch))
    assert [r.reference for r in results] == [o.id for o in batch]
    assert results[3].status is BatchItemStatus.ALREADY_EXISTED
    assert results[3].external_id is not None
    assert results[7].status is BatchItemStatus.REJECTED
    assert "lines[0].sku" in str(results[7].reason)
    created = [r for r in results if r.status is BatchItemStatus.CREATED]
    assert len(created) == 118
    assert all(r.invoice is not None and r.invoice.total_mismatch is None for r in created)
    puts = sandbox.calls_by_path["PUT /api.xro/2.0/Invoices"]
    assert puts == 1 + 3  # the single post, then ceil(119 / 50)


def test_a_bulk_push_keeps_no_parsed_answer_on_its_responses(
    sandbox: XeroSandbox, mode: str
) -> None:
    seen = Exchanges()
    run = Runner(mode, seen.transport(sandbox))
    results = run(_adapter(sandbox).post_invoices([make_order(id=f"o-{i}") for i in range(60)]))
    assert [r.status for r in results] == [BatchItemStatus.CREATED] * 60
    puts = [r for q, r in seen if q.method == "PUT" and q.url.path.endswith("/Invoices")]
    assert len(puts) == 2
    assert seen.cached_parses(puts) == [None, None]


def test_bulk_rejection_carries_xeros_reason(sandbox: XeroSandbox, run: Runner) -> None:
    xero = _adapter(sandbox, sales_account_code="999")
    results = run(xero.post_invoices([make_order(id="a"), make_order(id="b")]))
    assert [r.status for r in results] == [BatchItemStatus.REJECTED] * 2
    assert "Account code '999'" in str(results[0].reason)


@pytest.mark.parametrize(
    ("order", "path"),
    [
        (
            lambda: _order(lines=[make_line(vat_category=VatCategory.ISLAND_REDUCED)]),
            "lines[0].vat_category",
        ),
        (lambda: _order().model_copy(update={"stated_total": Money.of("1.00")}), "stated_total"),
        (
            lambda: _order().model_copy(
                update={
                    "customer": make_customer().model_copy(
                        update={"first_name": None, "last_name": None}
                    )
                }
            ),
            "customer.name",
        ),
    ],
)
def test_bad_orders_are_refused_before_anything_is_sent(
    sandbox: XeroSandbox, run: Runner, order: Callable[[], Order], path: str
) -> None:
    codes = {k: v for k, v in GREEK_XERO_CODES.items() if k is not VatCategory.ISLAND_REDUCED}
    xero = _adapter(sandbox, tax_codes=codes)
    with pytest.raises(InvalidInput) as info:
        run(xero.post_invoice(order()))
    assert path in {e.path for e in info.value.errors}
    assert sandbox.requests == []


def test_a_tax_code_missing_at_the_tenant_is_a_configuration_error(
    sandbox: XeroSandbox, run: Runner
) -> None:
    del sandbox.tenants[sandbox.tenant_id].tax_rates["TAX006"]
    xero = _adapter(sandbox)
    with pytest.raises(ConfigurationError) as info:
        run(xero.post_invoice(_order()))
    assert "island_super_reduced" in str(info.value)
    assert "farm-a" in str(info.value)
    assert not sandbox.tenants[sandbox.tenant_id].invoices


def test_void_payment_fee_and_refund_flow(sandbox: XeroSandbox, run: Runner) -> None:
    xero = _adapter(sandbox, fee_account_code="404")
    order = _order()
    posted = run(xero.post_invoice(order))
    payment = Payment(
        id="pay_1",
        order_id=order.id,
        amount=Money.of("20.00"),
        method=PaymentMethod.CARD,
        paid_at=PAID_AT,
        provider="stripe",
        fee=Money.of("0.55"),
        payout_id="po_1",
    )
    recorded = run(xero.record_payment(payment))
    assert recorded.kind == "payment"
    assert run(xero.record_payment(payment)).created is False
    tenant = sandbox.tenants[sandbox.tenant_id]
    invoice = tenant.invoices[posted.external_id]
    assert invoice["AmountPaid"] == Decimal("20.00")
    (fee,) = tenant.bank_transactions.values()
    assert fee["Type"] == "SPEND"
    assert fee["Total"] == Decimal("0.55")
    assert fee["LineItems"][0]["AccountCode"] == "404"

    refund = Refund(id="ref_1", order_id=order.id, amount=Money.of("10.00"), created_at=PAID_AT)
    note = run(xero.record_refund(refund))
    assert note.kind == "credit_note"
    credit = tenant.credit_notes[note.external_id]
    assert credit["Total"] == Decimal("10.00")
    # 7.39 was still due: allocated; the rest is paid back out of the clearing account.
    assert credit["Allocations"][0]["Amount"] == order.total.amount - Decimal("20.00")
    assert invoice["Status"] == "PAID"
    assert credit["RemainingCredit"] == Decimal(0)
    assert run(xero.record_refund(refund)).created is False

    with pytest.raises(ValidationRejected):  # paid invoices cannot be voided
        run(xero.void_invoice(order.id))
    other = run(xero.post_invoice(make_order(id="ord_2")))
    voided = run(xero.void_invoice("ord_2"))
    assert (voided.external_id, voided.status) == (other.external_id, "VOIDED")
    with pytest.raises(NotFound):
        run(xero.void_invoice("nope"))


def test_upsert_customer_never_duplicates_and_survives_a_taken_name(
    sandbox: XeroSandbox, run: Runner
) -> None:
    xero = _adapter(sandbox)
    first = run(xero.upsert_customer(make_customer()))
    assert first.created is True
    assert run(xero.upsert_customer(make_customer())) == first.model_copy(update={"created": False})
    namesake = run(xero.upsert_customer(make_customer(id="cus_2")))
    contacts = sandbox.tenants[sandbox.tenant_id].contacts
    assert contacts[namesake.external_id]["Name"] == "Μαρία Παπαδοπούλου (cus_2)"
    assert len(contacts) == 2


def test_upsert_products_creates_only_missing_items(sandbox: XeroSandbox, run: Runner) -> None:
    from dixis_integrations.models import Product

    xero = _adapter(sandbox)
    oil = Product(
        sku="OIL-1L", name="Ελαιόλαδο", vat_category=VatCategory.REDUCED, price=Money.of("12.40")
    )
    honey = Product(
        sku="HONEY", name="Μέλι", vat_category=VatCategory.SUPER_REDUCED, price=Money.of("9.99")
    )
    assert [r.created for r in run(xero.upsert_products([oil]))] == [True]
    assert [r.created for r in run(xero.upsert_products([oil, honey]))] == [False, True]
    assert len(sandbox.tenants[sandbox.tenant_id].items) == 2


def test_minute_limit_is_waited_out_and_daily_limit_raises_at_once(
    make_runner: Callable[[Any], Runner],
) -> None:
    sandbox = XeroSandbox(minute_limit=3, day_limit=6)
    run = make_runner(sandbox)
    xero = _adapter(sandbox)
    run(xero.connect())  # 1 API call (TaxRates)
    # A 429 "minute" (Retry-After: 1) is waited out (fake sleep) and retried.
    sandbox.faults = FaultPlan(script=deque([Fault.RATE_LIMIT]), retry_after=1.0)
    assert run(xero.find_invoice("none")) is None
    assert 0.9 < run.sleeps[0] <= 1.0

    def exhaust_the_day() -> None:
        for n in range(10):
            sandbox.minute = FixedWindow(3, 60.0, sandbox.clock, "minute")  # a new minute
            run(xero.find_invoice(f"none-{n}"))

    with pytest.raises(RateLimited) as info:
        exhaust_the_day()
    assert info.value.scope == "day"
    assert info.value.retry_at is not None
    assert max(run.sleeps) < 60  # never slept towards the daily reset


def test_other_tenants_books_are_invisible(sandbox: XeroSandbox, run: Runner) -> None:
    first = _adapter(sandbox)
    run(first.post_invoice(_order()))
    other_id = list(sandbox.tenants)[1]
    second = _adapter(sandbox, tenant_id=other_id)
    assert run(second.find_invoice("ord_1")) is None


def test_webhook_then_reread_and_reconciliation_resume(sandbox: XeroSandbox, run: Runner) -> None:
    xero = _adapter(sandbox)
    posted = run(xero.post_invoice(_order()))
    delivered: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        delivered.append(request)
        changes = xero.parse_webhook(request.content, request.headers.get("x-xero-signature"))
        assert changes
        return httpx.Response(200)

    sandbox._webhook_client = httpx.Client(transport=httpx.MockTransport(receiver))
    assert sandbox.deliver_events("https://hooks.example/xero") == 200
    changes = xero.parse_webhook(delivered[0].content, delivered[0].headers["x-xero-signature"])
    invoice_changes = [c for c in changes if c.kind == "invoice"]
    assert invoice_changes[0].external_id == posted.external_id
    fresh = run(xero.fetch_invoice(invoice_changes[0].external_id))
    assert fresh.vendor_total == posted.vendor_total

    page = run(xero.changes_since(None))
    assert {c.external_id for c in page.changes if c.kind == "invoice"} == {posted.external_id}
    later = run(xero.changes_since(page.checkpoint))
    assert [c for c in later.changes if c.kind == "invoice"] == []
    assert later.checkpoint == page.checkpoint


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders())
def test_posted_invoice_lines_vat_and_total_equal_the_orders(order: Order) -> None:
    sandbox = XeroSandbox()
    xero = _adapter(sandbox, use_item_codes=False)
    with Driver(httpx.Client(transport=sandbox.transport()), sleep=lambda s: None) as driver:
        posted = driver.run(xero.post_invoice(order))
    totals = order.totals()
    assert posted.vendor_total == totals.gross
    assert posted.vendor_tax == totals.vat
    stored = sandbox.tenants[sandbox.tenant_id].invoices[posted.external_id]
    lines = invoice_lines(order)
    assert [Money.of(item["LineAmount"]) for item in stored["LineItems"]] == [
        line.gross for line in lines
    ]
    assert [Money.of(item["TaxAmount"]) for item in stored["LineItems"]] == [
        line.vat for line in lines
    ]


def test_oauth_settings_follow_xero_identity() -> None:
    config = XeroConfig(client_id="app", tax_codes=GREEK_XERO_CODES)
    oauth = config.oauth()
    assert oauth.token_url == "https://identity.xero.com/connect/token"
    assert "offline_access" in oauth.scopes
    with pytest.raises(ConfigurationError):
        XeroConfig().oauth()


def test_secrets_stay_out_of_reprs() -> None:
    from pydantic import SecretStr

    config = XeroConfig(client_id="app", client_secret=SecretStr("s3cr3t-value"),
                        webhook_key=SecretStr("hook-key-value"))  # fmt: skip
    xero = Xero(config)
    assert "s3cr3t-value" not in repr(config)
    assert "hook-key-value" not in repr(xero)


def test_updating_one_line_keeps_the_others(sandbox: XeroSandbox, run: Runner) -> None:
    xero = _adapter(sandbox, invoice_status="DRAFT")
    posted = run(xero.post_invoice(_order()))
    stored = sandbox.tenants[sandbox.tenant_id].invoices[posted.external_id]
    ids = [line["LineItemID"] for line in stored["LineItems"]]
    run(xero.update_invoice_lines("ord_1", {ids[0]: {"Description": "Ελαιόλαδο 1L (ΠΟΠ)"}}))
    after = sandbox.tenants[sandbox.tenant_id].invoices[posted.external_id]
    assert [line["LineItemID"] for line in after["LineItems"]] == ids
    assert after["LineItems"][0]["Description"] == "Ελαιόλαδο 1L (ΠΟΠ)"
    assert Money.of(after["Total"]) == posted.vendor_total


def test_bulk_invoices_of_a_namesake_customer_get_their_own_contact(
    sandbox: XeroSandbox, run: Runner
) -> None:
    xero = _adapter(sandbox)
    orders = [
        make_order(id="a-1"),
        make_order(id="a-2", customer=make_customer(id="cus_2")),  # the same name
    ]
    results = run(xero.post_invoices(orders))
    assert [r.status for r in results] == [BatchItemStatus.CREATED] * 2
    tenant = sandbox.tenants[sandbox.tenant_id]
    names = {
        tenant.contacts[inv["Contact"]["ContactID"]]["ContactNumber"]: inv["Contact"]["Name"]
        for inv in tenant.invoices.values()
    }
    assert names == {"cus_1": "Μαρία Παπαδοπούλου", "cus_2": "Μαρία Παπαδοπούλου (cus_2)"}


def test_changed_records_of_every_kind_are_read_back(sandbox: XeroSandbox, run: Runner) -> None:
    xero = _adapter(sandbox)
    order = _order()
    posted = run(xero.post_invoice(order))
    payment = Payment(
        id="pay_9",
        order_id=order.id,
        amount=Money.of("5.00"),
        method=PaymentMethod.CARD,
        paid_at=PAID_AT,
    )
    paid = run(xero.record_payment(payment))
    refund = Refund(id="ref_9", order_id=order.id, amount=Money.of("1.00"), created_at=PAID_AT)
    note = run(xero.record_refund(refund))
    contact = run(xero.upsert_customer(order.customer))
    item_id = next(iter(sandbox.tenants[sandbox.tenant_id].items.values()))["ItemID"]

    def change(kind: str, external_id: str, **extra: Any) -> LedgerChange:
        return LedgerChange(
            provider="xero", tenant="t", kind=kind, external_id=external_id,
            operation="UPDATE", **extra,
        )  # fmt: skip

    invoice = run(xero.fetch_record(change("invoice", posted.external_id)))
    assert isinstance(invoice, PostedInvoice)
    assert invoice.reference == order.id
    got = {
        kind: run(xero.fetch_record(change(kind, ident)))
        for kind, ident in (
            ("customer", contact.external_id),
            ("payment", paid.external_id),
            ("credit_note", note.external_id),
            ("item", item_id),
        )
    }
    assert {k: (r.kind, r.reference) for k, r in got.items() if r is not None} == {
        "customer": ("customer", order.customer.id),
        "payment": ("payment", "pay_9"),
        "credit_note": ("credit_note", "ref_9"),
        "item": ("item", order.lines[0].sku),
    }
    assert run(xero.fetch_record(change("payment", paid.external_id, deleted=True))) is None
    missing = "00000000-0000-0000-0000-000000000000"
    assert run(xero.fetch_record(change("credit_note", missing))) is None
    with pytest.raises(NotSupported):
        run(xero.fetch_record(change("subscription", missing)))


# -- refunds of paid invoices ---------------------------------------------------------------
def _pay_in_full(run: Runner, xero: Xero, order: Order) -> None:
    run(
        xero.record_payment(
            Payment(
                id=f"pay_{order.id}",
                order_id=order.id,
                amount=order.total,
                method=PaymentMethod.CARD,
                paid_at=PAID_AT,
            )
        )
    )


def test_a_refund_of_a_paid_invoice_is_paid_back_not_left_as_credit(
    sandbox: XeroSandbox, run: Runner
) -> None:
    xero = _adapter(sandbox)
    order = _order()
    posted = run(xero.post_invoice(order))
    _pay_in_full(run, xero, order)
    refund = Refund(id="ref_p", order_id=order.id, amount=Money.of("5.00"), created_at=PAID_AT)
    note = run(xero.record_refund(refund))
    tenant = sandbox.tenants[sandbox.tenant_id]
    credit = tenant.credit_notes[note.external_id]
    assert credit["Allocations"] == []  # nothing due on the invoice to allocate to
    assert [p["Amount"] for p in credit["Payments"]] == [Decimal("5.00")]
    assert credit["RemainingCredit"] == Decimal(0)
    assert credit["Status"] == "PAID"
    assert tenant.invoices[posted.external_id]["AmountDue"] == Decimal(0)


def test_a_refund_rerun_after_a_crash_finishes_the_refund_payment_once(
    sandbox: XeroSandbox, run: Runner
) -> None:
    xero = _adapter(sandbox)
    order = _order()
    run(xero.post_invoice(order))
    _pay_in_full(run, xero, order)
    refund = Refund(id="ref_c", order_id=order.id, amount=Money.of("5.00"), created_at=PAID_AT)

    def crash_before_paying_back(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.url.path.endswith("/Payments"):
            raise httpx.ConnectError("worker died", request=request)
        return sandbox.handle(request)

    with pytest.raises(TransientError):
        Runner(run.mode, httpx.MockTransport(crash_before_paying_back))(xero.record_refund(refund))
    tenant = sandbox.tenants[sandbox.tenant_id]
    (credit,) = tenant.credit_notes.values()
    assert credit["RemainingCredit"] == Decimal("5.00")  # left as credit by the crash
    again = run(xero.record_refund(refund))
    assert (again.external_id, again.created) == (credit["CreditNoteID"], False)
    assert credit["RemainingCredit"] == Decimal(0)
    assert run(xero.record_refund(refund)).created is False
    assert len(credit["Payments"]) == 1  # paid back once
    assert len(tenant.credit_notes) == 1


# -- the bulk path's lean body equals the careful one -----------------------------------------
def _no_bare_decimal(value: Any) -> bool:
    if isinstance(value, Decimal):
        return False
    if isinstance(value, dict):
        return all(_no_bare_decimal(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_bare_decimal(v) for v in value)
    return True


@settings(max_examples=120, deadline=None)
@given(orders())
def test_the_lean_body_equals_the_careful_one(order: Order) -> None:
    xero = Xero(XeroConfig(tenant_id="t", tax_codes=GREEK_XERO_CODES, due_days=14))
    lean = xero._lean(order)
    assert lean is not None
    body, total, tax = lean
    draft = check_order(order, xero.codes, tenant=xero.tenant, vendor="xero")
    name = (order.customer.full_name or order.customer.company or "").strip()
    careful = build_invoice(
        order, draft.lines, xero.config, xero.codes, tenant=xero.tenant,
        contact={"ContactNumber": order.customer.id, "Name": name},
    )  # fmt: skip
    assert body == careful
    assert (total, tax) == (draft.gross, draft.vat)
    assert _no_bare_decimal(body)  # so the fast writer may write it
    assert dumps_marked({"Invoices": [body]}) == dumps({"Invoices": [body]})


# Text a JSON writer must escape: quotes, backslashes, control characters, non-ASCII.
_odd_text = st.text(
    alphabet=st.sampled_from('aZ09 -_/"\\\n\t\x00\x7fé€Ωα\u2028😀'), min_size=1, max_size=12
).filter(str.strip)


@st.composite
def _odd_orders(draw: st.DrawFn) -> Order:
    order = draw(orders())
    lines = [
        line.model_copy(update={"name": draw(_odd_text), "sku": draw(_odd_text)[:30]})
        for line in order.lines
    ]
    customer = order.customer.model_copy(
        update={"id": draw(_odd_text), "first_name": draw(_odd_text)}
    )
    return order.model_copy(
        update={
            "lines": lines,
            "customer": customer,
            "id": draw(_odd_text),
            "number": draw(st.none() | _odd_text),
        }
    )


@settings(max_examples=150, deadline=None)
@given(_odd_orders(), st.sampled_from([0, 14]), st.booleans(), st.booleans())
def test_the_bulk_text_is_what_the_fast_writer_writes_for_the_body(
    order: Order, due_days: int, item_codes: bool, by_id: bool
) -> None:
    xero = Xero(
        XeroConfig(
            tenant_id="t", tax_codes=GREEK_XERO_CODES, due_days=due_days,
            use_item_codes=item_codes, shipping_account_code='2"60',
        )
    )  # fmt: skip
    lean = xero._lean(order)
    assert lean is not None
    body, total, tax = lean
    contact = None
    if by_id:
        body["Contact"] = {"ContactID": 'c-"1"'}
        contact = '{"ContactID":"c-\\"1\\""}'
    written = xero._lean_text(order, contact)
    assert written is not None
    text, written_total, written_tax = written
    assert text.encode() == dumps_marked(body)
    assert (written_total, written_tax) == (total, tax)
    assert xero._chunk_content([text, text]) == dumps_marked({"Invoices": [body, body]})


def test_the_bulk_text_leaves_what_the_careful_path_reports_to_it() -> None:
    xero = Xero(XeroConfig(tenant_id="t", tax_codes={VatCategory.REDUCED: "TAX002"}))
    assert xero._lean_text(_order(lines=[make_line(sku="S" * 31)])) is None
    assert xero._lean_text(_order(lines=[make_line(vat_category=VatCategory.STANDARD)])) is None
    nameless = make_customer().model_copy(update={"first_name": None, "last_name": None})
    assert xero._lean_text(make_order(customer=nameless)) is None
    assert xero._lean_text(make_order(customer=make_customer(id="c" * 51))) is None
    assert xero._lean_text(make_order()) is not None


def test_a_body_the_encoder_refuses_is_refused_as_before() -> None:
    with pytest.raises(ValueError, match="surrogates"):
        Xero._chunk_content(['{"Description":"\ud800"}'])


def test_bad_orders_in_a_bulk_push_are_rejected_and_never_sent(
    sandbox: XeroSandbox, run: Runner
) -> None:
    codes = {k: v for k, v in GREEK_XERO_CODES.items() if k is not VatCategory.ISLAND_REDUCED}
    xero = _adapter(sandbox, tax_codes=codes)
    nameless = make_customer().model_copy(update={"first_name": None, "last_name": None})
    batch = [
        _order(id="good-1"),
        _order(id="unmapped", lines=[make_line(vat_category=VatCategory.ISLAND_REDUCED)]),
        _order(id="stated").model_copy(update={"stated_total": Money.of("1.00")}),
        _order(id="nameless").model_copy(update={"customer": nameless}),
        _order(id="long-sku", lines=[make_line(sku="S" * 31)]),
        _order(id="good-2"),
    ]
    results = run(xero.post_invoices(batch))
    assert [r.reference for r in results] == [o.id for o in batch]
    assert [r.status for r in results] == [
        BatchItemStatus.CREATED,
        *[BatchItemStatus.REJECTED] * 4,
        BatchItemStatus.CREATED,
    ]
    assert {r.error_code for r in results[1:5]} == {"invalid_input"}
    sent = [
        inv["InvoiceNumber"]
        for r in sandbox.requests
        if r.method == "PUT" and r.url.path.endswith("/Invoices")
        for inv in json.loads(r.content)["Invoices"]
    ]
    assert sent == ["good-1", "good-2"]
