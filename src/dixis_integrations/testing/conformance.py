"""Conformance suites a plugin author subclasses to prove an adapter keeps its Protocol.

In the style of ``fsspec/tests/abstract``: each suite is a plain class of pytest tests
(not collected itself, its name does not start with ``Test``) whose fixtures the author
overrides. Every declared capability is exercised through a real driver; every capability
not declared must raise :class:`~dixis_integrations.errors.NotSupported` before any call.

    from dixis_integrations.testing import ShippingCarrierSuite

    class TestMyCarrier(ShippingCarrierSuite):
        @pytest.fixture
        def carrier(self): ...
        @pytest.fixture
        def driver(self): ...
        @pytest.fixture
        def shipment_request(self): ...
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from dixis_integrations.errors import InvalidInput, NotSupported
from dixis_integrations.http.driver import AsyncDriver, CallRecord, Driver, Operation
from dixis_integrations.models.accounting import BatchItemResult, LedgerRecord, PostedInvoice
from dixis_integrations.models.crm import (
    ContactChangePage,
    CRMContact,
    ErasureResult,
    Lead,
    UpsertResult,
    UpsertStatus,
)
from dixis_integrations.models.customer import Customer
from dixis_integrations.models.email import EmailMessage, SendResult
from dixis_integrations.models.inventory import (
    PurchaseOrder,
    PurchaseOrderLine,
    StockAdjustment,
    StockLevel,
    StockPage,
)
from dixis_integrations.models.money import Money
from dixis_integrations.models.order import Order, OrderLine, Payment, PaymentMethod, Refund
from dixis_integrations.models.shipping import (
    CashOnDelivery,
    DeliveryType,
    Label,
    LabelFormat,
    Manifest,
    PickupPoint,
    Quote,
    Shipment,
    ShipmentRequest,
    Tracking,
    TrackingStatus,
)
from dixis_integrations.models.tax import VatCategory
from dixis_integrations.protocols import (
    AccountingProvider,
    Capability,
    CRMProvider,
    EmailProvider,
    HealthStatus,
    InventorySource,
    ShippingCarrier,
)
from dixis_integrations.registry import conformance_problems

__all__ = [
    "AccountingProviderSuite",
    "AdapterSuite",
    "CRMProviderSuite",
    "EmailProviderSuite",
    "InventorySourceSuite",
    "ShippingCarrierSuite",
    "sent_calls",
]

_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")


class _Recorder:
    """Counts the calls a driver makes while it is installed (see :func:`sent_calls`)."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []


def sent_calls(driver: Driver | AsyncDriver) -> Iterator[_Recorder]:
    """Record the logical calls ``driver`` makes until the generator is closed.

    Chains to the driver's own ``on_call``, so the author's hooks keep working.
    """
    recorder = _Recorder()
    previous = driver.on_call

    def hook(record: CallRecord) -> None:
        recorder.records.append(record)
        if previous is not None:
            previous(record)

    driver.on_call = hook
    try:
        yield recorder
    finally:
        driver.on_call = previous


class AdapterSuite:
    """What every adapter keeps: a name, capabilities, its Protocol and a health check.

    Fixtures to provide: ``adapter`` (kind suites alias it to their own name) and
    ``driver`` (a :class:`Driver` wired to the adapter's sandbox or transport).
    """

    kind: str = ""
    protocol: Any = None

    @pytest.fixture
    def adapter(self) -> Any:
        raise NotImplementedError("provide the adapter under test")

    @pytest.fixture
    def driver(self) -> Driver:
        raise NotImplementedError("provide a Driver wired to the adapter's sandbox")

    @pytest.fixture
    def async_driver(self) -> AsyncDriver | None:
        """An :class:`AsyncDriver` on the same sandbox, to prove both drivers work."""
        return None

    @pytest.fixture
    def recorder(self, driver: Driver) -> Iterator[_Recorder]:
        yield from sent_calls(driver)

    # -- identity --------------------------------------------------------------------
    def test_name_is_a_short_lowercase_identifier(self, adapter: Any) -> None:
        assert isinstance(adapter.name, str)
        assert _NAME.match(adapter.name), f"name {adapter.name!r} is not [a-z][a-z0-9_-]*"

    def test_capabilities_are_a_frozenset_of_capability(self, adapter: Any) -> None:
        caps = adapter.capabilities
        assert isinstance(caps, frozenset)
        assert all(isinstance(c, Capability) for c in caps), caps

    def test_satisfies_its_protocol(self, adapter: Any) -> None:
        assert isinstance(adapter, self.protocol), f"not a {self.protocol.__name__}"
        assert conformance_problems(self.kind, type(adapter)) == []

    def test_check_reports_healthy(self, adapter: Any, driver: Driver) -> None:
        status = driver.run(adapter.check())
        assert isinstance(status, HealthStatus)
        assert status.ok, status.detail

    # -- helpers for subclasses ------------------------------------------------------
    @staticmethod
    def assert_not_supported(
        driver: Driver, recorder: _Recorder, make: Callable[[], Operation[Any]]
    ) -> None:
        """``make()`` (creating or running the operation) raises NotSupported, sending nothing."""
        before = len(recorder.records)
        with pytest.raises(NotSupported):
            driver.run(make())
        assert len(recorder.records) == before, "NotSupported must come before any call"


