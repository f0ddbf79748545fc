"""A worker process of the soak test: attaches to the served sandboxes and drains the
journal with a pool of threads. ``python _soak_worker.py SANDBOXES.json JOURNAL CRASH_AFTER``
kills itself (SIGKILL) right after its CRASH_AFTER-th answered vendor write, before the
journal records it; 0 means run to the end."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from dixis_integrations.auth import SQLiteTokenStore, TokenCipher
from dixis_integrations.http import RetryPolicy
from dixis_integrations.hub import Integrations
from dixis_integrations.sync.engine import JobPolicy, spread_by_order
from dixis_integrations.sync.journal import CallRow
from dixis_integrations.sync.runners import PoolRunner

THREADS = 6


def main() -> int:
    sandboxes_file, journal_path, crash_after = sys.argv[1:4]
    limit = int(crash_after)
    with open(sandboxes_file, encoding="utf-8") as f:
        sandboxes = json.load(f)
    store = SQLiteTokenStore(journal_path + ".tokens", TokenCipher(os.environ["DIXIS_SOAK_KEY"]))
    hub = Integrations.attach(
        sandboxes,
        journal_url=f"sqlite:///{journal_path}",
        time_scale=float(os.environ.get("DIXIS_SOAK_TIME_SCALE", "0.001")),
        # A lease outlives the longest attempt (a QuickBooks Retry-After is whole seconds).
        policy=JobPolicy(lease=3.0, backoff_initial=0.02, backoff_max=0.5, max_attempts=40),
        router=spread_by_order(("shipping",), exclude=("boxnow",)),
        token_store=store,
        retry=RetryPolicy(backoff_initial=0.002, backoff_max=0.02, max_retry_after=5.0),
    )
    writes = 0
    lock = threading.Lock()

    def crash_point(row: CallRow) -> None:
        nonlocal writes
        if not row.is_write or row.error_code is not None:
            return
        with lock:
            writes += 1
            if limit and writes >= limit:
                os.kill(os.getpid(), signal.SIGKILL)

    hub.recorder.listeners.append(crash_point)
    with hub, PoolRunner(hub.engine, workers=THREADS) as pool:
        finished = pool.join(timeout=float(os.environ.get("DIXIS_SOAK_TIMEOUT", "600")))
    return 0 if finished else 3


if __name__ == "__main__":
    raise SystemExit(main())
