"""The ``segment`` command: an orders export (CSV or JSON Lines) in, one CSV row per customer out.

``dixis-integrations segment ORDERS --as-of ISO8601 [--output FILE] [--rules FILE]
[--workers N]``. Output is sorted by customer id; a bad row or option prints a typed error
naming its line or key to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import IO

from dixis_integrations.errors import ConfigurationError, DixisError, FieldError, InvalidInput
from dixis_integrations.marketing._seg_files import segment_file
from dixis_integrations.marketing.segmentation import (
    DEFAULT_RULES,
    DEFAULT_THRESHOLDS,
    FlagThresholds,
    RuleSet,
    rule_set_from_mapping,
)

__all__ = ["add_arguments", "main", "run"]

_USAGE_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``segment`` command's arguments on ``parser``."""
    parser.add_argument("orders", type=Path, help="orders export: CSV with a header, or JSON Lines")
    parser.add_argument(
        "--as-of",
        required=True,
        help="the instant to segment at, ISO 8601 with an offset (2026-01-01T00:00:00Z)",
    )
    parser.add_argument("--output", type=Path, help="write the CSV here instead of stdout")
    parser.add_argument(
        "--rules",
        type=Path,
        help="a rule set in TOML or JSON (name, version, fallback, rules); "
        "an optional [thresholds] table overrides the flag thresholds",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes reading the file in parallel (default 1; 0 means one per CPU)",
    )


def _as_of(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise InvalidInput(
            "--as-of must be an ISO 8601 timestamp with an offset",
            errors=[FieldError(("as_of",), f"{text!r} is not an aware ISO 8601 timestamp")],
        )
    return moment


def _load_rules(path: Path) -> tuple[RuleSet, FlagThresholds]:
    """Read a rule file; TOML unless it ends in ``.json``. ``thresholds`` is optional."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}", key="rules") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"{path} is not valid: {exc}", key="rules") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} must hold a table", key="rules")
    raw_thresholds = data.pop("thresholds", {})
    if not isinstance(raw_thresholds, dict):
        raise ConfigurationError("must be a table", key="thresholds")
    thresholds = FlagThresholds.from_mapping(raw_thresholds, key_prefix="thresholds.")
    return rule_set_from_mapping(data), thresholds


def run(args: argparse.Namespace) -> int:
    """Run the command for parsed ``args``; returns the exit status (0, or 2 on bad input)."""
    try:
        as_of = _as_of(args.as_of)
        rules, thresholds = (DEFAULT_RULES, DEFAULT_THRESHOLDS)
        if args.rules is not None:
            rules, thresholds = _load_rules(args.rules)
        if args.workers < 0:
            raise InvalidInput(
                "--workers must be 0 (one per CPU) or more",
                errors=[FieldError(("workers",), f"{args.workers} is negative")],
            )
        workers = args.workers or os.cpu_count() or 1
        if not args.orders.is_file():
            raise InvalidInput(
                "the orders file does not exist",
                errors=[FieldError(("orders",), f"{args.orders} is not a file")],
            )
        output: Path | None = args.output

        def opener() -> AbstractContextManager[IO[str]]:
            if output is None:
                return nullcontext(sys.stdout)
            return output.open("w", encoding="utf-8", newline="")

        segment_file(args.orders, as_of, thresholds, rules, opener, workers=workers)
        if output is None:
            sys.stdout.flush()
    except DixisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _USAGE_ERROR
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m dixis_integrations.marketing.segment_cli``)."""
    parser = argparse.ArgumentParser(
        prog="dixis-integrations segment", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