def _sample_order(order_id: str) -> Order:
    customer = Customer(
        id=f"{order_id}-cus",
        email="maria.conformance@example.gr",
        first_name="Μαρία",
        last_name="Παπαδοπούλου",
        created_at=datetime(2026, 3, 14, 9, 30, tzinfo=UTC),
    )
    line = OrderLine(
        sku="OIL-1L",
        name="Ελαιόλαδο 1L",
        quantity=Decimal(2),
        unit_price=Money.of("12.40"),
        vat_category=VatCategory.REDUCED,
    )
    return Order(
        id=order_id,
        customer=customer,
        lines=[line],
        created_at=datetime(2026, 3, 14, 9, 30, tzinfo=UTC),
    )


# -- shipping ---------------------------------------------------------------------------

_OPTION_CAPABILITIES: dict[Capability, Callable[[ShipmentRequest], ShipmentRequest]] = {
    Capability.COD: lambda r: r.model_copy(
        update={
            "options": r.options.model_copy(
                update={"cod": CashOnDelivery(amount=Money.of("25.00"))}
            )
        }
    ),
    Capability.SATURDAY: lambda r: r.model_copy(
        update={"options": r.options.model_copy(update={"saturday": True})}
    ),
    Capability.COLD_CHAIN: lambda r: r.model_copy(
        update={"options": r.options.model_copy(update={"refrigerated": True})}
    ),
    Capability.INSURANCE: lambda r: r.model_copy(
        update={"options": r.options.model_copy(update={"insurance": Money.of("300.00")})}
    ),
}


