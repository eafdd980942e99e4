"""Formatting shared by every renderer: numbers, indices, and the layer a name belongs to."""

from __future__ import annotations

import re


def fmt(x: float | None) -> str:
    """Compact number: 3 significant digits, scientific when far from 1."""
    if x is None or x != x:  # nothing to show, or NaN
        return "-"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.4g}"
    return f"{x:.2e}"


def index_text(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(str(i) for i in index)}]" if index else name


def layer_key(name: str) -> tuple[int, ...] | None:
    """Numbers in a name (W12 -> (12,), layers.3.W -> (3,)), for ordering layers."""
    numbers = re.findall(r"\d+", name)
    return tuple(int(n) for n in numbers) if numbers else None
