"""The QuickBooks Online adapter: exact payloads, documented faults, and the sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.accounting.conftest import Exchanges, Runner, StaticBearer
from tests.models.factories import make_customer, make_line, make_order, orders

from dixis_integrations.accounting._wire import dumps, dumps_marked, loads
from dixis_integrations.accounting.quickbooks import (
    QuickBooks,
    QuickBooksConfig,
    _batch_content,
    build_customer,
    build_invoice,
    classify,
    parse_invoice,
    parse_tax_codes,
    parse_webhook,
    select,
)
from dixis_integrations.accounting.tax import TaxCodeMap, invoice_lines, lean_lines, tax_plan
from dixis_integrations.errors import (
    AuthError,
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
from dixis_integrations.models import Money, Order, Payment, PaymentMethod, Refund, VatCategory
from dixis_integrations.models.accounting import BatchItemStatus, LedgerChange, PostedInvoice
from dixis_integrations.sandbox.kit import sign_hmac_sha256
from dixis_integrations.sandbox.quickbooks import QuickBooksSandbox

QBO_CODES = {
    VatCategory.STANDARD: "1",
    VatCategory.REDUCED: "2",
    VatCategory.SUPER_REDUCED: "3",
    VatCategory.ISLAND_STANDARD: "4",
    VatCategory.ISLAND_REDUCED: "5",
    VatCategory.ISLAND_SUPER_REDUCED: "6",
    VatCategory.ZERO: "7",
    VatCategory.EXEMPT: "8",
}
ENDPOINT = Endpoint(vendor="quickbooks", base_url="https://quickbooks.api.intuit.com")
PAID_AT = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def _response(
    status: int, content: bytes, content_type: str = "application/json"
) -> httpx.Response:
    request = httpx.Request("POST", "https://quickbooks.api.intuit.com/v3/company/1/invoice")
    return httpx.Response(
        status, content=content, headers={"content-type": content_type}, request=request
    )


def _order(**overrides: Any) -> Order:
    data: dict[str, Any] = {
        "lines": [
            make_line(),
            make_line(
                sku="HONEY-1",
                name="Μέλι",
                quantity=Decimal("1.250"),
                unit_price=Money.of("9.99"),
                vat_category=VatCategory.SUPER_REDUCED,
            ),
        ],
        "shipping_fee": Money.of("3.50"),
    }
    data.update(overrides)
    return make_order(**data)


# -- pure -----------------------------------------------------------------------------------
def test_build_invoice_is_tax_inclusive_with_gross_net_and_our_total_tax() -> None:
    order = _order()
    config = QuickBooksConfig(realm_id="1", tax_codes=QBO_CODES)
    body = build_invoice(
        order,
        invoice_lines(order),
        config,
        TaxCodeMap(codes=QBO_CODES),
        tenant="t",
        customer_id="58",
        item_ids={"OIL-1L": "11", "HONEY-1": "12", "Shipping": "13", "Discount": "14"},
    )
    assert loads(dumps(body)) == {
        "CustomerRef": {"value": "58"},
        "DocNumber": "ord_1",
        "TxnDate": "2026-03-14",
        "DueDate": "2026-03-14",
        "CurrencyRef": {"value": "EUR"},
        "GlobalTaxCalculation": "TaxInclusive",
        "PrivateNote": "order ord_1",
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": Decimal("10.97"),
                "Description": "Ελαιόλαδο 1L",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": "11"},
                    "Qty": 1,
                    "UnitPrice": Decimal("12.40"),
                    "TaxCodeRef": {"value": "2"},
                    "TaxInclusiveAmt": Decimal("12.40"),
                },
            },
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": Decimal("11.78"),  # 12.49 - 0.71 (6%)
                "Description": "Μέλι",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": "12"},
                    "Qty": Decimal("1.250"),
                    "UnitPrice": Decimal("9.99"),
                    "TaxCodeRef": {"value": "3"},
                    "TaxInclusiveAmt": Decimal("12.49"),
                },
            },
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": Decimal("2.82"),
                "Description": "Shipping",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": "13"},
                    "Qty": 1,
                    "UnitPrice": Decimal("3.50"),
                    "TaxCodeRef": {"value": "1"},
                    "TaxInclusiveAmt": Decimal("3.50"),
                },
            },
        ],
        "TxnTaxDetail": {"TotalTax": Decimal("2.82")},
    }


def test_build_customer_keeps_our_id_in_acct_num() -> None:
    assert build_customer(make_customer(), "Μαρία Παπαδοπούλου") == {
        "DisplayName": "Μαρία Παπαδοπούλου",
        "AcctNum": "cus_1",
        "PrimaryEmailAddr": {"Address": "maria@example.gr"},
        "GivenName": "Μαρία",
        "FamilyName": "Παπαδοπούλου",
    }


def test_select_quotes_values() -> None:
    assert select("Invoice", "DocNumber", ["a'b"]) == (
        "select * from Invoice where DocNumber = 'a\\'b'"
    )
    assert select("Item", "Name", ["x", "y"], limit=1000) == (
        "select * from Item where Name in ('x', 'y') maxresults 1000"
    )


def test_parse_invoice_reads_totals_and_reports_mismatch() -> None:
    data = {
        "Id": "130",
        "DocNumber": "ord_1",
        "SyncToken": "0",
        "TotalAmt": 28.39,
        "Balance": 28.39,
        "CurrencyRef": {"value": "EUR"},
        "TxnTaxDetail": {"TotalTax": 2.74},
    }
    posted = parse_invoice(loads(json.dumps(data)), total=Money.of("28.40"), tax=Money.of("2.74"))
    assert (posted.external_id, posted.status) == ("130", "OPEN")
    assert posted.total_mismatch == Money.of("-0.01")
    assert posted.tax_mismatch is None


def test_parse_tax_codes_sums_the_sales_rates() -> None:
    codes = [
        {
            "Id": "2",
            "Name": "13%",
            "Active": True,
            "SalesTaxRateList": {"TaxRateDetail": [{"TaxRateRef": {"value": "7"}}]},
        }
    ]
    rates = [{"Id": "7", "RateValue": 13}]
    (code,) = parse_tax_codes(codes, rates)
    assert (code.code, code.rate, code.active) == ("2", Decimal(13), True)


def test_fault_inside_http_200_is_classified() -> None:
    body = {
        "Fault": {
            "Error": [
                {
                    "Message": "Duplicate Name Exists Error",
                    "Detail": "The name supplied already exists.",
                    "code": "6240",
                    "element": "",
                }
            ],
            "type": "ValidationFault",
        },
        "time": "2026-03-14T09:30:00.000-07:00",
    }
    error = classify(_response(200, json.dumps(body).encode()), ENDPOINT)
    assert isinstance(error, Conflict)
    assert error.vendor_code == "6240"


@pytest.mark.parametrize(
    ("code", "kind", "expected"),
    [
        ("5010", "ValidationFault", Conflict),
        ("610", "ValidationFault", NotFound),
        ("2500", "ValidationFault", ValidationRejected),
        ("6000", "ValidationFault", ValidationRejected),
        ("3200", "AUTHENTICATION", AuthError),
        ("10000", "SystemFault", TransientError),
    ],
)
def test_fault_codes_map_to_the_error_tree(code: str, kind: str, expected: type) -> None:
    body = {
        "Fault": {
            "Error": [{"Message": "m", "Detail": "d", "code": code, "element": "Line"}],
            "type": kind,
        }
    }
    error = classify(_response(400, json.dumps(body).encode()), ENDPOINT)
    assert type(error) is expected
    assert getattr(error, "vendor_code", None) == code


def test_xml_throttle_body_is_rate_limited_even_when_json_was_asked() -> None:
    xml = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="2026-03-14">'
        b'<Fault type="SERVICE"><Error code="003001"><Message>message=ThrottleExceeded; '
        b"errorCode=003001; statusCode=429</Message></Error></Fault></IntuitResponse>"
    )
    error = classify(_response(429, xml, "application/xml"), ENDPOINT)
    assert isinstance(error, RateLimited)
    assert error.retry_at is not None
    assert error.vendor_code == "003001"


def test_malformed_200_is_transient() -> None:
    assert isinstance(classify(_response(200, b'{"Invoice": {'), ENDPOINT), TransientError)


LEGACY = json.dumps(
    {
        "eventNotifications": [
            {
                "realmId": "9130",
                "dataChangeEvent": {
                    "entities": [
                        {
                            "name": "Invoice",
                            "id": "130",
                            "operation": "Update",
                            "lastUpdated": "2026-03-14T09:30:00.000Z",
                        }
                    ]
                },
            }
        ]
    }
).encode()
CLOUD = json.dumps(
    [
        {
            "specversion": "1.0",
            "id": "e-1",
            "source": "intuit.x",
            "type": "qbo.invoice.created.v1",
            "time": "2026-03-14T09:30:00Z",
            "intuitentityid": "130",
            "intuitaccountid": "9130",
            "data": {},
        }
    ]
).encode()


@pytest.mark.parametrize("body", [LEGACY, CLOUD], ids=["legacy", "cloudevents"])
def test_webhooks_verify_and_parse_both_payloads(body: bytes) -> None:
    (change,) = parse_webhook(body, sign_hmac_sha256("verifier", body), "verifier")
    assert (change.kind, change.external_id, change.tenant) == ("invoice", "130", "9130")
    assert change.changed_at == datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    with pytest.raises(WebhookError):
        parse_webhook(body, sign_hmac_sha256("other", body), "verifier")


# -- end to end ------------------------------------------------------------------------------
@pytest.fixture
def sandbox() -> QuickBooksSandbox:
    return QuickBooksSandbox()


def _adapter(sandbox: QuickBooksSandbox, **overrides: Any) -> QuickBooks:
    creds = sandbox.credentials()
    settings_: dict[str, Any] = {
        "base_url": creds["base_url"],
        "realm_id": creds["realm_id"],
        "tax_codes": QBO_CODES,
        "fee_account_id": "5",
        "webhook_verifier_token": creds["webhook_verifier_token"],
    }
    return QuickBooks(
        QuickBooksConfig(**{**settings_, **overrides}),
        tenant="farm-a",
        auth=StaticBearer(creds["access_token"]),
    )


@pytest.fixture
def run(sandbox: QuickBooksSandbox, make_runner: Callable[[Any], Runner]) -> Runner:
    return make_runner(sandbox)


def test_post_invoice_agrees_to_the_cent_and_never_duplicates(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    order = _order(discount=Money.of("1.00"))
    posted = run(qbo.post_invoice(order))
    assert posted.created is True
    assert posted.vendor_total == order.total
    assert posted.vendor_tax == order.totals().vat
    assert posted.total_mismatch is None
    again = run(qbo.post_invoice(order))
    assert (again.created, again.external_id) == (False, posted.external_id)
    assert len(sandbox.companies[sandbox.realm_id].table("Invoice")) == 1
    assert set(sandbox.minor_versions) == {"75"}


def test_a_22_character_document_number_is_refused_before_sending(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    with pytest.raises(InvalidInput) as info:
        run(_adapter(sandbox).post_invoice(_order(id="X" * 22)))
    assert [e.path for e in info.value.errors] == ["id"]
    assert sandbox.requests == []


def test_unmapped_category_names_category_and_tenant(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox, tax_codes={VatCategory.REDUCED: "2"})
    with pytest.raises(InvalidInput) as info:
        run(qbo.post_invoice(_order()))
    assert "'super_reduced' has no tax code for tenant 'farm-a'" in str(info.value)
    assert sandbox.requests == []


def test_a_tax_code_at_another_rate_is_a_configuration_error(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox, tax_codes={**QBO_CODES, VatCategory.REDUCED: "1"})
    with pytest.raises(ConfigurationError) as info:
        run(qbo.post_invoice(_order()))
    assert "is 24% at tenant 'farm-a' but VAT category 'reduced' is 13%" in str(info.value)


def test_request_id_replay_after_a_lost_answer(sandbox: QuickBooksSandbox, run: Runner) -> None:
    qbo = _adapter(sandbox)
    lost = {"done": False}

    def lose_invoice_answer(request: httpx.Request) -> httpx.Response:
        response = sandbox.handle(request)
        if request.url.path.endswith("/invoice") and not lost["done"]:
            lost["done"] = True
            raise httpx.ReadTimeout("lost", request=request)
        return response

    posted = Runner(run.mode, httpx.MockTransport(lose_invoice_answer))(qbo.post_invoice(_order()))
    assert posted.created is True
    assert sandbox.replayed == 1
    assert len(sandbox.companies[sandbox.realm_id].table("Invoice")) == 1


def test_a_fault_inside_http_200_is_retried_with_the_same_request_id(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    run(qbo.upsert_customer(make_customer()))
    sandbox.faults_in_200.append(("10000", "An application error has occurred"))
    posted = run(qbo.post_invoice(_order()))
    assert posted.created is True
    writes = [r for r in sandbox.requests if r.url.path.endswith("/invoice")]
    assert len(writes) == 2
    assert len({r.url.params["requestid"] for r in writes}) == 1


def test_duplicate_display_name_6240_gets_a_suffixed_name(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    first = run(qbo.upsert_customer(make_customer()))
    assert run(qbo.upsert_customer(make_customer())).created is False
    namesake = run(qbo.upsert_customer(make_customer(id="cus_2")))
    table = sandbox.companies[sandbox.realm_id].table("Customer")
    assert table[namesake.external_id]["DisplayName"] == "Μαρία Παπαδοπούλου (cus_2)"
    assert first.external_id != namesake.external_id
    assert run(qbo.upsert_customer(make_customer(id="cus_2"))).external_id == namesake.external_id


def test_sparse_update_recovers_from_a_stale_sync_token(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    record = run(qbo.upsert_customer(make_customer()))
    table = sandbox.companies[sandbox.realm_id].table("Customer")
    bumped = {"done": False}

    def someone_else_edits_first(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/customer") and not bumped["done"]:
            bumped["done"] = True
            table[record.external_id]["SyncToken"] = "7"  # a concurrent edit landed
        return sandbox.handle(request)

    racing = Runner(run.mode, httpx.MockTransport(someone_else_edits_first))
    updated = racing(qbo.sparse_update("customer", record.external_id, {"Notes": "VIP"}))
    assert updated["Notes"] == "VIP"
    assert updated["SyncToken"] == "8"
    assert table[record.external_id]["GivenName"] == "Μαρία"  # sparse: the rest is kept


def test_batch_pushes_30_per_call_with_results_in_input_order(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    run(qbo.post_invoice(make_order(id="o-2")))
    batch = [make_order(id=f"o-{i}") for i in range(65)]
    batch[5] = make_order(id="o-5", lines=[make_line(vat_category=VatCategory.SUPER_REDUCED)])
    batch[9] = make_order(id="o-9" + "x" * 30)  # refused before sending
    run(qbo.connect())
    del sandbox.companies[sandbox.realm_id].table("TaxCode")["3"]  # the company changed
    results = run(qbo.post_invoices(batch))
    assert [r.reference for r in results] == [o.id for o in batch]
    assert results[2].status is BatchItemStatus.ALREADY_EXISTED
    assert results[5].status is BatchItemStatus.REJECTED
    assert results[5].error_code == "2500"
    assert results[9].status is BatchItemStatus.REJECTED
    assert results[9].error_code == "invalid_input"
    assert sum(r.status is BatchItemStatus.CREATED for r in results) == 62
    batch_bodies = [
        json.loads(r.content) for r in sandbox.requests if r.url.path.endswith("/batch")
    ]
    invoice_batches = [b for b in batch_bodies if "Invoice" in b["BatchItemRequest"][0]]
    assert [len(b["BatchItemRequest"]) for b in invoice_batches] == [30, 30, 4]  # 64 sent
    assert invoice_batches[0]["BatchItemRequest"][0]["bId"] == "0"


def test_a_batch_push_keeps_no_parsed_answer_on_its_responses(
    sandbox: QuickBooksSandbox, mode: str
) -> None:
    seen = Exchanges()
    run = Runner(mode, seen.transport(sandbox))
    qbo = _adapter(sandbox)
    run(qbo.post_invoice(make_order(id="o-2")))
    results = run(qbo.post_invoices([make_order(id=f"o-{i}") for i in range(40)]))
    assert results[2].status is BatchItemStatus.ALREADY_EXISTED  # read back by a query
    assert sum(r.status is BatchItemStatus.CREATED for r in results) == 39
    writes = [r for q, r in seen if q.url.path.endswith("/batch") and b'"Invoice"' in q.content]
    read_back = [r for q, r in seen if q.url.path.endswith("/query")][-1]
    assert len(writes) == 2
    assert seen.cached_parses([*writes, read_back]) == [None] * 3


def test_payment_fee_refund_and_void(sandbox: QuickBooksSandbox, run: Runner) -> None:
    qbo = _adapter(sandbox)
    order = _order()
    posted = run(qbo.post_invoice(order))
    payment = Payment(
        id="pay_1",
        order_id=order.id,
        amount=Money.of("20.00"),
        method=PaymentMethod.CARD,
        paid_at=PAID_AT,
        fee=Money.of("0.55"),
    )
    assert run(qbo.record_payment(payment)).created is True
    assert run(qbo.record_payment(payment)).created is False
    company = sandbox.companies[sandbox.realm_id]
    (fee,) = company.table("Purchase").values()
    assert fee["TotalAmt"] == Decimal("0.55")
    invoice = company.table("Invoice")[posted.external_id]
    assert invoice["Balance"] == order.total.amount - Decimal("20.00")
    memo = run(
        qbo.record_refund(
            Refund(id="ref_1", order_id=order.id, amount=Money.of("5.00"), created_at=PAID_AT)
        )
    )
    assert company.table("CreditMemo")[memo.external_id]["TotalAmt"] == Decimal("5.00")
    assert invoice["Balance"] == order.total.amount - Decimal("25.00")
    with pytest.raises(ValidationRejected):  # payments applied: QBO refuses the void
        run(qbo.void_invoice(order.id))
    run(qbo.post_invoice(make_order(id="ord_2")))
    voided = run(qbo.void_invoice("ord_2"))
    assert (voided.status, voided.vendor_total) == ("VOIDED", Money.of("0.00"))
    with pytest.raises(NotFound):
        run(qbo.void_invoice("nope"))


def test_throttle_is_waited_out_then_succeeds(make_runner: Callable[[Any], Runner]) -> None:
    sandbox = QuickBooksSandbox(minute_limit=3)
    run = make_runner(sandbox)
    qbo = _adapter(sandbox, verify_tax_codes=False)
    run.on_sleep = lambda seconds: sandbox.minute._windows.clear()  # the minute passes
    for n in range(4):
        assert run(qbo.find_invoice(f"none-{n}")) is None
    assert sandbox.minute.rejected == 1
    assert len(run.sleeps) == 1


def test_other_companies_are_isolated(sandbox: QuickBooksSandbox, run: Runner) -> None:
    qbo = _adapter(sandbox)
    run(qbo.post_invoice(_order()))
    other = list(sandbox.companies)[1]
    foreign = _adapter(sandbox, realm_id=other)
    from dixis_integrations.errors import PermissionDenied

    with pytest.raises(PermissionDenied):  # the first company's token
        run(foreign.find_invoice("ord_1"))


def test_webhook_reread_and_cdc_resume(sandbox: QuickBooksSandbox, run: Runner) -> None:
    qbo = _adapter(sandbox)
    posted = run(qbo.post_invoice(_order()))
    seen: list[bytes] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        qbo.parse_webhook(request.content, request.headers.get("intuit-signature"))
        return httpx.Response(200)

    sandbox._webhook_client = httpx.Client(transport=httpx.MockTransport(receiver))
    assert sandbox.deliver_events("https://hooks.example/qbo", cloudevents=True) == 200
    changes = qbo.parse_webhook(seen[0], sign_hmac_sha256(sandbox.verifier_token, seen[0]))
    invoice_ids = [c.external_id for c in changes if c.kind == "invoice"]
    assert invoice_ids == [posted.external_id]
    assert run(qbo.fetch_invoice(invoice_ids[0])).vendor_total == posted.vendor_total
    page = run(qbo.changes_since(None))
    assert posted.external_id in {c.external_id for c in page.changes if c.kind == "invoice"}
    later = run(qbo.changes_since(page.checkpoint))
    assert later.changes == ()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders())
def test_posted_invoice_lines_vat_and_total_equal_the_orders(order: Order) -> None:
    if len(order.id) > 21:
        return
    sandbox = QuickBooksSandbox()
    qbo = _adapter(sandbox)
    with Driver(httpx.Client(transport=sandbox.transport()), sleep=lambda s: None) as driver:
        posted = driver.run(qbo.post_invoice(order))
    totals = order.totals()
    assert (posted.vendor_total, posted.vendor_tax) == (totals.gross, totals.vat)
    stored = sandbox.companies[sandbox.realm_id].table("Invoice")[posted.external_id]
    assert [
        Money.of(line["SalesItemLineDetail"]["TaxInclusiveAmt"]) for line in stored["Line"]
    ] == [line.gross for line in invoice_lines(order)]


def test_discovery_is_fetched_once_and_feeds_the_oauth_settings(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox, client_id="app", discovery_url="http://sandbox.invalid/"
                   ".well-known/openid_configuration/")  # fmt: skip
    first = run(qbo.discover())
    assert run(qbo.discover()) is first
    assert [r.url.path for r in sandbox.requests] == ["/.well-known/openid_configuration/"]
    assert "authorization" not in sandbox.requests[0].headers  # no token to another host
    oauth = qbo.config.oauth(first)
    assert oauth.token_url.endswith("/oauth2/v1/tokens/bearer")
    assert oauth.scopes == ("com.intuit.quickbooks.accounting",)


def test_void_recovers_from_a_stale_sync_token(sandbox: QuickBooksSandbox, run: Runner) -> None:
    qbo = _adapter(sandbox)
    posted = run(qbo.post_invoice(_order()))
    table = sandbox.companies[sandbox.realm_id].table("Invoice")
    bumped = {"done": False}

    def edited_meanwhile(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("operation") == "void" and not bumped["done"]:
            bumped["done"] = True
            table[posted.external_id]["SyncToken"] = "3"
        return sandbox.handle(request)

    voided = Runner(run.mode, httpx.MockTransport(edited_meanwhile))(qbo.void_invoice("ord_1"))
    assert voided.status == "VOIDED"
    assert table[posted.external_id]["SyncToken"] == "4"


def test_request_ids_are_bound_to_the_payload() -> None:
    from dixis_integrations.accounting.quickbooks import _with_payload

    assert _with_payload("k", b"{}") == _with_payload("k", b"{}")
    assert _with_payload("k", b"{}") != _with_payload("k", b'{"a":1}')
    assert len(_with_payload("k", b"{}")) == 36  # fits a batch requestid


def test_an_item_created_meanwhile_by_another_worker_is_used(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    company = sandbox.companies[sandbox.realm_id]
    raced = {"done": False}

    def another_worker_was_faster(request: httpx.Request) -> httpx.Response:
        if (
            request.url.path.endswith("/batch")
            and b'"Item"' in request.content
            and not (raced["done"])
        ):
            raced["done"] = True
            company.table("Item")["900"] = {"Id": "900", "Name": "OIL-1L", "SyncToken": "0"}
        return sandbox.handle(request)

    racing = Runner(run.mode, httpx.MockTransport(another_worker_was_faster))
    posted = racing(qbo.post_invoice(make_order()))
    stored = company.table("Invoice")[posted.external_id]
    assert stored["Line"][0]["SalesItemLineDetail"]["ItemRef"]["value"] == "900"


def test_a_refund_rerun_applies_a_credit_left_unapplied(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    order = _order()
    posted = run(qbo.post_invoice(order))
    refund = Refund(id="ref_1", order_id=order.id, amount=Money.of("5.00"), created_at=PAID_AT)

    def crash_before_applying(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/payment"):
            raise httpx.ConnectError("worker died", request=request)
        return sandbox.handle(request)

    from dixis_integrations.errors import TransientError as _Transient

    with pytest.raises(_Transient):
        Runner(run.mode, httpx.MockTransport(crash_before_applying))(qbo.record_refund(refund))
    invoice = sandbox.companies[sandbox.realm_id].table("Invoice")[posted.external_id]
    assert invoice["Balance"] == order.total.amount
    again = run(qbo.record_refund(refund))
    assert again.created is False
    assert invoice["Balance"] == order.total.amount - Decimal("5.00")
    assert run(qbo.record_refund(refund)).created is False
    assert invoice["Balance"] == order.total.amount - Decimal("5.00")  # applied once


def test_a_customer_renamed_in_quickbooks_is_found_again_not_duplicated(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    first = run(qbo.upsert_customer(make_customer()))
    table = sandbox.companies[sandbox.realm_id].table("Customer")
    table[first.external_id]["DisplayName"] = "Μ. Παπαδοπούλου (χονδρική)"  # edited by hand
    again = run(_adapter(sandbox).upsert_customer(make_customer()))
    assert again.created is False
    assert again.external_id == first.external_id
    results = run(_adapter(sandbox).post_invoices([_order(id="ord-renamed")]))
    assert results[0].status is BatchItemStatus.CREATED
    invoice = sandbox.companies[sandbox.realm_id].table("Invoice")[results[0].external_id]
    assert invoice["CustomerRef"]["value"] == first.external_id
    assert len(table) == 1


def test_changed_records_of_every_kind_are_read_back(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    order = _order()
    posted = run(qbo.post_invoice(order))
    payment = Payment(
        id="pay_9",
        order_id=order.id,
        amount=Money.of("5.00"),
        method=PaymentMethod.CARD,
        paid_at=PAID_AT,
    )
    paid = run(qbo.record_payment(payment))
    refund = Refund(id="ref_9", order_id=order.id, amount=Money.of("1.00"), created_at=PAID_AT)
    memo = run(qbo.record_refund(refund))
    customer = run(qbo.upsert_customer(order.customer))
    items = sandbox.companies[sandbox.realm_id].table("Item")
    item_id = next(i for i, row in items.items() if row["Name"] == order.lines[0].sku)

    def change(kind: str, external_id: str, **extra: Any) -> LedgerChange:
        return LedgerChange(
            provider="quickbooks", tenant="t", kind=kind, external_id=external_id,
            operation="Update", **extra,
        )  # fmt: skip

    invoice = run(qbo.fetch_record(change("invoice", posted.external_id)))
    assert isinstance(invoice, PostedInvoice)
    assert invoice.reference == order.id
    got = {
        kind: run(qbo.fetch_record(change(kind, ident)))
        for kind, ident in (
            ("customer", customer.external_id),
            ("payment", paid.external_id),
            ("credit_note", memo.external_id),
            ("item", item_id),
        )
    }
    assert {k: (r.kind, r.reference) for k, r in got.items() if r is not None} == {
        "customer": ("customer", order.customer.id),
        "payment": ("payment", "pay_9"),
        "credit_note": ("credit_note", "ref_9"),
        "item": ("item", order.lines[0].sku),
    }
    assert run(qbo.fetch_record(change("payment", paid.external_id, deleted=True))) is None
    assert run(qbo.fetch_record(change("credit_note", "999999"))) is None
    with pytest.raises(NotSupported):
        run(qbo.fetch_record(change("budget", "1")))


# -- refunds: credit memo up to the balance, refund receipt beyond it ------------------------
def _paid(run: Runner, qbo: QuickBooks, order: Order, amount: Money, pay_id: str = "pay_r") -> None:
    run(
        qbo.record_payment(
            Payment(
                id=pay_id,
                order_id=order.id,
                amount=amount,
                method=PaymentMethod.CARD,
                paid_at=PAID_AT,
            )
        )
    )


def test_a_refund_within_the_balance_is_a_credit_memo_only(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    order = _order()
    posted = run(qbo.post_invoice(order))
    refund = Refund(id="ref_1", order_id=order.id, amount=Money.of("5.00"), created_at=PAID_AT)
    record = run(qbo.record_refund(refund))
    company = sandbox.companies[sandbox.realm_id]
    assert record.kind == "credit_note"
    assert company.table("CreditMemo")[record.external_id]["TotalAmt"] == Decimal("5.00")
    assert company.table("RefundReceipt") == {}
    invoice = company.table("Invoice")[posted.external_id]
    assert invoice["Balance"] == order.total.amount - Decimal("5.00")


def test_a_refund_of_a_paid_invoice_is_a_refund_receipt(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    order = _order()
    posted = run(qbo.post_invoice(order))
    _paid(run, qbo, order, order.total)
    refund = Refund(id="ref_1", order_id=order.id, amount=Money.of("5.00"), created_at=PAID_AT)
    record = run(qbo.record_refund(refund))
    company = sandbox.companies[sandbox.realm_id]
    assert (record.kind, record.created) == ("refund_receipt", True)
    receipt = company.table("RefundReceipt")[record.external_id]
    assert receipt["TotalAmt"] == Decimal("5.00")
    assert receipt["DepositToAccountRef"] == {"value": "4"}  # out of the clearing account
    assert receipt["DocNumber"] == "ref_1"
    gross = sum(
        (line["SalesItemLineDetail"]["TaxInclusiveAmt"] for line in receipt["Line"]), Decimal(0)
    )
    assert gross == Decimal("5.00")
    assert company.table("CreditMemo") == {}  # no credit left on the customer
    assert company.table("Invoice")[posted.external_id]["Balance"] == Decimal(0)
    again = run(qbo.record_refund(refund))
    assert (again.kind, again.external_id, again.created) == (
        "refund_receipt",
        record.external_id,
        False,
    )
    assert len(company.table("RefundReceipt")) == 1


def test_a_refund_beyond_a_partly_paid_balance_is_a_credit_memo_and_a_refund_receipt(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox, refund_account_id="4")
    order = _order()
    posted = run(qbo.post_invoice(order))
    _paid(run, qbo, order, Money.of("20.00"))
    company = sandbox.companies[sandbox.realm_id]
    invoice = company.table("Invoice")[posted.external_id]
    balance = invoice["Balance"]
    assert balance == order.total.amount - Decimal("20.00")
    refund = Refund(id="ref_2", order_id=order.id, amount=Money.of("10.00"), created_at=PAID_AT)
    record = run(qbo.record_refund(refund))
    assert record.kind == "refund_receipt"
    (memo,) = company.table("CreditMemo").values()
    assert memo["TotalAmt"] == balance  # the open balance is credited...
    assert memo["RemainingCredit"] == Decimal(0)  # ...and applied to the invoice
    assert invoice["Balance"] == Decimal(0)
    receipt = company.table("RefundReceipt")[record.external_id]
    assert receipt["TotalAmt"] == Decimal("10.00") - balance  # the rest is paid back


def test_a_refund_rerun_after_a_crash_pays_out_the_rest_once(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    order = _order()
    run(qbo.post_invoice(order))
    _paid(run, qbo, order, Money.of("20.00"))
    refund = Refund(id="ref_3", order_id=order.id, amount=Money.of("10.00"), created_at=PAID_AT)

    def crash_before_the_receipt(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/refundreceipt"):
            raise httpx.ConnectError("worker died", request=request)
        return sandbox.handle(request)

    from dixis_integrations.errors import TransientError as _Transient

    with pytest.raises(_Transient):
        Runner(run.mode, httpx.MockTransport(crash_before_the_receipt))(qbo.record_refund(refund))
    company = sandbox.companies[sandbox.realm_id]
    (memo,) = company.table("CreditMemo").values()
    assert company.table("RefundReceipt") == {}
    record = run(qbo.record_refund(refund))  # the invoice's balance is 0 by now
    assert (record.kind, record.created) == ("refund_receipt", True)
    assert len(company.table("CreditMemo")) == 1
    receipt = company.table("RefundReceipt")[record.external_id]
    assert memo["TotalAmt"] + receipt["TotalAmt"] == Decimal("10.00")  # decided once
    assert run(qbo.record_refund(refund)).created is False
    assert len(company.table("RefundReceipt")) == 1


def test_a_refund_larger_than_the_invoice_is_refused_before_any_write(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(sandbox)
    order = _order()
    run(qbo.post_invoice(order))
    sandbox.requests.clear()
    refund = Refund(
        id="ref_4", order_id=order.id, amount=order.total + Money.of("0.01"), created_at=PAID_AT
    )
    with pytest.raises(InvalidInput) as caught:
        run(qbo.record_refund(refund))
    assert caught.value.errors[0].loc == ("amount",)
    writes = [
        r for r in sandbox.requests if r.method == "POST" and not r.url.path.endswith("/query")
    ]
    assert writes == []


# -- the bulk path's lean body equals the careful one -----------------------------------------
def _no_bare_decimal(value: Any) -> bool:
    if isinstance(value, Decimal):
        return False
    if isinstance(value, dict):
        return all(_no_bare_decimal(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_bare_decimal(v) for v in value)
    return True


# Text a JSON writer must escape: quotes, backslashes, control characters, non-ASCII.
_odd_text = st.text(
    alphabet=st.sampled_from('aZ09 -_/"\\\n\t\x00\x7fé€Ωα\u2028😀'), min_size=1, max_size=12
).filter(str.strip)


@settings(max_examples=150, deadline=None)
@given(orders(), st.booleans(), st.sampled_from([0, 7]), _odd_text, _odd_text)
def test_the_lean_body_is_what_the_fast_writer_writes_for_the_careful_one(
    order: Order, odd: bool, due_days: int, text: str, other: str
) -> None:
    if odd:  # text the writer must escape, wherever our strings go
        lines = [line.model_copy(update={"name": text + str(n)}) for n, line in
                 enumerate(order.lines)]  # fmt: skip
        order = order.model_copy(update={"lines": lines, "id": other, "number": text})
    qbo = QuickBooks(QuickBooksConfig(realm_id="1", tax_codes=QBO_CODES, due_days=due_days))
    lean = lean_lines(order, tax_plan(qbo.codes))
    assert lean is not None
    lines, gross, vat = lean
    ids = {line.sku: f"i{n}" if n % 2 or not odd else text for n, line in
           enumerate(order.lines)}  # fmt: skip
    ids |= {"Shipping": "s", "Discount": "d"}
    customer_id = other if odd else "58"
    refs: dict[str, str] = {}
    written = qbo._lean_invoice_text(order, lines, customer_id, ids, refs)
    draft = qbo._check(order)
    careful = build_invoice(
        order, draft.lines, qbo.config, qbo.codes, tenant=qbo.tenant, customer_id=customer_id,
        item_ids=ids,
    )  # fmt: skip
    assert written.encode() == dumps_marked(careful)
    assert (gross, vat) == (draft.gross_amount, draft.vat_amount)
    assert _no_bare_decimal(careful)  # so the fast writer may write it
    # The references written once are reused, to the same text.
    assert qbo._lean_invoice_text(order, lines, customer_id, ids, refs) == written
    items = [{"bId": str(n), "operation": "create", "Invoice": careful} for n in range(2)]
    texts = [f'{{"bId":"{n}","operation":"create","Invoice":{written}}}' for n in range(2)]
    assert _batch_content(texts) == dumps_marked({"BatchItemRequest": items})
    assert dumps_marked({"BatchItemRequest": items}) == dumps({"BatchItemRequest": items})


def test_a_batch_the_encoder_refuses_is_refused_as_before() -> None:
    with pytest.raises(ValueError, match="surrogates"):
        _batch_content(['{"Description":"\ud800"}'])


def test_bad_orders_in_a_bulk_push_are_rejected_and_never_sent(
    sandbox: QuickBooksSandbox, run: Runner
) -> None:
    qbo = _adapter(
        sandbox,
        tax_codes={k: v for k, v in QBO_CODES.items() if k is not VatCategory.ISLAND_REDUCED},
    )
    nameless = make_customer().model_copy(update={"first_name": None, "last_name": None})
    batch = [
        _order(id="good-1"),
        _order(id="unmapped", lines=[make_line(vat_category=VatCategory.ISLAND_REDUCED)]),
        _order(id="stated").model_copy(update={"stated_total": Money.of("1.00")}),
        _order(id="nameless").model_copy(update={"customer": nameless}),
        _order(id="X" * 22),
        _order(id="good-2"),
    ]
    results = run(qbo.post_invoices(batch))
    assert [r.reference for r in results] == [o.id for o in batch]
    assert [r.status for r in results] == [
        BatchItemStatus.CREATED,
        *[BatchItemStatus.REJECTED] * 4,
        BatchItemStatus.CREATED,
    ]
    assert {r.error_code for r in results[1:5]} == {"invalid_input"}
    sent = [
        item["Invoice"]["DocNumber"]
        for r in sandbox.requests
        if r.url.path.endswith("/batch")
        for item in json.loads(r.content)["BatchItemRequest"]
        if "Invoice" in item
    ]
    assert sent == ["good-1", "good-2"]