class ShippingCarrierSuite(AdapterSuite):
    """The :class:`~dixis_integrations.protocols.ShippingCarrier` contract.

    Fixtures to provide: ``carrier``, ``driver`` and ``shipment_request`` (a request this
    carrier accepts, with no optional extras). Optional: ``label_formats`` (default: every
    format; those the carrier refuses must raise NotSupported or InvalidInput),
    ``near`` (an address for ``pickup_points``), ``async_driver``.
    """

    kind = "shipping"
    protocol = ShippingCarrier

    @pytest.fixture
    def carrier(self) -> ShippingCarrier:
        raise NotImplementedError("provide the carrier under test")

    @pytest.fixture
    def adapter(self, carrier: ShippingCarrier) -> ShippingCarrier:
        return carrier

    @pytest.fixture
    def shipment_request(self) -> ShipmentRequest:
        raise NotImplementedError("provide a ShipmentRequest this carrier accepts")

    @pytest.fixture
    def label_formats(self) -> tuple[LabelFormat, ...]:
        return (LabelFormat.PDF_A4,)

    @pytest.fixture
    def near(self, shipment_request: ShipmentRequest) -> Any:
        return shipment_request.recipient

    @pytest.fixture
    def shipment(
        self, carrier: ShippingCarrier, driver: Driver, shipment_request: ShipmentRequest
    ) -> Shipment:
        return driver.run(carrier.create_shipment(shipment_request))

    # -- always ----------------------------------------------------------------------
    def test_validate_accepts_the_plain_request(
        self, carrier: ShippingCarrier, shipment_request: ShipmentRequest
    ) -> None:
        carrier.validate(shipment_request)  # raises when refused

    def test_create_shipment_returns_a_voucher(
        self, carrier: ShippingCarrier, shipment: Shipment, shipment_request: ShipmentRequest
    ) -> None:
        assert isinstance(shipment, Shipment)
        assert shipment.carrier == carrier.name
        assert shipment.tracking_number.strip()
        assert shipment.reference == shipment_request.reference
        assert shipment.created_at.utcoffset() is not None

    def test_two_shipments_get_two_tracking_numbers(
        self,
        carrier: ShippingCarrier,
        driver: Driver,
        shipment: Shipment,
        shipment_request: ShipmentRequest,
    ) -> None:
        other = shipment_request.model_copy(update={"reference": shipment_request.reference + "-2"})
        second = driver.run(carrier.create_shipment(other))
        assert second.tracking_number != shipment.tracking_number

    def test_both_drivers_run_the_same_operation(
        self,
        carrier: ShippingCarrier,
        async_driver: AsyncDriver | None,
        shipment_request: ShipmentRequest,
    ) -> None:
        if async_driver is None:
            pytest.skip("no async_driver fixture")
        request = shipment_request.model_copy(
            update={"reference": shipment_request.reference + "-a"}
        )
        shipment = asyncio.run(async_driver.run(carrier.create_shipment(request)))
        assert shipment.tracking_number.strip()

    # -- declared or refused, capability by capability ---------------------------------
    def test_quote_per_capability(
        self,
        carrier: ShippingCarrier,
        driver: Driver,
        recorder: _Recorder,
        shipment_request: ShipmentRequest,
    ) -> None:
        if Capability.RATES not in carrier.capabilities:
            self.assert_not_supported(driver, recorder, lambda: carrier.quote(shipment_request))
            return
        quotes = driver.run(carrier.quote(shipment_request))
        assert quotes, "a carrier with RATES quotes at least one service"
        for quote in quotes:
            assert isinstance(quote, Quote)
            assert quote.carrier == carrier.name
            assert isinstance(quote.price_excl_vat, Money)
            assert quote.price_incl_vat.currency == quote.price_excl_vat.currency
            assert quote.price_incl_vat >= quote.price_excl_vat
            assert not quote.price_excl_vat.is_negative
            if quote.estimated_delivery is not None:
                assert isinstance(quote.estimated_delivery, date)
        # comparable: they sort by price, across carriers too
        cheapest = min(quotes, key=lambda q: q.price_incl_vat)
        assert all(cheapest.price_incl_vat <= q.price_incl_vat for q in quotes)

    def test_label_per_capability(
        self,
        carrier: ShippingCarrier,
        driver: Driver,
        recorder: _Recorder,
        shipment: Shipment,
        label_formats: tuple[LabelFormat, ...],
    ) -> None:
        if Capability.LABELS not in carrier.capabilities:
            self.assert_not_supported(
                driver, recorder, lambda: carrier.label(shipment, LabelFormat.PDF_A4)
            )
            return
        assert label_formats, "a carrier with LABELS prints at least one format"
        for fmt in label_formats:
            label = driver.run(carrier.label(shipment, fmt))
            assert isinstance(label, Label)
            assert label.tracking_number == shipment.tracking_number
            assert label.format is fmt
            if fmt is LabelFormat.ZPL:
                assert label.content.lstrip().startswith(b"^XA"), "ZPL starts with ^XA"
            else:
                assert label.content.startswith(b"%PDF"), "a PDF label starts with %PDF"

    def test_track_per_capability(
        self,
        carrier: ShippingCarrier,
        driver: Driver,
        recorder: _Recorder,
        shipment: Shipment,
    ) -> None:
        if Capability.TRACKING not in carrier.capabilities:
            self.assert_not_supported(
                driver, recorder, lambda: carrier.track(shipment.tracking_number)
            )
            return
        tracking = driver.run(carrier.track(shipment.tracking_number))
        assert isinstance(tracking, Tracking)
        assert tracking.carrier == carrier.name
        assert tracking.tracking_number == shipment.tracking_number
        assert isinstance(tracking.status, TrackingStatus)
        times = [e.at for e in tracking.events]
        assert times == sorted(times), "events are oldest first"
        assert all(t.utcoffset() is not None for t in times)

    def test_cancel_per_capability(
        self,
        carrier: ShippingCarrier,
        driver: Driver,
        recorder: _Recorder,
        shipment: Shipment,
    ) -> None:
        if Capability.CANCELLATION not in carrier.capabilities:
            self.assert_not_supported(driver, recorder, lambda: carrier.cancel(shipment))
            return
        cancelled = driver.run(carrier.cancel(shipment))
        assert isinstance(cancelled, Shipment)
        assert cancelled.tracking_number == shipment.tracking_number
        assert cancelled.cancellable is False
        if Capability.TRACKING in carrier.capabilities:
            tracking = driver.run(carrier.track(shipment.tracking_number))
            assert tracking.status is TrackingStatus.CANCELLED

    def test_finalise_per_capability(
        self,
        carrier: ShippingCarrier,
        driver: Driver,
        recorder: _Recorder,
        shipment: Shipment,
    ) -> None:
        if Capability.PICKUP_LIST not in carrier.capabilities:
            self.assert_not_supported(driver, recorder, lambda: carrier.finalise([shipment]))
            return
        manifest = driver.run(carrier.finalise([shipment]))
        assert isinstance(manifest, Manifest)
        assert manifest.carrier == carrier.name
        assert shipment.tracking_number in manifest.tracking_numbers

    def test_pickup_points_per_capability(
        self, carrier: ShippingCarrier, driver: Driver, recorder: _Recorder, near: Any
    ) -> None:
        if Capability.LOCKERS not in carrier.capabilities:
            self.assert_not_supported(driver, recorder, lambda: carrier.pickup_points(near))
            return
        points = driver.run(carrier.pickup_points(near))
        assert points, "a carrier with LOCKERS lists at least one point"
        for point in points:
            assert isinstance(point, PickupPoint)
            assert point.carrier == carrier.name
            assert point.kind is not DeliveryType.DOOR

    @pytest.mark.parametrize("capability", list(_OPTION_CAPABILITIES), ids=str)
    def test_options_per_capability(
        self,
        carrier: ShippingCarrier,
        shipment_request: ShipmentRequest,
        capability: Capability,
    ) -> None:
        request = _OPTION_CAPABILITIES[capability](shipment_request)
        if capability in carrier.capabilities:
            carrier.validate(request)  # a declared option is accepted
        else:
            with pytest.raises((InvalidInput, NotSupported)):
                carrier.validate(request)

    def test_a_plain_request_has_no_extras(self, shipment_request: ShipmentRequest) -> None:
        options = shipment_request.options
        assert options.cod is None, "shipment_request must not ask for cash on delivery"
        assert options.insurance is None, "shipment_request must not ask for insurance"
        assert not options.saturday, "shipment_request must not ask for Saturday delivery"
        assert not options.refrigerated, "shipment_request must not ask for cold chain"


