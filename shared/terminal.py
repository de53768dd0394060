"""A progress bar for the command line, with no dependency: one line redrawn in place.

On a terminal the bar is redrawn (at most ten times a second) as work advances; when the
stream is not a terminal (a log file, CI) only the final line is written, so logs do not
fill with carriage returns.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._drawn_at = 0.0
        self._last = (0, 0)

    def update(self, done: int, total: int) -> None:
        self._last = (done, total)
        now = time.monotonic()
        if self.live and (now - self._drawn_at >= 0.1 or done >= total):
            self._drawn_at = now
            self.stream.write("\r" + self.line(done, total))
            self.stream.flush()

    def close(self) -> None:
        """End the bar's line (or, off a terminal, write it once)."""
        done, total = self._last
        self.stream.write(("\r" if self.live else "") + self.line(done, total) + "\n")
        self.stream.flush()

    def line(self, done: int, total: int) -> str:
        share = 1.0 if total <= 0 else min(done / total, 1.0)
        filled = round(share * WIDTH)
        return (f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] "
                f"{done:,}/{total:,} {share:4.0%}")
