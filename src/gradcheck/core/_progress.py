"""Progress for checks that take more than a second: a rich bar on a terminal, a plain line in a
notebook without widgets, nothing when stderr is neither (a CI log, a pipe)."""

from __future__ import annotations

import importlib.util
import math
import sys
import threading
import time
from collections.abc import Callable
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
    """``0:01:05`` for 65 s; any time above zero shows at least ``0:00:01`` (rounded up).

    >>> _clock(65.2), _clock(3725), _clock(0.2), _clock(0)
    ('0:01:06', '1:02:05', '0:00:01', '0:00:00')
    """
    s = int(math.ceil(seconds - 1e-9)) if seconds > 0 else 0
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Counts loss calls against the plan's; shows them, with the phase, once a check has run
    ``DELAY`` s.

    The time left is the measured cost per call (first to latest update) times the calls the
    plan has left; once the plan is exceeded (second opinions it could not foresee) the time
    left is unknown, never zero. ``clock`` is injectable (a fake clock in the tests).

    Args:
      total: loss calls the check plans to make.
      enabled: True always shows it, False never, None when stderr is a terminal or in a
        notebook.
      clock: seconds, monotonic (``time.perf_counter``).

    >>> now = [0.0]
    >>> p = Progress(10, enabled=False, clock=lambda: now[0])
    >>> p.update(1, "first pass"); now[0] = 2.0; p.update(5)
    >>> p.done, p.eta(), p.text()
    (5, 2.5, 'first pass: 5/10 loss calls, 0:00:03 left')
    >>> p.close()
    """

    def __init__(self, total: int, *, enabled: bool | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.total, self.done, self.phase = total, 0, "starting"
        self.clock = clock
        self.enabled = (sys.stderr.isatty() or in_notebook()) if enabled is None else bool(enabled)
        self.start = clock()
        self._first: tuple[float, int] | None = None  # (time, calls) at the first update
        self._last = 0.0  # time of the latest update
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
        """``n`` more loss calls made."""
        self.update(self.done + n)

    def set_phase(self, phase: str) -> None:
        """Name what the calls from now on are for ("noise probe", "first pass", ...)."""
        self.phase = phase
        self._show()

    def update(self, done: int, phase: str | None = None) -> None:
        """``done`` loss calls made in all so far (in ``phase``, if given)."""
        if phase is not None:
            self.phase = phase
        self.done, self._last = done, self.clock()
        if self._first is None:
            self._first = (self._last, done)
        self._show()

    def _show(self) -> None:
        if not self.enabled:
            return
        if self._bar is None and not self._line and self.clock() - self.start > DELAY:
            self._open()
        with self._lock:
            if self._bar is not None:
                self._bar.update(self._task, completed=min(self.done, self.total))
            elif self._line and self._last_line:
                now = self.clock()
                if now - self._last_line >= LINE_EVERY or self.done >= self.total:
                    self._write_line(now)

    def per_call(self) -> float | None:
        """Seconds per loss call, measured from the first update to the latest; None before two.

        A long block in flight does not move it (it is what the calls made have cost).
        """
        if self._first is None or self.done <= self._first[1]:
            return None
        return (self._last - self._first[0]) / (self.done - self._first[1])

    def eta(self) -> float | None:
        """Seconds left: cost per call times the plan's calls left; None when not yet measured
        or when the plan is used up while the check goes on (unknown, not zero)."""
        cost = self.per_call()
        if cost is None or self.done >= self.total:
            return None
        return cost * (self.total - self.done)

    def text(self) -> str:
        """The line shown: phase, calls counted against the plan's, time left."""
        eta = self.eta()
        if self.done > self.total:
            return (f"{self.phase}: {self.done:,} loss calls (planned {self.total:,}), "
                    "time left unknown")
        left = ("estimating time left" if self.done < self.total else "time left unknown") \
            if eta is None else f"{_clock(eta)} left"
        return f"{self.phase}: {self.done:,}/{self.total:,} loss calls, {left}"

    def _write_line(self, now: float) -> None:
        sys.stderr.write(f"\rgradcheck {self.text()}   ")
        sys.stderr.flush()
        self._last_line = now

    def _open(self) -> None:
        with self._lock:
            if self._closed or self._bar is not None:
                return
            if self._line:
                self._write_line(self.clock() or 1e-9)
                return
            from rich.progress import BarColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                _text_column("gradcheck"),
                BarColumn(),
                _text_column(self),
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
                sys.stderr.write(f"\rgradcheck {self.done:,} loss calls in "
                                 f"{self.clock() - self.start:.1f} s\n")
                sys.stderr.flush()
                self._last_line = 0.0


def _text_column(source: Progress | str) -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class StatusColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            if isinstance(source, str):
                return Text(source)
            return Text(source.text(), style="cyan")

    return StatusColumn()


class CheckInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a check; ``.report`` is the partial report (``report.interrupted``).

    A ``KeyboardInterrupt``, so a script still stops; catch it to keep the partial result. The
    partial report never says PASSED: entries not yet judged are unjudged, and ``passed`` is
    None (``verdict`` "incomplete") unless an entry already judged is wrong (False). Raised for
    a Ctrl-C in the diagnosis too, where the verdict itself is complete.

    Args:
      report: the partial report, carried as the exception's argument.

    The partial result is an ordinary record: the engine returns the incomplete ``Report``
    (``check(..., on_interrupt="report")`` hands it back as is), and this exception only
    carries it, as its argument, to a caller that asked for a raise; ``.report`` points to it.

    >>> from gradcheck.report._report import Report
    >>> partial = Report(None, None, 0, {}, "central", {}, (), (), interrupted=True)
    >>> CheckInterrupted(partial).report is partial
    True
    """

    def __init__(self, report: Any) -> None:
        super().__init__(str(report.notes[-1]) if report.notes else "check interrupted", report)

    @property
    def report(self) -> Any:
        """The partial report: the record the engine returned."""
        return self.args[1]

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.report,))
