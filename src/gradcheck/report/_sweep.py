"""``SweepResult``: relative error against the step for several schemes, and its plot.

Computed by ``gradcheck.sweep``; drawn here with matplotlib (imported only when a plot is made).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck._errors import OptionError

FLOOR = 1e-17  # plotted in place of an exact zero, which a log axis cannot show
FLOOR_BUG = 1e-4  # the textbook's "worry": no step reaching below it means the gradient is wrong
_STYLE = {"central": ("#1f77b4", "o"), "forward": ("#d62728", "s"), "richardson": ("#2ca02c", "^")}


@dataclass(frozen=True)
class SweepResult:
    """Relative error ‖n − g‖/(‖n‖ + ‖g‖) of each scheme at each step in ``eps``.

    Returned by ``gradcheck.sweep``; ``best()`` gives each scheme's best step.

    Attributes:
      eps: the steps, increasing.
      errors: scheme name -> the relative error at each step (NaN where it could not be taken).

    >>> import numpy as np
    >>> r = SweepResult(np.array([1e-8, 1e-5, 1e-2]), {"central": np.array([1e-7, 1e-10, 1e-5])})
    >>> r.best()
    {'central': (1e-05, 1e-10)}
    """

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


def figure(result: SweepResult, title: str = "relative error vs step") -> Any:
    """A matplotlib Figure (Agg canvas, no pyplot state) of the sweep on log-log axes."""
    from gradcheck._errors import require

    FigureCanvasAgg = require("matplotlib.backends.backend_agg", "plot", "a sweep plot").FigureCanvasAgg
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
