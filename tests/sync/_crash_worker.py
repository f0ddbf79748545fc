"""A worker process for the crash tests: drains the journal against a served market vendor.

``python _crash_worker.py JOURNAL BASE_URL CRASH_AFTER WORKERS``: with CRASH_AFTER > 0 it
kills itself (SIGKILL, no clean-up) right after its CRASH_AFTER-th vendor write has been
answered and before the journal records it: the window exactly-once must survive.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dixis_integrations.http.driver import CallRecord
from dixis_integrations.sync.engine import CallRecorder, Engine, JobPolicy
from dixis_integrations.sync.journal import SQLiteJournal
from dixis_integrations.sync.marketday import SENDER
from dixis_integrations.sync.runners import PoolRunner
from dixis_integrations.sync.steps import StepSettings
from sync.market import connections


def main() -> int:
    journal_path, base_url, crash_after, workers = sys.argv[1:5]
    limit = int(crash_after)
    journal = SQLiteJournal(journal_path)
    recorder = CallRecorder(journal)
    writes = 0
    lock = threading.Lock()

    def on_call(record: CallRecord) -> None:
        nonlocal writes
        recorder(record)
        if record.method == "GET" or record.error_code is not None:
            return
        with lock:
            writes += 1
            if limit and writes >= limit:
                os.kill(os.getpid(), signal.SIGKILL)

    engine = Engine(
        journal,
        connections(base_url, on_call=on_call),
        settings=StepSettings(sender=SENDER),
        policy=JobPolicy(lease=1.5, backoff_initial=0.02, backoff_max=0.2, max_attempts=30),
    )
    with PoolRunner(engine, workers=int(workers)) as pool:
        finished = pool.join(timeout=240)
    journal.close()
    return 0 if finished else 3


if __name__ == "__main__":
    raise SystemExit(main())
