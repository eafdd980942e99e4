"""The command line's flat-θ and Octave options: ``--layout``/``--order`` and ``.m`` targets.

Each failure is a ``GradCheckError`` (``OptionError``), printed as one line with exit code 2.
"""

from __future__ import annotations

from typing import Any

from gradcheck._errors import OptionError


def layout_option(text: str | None, order: str | None, target: str) -> dict[str, Any]:
    """``--layout`` and ``--order`` as ``check``'s ``layout=`` (column-major for a .m target).

    >>> layout_option("W=2x3,b=2", None, "net.py:target")["layout"].order
    'C'
    >>> layout_option(None, None, "net.py:target")
    {}
    """
    from gradcheck.core._layout import parse_layout

    if order not in (None, "C", "F"):
        raise OptionError(
            f"--order {order!r} must be C (row-major, NumPy) or F (column-major, Octave)."
        )
    if text is None:
        if order is not None:
            raise OptionError("--order says how to read --layout: give --layout NAME=SHAPE,... too.")
        return {}
    return {"layout": parse_layout(text, order or ("F" if target.endswith(".m") else "C"))}


def run_octave(target: str, options: dict[str, Any], data: str | None, params: str | None,
               args: str | None) -> Any:
    """``gradcheck check cost.m --data d.mat --params Theta1,Theta2 --args a,X,y,1``."""
    from gradcheck.frameworks.octave import check_mat

    if options.pop("executor", None) not in (None, 1):
        raise OptionError("--workers: an Octave target runs in one Octave session.")
    return check_mat(target, data, params, args, **options)