# -- the other kinds: identity, Protocol and health (operations come with their areas) --


class AccountingProviderSuite(AdapterSuite):
    """The :class:`~dixis_integrations.protocols.AccountingProvider` contract.

    Provide ``provider`` and ``driver``; optionally ``order`` (one the ledger accepts).
    Customers without duplicates; invoices (one per order, found again by reference,
    voided), payments and credit notes where declared, refusing where not; bulk posts
    answered in input order.
    """

    kind = "accounting"
    protocol = AccountingProvider

    @pytest.fixture
    def provider(self) -> AccountingProvider:
        raise NotImplementedError("provide the accounting provider under test")

    @pytest.fixture
    def adapter(self, provider: AccountingProvider) -> AccountingProvider:
        return provider

    @pytest.fixture
    def order(self) -> Order:
        """An order the ledger accepts (override to match its tax and item set-up)."""
        return _sample_order("conformance-1")

    @pytest.fixture
    def posted(self, provider: AccountingProvider, driver: Driver, order: Order) -> PostedInvoice:
        if Capability.INVOICES not in provider.capabilities:
            pytest.skip("the provider does not declare INVOICES")
        return driver.run(provider.post_invoice(order))

    def test_upsert_customer_never_duplicates(
        self, provider: AccountingProvider, driver: Driver, order: Order
    ) -> None:
        first = driver.run(provider.upsert_customer(order.customer))
        assert isinstance(first, LedgerRecord)
        assert first.external_id
        again = driver.run(provider.upsert_customer(order.customer))
        assert again.external_id == first.external_id
        assert not again.created

    def test_invoices_per_capability(
        self, provider: AccountingProvider, driver: Driver, recorder: _Recorder, order: Order
    ) -> None:
        if Capability.INVOICES not in provider.capabilities:
            self.assert_not_supported(driver, recorder, lambda: provider.post_invoice(order))
            return
        posted = driver.run(provider.post_invoice(order))
        assert isinstance(posted, PostedInvoice)
        assert posted.reference == order.id
        assert posted.external_id
        assert posted.total == order.totals().gross
        again = driver.run(provider.post_invoice(order))
        assert again.external_id == posted.external_id, "one order, one invoice"
        assert not again.created
        found = driver.run(provider.find_invoice(order.id))
        assert found is not None
        assert found.external_id == posted.external_id
        assert driver.run(provider.find_invoice("conformance-no-such-order")) is None

    def test_void_invoice(
        self, provider: AccountingProvider, driver: Driver, posted: PostedInvoice
    ) -> None:
        voided = driver.run(provider.void_invoice(posted.reference))
        assert isinstance(voided, PostedInvoice)
        assert voided.external_id == posted.external_id

    def test_payments_per_capability(
        self,
        provider: AccountingProvider,
        driver: Driver,
        recorder: _Recorder,
        order: Order,
    ) -> None:
        payment = Payment(
            id=f"{order.id}-pay",
            order_id=order.id,
            amount=order.totals().gross,
            method=PaymentMethod.CARD,
            paid_at=datetime.now(UTC),
        )
        if Capability.PAYMENTS not in provider.capabilities:
            self.assert_not_supported(driver, recorder, lambda: provider.record_payment(payment))
            return
        if Capability.INVOICES in provider.capabilities:
            driver.run(provider.post_invoice(order))
        record = driver.run(provider.record_payment(payment))
        assert isinstance(record, LedgerRecord)
        assert record.external_id

    def test_credit_notes_per_capability(
        self,
        provider: AccountingProvider,
        driver: Driver,
        recorder: _Recorder,
        order: Order,
    ) -> None:
        refund = Refund(id=f"{order.id}-ref", order_id=order.id, amount=order.totals().gross)
        if Capability.CREDIT_NOTES not in provider.capabilities:
            self.assert_not_supported(driver, recorder, lambda: provider.record_refund(refund))
            return
        if Capability.INVOICES in provider.capabilities:
            driver.run(provider.post_invoice(order))
        record = driver.run(provider.record_refund(refund))
        assert isinstance(record, LedgerRecord)
        assert record.external_id

    def test_post_invoices_answers_in_input_order(
        self, provider: AccountingProvider, driver: Driver, order: Order
    ) -> None:
        if Capability.INVOICES not in provider.capabilities:
            pytest.skip("the provider does not declare INVOICES")
        other = order.model_copy(update={"id": f"{order.id}-b"})
        results = driver.run(provider.post_invoices([order, other]))
        assert [r.reference for r in results] == [order.id, other.id]
        assert all(isinstance(r, BatchItemResult) for r in results)


