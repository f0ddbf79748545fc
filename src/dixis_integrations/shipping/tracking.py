"""Tracking: carrier codes mapped onto one status set, retractions, and a change poller.

:class:`StatusMap` turns a carrier's code (or, for carriers with free-text statuses, the
words of its description) into a :class:`~dixis_integrations.models.shipping.TrackingStatus`;
the raw code stays on every event. :class:`TrackingPoller` polls many shipments and emits
:class:`~dixis_integrations.models.events.ShipmentStatusChanged` only when the normalised
status really changes, remembering what it saw in a :class:`CheckpointStore`.
"""

from __future__ import annotations

import json
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dixis_integrations.errors import DixisError
from dixis_integrations.http.driver import AsyncDriver, Driver
from dixis_integrations.models.events import ShipmentStatusChanged
from dixis_integrations.models.shipping import Tracking, TrackingEvent, TrackingStatus
from dixis_integrations.protocols import ShippingCarrier
from dixis_integrations.shipping._fanout import DriverChoice, run_all, run_all_async

# One checkpoint Protocol for the whole library: the sync journals implement it durably.
# Re-exported here, where the poller's users have always imported it from.
from dixis_integrations.sync.journal import CheckpointStore

__all__ = [
    "FINAL_STATUSES",
    "CheckpointStore",
    "MemoryCheckpointStore",
    "PollResult",
    "StatusMap",
    "TrackedShipment",
    "TrackingPoller",
    "build_tracking",
    "drop_retracted",
    "fold",
]

FINAL_STATUSES = frozenset(
    {TrackingStatus.DELIVERED, TrackingStatus.RETURNED, TrackingStatus.CANCELLED}
)
"""Statuses after which a shipment is not polled any more."""


def fold(text: str) -> str:
    """Upper case without accents or extra spaces: how keywords are compared."""
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.upper().split())


@dataclass(frozen=True)
class StatusMap:
    """One carrier's status vocabulary, mapped onto :class:`TrackingStatus`.

    Attributes:
        codes: the carrier's exact codes (compared after stripping and upper-casing).
        keywords: for descriptions without a known code, ``(word, status)`` pairs tried
            in order against the folded text (upper case, no accents); first match wins.
        reasons: codes that explain a failed delivery, with the reason in plain words.
        default: the status of an unknown code with no matching keyword.
    """

    codes: Mapping[str, TrackingStatus] = field(default_factory=dict)
    keywords: Sequence[tuple[str, TrackingStatus]] = ()
    reasons: Mapping[str, str] = field(default_factory=dict)
    default: TrackingStatus = TrackingStatus.IN_TRANSIT

    def status_of(self, code: str | None, text: str | None = None) -> TrackingStatus:
        """The normalised status of ``code``, falling back to keywords in ``text``."""
        if code is not None:
            found = self.codes.get(code.strip().upper())
            if found is not None:
                return found
        if text:
            folded = fold(text)
            for word, status in self.keywords:
                if fold(word) in folded:
                    return status
        return self.default

    def reason_of(self, code: str | None) -> str | None:
        """Why a delivery failed, for the codes that say so."""
        return self.reasons.get(code.strip().upper()) if code else None

    def event(
        self,
        *,
        code: str | None,
        at: datetime,
        description: str | None = None,
        location: str | None = None,
    ) -> TrackingEvent:
        """A :class:`TrackingEvent` for one checkpoint, keeping the raw code.

        Carriers that send only free text (ACS checkpoints, ELTA) keep that text as the
        raw code, so every event says what the carrier actually reported.
        """
        return TrackingEvent(
            status=self.status_of(code, description),
            at=at,
            raw_code=code or description or None,
            description=description or None,
            location=location or None,
            reason=self.reason_of(code),
        )


