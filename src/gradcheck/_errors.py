"""One family of exceptions: every error gradcheck raises is a ``GradCheckError``.

Layer 0: imports nothing of gradcheck, and every layer may import it. (``GradientMismatchError``
carries a ``Report``, so it lives with the report, in ``gradcheck.report._report``.)
"""

from __future__ import annotations


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
