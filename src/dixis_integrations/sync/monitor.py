"""Monitoring: health checks of every integration, and the sync report from the journal.

``check_all`` runs each adapter's ``check()`` concurrently with a timeout;
``webhook_freshness`` adds to those statuses how long ago each integration's last verified
webhook arrived (down when an integration that must receive them has gone quiet for
longer than allowed). ``build_report``
reads only the journal: per integration and per day, what was synced, how fast (average
and p95), the error rate, dead jobs and availability; ``render_*`` print it as a table,
JSON or CSV. ``audit_log`` lists every write made to a vendor (no secrets are kept).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime

from dixis_integrations.errors import DixisError
from dixis_integrations.protocols import HealthStatus
from dixis_integrations.sync.engine import Connection
from dixis_integrations.sync.journal import CallRow, JobState, Journal
from dixis_integrations.webhooks import FreshnessLog

__all__ = [
    "METRIC_OF_STEP",
    "Freshness",
    "Report",
    "ReportRow",
    "audit_log",
    "build_report",
    "check_all",
    "render_csv",
    "render_json",
    "render_table",
    "status_of_error",
    "webhook_freshness",
]

METRIC_OF_STEP: dict[str, str] = {
    "invoice": "invoices_created",
    "inventory": "inventory_updates",
    "inventory_release": "inventory_updates",
    "shipment": "shipments_created",
    "crm_contact": "crm_contacts_synced",
    "crm_contact_update": "crm_contacts_synced",
    "journey": "emails_sent",
    "subscriber": "crm_contacts_synced",
}
"""Which report column a done job of each step counts in."""


def status_of_error(name: str, exc: BaseException, timeout: float) -> HealthStatus:
    """A failed check as a status (the error's text, never a secret)."""
    if isinstance(exc, FutureTimeout | TimeoutError):
        return HealthStatus(name=name, ok=False, detail=f"no answer within {timeout:g}s")
    if isinstance(exc, DixisError):
        return HealthStatus(name=name, ok=False, detail=str(exc), extra={"code": exc.code})
    return HealthStatus(name=name, ok=False, detail=f"{type(exc).__name__}: {exc}")


def check_all(
    connections: Iterable[Connection],
    *,
    timeout: float = 10.0,
    freshness: Freshness | None = None,
) -> list[HealthStatus]:
    """Run every connection's ``check()`` concurrently; one status each, in order.

    With ``freshness``, each status also carries its webhook freshness
    (:func:`webhook_freshness`).
    """
    statuses = _check_all(connections, timeout)
    return statuses if freshness is None else webhook_freshness(statuses, freshness)


def _check_all(connections: Iterable[Connection], timeout: float) -> list[HealthStatus]:
    conns = list(connections)
    if not conns:
        return []
    pool = ThreadPoolExecutor(max_workers=min(16, len(conns)), thread_name_prefix="dixis-health")
    try:
        futures = [pool.submit(c.driver.run, c.adapter.check()) for c in conns]
        out: list[HealthStatus] = []
        for c, fut in zip(conns, futures, strict=True):
            try:
                status = fut.result(timeout=timeout)
                out.append(
                    status if isinstance(status, HealthStatus) else HealthStatus(c.name, True)
                )
            except Exception as exc:
                out.append(status_of_error(c.name, exc, timeout))
        return out
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Freshness:
    """How fresh each integration's webhooks must be.

    Attributes:
        log: where verified deliveries are recorded (the inbox's delivery store).
        max_age: seconds after the last verified delivery when webhooks count as stale.
        required: integrations that must receive webhooks: stale (or never seen) makes
            their status down. Others only report the age.
    """

    log: FreshnessLog
    max_age: float = 86_400.0
    required: frozenset[str] = frozenset()


def _age_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86_400:.1f}d"


