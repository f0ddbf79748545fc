"""The command line: help, version, unknown commands, ``plugins`` and ``sandbox``."""

from __future__ import annotations

import json
import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import httpx
import pytest

import dixis_integrations.registry as registry_module
from dixis_integrations import cli
from dixis_integrations._version import __version__


def test_no_arguments_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    assert "plugins" in out
    assert "sandbox" in out


def test_help_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "commands:" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_an_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_a_command_whose_module_is_missing_is_reported_not_fatal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli.COMMANDS, "ghost", ("dixis_integrations.commands.no_such", "x"))
    assert cli.main(["ghost"]) == 2
    assert "not available" in capsys.readouterr().err


def test_only_the_module_of_the_command_run_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("fake_cmd")
    seen: dict[str, object] = {}

    def add_arguments(parser: object) -> None:
        seen["parser"] = parser

    def run(args: object) -> int:
        seen["args"] = args
        return 7

    module.add_arguments = add_arguments  # type: ignore[attr-defined]
    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_cmd", module)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake_cmd", "a fake"))
    assert cli.main(["fake"]) == 7
    assert "args" in seen


@pytest.fixture
def entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cli_plug_broken.py").write_text("raise RuntimeError('kaput')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [
        EntryPoint("kaput", "cli_plug_broken:Carrier", "dixis_integrations.shipping"),
        EntryPoint("acct", "cli_plug_never_imported:Ledger", "dixis_integrations.accounting"),
    ]
    monkeypatch.setattr(
        registry_module, "entry_points", lambda *, group: [e for e in eps if e.group == group]
    )


@pytest.mark.usefixtures("entry_points")
def test_plugins_lists_by_kind_without_importing(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["accounting", "acct", "listed"]
    assert lines[1].split() == ["shipping", "kaput", "listed"]
    assert "cli_plug_broken" not in sys.modules


@pytest.mark.usefixtures("entry_points")
def test_plugins_load_reports_failures_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plugins", "--load", "--json", "--kind", "shipping"]) == 1
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "kaput"
    assert row["status"] == "failed"
    assert "RuntimeError: kaput" in row["error"]


def test_sandbox_list_names_the_emulators(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sandbox", "list"]) == 0
    assert "oauth" in capsys.readouterr().out.split()


def test_sandbox_serve_once_prints_a_reachable_base_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["sandbox", "serve", "oauth", "--once"]) == 0
    details = json.loads(capsys.readouterr().out)
    assert details["name"] == "oauth"
    assert details["base_url"].startswith("http://127.0.0.1:")
    assert details["client_id"]
    with pytest.raises(httpx.ConnectError):  # --once: the server is stopped again
        httpx.get(details["base_url"] + "/", timeout=2)


def test_sandbox_serve_an_unknown_name_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sandbox", "serve", "nope", "--once"]) == 2
    assert "unknown sandbox" in capsys.readouterr().err
