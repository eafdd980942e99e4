"""The rich view of a report: short by default (``_short``), every sentence when verbose."""

from __future__ import annotations

from typing import Any

from gradcheck.report._format import clean
from gradcheck.report._model import ReportData
from gradcheck.report._short import more_line, short_lines
from gradcheck.report._text import SHORT_ROWS, columns_for, explain, summary


class _View:
    """The rich view of a report: short (the verdict, the mistake and its fix, the table, what
    more there is) or ``verbose`` (the table fitted to the width, then every sentence)."""

    def __init__(self, report: ReportData, verbose: bool = False) -> None:
        self.report, self.verbose = report, verbose

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.text import Text

        report = self.report
        style = {True: "bold green", False: "bold red", None: "bold yellow"}[report.passed]
        if not self.verbose:
            head, *rest = short_lines(report)
            yield Text(clean(head), style=style)
            if rest:
                yield Text("\n".join(clean(line) for line in rest))
            yield columns_for(report, console, options, limit=SHORT_ROWS)
            more = more_line(report)
            if more:
                yield Text(clean(more), style="dim")
            return
        yield columns_for(report, console, options)
        yield Text(summary(report), style=style)
        details = explain(report).split("\n")[1:]
        if details:
            yield Text("\n".join(details))


def renderable(report: ReportData, verbose: bool = False) -> Any:
    """A rich renderable: the table (columns dropped to fit the width), verdict, findings.

    >>> import io, numpy as np, gradcheck
    >>> from rich.console import Console
    >>> r = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": np.ones(3)}, {"w": 3 * np.ones(3)})
    >>> out = io.StringIO(); Console(file=out, width=60).print(renderable(r))
    >>> max(len(line) for line in out.getvalue().splitlines()) <= 60
    True
    """
    return _View(report, verbose)
