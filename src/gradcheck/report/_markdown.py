"""``Report.to_markdown()``: GitHub-flavoured Markdown for an issue or a pull-request comment."""

from __future__ import annotations

import re

from gradcheck.report._format import clean, fmt, index_text
from gradcheck.report._model import ReportData
from gradcheck.report._text import origin_line, summary

_SPECIAL = re.compile(r"([\\`*_{}\[\]|~])")
_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


def md_escape(text: str) -> str:
    """Escapes Markdown punctuation and HTML so that user strings render as plain text.

    >>> print(md_escape("W_1 <b>|x|</b>"))
    W\\_1 &lt;b&gt;\\|x\\|&lt;/b&gt;
    """
    text = clean(text.replace("\n", " "))  # a \r or an escape would break the table
    for char, entity in _ENTITIES:
        text = text.replace(char, entity)
    return _SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def to_markdown(report: ReportData) -> str:
    """The report as Markdown: verdict, a table with one row per parameter, findings and notes.

    Args:
      report: a ``Report``.

    Returns:
      Markdown text (a GitHub table; user strings escaped).

    >>> import gradcheck, numpy as np
    >>> w = np.array([1.0, 2.0])
    >>> print(to_markdown(gradcheck.check(lambda p: float((p ** 2).sum()), w, 2 * w)))
    ... # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    **✅ PASSED**: all 1 parameters agree within the numerical noise. Textbook relative error ...
    <BLANKLINE>
    | parameter | shape | checked | rel. error | max \\|n−g\\| | worst at | numeric | analytic | tolerance | ε | |
    |:--|:--|--:|--:|--:|:--|--:|--:|--:|--:|:--|
    | theta | 2 | 2 | ... | ok |
    """
    mark = {True: "✅", False: "❌", None: "⏸️"}[report.passed]
    head, _, rest = summary(report).partition(": ")
    lines = [f"**{mark} {head}**: {md_escape(rest)}", ""]
    lines.append("| parameter | shape | checked | rel. error | max \\|n−g\\| | worst at | numeric | "
                 "analytic | tolerance | ε | |")
    lines.append("|:--|:--|--:|--:|--:|:--|--:|--:|--:|--:|:--|")
    for c in report.components.values():
        skipped = f" (+{c.skipped} skipped)" if c.skipped else ""
        cells = (
            md_escape(c.name),
            "×".join(str(s) for s in c.shape) or "scalar",
            f"{c.checked:,}{skipped}",
            fmt(c.relative_error),
            fmt(c.max_abs_error),
            index_text("", c.worst_index) or "–",
            fmt(c.numeric),
            fmt(c.analytic),
            fmt(c.tolerance),
            fmt(c.eps),
            "ok" if c.passed else "**WRONG**" if c.passed is False else "unjudged",
        )
        lines.append("| " + " | ".join(cells) + " |")
    extra = []
    sentence = origin_line(report)  # from a declared or inferred layer order only
    if sentence is not None and not report.passed:
        extra.append(f"- {md_escape(sentence)}")
    said: set[str] = set()
    for f in report.findings:  # a hint shared by several findings is said once
        hint = "" if f.hint in said else f" _{md_escape(f.hint)}_"
        said.add(f.hint)
        extra.append(f"- **{md_escape(f.param)}** ({md_escape(f.kind)}): {md_escape(f.detail)}{hint}")
    extra += [f"- {md_escape(str(n))}" for n in report.notes]
    if extra:
        lines += ["", *extra]
    return "\n".join(lines)
