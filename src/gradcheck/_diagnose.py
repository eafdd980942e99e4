"""Which parameter is wrong first, and what kind of mistake it looks like."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from gradcheck._report import Component, Finding, Report
from gradcheck._signatures import (
    MIN_FIT,
    classify,
    classify_as,
    evidence,
    swapped,
    swapped_finding,
)

# Kinds that one mistake gives to several tensors at once (a missing 1/m, a sign, L2 on biases).
SHARED = ("sign", "scale", "regularization", "zero")


def diagnose(
    components: dict[str, Component],
    suspects: tuple[str, ...],
    order: Sequence[str] | None,
    *,
    batch_size: int | None = None,
) -> tuple[tuple[Finding, ...], str | None]:
    """Findings for each suspect, and the suspect closest to the output (the likely origin).

    Args:
      components: the per-parameter results of a check.
      suspects: names of the parameters whose gradients are wrong.
      order: parameter names from input to output, if the user gave them.
      batch_size: m, so that a factor of m or 1/m can be named ("a missing 1/m").

    Returns:
      One ``Finding`` per suspect (in suspect order) and the likely origin.

    >>> import numpy as np, gradcheck
    >>> w = np.array([1.0, 2.0, 3.0])
    >>> r = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": w}, {"w": -2 * w})
    >>> [(f.param, f.kind) for f in r.findings]
    [('w', 'sign')]
    """
    found = {name: evidence(components[name], batch_size) for name in suspects}
    findings: dict[str, Finding] = {}
    for i, a in enumerate(suspects):
        for b in suspects[i + 1 :]:
            if a not in findings and b not in findings and swapped(found[a], found[b]):
                findings[a], findings[b] = swapped_finding(a, b), swapped_finding(b, a)
    small = [n for n in suspects if n not in findings and found[n].n.size < MIN_FIT]
    for name in suspects:
        if name not in findings and name not in small:
            findings[name] = classify(found[name])
    peers = Counter(f.kind for f in findings.values() if f.kind in SHARED)
    for name in small:
        fits = (classify_as(found[name], kind) for kind, _ in peers.most_common())
        findings[name] = next((f for f in fits if f is not None), None) or classify(found[name])
    return tuple(findings[n] for n in suspects), likely_origin(list(components), suspects, order)



def rediagnose(report: Report, *, batch_size: int | None) -> Report:
    """The same report with its findings recomputed (e.g. knowing the batch size)."""
    findings, _ = diagnose(report.components, report.suspects, None, batch_size=batch_size)
    return dataclasses.replace(report, findings=findings)


def layer_key(name: str) -> tuple[int, ...] | None:
    """Numbers in a name (W12 -> (12,), layers.3.W -> (3,)), for ordering layers."""
    numbers = re.findall(r"\d+", name)
    return tuple(int(n) for n in numbers) if numbers else None


def likely_origin(
    names: list[str], suspects: tuple[str, ...], order: Sequence[str] | None
) -> str | None:
    """Backprop runs from the output back, so the suspect nearest the output is where it starts."""
    if not suspects:
        return None
    if order is not None:
        ranked = [n for n in order if n in suspects]
        return ranked[-1] if ranked else suspects[-1]
    keys = [layer_key(n) for n in names]
    if all(k is not None for k in keys):
        position = {n: (k, i) for i, (n, k) in enumerate(zip(names, keys, strict=True))}
        return max(suspects, key=lambda n: position[n])
    return max(suspects, key=names.index)


def check_batch_size(batch_size: object) -> None:
    """Validate ``check``'s ``batch_size=`` at the boundary."""
    from gradcheck._errors import OptionError

    ok = isinstance(batch_size, int | np.integer) and not isinstance(batch_size, bool)
    if batch_size is not None and not (ok and int(batch_size) >= 1):  # type: ignore[call-overload]
        raise OptionError(
            f"batch_size={batch_size!r} must be a positive int (the number of examples the loss "
            "averages over), or None."
        )


def finish(
    report: Report, loss: Any, params: Any, grads: Any, *, seed: int, batch_size: int | None
) -> Report:
    """Findings that know the batch size, and the Taylor test's note on borderline parameters."""
    from gradcheck._taylor import second_opinion

    if batch_size is not None and report.suspects:
        report = rediagnose(report, batch_size=int(batch_size))
    return second_opinion(report, loss, params, grads, seed)