def webhook_freshness(
    statuses: Iterable[HealthStatus], freshness: Freshness, *, now: datetime | None = None
) -> list[HealthStatus]:
    """The statuses with the webhook freshness of each integration added to ``extra``
    (``webhook_last_seen``: ISO time or ``never``; ``webhook_age_seconds``;
    ``webhook_fresh``: ``yes``/``no``). An integration in ``freshness.required`` whose
    last verified delivery is older than ``max_age`` (or that has none) is down, the
    detail saying since when. Integrations neither required nor ever seen are unchanged.
    """
    moment = now or datetime.now(UTC)
    out: list[HealthStatus] = []
    for status in statuses:
        seen = freshness.log.last_seen(status.name)
        required = status.name in freshness.required
        if seen is None and not required:
            out.append(status)
            continue
        extra = dict(status.extra)
        if seen is None:
            extra.update(webhook_last_seen="never", webhook_fresh="no")
            stale_text = "no verified webhook received yet"
            fresh = False
        else:
            age = max(0.0, (moment - seen).total_seconds())
            fresh = age <= freshness.max_age
            extra.update(
                webhook_last_seen=seen.isoformat(),
                webhook_age_seconds=str(int(age)),
                webhook_fresh="yes" if fresh else "no",
            )
            stale_text = (
                f"last verified webhook {_age_text(age)} ago "
                f"(stale after {_age_text(freshness.max_age)})"
            )
        if required and not fresh:
            detail = f"{status.detail}; {stale_text}" if status.detail else stale_text
            out.append(replace(status, ok=False, detail=detail, extra=extra))
        else:
            out.append(replace(status, extra=extra))
    return out


@dataclass
class ReportRow:
    """One integration on one day."""

    day: date
    kind: str
    provider: str
    orders_synced: int = 0
    invoices_created: int = 0
    inventory_updates: int = 0
    shipments_created: int = 0
    emails_sent: int = 0
    crm_contacts_synced: int = 0
    jobs_done: int = 0
    jobs_failed_attempts: int = 0
    dead: int = 0
    pending: int = 0
    avg_sync_seconds: float | None = None
    p95_sync_seconds: float | None = None
    error_rate: float = 0.0
    availability: float | None = None
    calls: int = 0

    def as_dict(self) -> dict[str, object]:
        """The row as JSON-ready data."""
        data = asdict(self)
        data["day"] = self.day.isoformat()
        return data


@dataclass
class Report:
    """The sync report: one row per integration and day, plus the totals."""

    rows: list[ReportRow] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    dead_jobs: int = 0
    pending_jobs: int = 0


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def build_report(journal: Journal) -> Report:
    """The report, computed from the journal alone.

    ``orders_synced`` counts the orders whose every job for that integration is done;
    ``error_rate`` is failed attempts over all attempts; ``availability`` is the share of
    the vendor's calls that did not fail for a transient reason (5xx, timeouts, resets).
    """
    rows: dict[tuple[date, str, str], ReportRow] = {}
    sync_times: dict[tuple[date, str, str], list[float]] = defaultdict(list)
    orders_done: dict[tuple[date, str, str], set[str]] = defaultdict(set)
    orders_open: dict[tuple[date, str, str], set[str]] = defaultdict(set)
    attempts: dict[tuple[date, str, str], int] = defaultdict(int)
    for job in journal.jobs():
        key = (job.created_at.date(), job.kind, job.provider)
        row = rows.setdefault(key, ReportRow(*key))
        attempts[key] += job.attempts
        if job.state is JobState.DONE:
            row.jobs_done += 1
            row.jobs_failed_attempts += max(0, job.attempts - 1)
            metric = METRIC_OF_STEP.get(job.step)
            if metric is not None:
                setattr(row, metric, getattr(row, metric) + 1)
            if job.sync_seconds is not None:
                sync_times[key].append(job.sync_seconds)
            if job.event_type == "order.created":
                orders_done[key].add(job.event_id)
        else:
            row.jobs_failed_attempts += (
                job.attempts
                if job.state is JobState.DEAD
                else max(0, job.attempts - (1 if job.state is JobState.RUNNING else 0))
            )
            if job.state is JobState.DEAD:
                row.dead += 1
            else:
                row.pending += 1
            if job.event_type == "order.created":
                orders_open[key].add(job.event_id)
    calls_by_vendor: dict[tuple[date, str], list[CallRow]] = defaultdict(list)
    for call in journal.calls():
        calls_by_vendor[(call.at.date(), call.vendor)].append(call)
    for key, row in rows.items():
        row.orders_synced = len(orders_done[key] - orders_open[key])
        times = sync_times[key]
        row.avg_sync_seconds = sum(times) / len(times) if times else None
        row.p95_sync_seconds = _p95(times)
        row.error_rate = row.jobs_failed_attempts / attempts[key] if attempts[key] else 0.0
        calls = calls_by_vendor.get((key[0], key[2]), [])
        row.calls = len(calls)
        if calls:
            down = sum(1 for c in calls if c.error_code in {"transient", "timeout"})
            row.availability = 1 - down / len(calls)
    report = Report(rows=sorted(rows.values(), key=lambda r: (r.day, r.kind, r.provider)))
    all_done = set().union(*orders_done.values()) if orders_done else set()
    all_open = set().union(*orders_open.values()) if orders_open else set()
    for metric in (
        "orders_synced",
        "invoices_created",
        "inventory_updates",
        "shipments_created",
        "emails_sent",
        "crm_contacts_synced",
    ):
        report.totals[metric] = sum(int(getattr(r, metric)) for r in report.rows)
    # an order counts once in the totals, when every integration has synced it
    report.totals["orders_synced"] = len(all_done - all_open)
    report.dead_jobs = sum(r.dead for r in report.rows)
    report.pending_jobs = sum(r.pending for r in report.rows)
    return report


