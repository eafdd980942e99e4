"""One family of exceptions: every error gradcheck raises is a ``GradCheckError`` (and ``short``,
an exception in one line for a note).

Layer 0: imports nothing of gradcheck, and every layer may import it. (``GradientMismatchError``
carries a ``Report``, so it lives with the report, in ``gradcheck.report._report``.)
"""

from __future__ import annotations

from typing import Any


class GradCheckError(ValueError):
    """Base class of every error raised by gradcheck (a ``ValueError``).

    Every message names the parameter, the index and the fix; catch this class to catch them
    all (``except ValueError`` does too).

    >>> import numpy as np, gradcheck
    >>> try:
    ...     gradcheck.check(lambda p: float(p.sum()), np.ones(2), np.ones(3))
    ... except gradcheck.GradCheckError as error:
    ...     print(type(error).__name__)
    ShapeMismatchError
    """


class OptionError(GradCheckError):
    """An option of ``check`` (eps, scheme, coords, ...) has an invalid value; the message lists
    the valid ones.

    >>> import numpy as np, gradcheck
    >>> gradcheck.check(lambda p: float(p.sum()), np.ones(2), np.ones(2), scheme="upwind")
    Traceback (most recent call last):
    ...
    gradcheck._errors.OptionError: scheme='upwind' is not a known scheme. ...
    """


class StructureError(GradCheckError):
    """``params`` and ``grads`` do not have the same structure (keys, lengths, leaves).

    >>> import numpy as np, gradcheck
    >>> gradcheck.check(lambda p: float(p["w"].sum()), {"w": np.ones(2)}, {"v": np.ones(2)})
    Traceback (most recent call last):
    ...
    gradcheck._errors.StructureError: ...
    """


class ShapeMismatchError(GradCheckError):
    """A gradient does not have the shape of its parameter; the message says whether it looks
    transposed.

    >>> import numpy as np, gradcheck
    >>> W = np.ones((2, 3))
    >>> gradcheck.check(lambda p: float(p["W"].sum()), {"W": W}, {"W": W.T})
    Traceback (most recent call last):
    ...
    gradcheck._errors.ShapeMismatchError: grads['W'] has shape (3, 2) but params['W'] has shape (2, 3). ...
    """


class DTypeError(GradCheckError):
    """A parameter or gradient is not a floating-point array (integers cannot be perturbed).

    >>> import numpy as np, gradcheck
    >>> gradcheck.check(lambda p: float(p.sum()), np.arange(3), np.ones(3))
    Traceback (most recent call last):
    ...
    gradcheck._errors.DTypeError: ...
    """


class NonFiniteError(GradCheckError):
    """NaN or Inf in a gradient or the loss (or a loss no step keeps finite); the message names
    the first such entry.

    >>> import numpy as np, gradcheck
    >>> gradcheck.check(lambda p: float(p.sum()), np.ones(2), np.array([1.0, np.nan]))
    Traceback (most recent call last):
    ...
    gradcheck._errors.NonFiniteError: ...
    """


class LossOutputError(GradCheckError):
    """The loss did not return a scalar (float, 0-d array or size-1 array).

    >>> import numpy as np, gradcheck
    >>> gradcheck.check(lambda p: p * 2, np.ones(2), np.ones(2))
    Traceback (most recent call last):
    ...
    gradcheck._errors.LossOutputError: ...
    """


class LossRaisedError(GradCheckError):
    """The user's loss (or grads) function raised; the original exception is chained.

    >>> import numpy as np, gradcheck
    >>> try:
    ...     gradcheck.check(lambda p: 1 / 0, np.ones(2), np.ones(2))
    ... except gradcheck.LossRaisedError as error:
    ...     print(type(error.__cause__).__name__)
    ZeroDivisionError
    """


class StochasticLossError(GradCheckError):
    """The loss returns different values for the same parameters (dropout left on?).

    >>> import numpy as np, gradcheck
    >>> rng = np.random.default_rng(0)
    >>> gradcheck.check(lambda p: float(p.sum() * rng.random()), np.ones(2), np.ones(2))
    Traceback (most recent call last):
    ...
    gradcheck._errors.StochasticLossError: ...
    """


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


def short(error: BaseException, limit: int = 160) -> str:
    """``Type: first sentence`` of an exception, for a one-line note."""
    text = str(error).strip().split("\n")[0]
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}"
