"""Turning a Report into a rich table and plain sentences (no logic about verdicts here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gradcheck.report._format import clean, fmt, index_text, layer_key, layer_keys
from gradcheck.report._model import Component, ReportData
from gradcheck.report._sentences import NoteCode


def summary(report: ReportData, short: bool = False) -> str:
    """The verdict in one sentence; ``short`` leaves out the textbook ratio, the scheme and the
    number of loss evaluations (the table and the verbose view have them)."""
    n_params = len(report.components)
    verdict = report.verdict.upper()
    head = (
        f"{verdict}: all {n_params} parameters agree within the numerical noise"
        if report.passed
        else f"{verdict}: {len(report.suspects)} of {n_params} parameters "
        f"{'has a wrong gradient' if len(report.suspects) == 1 else 'have wrong gradients'} "
        f"({', '.join(report.suspects)})"
        if report.passed is False
        else f"{verdict}: interrupted before every entry was judged; none judged so far is wrong"
        if report.interrupted
        else f"{verdict}: {_unjudged(report)} without a verdict (the budget ran out before "
        "their second opinion); none judged is wrong"
    )
    if not any(c.checked for c in report.components.values()) and not report.interrupted:
        head = "NOTHING CHECKED: no gradient entry was compared (see the notes)"
    if report.interrupted and report.passed is not None:
        head = f"INTERRUPTED (partial): {head}"
    if short:
        return clean(f"{head}.")
    return clean(
        f"{head}. Textbook relative error {fmt(report.relative_error)} "
        f"({report.textbook_verdict}); scheme {report.scheme}, "
        f"{report.evaluations:,} loss evaluations."
    )


def widened(report: ReportData) -> dict[str, Component]:
    """The components an adapter evaluated in a wider dtype than the user's tensor's (float64
    copies of float32 tensors under ``precision="auto"``): the function *and* its gradient ran
    there, so an error that only the tensor's own arithmetic makes was not exercised. Only an
    adapter's report (its ``precision`` note) counts: ``gradcheck.check`` hands the loss float64
    copies too, but judges the user's own gradient."""
    if NoteCode.PRECISION not in report.note_codes:
        return {}
    return {n: c for n, c in report.components.items() if c.evaluated_dtype is not None
            and _BITS.get(c.evaluated_dtype, 0) > _BITS.get(c.dtype, 0)}


# Widths of the dtypes a check evaluates in (bfloat16 has no NumPy dtype to ask).
_BITS = {"float16": 16, "bfloat16": 16, "float32": 32, "float64": 64, "complex32": 32,
         "complex64": 64, "complex128": 128}


def dtype_line(report: ReportData) -> str | None:
    """One sentence where ``widened`` components exist: which dtype was evaluated instead of
    which, for which tensors, and the option that checks their own arithmetic.

    >>> import dataclasses, numpy as np, gradcheck
    >>> from gradcheck.report._sentences import Note, NoteCode
    >>> r = gradcheck.check(lambda p: float((p["x"] ** 2).sum()), {"x": np.ones(2)}, {"x": 2 * np.ones(2)})
    >>> c = dataclasses.replace(r.components["x"], name="input0", dtype="float32")  # as torch's
    >>> note = Note(NoteCode.PRECISION, None, {"evaluated": "float64", "native": "float32", "how": "autograd"})
    >>> print(dtype_line(dataclasses.replace(r, components={"input0": c}, notes=(note,))))
    input0 (float32) was evaluated in float64: an error that only float32 arithmetic makes is not seen; precision='native' checks it in float32.
    """
    wide = widened(report)
    if not wide:
        return None
    own = "/".join(sorted({c.dtype for c in wide.values()}))
    evaluated = "/".join(sorted({str(c.evaluated_dtype) for c in wide.values()}))
    names = list(wide)
    who = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    one = len(names) == 1
    return (f"{who} ({own}) {'was' if one else 'were'} evaluated in {evaluated}: an error that "
            f"only {own} arithmetic makes is not seen; precision='native' checks "
            f"{'it' if one else 'them'} in {own}.")


def report_keys(report: ReportData) -> dict[str, tuple[int, ...] | None]:
    """The layer of each parameter of a report (``layer_keys`` of its shapes)."""
    return layer_keys({n: c.shape for n, c in report.components.items()})


