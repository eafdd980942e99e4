"""Which parameter is wrong first, and what kind of mistake it looks like."""

from __future__ import annotations

import re
from collections.abc import Sequence

from gradcheck._report import Component, Finding


def diagnose(
    components: dict[str, Component], suspects: tuple[str, ...], order: Sequence[str] | None
) -> tuple[tuple[Finding, ...], str | None]:
    """Findings for each suspect, and the suspect closest to the output (the likely origin)."""
    return (), likely_origin(list(components), suspects, order)


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
