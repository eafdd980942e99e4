"""``Report``: a check's data (``ReportData``) with its views: text, rich, HTML and Markdown.

The renderers read ``ReportData`` and never import this module, so the report and its views
form no cycle: this module sits on top of both.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from gradcheck._errors import GradCheckError
from gradcheck.report import _html, _markdown, _short, _view
from gradcheck.report._format import fmt
from gradcheck.report._model import ReportData


class GradientMismatchError(GradCheckError):
    """Raised by ``Report.raise_for_failure()``; ``.report`` holds the full ``Report``.

    Args:
      message: the text of the error (the report's short view).
      report: the failed (or incomplete) report.

    >>> import numpy as np, gradcheck
    >>> r = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": np.ones(2)}, {"w": np.ones(2)})
    >>> try:
    ...     r.raise_for_failure()
    ... except gradcheck.GradientMismatchError as error:
    ...     print(error.report.suspects, str(error).splitlines()[0][:7])
    ('w',) FAILED:
    """

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report: Report = report


@dataclass(frozen=True, repr=False)
class Report(ReportData):
    """The result of ``gradcheck.check``: frozen, printable, serialisable.

    ``relative_error`` is the textbook ‖n − g‖₂ / (‖n‖₂ + ‖g‖₂) over every checked coordinate;
    ``passed`` is our noise-aware verdict, which does not depend on that ratio. ``str(report)``
    is the short report (plain text, 120 columns, also in a notebook): the verdict, the line
    that names the mistake, the most likely fix, the table; ``explain(verbose=True)`` and
    ``to_text(verbose=True)`` say everything. In Jupyter a report displays as a compact HTML
    table (``_repr_html_``); ``repr`` is one short line.

    Attributes:
      passed: the verdict: True, False, or None (incomplete: interrupted or a budget spent).
      suspects: the parameters whose gradient is wrong; ``origin``: where the bug most likely
        starts; ``findings``: one ``Finding`` per suspect (what kind of mistake).
      components: one ``Component`` per parameter (the table's rows, the per-entry data).
      relative_error, textbook_verdict: the textbook ratio and its reading (no part of the verdict).
      notes: sentences about how the verdict was reached; ``evaluations``: loss calls;
        ``eps``, ``scheme``, ``seconds``, ``options``: how the check ran.

    >>> import numpy as np, gradcheck
    >>> w = np.array([1.0, 2.0])
    >>> r = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": w}, {"w": 2 * w})
    >>> r.passed, r.verdict, r.suspects, list(r.components)
    (True, 'passed', (), ['w'])
    """

    def raise_for_failure(self) -> Report:
        """Raise ``GradientMismatchError`` (message: this report) unless passed; else return self."""
        if not self.passed:
            raise GradientMismatchError(str(self), report=self)
        return self

    def explain(self, verbose: bool = False) -> str:
        """The verdict and the findings in plain sentences.

        Short by default: the verdict, the line that names the mistake, the most likely fix and
        each wrong tensor. ``verbose=True`` adds every finding in full, the textbook ratio and
        every note (steps, budgets, kinks, second opinions).

        >>> import numpy as np, gradcheck
        >>> r = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": np.ones(2)}, {"w": -2 * np.ones(2)})
        >>> r.explain().splitlines()[0]
        'FAILED: 1 of 1 parameters has a wrong gradient (w).'
        >>> "Textbook relative error" in r.explain(verbose=True).splitlines()[0]
        True
        """
        return _short.explain(self, verbose=verbose)

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
        return _view.renderable(self)

    def to_text(self, width: int = 120, verbose: bool = False) -> str:
        """The report as plain text, ``width`` columns wide (no colour): short (what ``print``
        shows) or ``verbose`` (the table, then every sentence and note).

        >>> import numpy as np, gradcheck
        >>> r = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": np.ones(2)}, {"w": 2 * np.ones(2)})
        >>> r.to_text(width=80).splitlines()[0]
        'PASSED: all 1 parameters agree within the numerical noise.'
        """
        from rich.console import Console

        buffer = io.StringIO()
        # force_jupyter=False: in a notebook rich would otherwise send the output to the
        # notebook's display and leave the string (and every exception message) empty.
        console = Console(file=buffer, width=width, color_system=None, force_terminal=False,
                          force_jupyter=False, force_interactive=False, soft_wrap=False)
        console.print(_view.renderable(self, verbose=verbose))
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