class InventorySourceSuite(AdapterSuite):
    """The :class:`~dixis_integrations.protocols.InventorySource` contract.

    Provide ``source`` and ``driver`` (seed the sandbox with some stock); optionally
    ``supplier_id`` to prove purchase orders. Stock pages, levels and adjustments are
    exercised where declared; undeclared adjustments and purchase orders must refuse.
    """

    kind = "inventory"
    protocol = InventorySource

    @pytest.fixture
    def source(self) -> InventorySource:
        raise NotImplementedError("provide the inventory source under test")

    @pytest.fixture
    def adapter(self, source: InventorySource) -> InventorySource:
        return source

    @pytest.fixture
    def supplier_id(self) -> str | None:
        """A supplier known to the source, to prove ``create_purchase_order`` (optional)."""
        return None

    @pytest.fixture
    def first_level(self, source: InventorySource, driver: Driver) -> StockLevel:
        if Capability.STOCK_LEVELS not in source.capabilities:
            pytest.skip("the source does not declare STOCK_LEVELS")
        page = driver.run(source.stock_page())
        if not page.levels:
            pytest.skip("the source's first stock page is empty: seed the sandbox")
        return page.levels[0]

    def test_stock_page_per_capability(
        self, source: InventorySource, driver: Driver, recorder: _Recorder
    ) -> None:
        if Capability.STOCK_LEVELS not in source.capabilities:
            self.assert_not_supported(driver, recorder, lambda: source.stock_page())
            return
        page = driver.run(source.stock_page())
        assert isinstance(page, StockPage)
        for level in page.levels:
            assert isinstance(level, StockLevel)
            assert level.as_of.utcoffset() is not None

    def test_stock_level_matches_the_page(
        self, source: InventorySource, driver: Driver, first_level: StockLevel
    ) -> None:
        level = driver.run(source.stock_level(first_level.sku, first_level.location))
        assert isinstance(level, StockLevel)
        assert level.sku == first_level.sku
        assert level.on_hand == first_level.on_hand

    def test_adjust_per_capability(
        self, source: InventorySource, driver: Driver, recorder: _Recorder
    ) -> None:
        if Capability.ADJUSTMENTS in source.capabilities:
            return  # proven by test_adjust_moves_on_hand_by_the_delta
        adjustment = StockAdjustment(sku="ANY-SKU", delta=Decimal(1), reason="test", reference="t")
        self.assert_not_supported(driver, recorder, lambda: source.adjust(adjustment))

    def test_adjust_moves_on_hand_by_the_delta(
        self, source: InventorySource, driver: Driver, first_level: StockLevel
    ) -> None:
        if Capability.ADJUSTMENTS not in source.capabilities:
            pytest.skip("the source does not declare ADJUSTMENTS")
        adjustment = StockAdjustment(
            sku=first_level.sku,
            location=first_level.location,
            delta=Decimal(1),
            reason="conformance",
            reference="conformance-1",
        )
        after = driver.run(source.adjust(adjustment))
        assert isinstance(after, StockLevel)
        assert after.sku == first_level.sku
        assert after.on_hand == first_level.on_hand + 1

    def test_purchase_orders_per_capability(
        self,
        source: InventorySource,
        driver: Driver,
        recorder: _Recorder,
        supplier_id: str | None,
    ) -> None:
        order = PurchaseOrder(
            reference="conformance-po-1",
            supplier_id=supplier_id or "ANY-SUPPLIER",
            lines=(PurchaseOrderLine(sku="ANY-SKU", quantity=Decimal(3)),),
            created_at=datetime.now(UTC),
        )
        if Capability.PURCHASE_ORDERS not in source.capabilities:
            self.assert_not_supported(driver, recorder, lambda: source.create_purchase_order(order))
            return
        if supplier_id is None:
            pytest.skip("provide a supplier_id fixture to prove create_purchase_order")
        first = driver.run(source.stock_page()).levels
        if first:
            line = PurchaseOrderLine(sku=first[0].sku, quantity=Decimal(3))
            order = order.model_copy(update={"lines": (line,)})
        created = driver.run(source.create_purchase_order(order))
        assert isinstance(created, PurchaseOrder)
        assert created.external_id


