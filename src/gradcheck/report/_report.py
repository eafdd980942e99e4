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
from gradcheck.report._model import ReportData


class GradientMismatchError(GradCheckError):
    """Raised by ``Report.raise_for_failure()``; ``.report`` holds the full ``Report``."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report: Report = report


@dataclass(frozen=True)
class Report(ReportData):
    """The result of ``gradcheck.check``: frozen, printable, serialisable.

    ``relative_error`` is the textbook ‖n − g‖₂ / (‖n‖₂ + ‖g‖₂) over every checked coordinate;
    ``passed`` is our noise-aware verdict, which does not depend on that ratio.
    """

    def raise_for_failure(self) -> Report:
        """Raise ``GradientMismatchError`` (message: this report) unless passed; else return self."""
        if not self.passed:
            raise GradientMismatchError(str(self), report=self)
        return self

    def explain(self) -> str:
        """The verdict and the findings in plain sentences."""
        return _text.explain(self)

    def to_html(self, sweep: Any = None, title: str = "gradcheck report") -> str:
        """A self-contained HTML page: table, findings, per-entry error heatmaps (no JS)."""
        return _html.to_html(self, sweep=sweep, title=title)

    def to_markdown(self) -> str:
        """The report as GitHub Markdown, for an issue or a pull-request comment."""
        return _markdown.to_markdown(self)

    def __rich__(self) -> Any:
        return _text.renderable(self)

    def __str__(self) -> str:
        from rich.console import Console

        buffer = io.StringIO()
        console = Console(file=buffer, width=120, color_system=None, force_terminal=False)
        console.print(self)
        return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())
