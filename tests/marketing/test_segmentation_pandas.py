"""The ``segment`` command and the pandas baseline of the benchmark agree byte for byte."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest

from dixis_integrations.marketing.segment_cli import add_arguments, run

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "segmentation"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_segment_matches_the_pandas_implementation_on_200k_orders(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    generator, baseline = load("generate_orders"), load("pandas_segment")
    orders = tmp_path / "orders.csv"
    generator.generate(orders, customers=20_000, orders=200_000, seed=7)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ours = tmp_path / "ours.csv"
    args = parser.parse_args(
        [str(orders), "--as-of", generator.AS_OF, "--output", str(ours), "--workers", "2"]
    )
    assert run(args) == 0
    frame = pd.read_csv(
        orders,
        usecols=["customer_id", "created_at", "total_amount", "status"],
        dtype={"customer_id": str, "created_at": str, "total_amount": float, "status": str},
    )
    expected = baseline.segment_frame(frame, datetime.fromisoformat(generator.AS_OF))
    theirs = tmp_path / "pandas.csv"
    expected.to_csv(theirs, index=False, lineterminator="\n")
    ours_text, theirs_text = ours.read_text(), theirs.read_text()
    assert ours_text.count("\n") > 15_000
    assert ours_text == theirs_text