class CRMProviderSuite(AdapterSuite):
    """The :class:`~dixis_integrations.protocols.CRMProvider` contract.

    Provide ``crm`` and ``driver``; optionally ``contact`` and ``lead``. Upserts (no
    duplicates, input order kept) always; leads, erasure and change feeds where declared,
    refusing where not.
    """

    kind = "crm"
    protocol = CRMProvider

    @pytest.fixture
    def crm(self) -> CRMProvider:
        raise NotImplementedError("provide the CRM provider under test")

    @pytest.fixture
    def adapter(self, crm: CRMProvider) -> CRMProvider:
        return crm

    @pytest.fixture
    def contact(self) -> CRMContact:
        """A contact the CRM accepts (override to match its set-up)."""
        return CRMContact(
            reference="conformance-1",
            email="eleni.conformance@example.gr",
            first_name="Ελένη",
            last_name="Νικολάου",
            total_orders=2,
            total_spent=Money.of("42.50"),
        )

    def test_upsert_contact_answers_for_its_reference(
        self, crm: CRMProvider, driver: Driver, contact: CRMContact
    ) -> None:
        result = driver.run(crm.upsert_contact(contact))
        assert isinstance(result, UpsertResult)
        assert result.reference == contact.reference
        assert result.status is not UpsertStatus.REJECTED, result.reason
        again = driver.run(crm.upsert_contact(contact))
        assert again.status is not UpsertStatus.CREATED, "a second upsert made a duplicate"

    def test_upsert_contacts_answers_in_input_order(
        self, crm: CRMProvider, driver: Driver, contact: CRMContact
    ) -> None:
        other = contact.model_copy(
            update={"reference": "conformance-2", "email": "nikos.conformance@example.gr"}
        )
        results = driver.run(crm.upsert_contacts([contact, other]))
        assert [r.reference for r in results] == [contact.reference, other.reference]

    @pytest.fixture
    def lead(self) -> Lead:
        """A lead the CRM accepts (names and company filled: some CRMs require them)."""
        return Lead(
            id="conformance-lead-1",
            email="lead.conformance@example.gr",
            first_name="Γιώργος",
            last_name="Παπαδάκης",
            company="Κτήμα Λύρα",
            created_at=datetime.now(UTC),
        )

    def test_create_lead_per_capability(
        self, crm: CRMProvider, driver: Driver, recorder: _Recorder, lead: Lead
    ) -> None:
        if Capability.LEADS not in crm.capabilities:
            self.assert_not_supported(driver, recorder, lambda: crm.create_lead(lead))
            return
        created = driver.run(crm.create_lead(lead))
        assert isinstance(created, Lead)
        assert created.id == lead.id
        assert created.crm_id

    def test_erase_per_capability(
        self, crm: CRMProvider, driver: Driver, recorder: _Recorder, contact: CRMContact
    ) -> None:
        if Capability.ERASURE not in crm.capabilities:
            self.assert_not_supported(driver, recorder, lambda: crm.erase(contact.email))
            return
        driver.run(crm.upsert_contact(contact))
        result = driver.run(crm.erase(contact.email))
        assert isinstance(result, ErasureResult)
        assert result.provider == crm.name
        assert result.erased

    def test_changes_per_capability(
        self, crm: CRMProvider, driver: Driver, recorder: _Recorder
    ) -> None:
        if Capability.INCREMENTAL not in crm.capabilities:
            self.assert_not_supported(driver, recorder, lambda: crm.changes())
            return
        page = driver.run(crm.changes())
        assert isinstance(page, ContactChangePage)


