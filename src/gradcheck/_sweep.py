"""Relative error against ε for several schemes: the picture behind ε ≈ 1e-7 and two-sided steps.

For a scheme of order p the error of a finite difference is about C·ε^p (truncation, falling
with ε) plus u·|J|/ε (rounding of the loss values, rising as ε shrinks), so on a log-log plot each
scheme draws a V whose bottom is the best step: near u^(1/(p+1)), i.e. 1e-8 for forward, 6e-6 for
central and 1e-3 for Richardson in float64.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck._errors import OptionError
from gradcheck._report import relative_error
from gradcheck._tree import Params

DEFAULT_SCHEMES = ("central", "forward", "richardson")
FLOOR = 1e-17  # plotted in place of an exact zero, which a log axis cannot show
FLOOR_BUG = 1e-4  # the textbook's "worry": no step reaching below it means the gradient is wrong
_STYLE = {"central": ("#1f77b4", "o"), "forward": ("#d62728", "s"), "richardson": ("#2ca02c", "^")}


@dataclass(frozen=True)
class SweepResult:
    """Relative error ‖n − g‖/(‖n‖ + ‖g‖) of each scheme at each step in ``eps``."""

    eps: np.ndarray
    errors: dict[str, np.ndarray]

    def best(self) -> dict[str, tuple[float, float]]:
        """Scheme -> (ε with the smallest relative error, that error)."""
        out = {}
        for name, err in self.errors.items():
            i = int(np.nanargmin(err)) if np.isfinite(err).any() else 0
            out[name] = (float(self.eps[i]), float(err[i]))
        return out


    def floor(self) -> float | None:
        """The smallest error over every scheme and step when it stays above 1e-4 (a wrong
        gradient, not a step problem: no ε gets below it); None otherwise."""
        lowest = min((float(np.nanmin(e)) for e in self.errors.values() if np.isfinite(e).any()),
                     default=np.nan)
        return lowest if lowest > FLOOR_BUG else None


def default_grid() -> np.ndarray:
    """Steps from 1e-12 to 1e-1, four per decade."""
    return np.logspace(-12, -1, 45)


def sweep(
    loss: Callable[[Params], Any],
    params: Params,
    grads: Params | Callable[[Params], Params],
    *,
    eps: Sequence[float] | np.ndarray | None = None,
    schemes: Sequence[str] = DEFAULT_SCHEMES,
    seed: int = 0,
) -> SweepResult:
    """Relative error of the finite-difference gradient against ``grads`` for each step and scheme.

    Args:
      loss: ``loss(params) -> J``.
      params: the parameters (never modified).
      grads: the analytic gradient, or ``grads(params)``; it is the reference the error is
        measured against, so a wrong gradient shows as a floor no step gets below.
      eps: the steps (positive); default ``default_grid()``.
      schemes: finite-difference schemes to compare (names as in ``check``).
      seed: gradcheck's own random seed.

    Returns:
      A ``SweepResult``; ``result.best()`` gives the best step per scheme.

    >>> w = np.array([1.0])
    >>> r = sweep(lambda p: float(p[0] ** 3), w, 3 * w**2, eps=[1e-2, 1e-5], schemes=["forward"])
    >>> [f"{e:.1e}" for e in r.errors["forward"]]  # (3.0301 - 3) / (3.0301 + 3) at 1e-2
    ['5.0e-06', '5.0e-03']
    """
    from gradcheck._check import _inputs
    from gradcheck._numerical import numerical_gradient
    from gradcheck._tree import flatten

    grid = _grid(eps)
    tree, analytic = _inputs(params, grads)
    g = np.concatenate([np.ravel(a).astype(np.float64) for a in analytic])
    errors: dict[str, np.ndarray] = {}
    for scheme in schemes:
        row = []
        for h in grid:
            numeric = flatten(numerical_gradient(loss, params, eps=float(h), scheme=scheme, seed=seed))
            n = np.concatenate([np.ravel(a) for a in numeric.leaves])
            row.append(relative_error(n, g) if np.isfinite(n).all() else math.nan)
        errors[scheme] = np.array(row)
    del tree
    return SweepResult(grid, errors)


def figure(result: SweepResult, title: str = "relative error vs step") -> Any:
    """A matplotlib Figure (Agg canvas, no pyplot state) of the sweep on log-log axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    floor = result.floor()
    for name, err in result.errors.items():
        color, marker = _STYLE.get(name, ("#555555", "x"))
        ax.loglog(result.eps, np.maximum(err, FLOOR), marker=marker, ms=3.5, lw=1.4,
                  color=color, label=name)
        if floor is not None:
            continue
        h, e = result.best()[name]
        ax.scatter([h], [max(e, FLOOR)], s=90, facecolors="none", edgecolors=color, lw=1.8)
        ax.annotate(f"best ε = {h:.1e}", (h, max(e, FLOOR)), xytext=(6, -12),
                    textcoords="offset points", fontsize=8, color=color)
    ax.set_ylim(bottom=min(ax.get_ylim()[0], 1e-14))
    if floor is not None:
        ax.axhline(floor, color="#a1261b", ls="--", lw=1)
        ax.text(result.eps[0], floor, f" floor {floor:.1e}: the analytic gradient is wrong, "
                "no step fixes that", fontsize=8, color="#a1261b", va="top")
    ax.axvline(1e-7, color="#999999", ls=":", lw=1)
    ax.text(1e-7, ax.get_ylim()[0], " ε = 1e-7 (textbook)", fontsize=8, color="#777777",
            va="bottom")
    ax.set_xlabel("step ε")
    ax.set_ylabel("‖n − g‖ / (‖n‖ + ‖g‖)")
    ax.set_title(f"{title}\nleft: rounding error ∝ 1/ε rises · right: truncation ∝ ε^p falls",
                 fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right" if floor is not None else "upper center", fontsize=9)
    fig.tight_layout()
    return fig


def save(result: SweepResult, prefix: str | Path, title: str = "relative error vs step") -> list[Path]:
    """Writes ``PREFIX.png`` and ``PREFIX.svg``; returns the two paths.

    Args:
      result: a ``SweepResult``.
      prefix: output path without extension (folders are not created).
      title: the plot title.

    Returns:
      The PNG and SVG paths written.
    """
    fig = figure(result, title)
    prefix = Path(prefix)
    if not prefix.parent.is_dir():
        raise OptionError(f"--out {str(prefix)!r}: folder {str(prefix.parent)!r} does not exist.")
    paths = [prefix.with_name(prefix.name + ".png"), prefix.with_name(prefix.name + ".svg")]
    for path in paths:
        fig.savefig(path, format=path.suffix[1:])
    return paths


def svg_text(result: SweepResult, title: str = "relative error vs step") -> str:
    """The plot as SVG markup, for inlining in the HTML report."""
    buffer = io.StringIO()
    figure(result, title).savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _grid(eps: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if eps is None:
        return default_grid()
    grid = np.asarray(eps, dtype=np.float64).ravel()
    if grid.size == 0 or not (np.isfinite(grid).all() and (grid > 0).all()):
        raise OptionError(f"eps={list(grid)!r} must be a non-empty list of positive, finite steps.")
    return np.sort(grid)
