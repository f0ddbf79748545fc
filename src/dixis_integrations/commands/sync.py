"""``dixis-integrations sync FILE``: replay an export of events (JSON Lines) through the
configured integrations.

Resumable: jobs have deterministic keys, so running it again after a crash or a Ctrl-C
redoes nothing that is done. A malformed line is reported with its number and skipped.
Exit code 0 when every job finished, 1 when some are dead or still open or lines were
skipped, 2 when the configuration or the file is unusable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from dixis_integrations.commands._common import Progress, add_config_argument, config_path

__all__ = ["add_arguments", "read_events", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``sync`` command."""
    parser.add_argument("file", nargs="?", help="JSON Lines of events ('-' for stdin)")
    add_config_argument(parser)
    parser.add_argument("--sandbox", action="store_true", help="run on the embedded sandboxes")
    parser.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    parser.add_argument("--resume", action="store_true", help="only finish recorded jobs")
    parser.add_argument("--max-wait", type=float, default=300.0, help="seconds to wait for retries")


def read_events(lines: Iterator[str], errors: list[str]) -> Iterator[tuple[int, object]]:
    """(line number, event) for each good line; a bad line adds its number and reason."""
    import pydantic

    from dixis_integrations.models.events import parse_event

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, parse_event(line)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            errors.append(f"line {number}: {loc}: {first['msg']}")
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")


def run(args: argparse.Namespace) -> int:
    """Replay the file."""
    from dixis_integrations.errors import ConfigurationError
    from dixis_integrations.hub import Integrations
    from dixis_integrations.models.events import Event
    from dixis_integrations.sync.journal import JobState

    if not args.file and not args.resume:
        print("dixis-integrations sync: give a FILE, or --resume", file=sys.stderr)
        return 2
    try:
        hub = (
            Integrations.sandbox() if args.sandbox else Integrations.from_config(config_path(args))
        )
    except ConfigurationError as exc:
        print(f"dixis-integrations sync: {exc}", file=sys.stderr)
        return 2
    err = sys.stderr
    with hub:
        errors: list[str] = []
        events: list[Event] = []
        if args.file:
            try:
                stream = sys.stdin if args.file == "-" else Path(args.file).open(encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                print(f"dixis-integrations sync: cannot read {args.file}: {exc.strerror}", file=err)
                return 2
            with stream:
                for _, event in read_events(iter(stream), errors):
                    assert isinstance(event, Event)
                    events.append(event)
        for problem in errors:
            print(f"skipped {problem}", file=err)
        if args.dry_run:
            for event in events:
                specs = hub.engine.plan(event)
                steps = ", ".join(f"{s.step}->{s.provider}" for s in specs) or "(no steps)"
                print(f"{event.event_id}: {steps}")
            for event_type in sorted({e.type for e in events}):
                _, skipped = hub.engine.planned_steps(event_type)
                for reason in skipped:
                    print(f"  {event_type}: skipped {reason}", file=err)
            return 1 if errors else 0
        keys: list[str] = []
        for event in events:
            keys.extend(hub.submit(event))
        open_jobs = [
            j.key for j in hub.journal.jobs() if j.state not in (JobState.DONE, JobState.DEAD)
        ]
        progress = Progress(len(open_jobs), "syncing")
        hub.engine.listeners.append(
            lambda o: progress.advance() if o.state is not JobState.FAILED else None
        )
        hub.engine.drain(max_wait=args.max_wait)
        progress.finish()
        counts = hub.journal.counts()
        print(
            f"{len(events)} events, {len(errors)} bad lines; jobs: "
            + ", ".join(f"{s.value} {n}" for s, n in counts.items()),
            file=err,
        )
        for job in hub.journal.jobs(state=JobState.DEAD):
            print(f"dead {job.key} {job.step}/{job.provider}: {job.error_message}", file=err)
        unfinished = (
            counts[JobState.DEAD]
            + counts[JobState.PENDING]
            + counts[JobState.FAILED]
            + counts[JobState.RUNNING]
        )
        return 1 if errors or unfinished else 0