class EmailProviderSuite(AdapterSuite):
    """The :class:`~dixis_integrations.protocols.EmailProvider` contract.

    Provide ``email_provider`` and ``driver``; optionally ``message`` (a transactional
    message the provider accepts). Sending (at most once per idempotency key) and
    erasure are exercised where declared and must refuse where not.
    """

    kind = "email"
    protocol = EmailProvider

    @pytest.fixture
    def email_provider(self) -> EmailProvider:
        raise NotImplementedError("provide the email provider under test")

    @pytest.fixture
    def adapter(self, email_provider: EmailProvider) -> EmailProvider:
        return email_provider

    @pytest.fixture
    def message(self) -> EmailMessage:
        """A transactional message the provider accepts (override to match its set-up)."""
        return EmailMessage(
            to="conformance@example.gr",
            subject="Η παραγγελία σας",
            text="Ευχαριστούμε για την παραγγελία σας.",
            idempotency_key=str(uuid.uuid4()),
            transactional=True,
        )

    def test_send_per_capability(
        self,
        email_provider: EmailProvider,
        driver: Driver,
        recorder: _Recorder,
        message: EmailMessage,
    ) -> None:
        if Capability.TRANSACTIONAL not in email_provider.capabilities:
            self.assert_not_supported(driver, recorder, lambda: email_provider.send(message))
            return
        result = driver.run(email_provider.send(message))
        assert isinstance(result, SendResult)
        assert result.provider == email_provider.name
        assert result.accepted, result.reason
        again = driver.run(email_provider.send(message))  # same idempotency key
        assert again.accepted
        assert again.duplicate or again.message_id == result.message_id

    def test_erase_per_capability(
        self, email_provider: EmailProvider, driver: Driver, recorder: _Recorder
    ) -> None:
        if Capability.ERASURE not in email_provider.capabilities:
            self.assert_not_supported(
                driver, recorder, lambda: email_provider.erase("nobody@example.gr")
            )
            return
        result = driver.run(email_provider.erase("nobody@example.gr"))
        assert isinstance(result, ErasureResult)
        assert result.provider == email_provider.name
