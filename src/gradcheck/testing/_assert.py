"""``assert_gradients`` for test suites: NumPy losses, torch modules and functions, JAX functions.

A failure raises ``GradientAssertionError`` (an ``AssertionError``, so pytest reports it as a
failed assertion) whose message is the report table: parameter, worst index, likely cause.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from gradcheck._errors import OptionError

if TYPE_CHECKING:
    from gradcheck.report._report import Report

Framework = Literal["auto", "numpy", "torch", "jax"]


class GradientAssertionError(AssertionError):
    """A gradient check failed inside a test; ``.report`` holds the full ``Report``.

    An ``AssertionError``, so pytest shows it as a test failure; its message is the report's
    table (the pytest plugin shortens the traceback to the test's line).

    Args:
      report: the failing report.

    >>> import numpy as np
    >>> from gradcheck.testing import GradientAssertionError, assert_gradients
    >>> try:
    ...     assert_gradients(lambda p: float(np.sum(p**2)), np.ones(3), np.ones(3))
    ... except GradientAssertionError as error:
    ...     print(error.report.passed, "FAILED" in str(error))
    False True
    """

    def __init__(self, report: Report) -> None:
        super().__init__(str(report))
        self.report = report


GradientAssertionError.__module__ = "gradcheck.testing"  # its public home, shown in tracebacks


def _is_torch_module(x: Any) -> bool:
    torch = sys.modules.get("torch")  # never imports torch: a module exists only if torch does
    return torch is not None and isinstance(x, torch.nn.Module)


def _has_torch_tensor(args: tuple[Any, ...]) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and any(isinstance(a, torch.Tensor) for a in args)


def _has_jax_array(args: tuple[Any, ...]) -> bool:
    jax = sys.modules.get("jax")
    return jax is not None and any(
        isinstance(a, jax.Array) for a in jax.tree_util.tree_leaves(args)
    )


def _numpy(target: Callable, *args: Any, **options: Any) -> Report:
    from gradcheck.checks._check import check

    if len(args) != 2:
        raise OptionError(
            "assert_gradients(loss, params, grads) takes the loss, the params and the grads "
            f"for a NumPy check; it got {len(args)} arguments after the loss. For torch or JAX, "
            "pass framework='torch' or 'jax' (or tensors / jax arrays as inputs)."
        )
    return check(target, *args, **options)


def _torch(target: Any, *args: Any, **options: Any) -> Report:
    from gradcheck.frameworks import torch as gt

    if _is_torch_module(target):
        return gt.check_module(target, *args, **options)
    return gt.check_function(target, *args, **options)


def _jax(target: Callable, *args: Any, **options: Any) -> Report:
    from gradcheck.frameworks import jax as gj

    return gj.check(target, *args, **options)


# Which checker a call goes to, first matching rule wins: (framework, applies?, checker).
_RULES: tuple[tuple[str, Callable[[Any, tuple], bool], Callable[..., Report]], ...] = (
    ("torch", lambda target, args: _is_torch_module(target) or _has_torch_tensor(args), _torch),
    ("jax", lambda target, args: _has_jax_array(args), _jax),
    ("numpy", lambda target, args: True, _numpy),
)


def assert_gradients(
    target: Any, *args: Any, framework: Framework = "auto", **options: Any
) -> Report:
    """Asserts that backprop gradients agree with finite differences; returns the report if so.

    Args:
      target: a NumPy ``loss`` (then ``args`` are ``params, grads``), a ``torch.nn.Module`` or
        torch function (``args`` are its inputs), or a JAX function (``args`` are its arguments).
      args: as above.
      framework: "auto" picks torch for modules and tensor inputs, JAX for jax.Array inputs,
        NumPy otherwise; or name one of "numpy", "torch", "jax".
      options: passed on to ``gradcheck.check``, ``gradcheck.torch.check_module`` /
        ``check_function`` or ``gradcheck.jax.check``.

    Returns:
      The passing ``Report``; on failure raises ``GradientAssertionError`` with the report table.

    >>> import numpy as np
    >>> w = np.array([1.0, 2.0])
    >>> assert_gradients(lambda p: (p["w"] ** 2).sum(), {"w": w}, {"w": 2 * w}).passed
    True
    >>> assert_gradients(lambda p: (p["w"] ** 2).sum(), {"w": w}, {"w": w})
    Traceback (most recent call last):
    ...
    gradcheck.testing.GradientAssertionError: FAILED: 1 of 1 parameters has a wrong gradient (w)...
    """
    valid = [name for name, _, _ in _RULES]
    if framework != "auto" and framework not in valid:
        raise OptionError(
            f"assert_gradients(framework={framework!r}) is not valid. Valid values: 'auto', "
            + ", ".join(repr(v) for v in valid)
            + "."
        )
    checker = next(
        run
        for name, applies, run in _RULES
        if name == framework or (framework == "auto" and applies(target, args))
    )
    report = checker(target, *args, **options)
    if not report.passed:
        raise GradientAssertionError(report)
    return report
