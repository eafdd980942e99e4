"""A rich progress bar for checks that take more than a second (off when stderr is no terminal)."""

from __future__ import annotations

import sys
import time
from typing import Any

DELAY = 1.0  # seconds before a bar appears: short checks print nothing


class Progress:
    """Counts evaluated coordinates; shows a transient bar once a check has run ``DELAY`` s.

    Args:
      total: coordinates the check plans to evaluate.
      enabled: True always shows it, False never, None only when stderr is a terminal.

    >>> p = Progress(10, enabled=False)
    >>> p.advance(4); p.done
    4
    >>> p.close()
    """

    def __init__(self, total: int, *, enabled: bool | None = None) -> None:
        self.total, self.done = total, 0
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self.start = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is None and time.perf_counter() - self.start > DELAY:
            self._open()
        if self._bar is not None:
            self._bar.update(self._task, completed=min(self.done, self.total))

    def _open(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(
            TextColumn("gradcheck"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("coordinates"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task("check", total=self.total)
        self._bar.start()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class CheckInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a check; ``.report`` holds the partial report (``report.interrupted``).

    A ``KeyboardInterrupt``, so a script still stops; catch it to keep the partial result. The
    partial report never says PASSED: entries not yet judged are unjudged, and ``passed`` is
    None (``verdict`` "incomplete") unless an entry already judged is wrong (False). Raised for
    a Ctrl-C in the diagnosis too, where the verdict itself is complete.
    """

    def __init__(self, report: Any) -> None:
        super().__init__(report.notes[-1] if report.notes else "check interrupted")
        self.report = report
