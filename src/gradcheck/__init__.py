"""gradcheck: is your backprop right, and if not, where and why?

>>> import numpy as np, gradcheck
>>> w = np.array([0.5, -1.0])
>>> gradcheck.check(lambda p: float(np.sum(p["w"] ** 2)), {"w": w}, {"w": 2 * w}).passed
True
"""

from gradcheck import nn  # the reference NumPy network (imports numpy only)
from gradcheck._approx import ApproxTable, approx
from gradcheck._check import check
from gradcheck._errors import (
    DTypeError,
    GradCheckError,
    GradientMismatchError,
    LossOutputError,
    LossRaisedError,
    NonFiniteError,
    OptionError,
    ShapeMismatchError,
    StochasticLossError,
    StructureError,
)
from gradcheck._numerical import numerical_gradient
from gradcheck._progress import CheckInterrupted
from gradcheck._report import SCHEMA, Component, Finding, Report, relative_error, textbook_verdict
from gradcheck._sweep import SweepResult, sweep
from gradcheck._taylor import TaylorResult, taylor_test

__version__ = "0.1.0"

__all__ = [
    "SCHEMA",
    "ApproxTable",
    "CheckInterrupted",
    "Component",
    "DTypeError",
    "Finding",
    "GradCheckError",
    "GradientMismatchError",
    "LossOutputError",
    "LossRaisedError",
    "NonFiniteError",
    "OptionError",
    "Report",
    "ShapeMismatchError",
    "StochasticLossError",
    "StructureError",
    "SweepResult",
    "TaylorResult",
    "approx",
    "check",
    "nn",
    "numerical_gradient",
    "relative_error",
    "sweep",
    "taylor_test",
    "textbook_verdict",
]