_COLUMNS = (
    ("day", "day"),
    ("kind", "kind"),
    ("provider", "provider"),
    ("orders_synced", "orders"),
    ("invoices_created", "invoices"),
    ("inventory_updates", "stock"),
    ("shipments_created", "shipments"),
    ("emails_sent", "emails"),
    ("crm_contacts_synced", "contacts"),
    ("avg_sync_seconds", "avg s"),
    ("p95_sync_seconds", "p95 s"),
    ("error_rate", "errors"),
    ("dead", "dead"),
    ("availability", "avail"),
)


def _cell(value: object, column: str) -> str:
    if value is None:
        return "-"
    if column in {"error_rate", "availability"} and isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_table(report: Report) -> str:
    """The report as an aligned text table with a totals line."""
    header = [title for _, title in _COLUMNS]
    body = [
        [_cell(r.as_dict()[c] if c != "day" else r.day, c) for c, _ in _COLUMNS]
        for r in report.rows
    ]
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths, strict=True)) for b in body]
    totals = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.totals.items())
    lines.append("")
    lines.append(f"totals: {totals}; dead jobs {report.dead_jobs}; open jobs {report.pending_jobs}")
    return "\n".join(lines)


def render_json(report: Report) -> str:
    """The report as JSON."""
    return json.dumps(
        {
            "rows": [r.as_dict() for r in report.rows],
            "totals": report.totals,
            "dead_jobs": report.dead_jobs,
            "pending_jobs": report.pending_jobs,
        },
        indent=2,
    )


def render_csv(report: Report) -> str:
    """The report as CSV, one row per integration and day."""
    out = io.StringIO()
    rows = [r.as_dict() for r in report.rows]
    fields = list(ReportRow.__dataclass_fields__)
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def audit_log(journal: Journal, *, limit: int | None = None) -> list[dict[str, object]]:
    """Every write to every vendor: when, which vendor and operation, which idempotency
    key, which result (status, error code, vendor request id) and which job."""
    return [
        {
            "at": c.at.isoformat(),
            "tenant": c.tenant,
            "vendor": c.vendor,
            "operation": c.operation,
            "method": c.method,
            "url": c.url,
            "idempotency_key": c.idempotency_key,
            "status_code": c.status_code,
            "error_code": c.error_code,
            "request_id": c.request_id,
            "attempts": c.attempts,
            "job_key": c.job_key,
        }
        for c in journal.calls(writes_only=True, limit=limit)
    ]
