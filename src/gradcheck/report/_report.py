"""``Report``: a check's data (``ReportData``) with its views: text, rich, HTML and Markdown.

The renderers read ``ReportData`` and never import this module, so the report and its views
form no cycle: this module sits on top of both.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from gradcheck._errors import GradCheckError
from gradcheck.report import _html, _markdown, _text
from gradcheck.report._format import fmt
from gradcheck.report._model import ReportData


class GradientMismatchError(GradCheckError):
    """Raised by ``Report.raise_for_failure()``; ``.report`` holds the full ``Report``."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report: Report = report


@dataclass(frozen=True, repr=False)
class Report(ReportData):
    """The result of ``gradcheck.check``: frozen, printable, serialisable.

    ``relative_error`` is the textbook ‖n − g‖₂ / (‖n‖₂ + ‖g‖₂) over every checked coordinate;
    ``passed`` is our noise-aware verdict, which does not depend on that ratio. ``str(report)``
    is the table and the sentences (plain text, 120 columns, also in a notebook); in Jupyter a
    report displays as a compact HTML table (``_repr_html_``); ``repr`` is one short line.
    """

    def raise_for_failure(self) -> Report:
        """Raise ``GradientMismatchError`` (message: this report) unless passed; else return self."""
        if not self.passed:
            raise GradientMismatchError(str(self), report=self)
        return self

    def explain(self) -> str:
        """The verdict and the findings in plain sentences."""
        return _text.explain(self)

    def to_html(self, sweep: Any = None, title: str = "gradcheck report",
                command: str | None = None, seed: int | None = None) -> str:
        """A self-contained HTML page: table, findings, per-entry error heatmaps (no JS).

        ``command`` and ``seed`` (how the check was run) are shown in the page's footer.
        """
        return _html.to_html(self, sweep=sweep, title=title, command=command, seed=seed)

    def to_markdown(self) -> str:
        """The report as GitHub Markdown, for an issue or a pull-request comment."""
        return _markdown.to_markdown(self)

    def __rich__(self) -> Any:
        return _text.renderable(self)

    def to_text(self, width: int = 120) -> str:
        """The table and the sentences as plain text, ``width`` columns wide (no colour)."""
        from rich.console import Console

        buffer = io.StringIO()
        # force_jupyter=False: in a notebook rich would otherwise send the output to the
        # notebook's display and leave the string (and every exception message) empty.
        console = Console(file=buffer, width=width, color_system=None, force_terminal=False,
                          force_jupyter=False, force_interactive=False, soft_wrap=False)
        console.print(self)
        return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        verdict = "INTERRUPTED" if self.interrupted else self.verdict.upper()
        wrong = f", suspects={self.suspects!r}" if self.suspects else ""
        n = len(self.components)
        return (f"<gradcheck.Report {verdict}: {n} parameter{'s' * (n != 1)}{wrong}, "
                f"relative_error={fmt(self.relative_error)}, {self.evaluations:,} evaluations>")

    def _repr_html_(self) -> str:
        """Jupyter's view: the verdict, the table and the findings (heatmaps: ``to_html()``)."""
        return _html.compact(self)
