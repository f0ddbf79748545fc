"""The orchestration commands: demo, sync, jobs, report, health and config check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dixis_integrations.cli import main
from dixis_integrations.models.events import OrderCreated
from dixis_integrations.sync.engine import Engine
from dixis_integrations.sync.journal import JobSpec, JobState, SQLiteJournal
from dixis_integrations.sync.marketday import market_day


def test_demo_always_prints_a_readable_report(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--orders", "5"])
    out, err = capsys.readouterr()
    assert code in (0, 1)
    assert "totals:" in out
    assert "Dixis marketplace day on the sandboxes" in err
    assert "5 orders" in err


def test_demo_report_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    main(["demo", "--orders", "3", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"rows", "totals", "dead_jobs", "pending_jobs"}


def test_sync_reports_a_malformed_line_by_number_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = market_day(orders=2, seed=1, follow_ups=False)
    lines = [e.model_dump_json() for e in day.events]
    lines.insert(1, '{"type": "order.created", "order": {"id": ""}}')
    lines.insert(3, "not json")
    export = tmp_path / "events.jsonl"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = main(["sync", str(export), "--sandbox", "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "skipped line 2: order.created.order" in err
    assert "skipped line 4:" in err
    assert len(out.strip().splitlines()) == len(day.events)


def _config(tmp_path: Path, body: str = "") -> Path:
    path = tmp_path / "dixis.toml"
    path.write_text(f'[journal]\nurl = "sqlite:///{tmp_path / "j.db"}"\n{body}', encoding="utf-8")
    return path


def test_config_check_names_the_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(_config(tmp_path))]) == 0
    bad = _config(tmp_path, "[policy]\nmax_attempts = -1\n")
    assert main(["config", "check", "--config", str(bad)]) == 2
    assert "policy.max_attempts" in capsys.readouterr().err
    missing = _config(tmp_path, "[integrations.crm.nowhere]\nx = 1\n")
    assert main(["config", "check", "--config", str(missing)]) == 2
    assert "integrations.crm.nowhere" in capsys.readouterr().err


def test_health_with_nothing_configured_is_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health", "--config", str(_config(tmp_path))]) == 0
    assert "no integrations configured" in capsys.readouterr().out


def test_jobs_list_show_and_replay_dead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    journal = SQLiteJournal(tmp_path / "j.db")
    event = next(e for e in market_day(orders=1, seed=1).events if isinstance(e, OrderCreated))
    spec = JobSpec("default", event.event_id, event.type, "invoice", "accounting", "x", "{}")
    (key,) = journal.enqueue([spec])
    journal.claim("w", lease=30)
    journal.kill(key, "w", error_code="validation_rejected", message="bad VAT")
    journal.close()

    assert main(["jobs", "--config", str(config), "list", "--state", "dead"]) == 0
    assert key in capsys.readouterr().out
    assert main(["jobs", "--config", str(config), "show", key]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["error_message"] == "bad VAT"
    assert main(["jobs", "--config", str(config), "show", "nope"]) == 1
    assert main(["jobs", "--config", str(config), "replay", "--all-dead"]) == 0
    journal = SQLiteJournal(tmp_path / "j.db")
    job = journal.get(key)
    assert job is not None
    assert job.state is JobState.PENDING
    journal.close()


def test_report_prints_table_json_csv_and_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    journal = SQLiteJournal(tmp_path / "j.db")
    Engine(journal)  # nothing configured: an empty but valid journal
    journal.close()
    assert main(["report", "--config", str(config)]) == 0
    assert "totals:" in capsys.readouterr().out
    assert main(["report", "--config", str(config), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("day,kind,provider,orders_synced")
    assert main(["report", "--config", str(config), "--audit"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_sync_runs_the_file_and_summarises_the_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = market_day(orders=2, seed=5, follow_ups=False)
    export = tmp_path / "events.jsonl"
    export.write_text("\n".join(e.model_dump_json() for e in day.events) + "\n", encoding="utf-8")
    code = main(["sync", str(export), "--sandbox", "--max-wait", "30"])
    err = capsys.readouterr().err
    assert f"{len(day.events)} events, 0 bad lines; jobs:" in err
    assert code in (0, 1)
    assert (code == 0) == ("dead " not in err)


def test_sync_needs_a_file_or_resume(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--sandbox"]) == 2
    assert "give a FILE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "name", "table"),
    [
        ("inventory", "zoho", 'organization_id = "20001"\n'),
        ("accounting", "xero", ""),
        ("accounting", "quickbooks", 'realm_id = "9130357"\n'),
    ],
)
def test_config_check_refuses_an_oauth_only_vendor_without_its_oauth_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, name: str, table: str
) -> None:
    bare = _config(tmp_path, f"[integrations.{kind}.{name}]\n{table}")
    assert main(["config", "check", "--config", str(bare)]) == 2
    assert f"oauth.{name}" in capsys.readouterr().err
    app = (
        f'[oauth.{name}]\nclient_id = "app"\n'
        'authorize_url = "https://vendor.example/authorize"\n'
        'token_url = "https://vendor.example/token"\n'
    )
    with_app = _config(tmp_path, f"[integrations.{kind}.{name}]\n{table}{app}")
    assert main(["config", "check", "--config", str(with_app)]) == 0, capsys.readouterr().err
