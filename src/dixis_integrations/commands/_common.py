"""What the orchestration commands share: opening the hub or the journal, a progress bar."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TextIO

__all__ = ["DEFAULT_CONFIG", "Progress", "add_config_argument", "config_path"]

DEFAULT_CONFIG = "dixis.toml"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config PATH`` (default ``$DIXIS_CONFIG`` or ``dixis.toml``)."""
    parser.add_argument(
        "--config",
        default=None,
        help="the TOML configuration (default: $DIXIS_CONFIG or ./dixis.toml)",
    )


def config_path(args: argparse.Namespace) -> str:
    """The configuration file the command should read."""
    return str(args.config or os.environ.get("DIXIS_CONFIG") or DEFAULT_CONFIG)


class Progress:
    """A plain progress bar on stderr (redrawn in place on a terminal, sparse otherwise)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.done = 0
        self._tty = self.stream.isatty()
        self._last = 0.0
        self._last_pct = -1

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items and redraw when useful."""
        self.done += n
        pct = int(100 * self.done / self.total)
        now = time.monotonic()
        if self._tty:
            if now - self._last > 0.05 or self.done >= self.total:
                self._draw(pct)
                self._last = now
        elif pct // 10 != self._last_pct // 10:
            self._draw(pct)
        self._last_pct = pct

    def _draw(self, pct: int) -> None:
        width = 30
        filled = int(width * min(pct, 100) / 100)
        bar = "#" * filled + "." * (width - filled)
        end = "\r" if self._tty else "\n"
        self.stream.write(f"{self.label} [{bar}] {self.done}/{self.total} {pct:3d}%{end}")
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line."""
        if self._tty:
            self._draw(int(100 * self.done / self.total))
            self.stream.write("\n")
            self.stream.flush()
