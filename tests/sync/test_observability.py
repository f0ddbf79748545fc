"""Prometheus metrics and OpenTelemetry spans from a real run on the market vendor."""

from __future__ import annotations

from pathlib import Path

import pytest

from dixis_integrations.sync.engine import CallRecorder, Engine
from dixis_integrations.sync.journal import SQLiteJournal
from dixis_integrations.sync.marketday import SENDER, market_day
from dixis_integrations.sync.steps import StepSettings

from .market import MarketEmulator, connections


def run_day(tmp_path: Path, *hooks: object) -> None:
    from dixis_integrations.sync.observability import instrument

    journal = SQLiteJournal(tmp_path / "j.db")
    recorder = CallRecorder(journal)
    engine = Engine(
        journal,
        connections("http://m", transport=MarketEmulator().transport(), on_call=recorder),
        settings=StepSettings(sender=SENDER),
    )
    instrument(engine, recorder, *hooks)
    for e in market_day(orders=3, seed=1, follow_ups=False).events:
        engine.submit(e)
    engine.drain()
    engine.close()


def test_prometheus_counts_jobs_and_vendor_calls(tmp_path: Path) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from dixis_integrations.sync.observability import PrometheusMetrics

    registry = prometheus_client.CollectorRegistry()
    run_day(tmp_path, PrometheusMetrics(registry))
    labels = {"kind": "accounting", "provider": "ledger", "step": "invoice", "state": "done"}
    assert registry.get_sample_value("dixis_jobs_total", labels) == 3
    calls = {"vendor": "ledger", "operation": "ledger.create_invoice", "outcome": "ok"}
    assert registry.get_sample_value("dixis_vendor_calls_total", calls) == 3
    count = registry.get_sample_value(
        "dixis_job_seconds_count", {"kind": "shipping", "provider": "carrier", "step": "shipment"}
    )
    assert count == 3


def test_opentelemetry_records_a_span_per_job_and_call(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from dixis_integrations.sync.observability import Tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    run_day(tmp_path, Tracing(provider.get_tracer("test")))
    names = [s.name for s in exporter.get_finished_spans()]
    assert names.count("dixis.job invoice") == 3
    assert names.count("ledger ledger.create_invoice") == 3
    job = next(s for s in exporter.get_finished_spans() if s.name == "dixis.job shipment")
    assert job.attributes is not None
    assert job.attributes["dixis.job.state"] == "done"
    assert job.start_time is not None
    assert job.end_time is not None
    assert job.start_time <= job.end_time
