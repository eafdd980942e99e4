"""One family of exceptions: every error gradcheck raises is a ``GradCheckError``.

Layer 0: imports nothing of gradcheck, and every layer may import it. (``GradientMismatchError``
carries a ``Report``, so it lives with the report, in ``gradcheck.report._report``.)
"""

from __future__ import annotations

from typing import Any


class GradCheckError(ValueError):
    """Base class of every error raised by gradcheck (a ``ValueError``)."""


class OptionError(GradCheckError):
    """An option of ``check`` (eps, scheme, coords, ...) has an invalid value."""


class StructureError(GradCheckError):
    """``params`` and ``grads`` do not have the same structure (keys, lengths, leaves)."""


class ShapeMismatchError(GradCheckError):
    """A gradient does not have the shape of its parameter."""


class DTypeError(GradCheckError):
    """A parameter or gradient is not a floating-point array."""


class NonFiniteError(GradCheckError):
    """NaN or Inf in a parameter, a gradient or the loss."""


class LossOutputError(GradCheckError):
    """The loss did not return a scalar (float, 0-d array or size-1 array)."""


class LossRaisedError(GradCheckError):
    """The user's loss (or grads) function raised; the original exception is chained."""


class StochasticLossError(GradCheckError):
    """The loss returns different values for the same parameters (dropout left on?)."""


def require(module: str, extra: str, needed_for: str) -> Any:
    """Imports an optional dependency, or raises an ImportError naming the extra to install.

    >>> require("math", "plot", "this example").pi > 3
    True
    >>> require("no_such_module_xyz", "plot", "plots")
    Traceback (most recent call last):
    ...
    ImportError: plots needs no_such_module_xyz, which is not installed: pip install "gradcheck[plot]"
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        if error.name is not None and error.name.split(".")[0] != top:
            raise  # the dependency exists but is broken inside: show its own error
        raise _not_installed(top, extra, needed_for) from None


def ensure_available(module: str, extra: str, needed_for: str) -> None:
    """Like ``require`` without importing: only checks that ``module`` can be found."""
    import importlib.util
    import sys

    try:
        found = sys.modules.get(module) is not None or importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise _not_installed(module, extra, needed_for)


def _not_installed(module: str, extra: str, needed_for: str) -> ImportError:
    return ImportError(
        f"{needed_for} needs {module}, which is not installed: pip install \"gradcheck[{extra}]\"",
        name=module,
    )
