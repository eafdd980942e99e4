"""Turning a Report into a rich table and plain sentences (no logic about verdicts here)."""

from __future__ import annotations

from typing import Any

from gradcheck.report._format import fmt, index_text, layer_key
from gradcheck.report._model import Component, ReportData


def summary(report: ReportData) -> str:
    n_params = len(report.components)
    verdict = "PASSED" if report.passed else "FAILED"
    head = (
        f"{verdict}: all {n_params} parameters agree within the numerical noise"
        if report.passed
        else f"{verdict}: {len(report.suspects)} of {n_params} parameters "
        f"{'has a wrong gradient' if len(report.suspects) == 1 else 'have wrong gradients'} "
        f"({', '.join(report.suspects)})"
    )
    if report.interrupted:
        head = f"INTERRUPTED (partial): {head}"
    return (
        f"{head}. Textbook relative error {fmt(report.relative_error)} "
        f"({report.textbook_verdict}); scheme {report.scheme}, "
        f"{report.evaluations:,} loss evaluations."
    )


def explain(report: ReportData) -> str:
    lines = [summary(report)]
    if report.origin is not None and len(report.suspects) > 1:
        lines.append(origin_sentence(report.origin, report.suspects, report.findings))
    for finding in report.findings:
        lines.append(f"{finding.param}: {finding.detail} {finding.hint}".strip())
    for name in report.suspects:
        if any(f.param == name for f in report.findings):
            continue
        component = report.components[name]
        lines.append(_worst_sentence(component))
    lines.extend(report.notes)
    return "\n".join(lines)


# Mistakes made in one tensor's own gradient (not in a delta): backprop does not carry them on.
PER_TENSOR = ("regularization", "transposed", "flipped", "localized", "zero", "swapped",
              "independent", "data term")


def origin_sentence(origin: str, suspects: tuple[str, ...], findings: tuple = ()) -> str:
    """Backprop runs from the output back: the wrong layer closest to the output comes first.

    The error reaches earlier layers only through a wrong delta; where every other suspect's
    finding is a per-tensor mistake (an L2 term, a transposed or zeroed gradient), it is not.
    """
    key = layer_key(origin)
    layer = [s for s in suspects if key is not None and layer_key(s) == key] or [origin]
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


def renderable(report: ReportData) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title="gradcheck", title_justify="left", expand=False)
    for header, justify in (
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
    ):
        table.add_column(header, justify=justify, overflow="fold")
    for c in report.components.values():
        status = Text("ok", style="green") if c.passed else Text("WRONG", style="bold red")
        checked = f"{c.checked:,}" + (f" (+{c.skipped} skipped)" if c.skipped else "")
        table.add_row(
            Text(c.name),
            "x".join(str(s) for s in c.shape) or "scalar",
            checked,
            fmt(c.relative_error),
            fmt(c.max_abs_error),
            Text(index_text("", c.worst_index) or "-"),
            fmt(c.numeric),
            fmt(c.analytic),
            fmt(c.tolerance),
            fmt(c.eps),
            status,
        )
    style = "bold green" if report.passed else "bold red"
    parts: list[Any] = [table, Text(summary(report), style=style)]
    details = explain(report).split("\n")[1:]
    if details:
        parts.append(Text("\n".join(details)))
    return Group(*parts)