def drop_retracted(
    events: Iterable[TrackingEvent], retracting: frozenset[str]
) -> list[TrackingEvent]:
    """Events oldest first, with each retraction removing the checkpoint before it.

    Some carriers (Geniki's C_E2, C_L2, C_K9) send a code that cancels the previous
    checkpoint rather than a new status; neither survives.
    """
    kept: list[TrackingEvent] = []
    for event in sorted(events, key=lambda e: e.at):
        if event.raw_code is not None and event.raw_code.upper() in retracting:
            if kept:
                kept.pop()
            continue
        kept.append(event)
    return kept


def build_tracking(
    carrier: str,
    tracking_number: str,
    events: Iterable[TrackingEvent],
    *,
    retracting: frozenset[str] = frozenset(),
) -> Tracking:
    """A :class:`Tracking` whose status is the latest surviving event's (pending if none)."""
    kept = drop_retracted(events, retracting)
    status = kept[-1].status if kept else TrackingStatus.PENDING
    return Tracking(
        carrier=carrier, tracking_number=tracking_number, status=status, events=tuple(kept)
    )


class MemoryCheckpointStore:
    """A :class:`CheckpointStore` in a dict (tests, scripts, one process).

    For a poller that must survive a restart, pass a durable store instead: the sync
    journals (:class:`~dixis_integrations.sync.SQLiteJournal`,
    :class:`~dixis_integrations.sync.PostgresJournal`) are checkpoint stores.
    """

    def __init__(self, initial: Mapping[tuple[str, str], str] | None = None) -> None:
        self._data: dict[tuple[str, str], str] = dict(initial or {})
        self._lock = threading.Lock()

    def get_checkpoint(self, name: str, tenant: str = "default") -> str | None:
        """The cursor saved under ``name`` for ``tenant``, if any."""
        with self._lock:
            return self._data.get((tenant, name))

    def set_checkpoint(self, name: str, cursor: str, tenant: str = "default") -> None:
        """Save ``cursor`` under ``name`` for ``tenant`` (replacing what was there)."""
        with self._lock:
            self._data[(tenant, name)] = cursor

    def snapshot(self) -> dict[tuple[str, str], str]:
        """A copy of everything saved, by (tenant, name)."""
        with self._lock:
            return dict(self._data)


@dataclass(frozen=True)
class TrackedShipment:
    """A shipment to poll: which carrier, which tracking number."""

    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class PollResult:
    """One polling round: the changes emitted, the shipments that failed, those skipped."""

    changes: tuple[ShipmentStatusChanged, ...] = ()
    errors: Mapping[TrackedShipment, DixisError] = field(default_factory=dict)
    skipped: tuple[TrackedShipment, ...] = ()


@dataclass(frozen=True)
class _Seen:
    status: TrackingStatus
    at: str | None
    raw_code: str | None

    def dump(self) -> str:
        return json.dumps({"status": self.status.value, "at": self.at, "raw_code": self.raw_code})

    @staticmethod
    def load(text: str) -> _Seen:
        data = json.loads(text)
        return _Seen(TrackingStatus(data["status"]), data.get("at"), data.get("raw_code"))


