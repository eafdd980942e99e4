"""Progress for checks that take more than a second: a rich bar on a terminal, a plain line in a
notebook without widgets, nothing when stderr is neither (a CI log, a pipe)."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from typing import Any

DELAY = 1.0  # seconds before anything appears: short checks print nothing
LINE_EVERY = 0.5  # seconds between two updates of the plain notebook line


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell), without importing IPython.

    >>> in_notebook()
    False
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _has_widgets() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def console(stderr: bool = True) -> Any:
    """A rich Console for live output that never warns: in a notebook without ipywidgets (where
    rich would warn 'install ipywidgets') it writes plain text to the stream instead."""
    from rich.console import Console

    if in_notebook() and not _has_widgets():  # plain text: a final line, no escape codes
        return Console(stderr=stderr, force_jupyter=False, force_terminal=False,
                       color_system=None)
    return Console(stderr=stderr)


def _clock(seconds: float) -> str:
    """``0:01:05`` for 65 s.

    >>> _clock(65.2), _clock(3725)
    ('0:01:05', '1:02:05')
    """
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Counts evaluated coordinates; shows progress once a check has run ``DELAY`` s.

    The display opens on a timer, so a long first block shows it too; the time left is
    estimated from the coordinates done so far (the verdict's first block is small for that).

    Args:
      total: coordinates the check plans to evaluate.
      enabled: True always shows it, False never, None when stderr is a terminal or in a
        notebook.

    >>> p = Progress(10, enabled=False)
    >>> p.advance(4); p.done
    4
    >>> p.close()
    """

    def __init__(self, total: int, *, enabled: bool | None = None) -> None:
        self.total, self.done = total, 0
        self.enabled = (sys.stderr.isatty() or in_notebook()) if enabled is None else bool(enabled)
        self.start = time.perf_counter()
        self._lock = threading.Lock()
        self._bar: Any = None
        self._task: Any = None
        self._line = in_notebook() and not _has_widgets()  # plain '\r' line, no live display
        self._last_line = 0.0
        self._closed = False
        self._timer: threading.Timer | None = None
        if self.enabled and total > 0:
            self._timer = threading.Timer(DELAY, self._open)
            self._timer.daemon = True
            self._timer.start()

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is None and not self._line and time.perf_counter() - self.start > DELAY:
            self._open()
        with self._lock:
            if self._bar is not None:
                self._bar.update(self._task, completed=min(self.done, self.total))
            elif self._line and self._last_line:
                now = time.perf_counter()
                if now - self._last_line >= LINE_EVERY or self.done >= self.total:
                    self._write_line(now)

    def eta(self) -> float | None:
        """Seconds left, from the rate so far; None before the first block is done."""
        if self.done <= 0:
            return None
        elapsed = time.perf_counter() - self.start
        return elapsed * max(self.total - self.done, 0) / self.done

    def _write_line(self, now: float) -> None:
        eta = self.eta()
        left = "estimating time left" if eta is None else f"{_clock(eta)} left"
        sys.stderr.write(f"\rgradcheck {min(self.done, self.total):,}/{self.total:,} "
                         f"coordinates, {left}   ")
        sys.stderr.flush()
        self._last_line = now

    def _open(self) -> None:
        with self._lock:
            if self._closed or self._bar is not None:
                return
            if self._line:
                self._write_line(time.perf_counter())
                return
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("gradcheck"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("coordinates"),
                _eta_column(self),
                console=console(stderr=True),
                transient=True,
            )
            self._task = self._bar.add_task("check", total=self.total)
            self._bar.update(self._task, completed=min(self.done, self.total))
            self._bar.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
            if self._line and self._last_line:
                sys.stderr.write(f"\rgradcheck {min(self.done, self.total):,}/{self.total:,} "
                                 f"coordinates in {time.perf_counter() - self.start:.1f} s\n")
                sys.stderr.flush()
                self._last_line = 0.0


def _eta_column(progress: Progress) -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            eta = progress.eta()
            return Text("estimating…" if eta is None else f"{_clock(eta)} left", style="cyan")

    return EtaColumn()


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
