"""The short report: one screen that a person reads in ten seconds.

The verdict; the line that names the mistake (a wrong output delta, or where the bug starts,
from a declared or inferred layer order); the single most likely fix (the hint of the finding
where the bug starts); each wrong tensor, what and where; the notes that qualify the verdict
(chosen by code, ``SHORT_NOTES``). Everything else (notes about steps, budgets and kinks, every
finding's detail, the full checklist) is in ``explain(verbose=True)``, ``--verbose``, the HTML
report and the JSON, and the short report ends by saying how much more there is. No sentence is
printed twice.
"""

from __future__ import annotations

import re

from gradcheck.report._format import clean, fmt, index_text
from gradcheck.report._model import Component, Finding, FindingKind, ReportData
from gradcheck.report._sentences import NoteCode
from gradcheck.report._text import dtype_line, origin_line, summary
from gradcheck.report._text import explain as explain_all

# The notes that say what the verdict covers, or that a passing verdict hides a hazard: shown in
# the short report. The others are about how it was reached (steps, budgets, kinks, second
# opinions, the textbook ratio) and wait for --verbose.
SHORT_NOTES = frozenset({
    NoteCode.INTERRUPTED,  # what an interrupted check judged
    NoteCode.BUDGET_SPENT,  # the budget stopped it: entries unjudged
    NoteCode.UNREFINED,  # first-pass mismatches left without a second opinion
    NoteCode.NONFINITE,  # entries left alone
    NoteCode.DIAGNOSIS_INTERRUPTED,  # findings may be missing
    NoteCode.SIZE_ONE_AXES,  # judged as if reshaped: the update would break the parameter
    NoteCode.SHARED_MEMORY,  # tied weights: each gradient checked as a partial derivative
})
LONG_HINT = 240  # characters: a longer hint shows its first sentence only


def explain(report: ReportData, verbose: bool = False) -> str:
    """``Report.explain``: the short report's sentences, or every sentence when ``verbose``."""
    if verbose:
        return explain_all(report)
    return "\n".join(clean(line) for line in short_lines(report))


def short_lines(report: ReportData) -> list[str]:
    """The short report's sentences, one per line (before wrapping): verdict first.

    >>> import numpy as np, gradcheck
    >>> w = np.array([1.0, 2.0, 3.0])
    >>> r = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": w}, {"w": -2 * w})
    >>> print("\\n".join(short_lines(r)))
    FAILED: 1 of 1 parameters has a wrong gradient (w).
    w: dw has the wrong sign: analytic ≈ −1 × numeric.
    Look for a flipped sign (y − a instead of a − y, or += instead of −=) in this layer's delta.
    """
    lines = [summary(report, short=True)]
    findings = {f.param: f for f in report.findings}
    main = findings.get(report.origin or "") or (report.findings[0] if report.findings else None)
    covered: set[str] = set()
    if main is not None and main.kind is FindingKind.DELTA:
        lines.append(f"{main.param}: {main.detail}")  # names the delta and every tensor it spoils
        covered = {f.param for f in report.findings if f.kind is FindingKind.DELTA}
    else:
        origin = origin_line(report)
        if origin is not None:
            lines.append(origin)
    rest = _tensors(report, [f for f in report.findings if f.param not in covered])
    if main is not None and main.kind is FindingKind.UNEXPLAINED:
        lines += [_fix(main), *rest]  # its hint, from the layer evidence, names the mistake
    elif main is not None:
        first = [line for line in rest if line.startswith(f"{main.param}: ")]
        lines += [*first, _fix(main), *(line for line in rest if line not in first)]
    lines += [] if main is not None else rest
    for name in report.suspects:
        if name not in findings:
            lines.append(_worst(report.components[name]))
    lines += [str(n) for n in report.notes if getattr(n, "code", None) in SHORT_NOTES]
    dtypes = dtype_line(report)  # the float32 arithmetic not exercised (precision="auto")
    return _once(lines if dtypes is None else [*lines, dtypes])


def _fix(finding: Finding) -> str:
    """The most likely fix: the hint, or its first sentence when the hint is a long checklist."""
    return finding.hint if len(finding.hint) <= LONG_HINT else first_sentence(finding.hint)


def _tensors(report: ReportData, findings: list[Finding]) -> list[str]:
    """What is wrong with each tensor, and where: unexplained ones together, one worst entry each;
    the others by their finding's first sentence."""
    lines: list[str] = []
    unexplained = [f for f in findings if f.kind is FindingKind.UNEXPLAINED]
    if unexplained:
        worst = "; ".join(_entry(report.components[f.param]) for f in unexplained)
        names = ", ".join(f.param for f in unexplained)
        lines.append(f"{names}: no relation of the table fits (unexplained); worst {worst}.")
    for f in findings:
        if f.kind is not FindingKind.UNEXPLAINED:
            lines.append(f"{f.param}: {first_sentence(f.detail)}")
    return lines


def first_sentence(text: str) -> str:
    """The first sentence of a text (up to ". " followed by a capital).

    >>> first_sentence("Fix δ_L first. Then W1, e.g. the bias.")
    'Fix δ_L first.'
    """
    match = re.search(r"[.?!]\s+(?=[A-Z])", text)
    return text if match is None else text[: match.start() + 1]


def _entry(c: Component) -> str:
    worst = c.worst_entries(1)
    if not worst:
        return f"{c.name}: -"
    i, n, g = worst[0]
    return f"{index_text(c.name, i)}: numeric {fmt(n)}, analytic {fmt(g)}"


def _worst(c: Component) -> str:
    return f"{c.name}: {c.mismatches:,} of {c.checked:,} checked entries disagree (worst {_entry(c)})."


def _once(lines: list[str]) -> list[str]:
    """Each line once (a hint that is also a finding's sentence is not said twice)."""
    seen: set[str] = set()
    out = []
    for line in lines:
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out


def more_line(report: ReportData) -> str | None:
    """What the short report leaves out, and where to read it; None when nothing is left out.

    >>> import numpy as np, gradcheck
    >>> r = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": np.ones(3)}, {"w": 2 * np.ones(3)})
    >>> more_line(r) is None
    True
    """
    hidden = sum(getattr(n, "code", None) not in SHORT_NOTES for n in report.notes)
    shown = " ".join(short_lines(report))
    partial = any(f.detail not in shown or f.hint not in shown for f in report.findings)
    if not hidden and not report.findings:
        return None
    what = [f"{hidden} note{'s' * (hidden != 1)}"] if hidden else []
    what.append("every finding in full" if partial else "the textbook ratio")
    return f"More: explain(verbose=True) or --verbose ({', '.join(what)})."
