"""Benchmark ``dixis-integrations segment`` against pandas on the same file, in the same run.

Generates a deterministic orders CSV (default: 1M customers, 10M orders, about 580 MB) in
a temporary directory, then times each implementation as a separate process tree and
records its peak memory two ways: the sampled sum of the RSS of every process in the tree
(what the machine must hold at once) and the largest single process (``wait4`` max RSS).
Both outputs must be byte-identical; the figures are printed as a Markdown table.

    python benchmarks/segmentation/run_benchmark.py [--orders N] [--customers N] [--workers 2]
        [--rounds N]

With ``--rounds N`` both implementations run N times, alternating which goes first (other
load on the machine changes over minutes, so a fixed order would favour one side); every
run is printed with the load average when it started, and ratios are taken per round.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate_orders import AS_OF, generate

__all__ = ["Measurement", "measure"]

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Measurement:
    """One run of one implementation."""

    name: str
    seconds: float
    cpu_seconds: float
    tree_peak_mb: float
    largest_process_mb: float
    load_before: float = 0.0


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS over ``root`` and all its descendants (read from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/statm", "rb") as statm:
                pages = int(statm.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(rss.get(pid, 0) for pid in tree)


def measure(name: str, command: list[str], *, interval: float = 0.05) -> Measurement:
    """Run ``command``; return its wall time and peak memory (tree sum and largest process)."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen(command)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(process.pid))
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{name} failed with exit status {process.returncode}")
    # wait4's usage covers the process and every descendant it waited for (its workers).
    cpu = usage.ru_utime + usage.ru_stime
    return Measurement(name, seconds, cpu, peak / 1024, usage.ru_maxrss / 1024, load_before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="reuse this directory (kept afterwards)")
    parser.add_argument("--naive", action="store_true", help="also time the naive Python loop")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat both, alternating which runs first"
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="segment-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        orders = workdir / f"orders-{args.customers}-{args.orders}.csv"
        if not orders.exists():
            began = time.perf_counter()
            generate(orders, customers=args.customers, orders=args.orders)
            print(f"generated {orders} in {time.perf_counter() - began:.0f} s", file=sys.stderr)
        size_mb = orders.stat().st_size / 2**20
        ours_out, pandas_out = workdir / "ours.csv", workdir / "pandas.csv"
        pandas_command = [
            sys.executable,
            str(_HERE / "pandas_segment.py"),
            str(orders),
            "--as-of",
            AS_OF,
            "--output",
            str(pandas_out),
        ]
        ours_name = f"dixis segment --workers {args.workers}"
        ours_command = [
            sys.executable,
            "-m",
            "dixis_integrations.marketing.segment_cli",
            str(orders),
            "--as-of",
            AS_OF,
            "--output",
            str(ours_out),
            "--workers",
            str(args.workers),
        ]
        rounds: list[tuple[Measurement, Measurement]] = []
        identical = True
        for number in range(args.rounds):
            if number % 2 == 0:
                base = measure("pandas", pandas_command)
                ours = measure(ours_name, ours_command)
            else:
                ours = measure(ours_name, ours_command)
                base = measure("pandas", pandas_command)
            identical = identical and ours_out.read_bytes() == pandas_out.read_bytes()
            rounds.append((base, ours))
        naive = None
        if args.naive:
            naive_out = workdir / "naive.csv"
            naive = measure(
                "naive Python loop",
                [
                    sys.executable,
                    str(_HERE / "naive_segment.py"),
                    str(orders),
                    "--as-of",
                    AS_OF,
                    "--output",
                    str(naive_out),
                ],
            )
            if naive_out.read_bytes() != ours_out.read_bytes():
                raise SystemExit("the naive loop and the segment command disagree")
        print(
            f"\n{args.orders:,} orders, {args.customers:,} customers, {size_mb:.0f} MB CSV, "
            f"{os.cpu_count()} CPUs; outputs identical: {identical}\n"
        )
        print(
            "| round | load at start | implementation | wall (s) | x pandas | CPU (s) | x pandas "
            "| tree peak RSS (MB) | x pandas | largest process (MB) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for number, (base, ours) in enumerate(rounds, 1):
            runs = [base, ours] if naive is None or number > 1 else [base, ours, naive]
            for run in runs:
                print(
                    f"| {number} | {run.load_before:.1f} | {run.name} | {run.seconds:.1f} "
                    f"| {run.seconds / base.seconds:.2f} "
                    f"| {run.cpu_seconds:.1f} | {run.cpu_seconds / base.cpu_seconds:.2f} "
                    f"| {run.tree_peak_mb:.0f} | {run.tree_peak_mb / base.tree_peak_mb:.2f} "
                    f"| {run.largest_process_mb:.0f} |"
                )
        load = os.getloadavg()[0]
        print(f"\nload average at the end: {load:.1f} (other work on the machine slows both)")
        if not identical:
            raise SystemExit("pandas and the segment command disagree")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
