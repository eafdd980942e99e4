"""gradcheck: is your backprop right, and if not, where and why?

This module is the only public door: every public name is re-exported here. The layers below,
from the bottom: ``_errors`` (0), ``report`` (1), ``core`` (2), ``diagnose`` (3), ``checks`` (4),
``nn``, ``frameworks`` and ``monitor`` (5), ``testing`` (6), ``cli`` (7); imports only go down (see README,
"Architecture"). ``gradcheck.torch``, ``gradcheck.jax`` and ``gradcheck.tensorflow`` are the
adapters' doors.

>>> import numpy as np, gradcheck
>>> w = np.array([0.5, -1.0])
>>> gradcheck.check(lambda p: float(np.sum(p["w"] ** 2)), {"w": w}, {"w": 2 * w}).passed
True
"""

from gradcheck import nn  # the reference NumPy network (imports numpy only)
from gradcheck._errors import (
    DTypeError,
    GradCheckError,
    LossOutputError,
    LossRaisedError,
    NonFiniteError,
    OptionError,
    ShapeMismatchError,
    StochasticLossError,
    StructureError,
)
from gradcheck.checks._check import check
from gradcheck.checks._hvp import check_hvp
from gradcheck.checks._layer import check_layer
from gradcheck.checks._sweep import sweep
from gradcheck.cli._approx import ApproxTable, approx
from gradcheck.core._layout import Layout
from gradcheck.core._numerical import numerical_gradient
from gradcheck.core._progress import CheckInterrupted
from gradcheck.diagnose._taylor import TaylorResult, taylor_test
from gradcheck.monitor import Monitor, MonitorWarning
from gradcheck.report._model import (
    SCHEMA,
    Component,
    Finding,
    FindingKind,
    relative_error,
    textbook_verdict,
)
from gradcheck.report._report import GradientMismatchError, Report
from gradcheck.report._sweep import SweepResult

__version__ = "0.1.0"

__all__ = [
    "SCHEMA",
    "ApproxTable",
    "CheckInterrupted",
    "Component",
    "DTypeError",
    "Finding",
    "FindingKind",
    "GradCheckError",
    "GradientMismatchError",
    "Layout",
    "LossOutputError",
    "LossRaisedError",
    "Monitor",
    "MonitorWarning",
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
    "check_hvp",
    "check_layer",
    "nn",
    "numerical_gradient",
    "relative_error",
    "sweep",
    "taylor_test",
    "textbook_verdict",
]