def right_tensors(report: ReportData) -> tuple[str, ...]:
    """The tensors checked and found right (the origin sentence's evidence of a right delta)."""
    return tuple(n for n, c in report.components.items() if c.passed and c.checked)


def _unjudged(report: ReportData) -> str:
    """``"3 entries of W2, gamma1"``: what a budget left unjudged, by tensor."""
    names = [n for n, c in report.components.items() if c.passed is None]
    count = sum(report.components[n].unjudged for n in names)
    return f"{count:,} entr{'y' if count == 1 else 'ies'} of {', '.join(names)}"


def explain(report: ReportData) -> str:
    """Every sentence: the verdict with its figures, where the bug starts, each finding in full
    (a hint shared by several said once), and every note (the short view is ``_short``)."""
    lines = [summary(report)]
    origin = origin_line(report)
    if origin is not None:
        lines.append(origin)
    said: set[str] = set()
    for finding in report.findings:  # a hint shared by several findings is said once
        hint = "" if finding.hint in said else finding.hint
        said.add(finding.hint)
        lines.append(f"{finding.param}: {finding.detail} {hint}".strip())
    for name in report.suspects:
        if any(f.param == name for f in report.findings):
            continue
        component = report.components[name]
        lines.append(_worst_sentence(component))
    lines.extend(str(note) for note in report.notes)
    return "\n".join(clean(line) for line in lines)


def order_known(report: ReportData) -> bool:
    """Whether the layer order is declared (``layers=``) or inferred (a number in every name)."""
    return report.layers is not None or all(k is not None for k in report_keys(report).values())


def origin_line(report: ReportData) -> str | None:
    """Where the bug starts, from a declared or inferred layer order (None without one)."""
    if report.origin is None or len(report.suspects) < 2 or not order_known(report):
        return None
    return origin_sentence(report.origin, report.suspects, report.findings,
                           right_tensors(report), report_keys(report))


# Mistakes made in one tensor's own gradient (not in a delta): backprop does not carry them on.
PER_TENSOR = ("regularization", "transposed", "flipped", "localized", "zero", "swapped",
              "independent", "data term")


def origin_sentence(
    origin: str, suspects: tuple[str, ...], findings: tuple = (), right: tuple[str, ...] = (),
    keys: Mapping[str, tuple[int, ...] | None] | None = None,
) -> str:
    """Backprop runs from the output back: the wrong layer closest to the output comes first.

    The error reaches earlier layers only through a wrong delta; where every other suspect's
    finding is a per-tensor mistake (an L2 term, a transposed or zeroed gradient), it is not.
    Nor is it where a tensor of the origin's layer is right (``right``: the checked tensors
    that passed): a wrong delta would make the whole layer wrong, its bias included.
    """
    def layer_of(name: str) -> tuple[int, ...] | None:  # ``keys``: ``layer_keys`` of them all
        return keys[name] if keys is not None and name in keys else layer_key(name)

    key = layer_of(origin)
    layer = [s for s in suspects if key is not None and layer_of(s) == key] or [origin]
    downstream = [s for s in suspects if s not in layer]
    where = f"layer {'.'.join(map(str, key))} ({', '.join(layer)})" if key else origin
    if not downstream:
        return f"The wrong gradients are all in {where}: look at that layer's backward pass."
    kinds = {f.param: f.kind for f in findings}
    if all(kinds.get(s) in PER_TENSOR for s in downstream):
        return (
            f"Each wrong gradient has a mistake of its own ({', '.join(downstream)} as well as "
            f"{where}): such per-tensor mistakes do not propagate through backprop, so fix each."
        )
    fine = [r for r in right if key is not None and layer_of(r) == key]
    if fine:
        return (
            f"{', '.join(fine)} {'is' if len(fine) == 1 else 'are'} right, so the delta of "
            f"{where} is right and nothing wrong propagates from it: {', '.join(layer)} and "
            f"{', '.join(downstream)} each have a mistake of their own, so fix each."
        )
    return (
        f"The bug most likely starts in {where}, the wrong gradient closest to the output; "
        f"{', '.join(downstream)} may be wrong only because backprop carries that error to "
        "earlier layers."
    )


