"""``dixis-integrations jobs``: list journal jobs, show one, replay dead ones, resolve
one found at its vendor."""

from __future__ import annotations

import argparse
import json
import sys

from dixis_integrations.commands._common import add_config_argument, config_path
from dixis_integrations.errors import ConfigurationError
from dixis_integrations.sync.engine import IN_DOUBT
from dixis_integrations.sync.journal import Job, JobState, PostgresJournal, SQLiteJournal

__all__ = ["add_arguments", "open_configured_journal", "run"]


def open_configured_journal(url: str | None, path: str) -> SQLiteJournal | PostgresJournal:
    """The journal named by ``url``, else by the configuration file at ``path``."""
    from dixis_integrations.config import load_settings
    from dixis_integrations.sync.journal import open_journal

    if url is None:
        url = load_settings(path).journal.url
    return open_journal(url)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``jobs`` command."""
    add_config_argument(parser)
    parser.add_argument("--journal", help="a journal URL (instead of the configuration's)")
    sub = parser.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="list jobs")
    ls.add_argument("--state", choices=[s.value for s in JobState])
    ls.add_argument("--event", help="only the jobs of this event id")
    ls.add_argument("--limit", type=int, default=200)
    ls.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="one job in full")
    show.add_argument("key")
    replay = sub.add_parser("replay", help="put a dead job (or all) back to pending")
    replay.add_argument("key", nargs="?")
    replay.add_argument(
        "--all-dead",
        action="store_true",
        help="every dead job but those in doubt (replay those by KEY after checking)",
    )

    resolve = sub.add_parser(
        "resolve",
        help="mark a dead job done: its effect was found at the vendor (a job in doubt)",
    )
    resolve.add_argument("key")
    resolve.add_argument(
        "--external-id", required=True, help="the id the effect has at the vendor (a voucher)"
    )
    resolve.add_argument(
        "--result", help="the step's result as JSON (default: rebuilt from the id)"
    )


def _row(job: Job) -> dict[str, object]:
    return {
        "key": job.key,
        "state": job.state.value,
        "tenant": job.tenant,
        "event_id": job.event_id,
        "event_type": job.event_type,
        "step": job.step,
        "kind": job.kind,
        "provider": job.provider,
        "attempts": job.attempts,
        "external_id": job.external_id,
        "error_code": job.error_code,
        "error_message": job.error_message,
        "next_attempt_at": job.next_attempt_at.isoformat() if job.next_attempt_at else None,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "depends_on": list(job.depends_on),
        "result": job.result,
    }


def _replayable(dead: list[Job]) -> list[str]:
    """The dead jobs ``--all-dead`` replays: not those in doubt (a write that may have
    reached a vendor that cannot tell), nor the jobs waiting on them; those are replayed
    one by one, by KEY, after checking at the vendor."""
    doubtful = {j.key for j in dead if j.error_code == IN_DOUBT}
    if doubtful:
        print(
            f"{len(doubtful)} job(s) in doubt left dead: check each at its vendor "
            "(jobs show KEY), then replay it by KEY",
            file=sys.stderr,
        )
    return [
        j.key for j in dead if j.key not in doubtful and not doubtful.intersection(j.depends_on)
    ]


def run(args: argparse.Namespace) -> int:
    """List, show or replay; 1 when the job asked for does not exist."""
    try:
        journal = open_configured_journal(args.journal, config_path(args))
    except ConfigurationError as exc:
        print(f"dixis-integrations jobs: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "list":
            state = JobState(args.state) if args.state else None
            jobs = journal.jobs(state=state, event_id=args.event, limit=args.limit)
            if args.json:
                print(json.dumps([_row(j) for j in jobs], indent=2, ensure_ascii=False))
                return 0
            for j in jobs:
                detail = j.external_id or j.error_code or ""
                print(
                    f"{j.key}  {j.state.value:<7}  {j.step:<12} {j.provider:<12} "
                    f"{j.attempts:>2}  {j.event_id}  {detail}"
                )
            counts = journal.counts()
            print(", ".join(f"{s.value} {n}" for s, n in counts.items()), file=sys.stderr)
            return 0
        if args.action == "show":
            job = journal.get(args.key)
            if job is None:
                print(f"dixis-integrations jobs: no job {args.key}", file=sys.stderr)
                return 1
            print(json.dumps(_row(job), indent=2, ensure_ascii=False))
            return 0
        if args.action == "resolve":
            return _resolve(journal, args)
        keys = _replayable(journal.jobs(state=JobState.DEAD)) if args.all_dead else [args.key]
        if not keys or keys == [None]:
            print("dixis-integrations jobs replay: give a KEY or --all-dead", file=sys.stderr)
            return 2
        revived = [k for key in keys for k in journal.replay(key)]
        print(f"{len(revived)} job(s) back to pending; run 'dixis-integrations sync --resume'")
        return 0 if revived else 1
    finally:
        journal.close()


def _resolve(journal: SQLiteJournal | PostgresJournal, args: argparse.Namespace) -> int:
    """``jobs resolve KEY --external-id ID``: 0 when resolved, 1 when not dead, 2 on bad
    input."""
    from dixis_integrations.errors import InvalidInput
    from dixis_integrations.sync.engine import Engine

    try:
        result = json.loads(args.result) if args.result else None
    except json.JSONDecodeError as exc:
        print(f"dixis-integrations jobs resolve: --result is not JSON: {exc}", file=sys.stderr)
        return 2
    try:
        changed = Engine(journal).resolve(args.key, args.external_id, result)
    except InvalidInput as exc:
        print(f"dixis-integrations jobs resolve: {exc}", file=sys.stderr)
        return 2
    if not changed:
        print(f"dixis-integrations jobs resolve: {args.key} is not dead", file=sys.stderr)
        return 1
    print(
        f"{args.key} done as {args.external_id}; {len(changed) - 1} job(s) waiting on it back "
        "to pending; run 'dixis-integrations sync --resume'"
    )
    return 0
