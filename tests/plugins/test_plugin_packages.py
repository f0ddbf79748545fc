"""Third-party plugins, for real: packages built and installed with pip, then seen by the host.

After ``pip install`` alone the example carrier is listed, loads, ships a parcel and passes
the conformance suite; the broken packages are reported with their reason and never take
the host down. Every check runs in a fresh interpreter that sees the installed packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PACKAGES = ("dixis-carrier-example", "dixis-carrier-broken")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory the packages were pip-installed into (built from clean copies)."""
    root = tmp_path_factory.mktemp("plugins")
    sources = []
    for name in PACKAGES:
        copy = root / name
        shutil.copytree(HERE / name, copy, ignore=shutil.ignore_patterns("build", "*.egg-info"))
        sources.append(str(copy))
    target = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            *sources,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return target


def _env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIXIS_")}
    env["PYTHONPATH"] = str(site)
    return env


def _python(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=_env(site),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plugins_command_lists_the_example_as_available_and_the_broken_as_failed(
    site: Path,
) -> None:
    script = Path(sys.executable).with_name("dixis-integrations")  # the installed command
    command = [str(script)] if script.exists() else [sys.executable, "-m", "dixis_integrations.cli"]
    done = subprocess.run(
        [*command, "plugins", "--load", "--json"],
        env=_env(site),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # 1: some plugin failed; the host did not crash
    rows = {(r["kind"], r["name"]): r for r in json.loads(done.stdout)}
    example = rows[("shipping", "example")]
    assert example["status"] == "available"
    assert example["distribution"] == "dixis-carrier-example"
    broken = rows[("shipping", "broken")]
    assert broken["status"] == "failed"
    assert "RuntimeError" in broken["error"]
    assert "broken on purpose" in broken["error"]
    half = rows[("shipping", "half")]
    assert half["status"] == "failed"
    assert "does not conform" in half["error"]
    assert "track()" in half["error"]


def test_listing_imports_no_plugin_and_the_example_ships_a_parcel(site: Path) -> None:
    script = """
import json, sys
import httpx
from dixis_integrations.registry import Registry
from dixis_integrations.http import Driver
from dixis_integrations.models.address import Address
from dixis_integrations.models.shipping import Parcel, ShipmentRequest

registry = Registry()
names = [i.name for i in registry.list("shipping")]
imported = sorted(m for m in sys.modules if m.startswith("dixis_carrier"))
cls = registry.load("shipping", "example")
from dixis_carrier_example.sandbox import ExampleSandbox
sandbox = ExampleSandbox()
carrier = cls(sandbox.api_key)
home = Address(name="Μαρία", street="Ερμού", number="10", city="Αθήνα", postcode="10563")
request = ShipmentRequest(reference="ord-1", sender=home, recipient=home,
                          parcels=(Parcel(weight_kg="1.2"),))
with Driver(httpx.Client(transport=sandbox.transport())) as driver:
    shipment = driver.run(carrier.create_shipment(request))
    tracking = driver.run(carrier.track(shipment.tracking_number))
print(json.dumps({"names": names, "imported_by_listing": imported,
                  "tracking_number": shipment.tracking_number, "status": tracking.status}))
"""
    done = _python(site, "-c", script)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"example", "broken", "half"} <= set(out["names"])
    assert out["imported_by_listing"] == []
    assert out["tracking_number"].startswith("EX")
    assert out["status"] == "pending"


def test_the_installed_example_passes_the_conformance_suite(site: Path, tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    shutil.copytree(HERE / "dixis-carrier-example" / "tests", tests)
    done = _python(
        site,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(tmp_path),
        str(tests),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout
    assert "failed" not in done.stdout
