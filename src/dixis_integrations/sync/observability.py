"""Prometheus metrics and OpenTelemetry spans for the engine (extra ``[observability]``).

Both hang on hooks the engine already has: job outcomes (``Engine.listeners``) and vendor
calls (``CallRecorder.listeners``). Nothing here is imported unless the host asks for it,
and neither carries a secret: labels are kinds, providers, steps, states and error codes.
"""

from __future__ import annotations

from typing import Any

from dixis_integrations.sync.engine import CallRecorder, Engine, Outcome
from dixis_integrations.sync.journal import CallRow

__all__ = ["PrometheusMetrics", "Tracing", "instrument"]

_NS_PER_S = 1_000_000_000


class PrometheusMetrics:
    """Counters and histograms of jobs and vendor calls.

    ``dixis_jobs_total{kind,provider,step,state}``, ``dixis_job_seconds{kind,provider,step}``,
    ``dixis_vendor_calls_total{vendor,operation,outcome}`` and
    ``dixis_vendor_call_seconds{vendor}``. Pass a ``prometheus_client.CollectorRegistry``
    (default: the global one).
    """

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Histogram

        reg = registry if registry is not None else REGISTRY
        self.jobs = Counter(
            "dixis_jobs_total",
            "Job executions by outcome.",
            ["kind", "provider", "step", "state"],
            registry=reg,
        )
        self.job_seconds = Histogram(
            "dixis_job_seconds",
            "Time to execute one job.",
            ["kind", "provider", "step"],
            registry=reg,
        )
        self.calls = Counter(
            "dixis_vendor_calls_total",
            "Vendor calls by outcome (ok or the error code).",
            ["vendor", "operation", "outcome"],
            registry=reg,
        )
        self.call_seconds = Histogram(
            "dixis_vendor_call_seconds",
            "Time of one logical vendor call.",
            ["vendor"],
            registry=reg,
        )

    def on_outcome(self, outcome: Outcome) -> None:
        """Count one job outcome (an ``Engine`` listener)."""
        labels = (outcome.kind, outcome.provider, outcome.step)
        self.jobs.labels(*labels, outcome.state.value).inc()
        if outcome.duration is not None:
            self.job_seconds.labels(*labels).observe(outcome.duration)

    def on_call(self, row: CallRow) -> None:
        """Count one vendor call (a ``CallRecorder`` listener)."""
        self.calls.labels(row.vendor, row.operation, row.error_code or "ok").inc()
        self.call_seconds.labels(row.vendor).observe(row.elapsed)


class Tracing:
    """One OpenTelemetry span per job execution and per vendor call.

    Spans are recorded after the fact with their real start and end times (the engine's
    hooks run when work is finished). Pass a tracer (default: the global provider's).
    """

    def __init__(self, tracer: Any = None) -> None:
        from opentelemetry import trace

        self.tracer = tracer or trace.get_tracer("dixis_integrations")

    def on_outcome(self, outcome: Outcome) -> None:
        """A span ``dixis.job <step>`` for one job execution."""
        import time

        from opentelemetry.trace import Status, StatusCode

        end = time.time_ns()
        start = end - int((outcome.duration or 0.0) * _NS_PER_S)
        span = self.tracer.start_span(f"dixis.job {outcome.step}", start_time=start)
        span.set_attribute("dixis.job.key", outcome.key)
        span.set_attribute("dixis.kind", outcome.kind)
        span.set_attribute("dixis.provider", outcome.provider)
        span.set_attribute("dixis.job.state", outcome.state.value)
        if outcome.error_code:
            span.set_attribute("dixis.error.code", outcome.error_code)
            span.set_status(Status(StatusCode.ERROR, outcome.error_code))
        span.end(end_time=end)

    def on_call(self, row: CallRow) -> None:
        """A span ``<vendor> <operation>`` for one vendor call."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        start = int(row.at.timestamp() * _NS_PER_S)
        span = self.tracer.start_span(
            f"{row.vendor} {row.operation}", kind=SpanKind.CLIENT, start_time=start
        )
        span.set_attribute("http.request.method", row.method)
        span.set_attribute("url.full", row.url)
        if row.status_code is not None:
            span.set_attribute("http.response.status_code", row.status_code)
        span.set_attribute("dixis.attempts", row.attempts)
        if row.job_key:
            span.set_attribute("dixis.job.key", row.job_key)
        if row.error_code:
            span.set_status(Status(StatusCode.ERROR, row.error_code))
        span.end(end_time=start + int(row.elapsed * _NS_PER_S))


def instrument(engine: Engine, recorder: CallRecorder, *hooks: Any) -> None:
    """Attach metrics and/or tracing to an engine and its call recorder."""
    for hook in hooks:
        engine.listeners.append(hook.on_outcome)
        recorder.listeners.append(hook.on_call)