class TrackingPoller:
    """Polls many shipments and emits a change only when the normalised status changes.

    The last status seen per shipment is saved in ``store`` as soon as that shipment is
    handled, so a poller restarted after a crash neither repeats nor loses a change, as
    long as the store outlives the process (a sync journal on SQLite or PostgreSQL).
    Shipments already delivered, returned or cancelled are not polled again.

    Args:
        carriers: the carriers by name (``carrier.name``).
        store: where the last seen status of each shipment is kept, under the name
            :meth:`key` and this poller's tenant.
        tenant: stamped on every event, and the tenant of every checkpoint.
        timeout: seconds one shipment's tracking may take before it is reported failed.
    """

    def __init__(
        self,
        carriers: Iterable[ShippingCarrier],
        store: CheckpointStore,
        *,
        tenant: str = "default",
        timeout: float = 30.0,
    ) -> None:
        self.carriers = {c.name: c for c in carriers}
        self.store = store
        self.tenant = tenant
        self.timeout = timeout

    def key(self, shipment: TrackedShipment) -> str:
        """The checkpoint name of one shipment (the tenant is kept beside it)."""
        return f"tracking:{shipment.carrier}:{shipment.tracking_number}"

    def _due(
        self, shipments: Iterable[TrackedShipment]
    ) -> tuple[list[TrackedShipment], list[TrackedShipment], dict[TrackedShipment, DixisError]]:
        due: list[TrackedShipment] = []
        skipped: list[TrackedShipment] = []
        errors: dict[TrackedShipment, DixisError] = {}
        for shipment in dict.fromkeys(shipments):
            if shipment.carrier not in self.carriers:
                errors[shipment] = DixisError(
                    f"no carrier named {shipment.carrier!r} is configured", code="configuration"
                )
                continue
            seen = self.store.get_checkpoint(self.key(shipment), self.tenant)
            if seen is not None and _Seen.load(seen).status in FINAL_STATUSES:
                skipped.append(shipment)
            else:
                due.append(shipment)
        return due, skipped, errors

    def observe(
        self, shipment: TrackedShipment, tracking: Tracking
    ) -> ShipmentStatusChanged | None:
        """Compare ``tracking`` with the checkpoint, save it, and return the change if any.

        The change's ``at`` and ``raw_code`` come from the latest event. A shipment first
        seen pending (no events, or only "created") emits nothing.
        """
        key = self.key(shipment)
        stored = self.store.get_checkpoint(key, self.tenant)
        previous = _Seen.load(stored) if stored is not None else None
        last = tracking.events[-1] if tracking.events else None
        current = _Seen(
            tracking.status,
            last.at.isoformat() if last else None,
            last.raw_code if last else None,
        )
        if previous is not None and previous.status == current.status:
            return None
        change = None
        # A shipment first seen still pending has not moved yet: remember it, announce nothing.
        if last is not None and (
            previous is not None or current.status is not TrackingStatus.PENDING
        ):
            change = ShipmentStatusChanged(
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                status=tracking.status,
                previous=previous.status if previous else None,
                raw_code=last.raw_code,
                at=last.at,
                tenant=self.tenant,
            )
            # A retraction can take us back to an older checkpoint whose id may have been
            # announced already: the correction needs an id of its own.
            if (
                previous is not None
                and previous.at is not None
                and last.at <= datetime.fromisoformat(previous.at)
            ):
                suffix = f":correction-of:{previous.status.value}@{previous.at}"
                change = change.model_copy(update={"event_id": change.derived_event_id() + suffix})
        self.store.set_checkpoint(key, current.dump(), self.tenant)
        return change

    def _collect(
        self,
        due: Sequence[TrackedShipment],
        outcomes: Sequence[Tracking | DixisError],
        skipped: Sequence[TrackedShipment],
        errors: dict[TrackedShipment, DixisError],
    ) -> PollResult:
        changes: list[ShipmentStatusChanged] = []
        for shipment, outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, DixisError):
                errors[shipment] = outcome
                continue
            change = self.observe(shipment, outcome)
            if change is not None:
                changes.append(change)
        return PollResult(tuple(changes), errors, tuple(skipped))

    def poll(
        self, shipments: Iterable[TrackedShipment], driver: DriverChoice[Driver]
    ) -> PollResult:
        """Track every shipment due (concurrently, on threads) and return the changes."""
        due, skipped, errors = self._due(shipments)
        outcomes = run_all(
            [(s.carrier, self.carriers[s.carrier].track(s.tracking_number)) for s in due],
            driver,
            timeout=self.timeout,
        )
        return self._collect(due, [o for o, _ in outcomes], skipped, errors)

    async def apoll(
        self, shipments: Iterable[TrackedShipment], driver: DriverChoice[AsyncDriver]
    ) -> PollResult:
        """:meth:`poll` on asyncio."""
        due, skipped, errors = self._due(shipments)
        outcomes = await run_all_async(
            [(s.carrier, self.carriers[s.carrier].track(s.tracking_number)) for s in due],
            driver,
            timeout=self.timeout,
        )
        return self._collect(due, [o for o, _ in outcomes], skipped, errors)
