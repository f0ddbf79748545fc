"""Webhooks in, engine events out.

A host's web endpoint hands each delivery to :meth:`Inbox.receive` with the name of the
integration it came from. The adapter's own parser verifies and reads it
(:mod:`dixis_integrations.webhook_readers`); a delivery that does not verify raises
:class:`~dixis_integrations.errors.WebhookError` and nothing is submitted. Each fact it
reports is claimed once in the :class:`~dixis_integrations.webhooks.DeliveryStore` (a
redelivery is counted as a duplicate and skipped), turned into typed events and submitted
to the engine:

* a ledger change: the record is re-read from the ledger (webhooks carry ids only) ->
  :class:`~dixis_integrations.models.events.LedgerChanged` (an invoice paid there has
  ``status="paid"``);
* a parcel's tracking update -> :class:`~dixis_integrations.models.events.ShipmentStatusChanged`,
  with our order id found from the shipment job that made the parcel;
* a stock level -> :class:`~dixis_integrations.models.events.StockChanged`, plus
  :class:`~dixis_integrations.models.events.StockLow` when ``available`` is at or under
  the SKU's reorder point; with a stock ledger the level is observed there (redeliveries
  and stale readings change nothing) and the ledger's own crossings are the ``StockLow``;
* a CRM record change -> :class:`~dixis_integrations.models.events.ContactChanged`;
* an unsubscribe -> :class:`~dixis_integrations.models.events.ConsentWithdrawn`.

The time of every verified delivery is kept per integration for the health checks'
webhook freshness (:func:`~dixis_integrations.sync.monitor.webhook_freshness`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from dixis_integrations.errors import ConfigurationError, NotSupported
from dixis_integrations.inventory.ledger import StockLedger
from dixis_integrations.models.accounting import LedgerChange
from dixis_integrations.models.crm import CRMEvent
from dixis_integrations.models.customer import ConsentStatus
from dixis_integrations.models.email import ConsentChange
from dixis_integrations.models.events import (
    DEFAULT_TENANT,
    ConsentWithdrawn,
    ContactChanged,
    Event,
    LedgerChanged,
    ShipmentStatusChanged,
    StockChanged,
    StockLow,
    parse_event,
)
from dixis_integrations.models.inventory import StockUpdate
from dixis_integrations.sync.engine import Connection, Engine, order_id_of
from dixis_integrations.sync.journal import JobState
from dixis_integrations.webhook_readers import WebhookReader, read_webhook
from dixis_integrations.webhooks import (
    DeliveryStore,
    FreshnessLog,
    MemoryDeliveryStore,
    WebhookRequest,
)

__all__ = ["Inbox", "ParcelLookup", "Received", "ReorderPoints", "order_of_parcel"]

ReorderPoints = Callable[[str, str], Decimal | None] | Mapping[str, Decimal]
"""The reorder point of a SKU: ``(sku, location) -> point`` or ``{sku: point}``."""

ParcelLookup = Callable[[str, str, str], str | None]
"""``(tenant, carrier, tracking number) -> our order id`` (``None``: not ours)."""

_WEEK = 7 * 86_400.0


@dataclass
class Received:
    """What one delivery came to."""

    integration: str
    facts: int = 0
    duplicates: int = 0
    events: list[Event] = field(default_factory=list)
    job_keys: list[str] = field(default_factory=list)


def order_of_parcel(engine: Engine) -> ParcelLookup:
    """The default parcel lookup: the order of the done shipment job whose external id
    is the tracking number (an indexed query of the journal)."""

    def lookup(tenant: str, carrier: str, tracking_number: str) -> str | None:
        for job in engine.journal.jobs(
            state=JobState.DONE, tenant=tenant, kind="shipping", external_id=tracking_number
        ):
            return order_id_of(parse_event(job.payload))
        return None

    return lookup


def _in_tenant(event: StockLow, tenant: str) -> StockLow:
    if event.tenant == tenant:
        return event
    data = event.model_dump()
    data.update(tenant=tenant, event_id="")
    return StockLow.model_validate(data)


def _fact_id(fact: Any) -> str:
    given = getattr(fact, "event_id", None)
    if isinstance(given, str) and given:
        return given
    text = fact.model_dump_json() if isinstance(fact, BaseModel) else repr(fact)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Inbox:
    """Receives vendor webhooks and submits the events they mean to the engine.

    Args:
        engine: the engine events are submitted to (its connections are the adapters).
        store: claims each fact once and keeps the webhook freshness; default in memory
            (give a :class:`~dixis_integrations.webhooks.SQLiteDeliveryStore` to share it
            between processes).
        options: per integration name, what its reader needs beyond the adapter's
            configuration (``{"<name>": {"username": ..., "password": ...}}``).
        reorder_points: when a reported level is low (none: no ``StockLow``).
        ledger: our stock ledger: each reported level is observed in it, and the
            ``StockLow`` events are the ledger's (its reorder points, counting what is
            committed and incoming); ``reorder_points`` is then not used.
        parcels: finds our order of a parcel (default: :func:`order_of_parcel`).
        readers: the readers by adapter name (default: all built-in ones).
        ttl: how long a fact id is remembered against redeliveries (seconds).
        lease: how long a fact being handled is held (seconds): a process that dies
            while handling it holds it no longer, so the vendor's retry gets through.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        store: DeliveryStore | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        reorder_points: ReorderPoints | None = None,
        ledger: StockLedger | None = None,
        parcels: ParcelLookup | None = None,
        readers: Mapping[str, WebhookReader] | None = None,
        ttl: float = _WEEK,
        lease: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.store: DeliveryStore = store if store is not None else MemoryDeliveryStore()
        self.options = {k: dict(v) for k, v in (options or {}).items()}
        self.reorder_points = reorder_points
        self.ledger = ledger
        self.parcels = parcels or order_of_parcel(engine)
        self.readers = readers
        self.ttl = ttl
        self.lease = lease
        self._clock = clock

    def connection(self, integration: str) -> Connection:
        """The configured integration called ``integration``.

        Raises:
            ConfigurationError: none is configured by that name.
        """
        for (_, name), connection in self.engine.connections.items():
            if name == integration:
                return connection
        raise ConfigurationError(
            f"no integration {integration!r} is configured", key=f"integrations.{integration}"
        )

    def receive(
        self, integration: str, request: WebhookRequest, *, tenant: str = DEFAULT_TENANT
    ) -> Received:
        """Verify one delivery, then submit the events of each fact not seen before.

        Raises:
            WebhookError: the delivery does not verify or does not parse (nothing is
                submitted).
            ConfigurationError: no such integration, or its webhook secret is missing.
            NotSupported: the adapter receives no webhooks.
            DixisError: re-reading a changed ledger record failed (that fact is released,
                so the vendor's redelivery tries it again).
        """
        connection = self.connection(integration)
        facts = read_webhook(
            connection.adapter, request, self.options.get(integration), readers=self.readers
        )
        received_at = request.received_at.timestamp() if request.received_at else self._clock()
        if isinstance(self.store, FreshnessLog):
            self.store.mark_seen(integration, at=received_at)
        out = Received(integration, facts=len(facts))
        for fact in facts:
            claim = f"{tenant}/{integration}:{_fact_id(fact)}"
            # held for a lease while handled, remembered for the TTL once submitted
            if not self.store.claim(claim, ttl=self.lease):
                out.duplicates += 1
                continue
            try:
                events = self.events_of(connection, fact, tenant=tenant, now=received_at)
                for event in events:
                    out.job_keys += self.engine.submit(event)
            except BaseException:
                self.store.release(claim)
                raise
            self.store.release(claim)
            self.store.claim(claim, ttl=self.ttl)
            out.events += events
        return out

    # -- facts to events -----------------------------------------------------------------
    def events_of(
        self, connection: Connection, fact: Any, *, tenant: str, now: float
    ) -> list[Event]:
        """The events one fact of ``connection`` means (ledger records are re-read)."""
        at = datetime.fromtimestamp(now, UTC)
        if isinstance(fact, LedgerChange):
            return [self._ledger(connection, fact, tenant, at)]
        if isinstance(fact, ShipmentStatusChanged):
            return [self._parcel(fact, tenant)]
        if isinstance(fact, StockUpdate):
            return self._stock(connection.name, fact, tenant)
        if isinstance(fact, CRMEvent):
            return [
                ContactChanged(
                    tenant=tenant,
                    provider=connection.name,
                    change=fact.kind.value,
                    object_type=fact.object_type,
                    external_id=fact.object_id,
                    property_name=fact.property_name,
                    property_value=fact.property_value,
                    at=fact.occurred_at,
                )
            ]
        if isinstance(fact, ConsentChange):
            if fact.status is not ConsentStatus.WITHDRAWN:
                return []
            return [
                ConsentWithdrawn(
                    tenant=tenant,
                    provider=connection.name,
                    email=fact.email,
                    reason=fact.reason,
                    at=fact.at,
                )
            ]
        if isinstance(fact, Event):
            return [fact]
        return []

    def _ledger(
        self, connection: Connection, change: LedgerChange, tenant: str, at: datetime
    ) -> LedgerChanged:
        record: Any = None
        fetch = getattr(connection.adapter, "fetch_record", None)
        if callable(fetch) and not change.deleted:
            try:
                record = connection.driver.run(fetch(change))
            except NotSupported:
                record = None
        status = getattr(record, "status", None)
        reference = getattr(record, "reference", None)
        return LedgerChanged(
            tenant=tenant,
            provider=connection.name,
            record=change.kind or "record",
            external_id=change.external_id,
            reference=reference or None,
            status=str(status).lower() if status else None,
            deleted=change.deleted,
            changed_at=change.changed_at or at,
        )

    def _parcel(self, event: ShipmentStatusChanged, tenant: str) -> ShipmentStatusChanged:
        data = event.model_dump()
        derived = event.event_id == event.derived_event_id()
        data["tenant"] = tenant
        if event.order_id is None:
            data["order_id"] = self.parcels(tenant, event.carrier, event.tracking_number)
        if derived:
            data["event_id"] = ""
        elif tenant != DEFAULT_TENANT and not event.event_id.startswith(f"{tenant}/"):
            data["event_id"] = f"{tenant}/{event.event_id}"
        return ShipmentStatusChanged.model_validate(data)

    def _reorder_point(self, sku: str, location: str) -> Decimal | None:
        points = self.reorder_points
        if points is None:
            return None
        if isinstance(points, Mapping):
            return points.get(sku)
        return points(sku, location)

    def _stock(self, source: str, update: StockUpdate, tenant: str) -> list[Event]:
        level = update.level
        events: list[Event] = [
            StockChanged(
                tenant=tenant,
                source=source,
                sku=level.sku,
                location=level.location,
                on_hand=level.on_hand,
                committed=level.committed,
                as_of=level.as_of,
            )
        ]
        if self.ledger is not None:
            applied = self.ledger.observe(level, event_id=f"{source}:{update.event_id}")
            events += [_in_tenant(low, tenant) for low in applied.events]
            return events
        point = self._reorder_point(level.sku, level.location)
        if point is not None and level.available <= point:
            events.append(
                StockLow(
                    tenant=tenant,
                    sku=level.sku,
                    location=level.location,
                    available=level.available,
                    reorder_point=point,
                    occurred_at=level.as_of,
                )
            )
        return events
