"""``import dixis_integrations`` against ``import httpx, pydantic``, each in a fresh
interpreter, measured the same way in the same run (wall time of the whole process,
interleaved, median of many runs), plus the first real use as a third line.

Run: python benchmarks/foundation/bench_import.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "baseline: import httpx, pydantic": "import httpx, pydantic",
    "import dixis_integrations": "import dixis_integrations",
    "first use: Driver, Endpoint": "from dixis_integrations import Driver, Endpoint",
    "first use: + Money (all models)": "from dixis_integrations import Driver, Endpoint, Money",
}


def _once(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    print(f"$ {sys.executable} benchmarks/foundation/bench_import.py --runs {args.runs}")
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(2):  # warm the file cache
        for code in CASES.values():
            _once(code)
    for _ in range(args.runs):
        for name, code in CASES.items():  # interleaved: every case meets the same load
            times[name].append(_once(code))
    base = statistics.median(times["baseline: import httpx, pydantic"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<36} {median * 1000:7.1f} ms   ratio {median / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
