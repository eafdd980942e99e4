"""The summary of an ``opinfo.py`` run: outcomes, time ratios (first call and steady state),
by number of entries, fast-mode ops apart, and what the ratios mean in time.

    PYTHONPATH=src .venv/bin/python benchmarks/opinfo.py --summarize OUT.json
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Any

JUDGED = ("pass", "fail", "incomplete", "nothing")  # our outcomes that are a finished check


def _ratio(row: dict[str, Any], steady: bool) -> float:
    """Our time over torch's on one pair: first calls, or (``steady``) the minima where the
    pair was repeated (its first calls otherwise)."""
    if steady and "ours_min_s" in row:
        return row["ours_min_s"] / max(row["torch_min_s"], 1e-9)
    return row["ours_s"] / max(row["torch_s"], 1e-9)


def _median_p90(values: Any) -> tuple[float, float]:
    ratios = sorted(values)
    if not ratios:
        return math.nan, math.nan
    return statistics.median(ratios), ratios[min(len(ratios) - 1, int(0.9 * len(ratios)))]


SIZES = ((1, 16), (17, 64), (65, 256), (257, math.inf))  # entries checked, for the table


def _fast_ops() -> set[str]:
    """The OpInfo names whose op asks PyTorch's suite for gradcheck's fast mode."""
    from torch.testing._internal.common_methods_invocations import op_db

    return {f"{op.name}.{op.variant_test_name}".rstrip(".") for op in op_db
            if op.gradcheck_fast_mode}


def _fast_mode_lines(both: list[dict[str, Any]]) -> list[str]:
    """The ratios of the pairs whose op asks for fast mode, and of the others (first calls)."""
    fast = _fast_ops()
    parts = [[r for r in both if r["op"] in fast], [r for r in both if r["op"] not in fast]]
    if not all(parts):
        return []
    (m1, p1), (m2, p2) = (_median_p90(_ratio(r, False) for r in part) for part in parts)
    return [f"Ops PyTorch's suite checks in fast mode: {len(parts[0])} pairs, median per-pair "
            f"ratio {m1:.2f}x, 90th percentile {p1:.2f}x; the other {len(parts[1])} pairs: "
            f"{m2:.2f}x, {p2:.2f}x (first calls).", ""]


def _entries(row: dict[str, Any]) -> int:
    """The entries our check judged on a pair (every state counted)."""
    return sum(sum(c.values()) for c in row["states"].values())


def _gap_lines(both: list[dict[str, Any]]) -> list[str]:
    """What the ratios mean in time (first calls): the whole run's time, and how much longer
    ours took on the pairs above 2x, by how many entries they check."""
    ours, theirs = sum(r["ours_s"] for r in both), sum(r["torch_s"] for r in both)
    slow = [r for r in both if _ratio(r, False) > 2]
    few = f"at most {SIZES[0][1]} entries"
    lines = [f"All {len(both)} pairs together: gradcheck {ours:.1f} s, torch {theirs:.1f} s "
             f"({ours / max(theirs, 1e-9):.2f}x)."]
    if slow:
        median, p90 = _median_p90(1e3 * (r["ours_s"] - r["torch_s"]) for r in slow)
        lines.append(
            f"Pairs above 2x: {len(slow)}, of which "
            f"{sum(_entries(r) <= SIZES[0][1] for r in slow)} check {few}; ours took "
            f"{median:.2f} ms longer at the median of those pairs, {p90:.2f} ms at their 90th "
            "percentile.")
    cut = _cut_for_p90(both, 2.0)
    if 0 < cut < 1:
        lines.append(f"Cutting our time on every pair of {few} by {100 * cut:.0f}% (the others "
                     "as they are) would bring the 90th percentile to 2x or below.")
    elif cut == 1:
        lines.append(f"No cut of our time on every pair of {few} alone brings the 90th "
                     "percentile to 2x.")
    return [*lines, ""]


def _cut_for_p90(both: list[dict[str, Any]], target: float) -> float:
    """The smallest cut (in steps of 5%) of our first-call time on the pairs of at most 16
    entries that brings the 90th percentile ratio to ``target`` (0: it is there; 1: no cut
    of those pairs alone does)."""
    ratios = [(_ratio(r, False), _entries(r) <= SIZES[0][1]) for r in both]
    for step in range(20):
        cut = step / 20
        if _median_p90((1 - cut) * x if few else x for x, few in ratios)[1] <= target:
            return cut
    return 1.0


def _steady_lines(both: list[dict[str, Any]]) -> list[str]:
    """The steady-state ratios (``--repeat``) and both kinds by the number of entries."""
    repeated = [r for r in both if "ours_min_s" in r]
    if not repeated:
        return []
    ratio, p90 = _median_p90(_ratio(r, steady=True) for r in both)
    lines = [
        f"Steady state (each checker's minimum over its repeated calls on {len(repeated)} "
        f"pairs, the first call on the others): median per-pair ratio {ratio:.2f}x, 90th "
        f"percentile {p90:.2f}x.",
        "",
        "| entries | pairs | first call: median, p90 | steady: median, p90 | median ms, ours and "
        "torch's (first call) |",
        "|---|---|---|---|---|",
    ]
    for lo, hi in SIZES:
        rs = [r for r in both if lo <= _entries(r) <= hi]
        if rs:
            first, steady = _median_p90(_ratio(r, False) for r in rs), \
                _median_p90(_ratio(r, True) for r in rs)
            label = f"{lo}-{hi}" if hi != math.inf else f"{lo} and more"
            lines.append(f"| {label} | {len(rs)} | {first[0]:.2f}x, {first[1]:.2f}x | "
                         f"{steady[0]:.2f}x, {steady[1]:.2f}x | "
                         f"{1e3 * statistics.median(r['ours_s'] for r in rs):.2f}, "
                         f"{1e3 * statistics.median(r['torch_s'] for r in rs):.2f} |")
    return [*lines, ""]


def summary(rows: list[dict[str, Any]]) -> str:
    lines = []
    for dtype in sorted({r["dtype"] for r in rows}, reverse=True):
        rs = [
            r
            for r in rows
            if r["dtype"] == dtype and r.get("sample", 0) >= 0 and r.get("ours") != "no-input"
        ]
        counts = Counter(r["ours"] for r in rs)
        torch_counts = Counter(r["torch"] for r in rs)
        both = [r for r in rs if r["ours"] in JUDGED and r["torch"] in ("pass", "fail")]
        ours_t = statistics.median(r["ours_s"] for r in both) if both else float("nan")
        torch_t = statistics.median(r["torch_s"] for r in both) if both else float("nan")
        ratio, p90 = _median_p90(_ratio(r, steady=False) for r in both)
        n = len(rs)
        lines += [
            f"### {dtype}: {n} pairs ({len({r['op'] for r in rs})} ops)",
            "",
            f"gradcheck: {counts['pass']} pass, {counts['nothing']} nothing to check (every input "
            f"empty), {counts['fail']} fail, {counts['incomplete']} incomplete, "
            f"{counts['error']} adapter errors ({100 * counts['error'] / max(n, 1):.1f}%), "
            f"{counts['timeout']} timeouts.",
            f"torch.autograd.gradcheck: {torch_counts['pass']} pass, {torch_counts['fail']} fail, "
            f"{torch_counts['raised']} raised, {torch_counts['timeout']} timeouts.",
            f"Median time per pair (both ran): gradcheck {1e3 * ours_t:.1f} ms, torch "
            f"{1e3 * torch_t:.1f} ms; median per-pair ratio {ratio:.2f}x, 90th percentile "
            f"{p90:.2f}x ({len(both)} pairs).",
            "",
        ]
        lines += _gap_lines(both) + _fast_mode_lines(both) + _steady_lines(both)
        errors = Counter(r["cause"] for r in rs if r["ours"] in ("error", "timeout"))
        if errors:
            lines += ["| error or timeout (ours) | pairs | ops |", "|---|---|---|"]
            for c, k in errors.most_common():
                names = sorted({r["op"] for r in rs if r.get("cause") == c})
                lines.append(f"| {c.replace('|', '/')} | {k} | {', '.join(names[:6])} |")
            lines.append("")
        fails = [r for r in rs if r["ours"] == "fail"]
        if fails:
            lines += ["| failing pair | torch says | suspects |", "|---|---|---|"]
            for r in fails:
                lines.append(
                    f"| {r['op']} #{r['sample']} | {r['torch']} | "
                    f"{', '.join(r.get('suspects', []))[:80]} |"
                )
            lines.append("")
        disagree = [r for r in rs if r["ours"] == "pass" and r["torch"] == "fail"]
        if disagree:
            lines.append(
                "gradcheck passed where torch failed: "
                + ", ".join(f"{r['op']} #{r['sample']}" for r in disagree)
            )
            lines.append("")
    return "\n".join(lines)