def _worst_sentence(c: Component) -> str:
    worst = c.worst_entries(3)
    where = "; ".join(
        f"{index_text(c.name, i)}: numeric {fmt(n)}, analytic {fmt(g)}" for i, n, g in worst
    )
    return f"{c.name}: {c.mismatches} of {c.checked} checked entries disagree (worst: {where})."


# The table's columns, in display order: (header, justify). Numbers never wrap: when the table
# does not fit the width, whole columns are dropped, least useful first (DROP_ORDER).
COLUMNS = (
    ("parameter", "left"),
    ("shape", "left"),
    ("checked", "right"),
    ("rel. error", "right"),
    ("max |n-g|", "right"),
    ("worst at", "left"),
    ("numeric", "right"),
    ("analytic", "right"),
    ("tolerance", "right"),
    ("eps", "right"),
    ("", "left"),
)
DROP_ORDER = (("eps",), ("tolerance",), ("numeric", "analytic"), ("checked",), ("shape",),
              ("max |n-g|",), ("worst at",))


def status_text(passed: bool | None) -> Any:
    """The last cell of a row: ok, WRONG, or 'unjudged' (interrupted before a verdict)."""
    from rich.text import Text

    if passed is None:
        return Text("unjudged", style="yellow")
    return Text("ok", style="green") if passed else Text("WRONG", style="bold red")


def _cells(c: Component) -> dict[str, Any]:
    from rich.text import Text

    status = status_text(c.passed)
    checked = f"{c.checked:,}" + (f" (+{c.skipped} skipped)" if c.skipped else "")
    return {
        "parameter": Text(clean(c.name)),
        "shape": "x".join(str(s) for s in c.shape) or "scalar",
        "checked": checked,
        "rel. error": fmt(c.relative_error),
        "max |n-g|": fmt(c.max_abs_error),
        "worst at": index_text("", c.worst_index) or "-",
        "numeric": fmt(c.numeric),
        "analytic": fmt(c.analytic),
        "tolerance": fmt(c.tolerance),
        "eps": fmt(c.eps),
        "": status,
    }


SHORT_ROWS = 12  # the short view lists every wrong tensor, and right ones up to this many rows


def table(report: ReportData, dropped: frozenset[str] = frozenset(),
          limit: int | None = None) -> Any:
    """The parameter table without the columns in ``dropped``; only names may wrap. With a
    ``limit``, the right tensors beyond it are counted in one last row."""
    from rich.table import Table

    # The short view (``limit``) leads with the verdict and needs no title.
    out = Table(title=None if limit is not None else "gradcheck", title_justify="left",
                expand=False)
    shown = [(h, j) for h, j in COLUMNS if h not in dropped]
    for header, justify in shown:
        out.add_column(header, justify=justify, no_wrap=header != "parameter",
                       overflow="fold" if header == "parameter" else "ellipsis")
    rows = list(report.components.values())
    if limit is not None and len(rows) > limit:
        keep = [c for c in rows if c.passed is not True]
        room = max(limit - len(keep), 0)
        keep += [c for c in rows if c.passed is True][:room]
        hidden = len(rows) - len(keep)
        rows = [c for c in rows if any(c is k for k in keep)]
    else:
        hidden = 0
    for c in rows:
        cells = _cells(c)
        out.add_row(*(cells[h] for h, _ in shown))
    if hidden:
        from rich.text import Text

        out.add_row(*(Text(f"… {hidden} more, all ok") if h == "parameter" else ""
                      for h, _ in shown))
    return out


def columns_for(report: ReportData, console: Any, options: Any, limit: int | None = None) -> Any:
    """The widest table that fits ``options.max_width`` (whole columns dropped, in DROP_ORDER)."""
    from rich.measure import Measurement

    unbounded = options.update_width(100_000)  # Measurement.get clamps to the width it gets
    steps = [frozenset(sum(DROP_ORDER[:k], ())) for k in range(len(DROP_ORDER) + 1)]
    for dropped in steps:
        candidate = table(report, dropped, limit)
        if Measurement.get(console, unbounded, candidate).maximum <= options.max_width:
            return candidate
    return table(report, steps[-1], limit)
