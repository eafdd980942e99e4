"""Octave and MATLAB cost functions, checked from Python through ``oct2py``.

A course cost function such as Ng's ex4 ``[J grad] = nnCostFunction(nn_params, ...)`` takes the
unrolled ``nn_params = [Theta1(:); Theta2(:)]`` (column-major) and returns ``[J grad]``. This
module runs the ``.m`` file in GNU Octave and hands it to ``check`` with a column-major
``Layout``, so the report names ``Theta1[i, j]``. oct2py is imported inside functions only.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck._errors import LossRaisedError, OptionError, StructureError, require
from gradcheck.checks._check import check
from gradcheck.core._layout import Layout
from gradcheck.report._report import Report

INSTALL = (
    "GNU Octave is not installed (no octave-cli or octave on PATH, and OCTAVE_EXECUTABLE is not "
    "set). Install it: sudo apt-get install octave (Debian/Ubuntu), brew install octave (macOS), "
    "conda install -c conda-forge octave; or set OCTAVE_EXECUTABLE to its path."
)


def octave_executable() -> str | None:
    """The Octave that oct2py would start: ``OCTAVE_EXECUTABLE``, else octave-cli or octave."""
    return (os.environ.get("OCTAVE_EXECUTABLE") or shutil.which("octave-cli")
            or shutil.which("octave"))


def check_m(
    path: str | os.PathLike[str],
    params: Mapping[str, Any] | np.ndarray,
    *,
    args: Sequence[Any] = (),
    layout: Mapping[str, Any] | Layout | None = None,
    function: str | None = None,
    **options: Any,
) -> Report:
    """Checks an Octave/MATLAB cost function ``[J grad] = f(theta, args...)``.

    Args:
      path: the ``.m`` file (its folder goes on Octave's path for this check only).
      params: the named matrices (``{"Theta1": Theta1, "Theta2": Theta2}``), unrolled as
        ``[Theta1(:); Theta2(:)]``; or the flat ``nn_params`` with ``layout``.
      args: the function's other arguments, in order (sizes, ``X``, ``y``, ``lambda``).
      layout: for a flat ``params``: names and shapes, read column-major (``Theta(:)``) unless a
        ``Layout`` says otherwise.
      function: the function's name; default the file's name.
      options: every option of ``gradcheck.check`` (``eps``, ``seed``, ``coords``, ...).

    Returns:
      The ``Report``, with the tensors named as in ``params`` or ``layout``.

    >>> from gradcheck.frameworks.octave import check_m
    >>> report = check_m("examples/octave/nnCostFunctionBuggy.m",
    ...                  {"Theta1": T1, "Theta2": T2}, args=(3, 5, 3, X, y, 3.0))  # doctest: +SKIP
    >>> report.suspects  # doctest: +SKIP
    ('Theta1', 'Theta2')
    """
    file = Path(path)
    if file.suffix != ".m" or not file.is_file():
        raise StructureError(
            f"{str(path)!r} is not an existing .m file; pass the path of the Octave/MATLAB file "
            "that defines the cost function, e.g. 'ex4/nnCostFunction.m'."
        )
    if options.get("scheme") == "complex":
        raise OptionError(
            "scheme='complex' cannot run through Octave: its ' is the conjugate transpose, so "
            "a complex step would be silently wrong. Use the default scheme='central'."
        )
    theta, lay = _theta(params, layout)
    name = function or file.stem
    with session(file.parent) as octave:
        def cost(t: np.ndarray, *a: Any) -> tuple[Any, Any]:
            return _call(octave, name, t, a)

        return check(cost, theta, "returned", layout=lay, args=tuple(_octave_args(args)),
                     **options)


def check_mat(path: str | os.PathLike[str], data: str | os.PathLike[str] | None,
              params: str | Sequence[str] | None, args: str | Sequence[str] | None = (),
              **options: Any) -> Report:
    """``check_m`` with the matrices and the other arguments read from a ``.mat`` file, as the
    command line gives them: ``params`` and ``args`` are names (or comma-separated text).

    Args:
      path: the ``.m`` file of the cost function ``[J grad] = f(theta, args...)``.
      data: the ``.mat`` file holding the matrices and the other arguments.
      params: the names of the parameter matrices in ``data`` (``"Theta1,Theta2"``), or of the
        one flat vector when ``options`` has a ``layout``.
      args: the function's other arguments in order: names in ``data`` or numbers as text.
      options: every option of ``check_m`` and ``gradcheck.check``.

    Returns:
      The ``Report`` of ``check_m``.

    >>> check_mat("examples/octave/nnCostFunction.m", None, "Theta1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck._errors.OptionError: examples/octave/nnCostFunction.m is an Octave/MATLAB function: give its data with --data FILE.mat, ...
    """
    if data is None or not params:
        raise OptionError(
            f"{path} is an Octave/MATLAB function: give its data with --data FILE.mat, the "
            "names of its parameter matrices with --params (e.g. --params Theta1,Theta2), and "
            "its other arguments with --args (e.g. --args input_layer_size,X,y,lambda)."
        )
    named, extra = from_mat(data, _names(params), _names(args or ()))
    if options.get("layout") is not None:  # --params names the flat nn_params itself
        if len(named) != 1:
            raise OptionError(
                f"with --layout, --params names the one flat vector of {Path(data).name} "
                f"(e.g. --params nn_params), not {len(named)} matrices."
            )
        (flat,) = named.values()
        return check_m(path, flat, args=extra, **options)
    return check_m(path, named, args=extra, **options)


def _names(text: str | Sequence[str]) -> list[str]:
    words = text.split(",") if isinstance(text, str) else list(text)
    return [w.strip() for w in words if w.strip()]


@contextmanager
def session(folder: Path) -> Iterator[Any]:
    """A fresh Octave with ``folder`` on its path, closed afterwards."""
    if octave_executable() is None:
        raise ImportError(INSTALL)
    with warnings.catch_warnings():
        # oct2py starts Octave through a pty fork, after which it execs at once: JAX's warning
        # about forking a multithreaded process does not apply.
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called",
                                category=RuntimeWarning)
        oct2py = require("oct2py", "octave", "checking Octave code")
        try:
            octave = oct2py.Oct2Py(executable=octave_executable())
        except TypeError:  # an oct2py without the executable= argument: it finds Octave itself
            octave = oct2py.Oct2Py()
    try:
        octave.addpath(str(folder.resolve()))
        yield octave
    finally:
        octave.exit()


def from_mat(data: str | os.PathLike[str], params: Sequence[str],
             args: Sequence[str]) -> tuple[dict[str, np.ndarray], tuple[Any, ...]]:
    """The named matrices and the other arguments of a cost function, read from a ``.mat`` file:
    ``args`` items are variable names, or numbers written out (``"3"``, ``"0.1"``).

    Args:
      data: the ``.mat`` file.
      params: the names of the parameter matrices in it.
      args: the other arguments: names in it, or numbers as text.

    Returns:
      The matrices by name (float64), and the other arguments as a tuple, in order.

    >>> from_mat("examples/octave/ex4small.mat", ["Theta1"], ["num_labels", "1e-3"])[1]
    (3.0, 0.001)
    """
    io = require("scipy.io", "octave", "reading a .mat file")
    file = Path(data)
    if not file.is_file():
        raise StructureError(f"--data {str(data)!r}: no such .mat file (looked in {Path.cwd()}).")
    try:
        found = {k: v for k, v in io.loadmat(str(file)).items() if not k.startswith("__")}
    except Exception as error:
        raise StructureError(f"--data {str(data)!r} cannot be read as a .mat file: {error}") from None
    if not params:
        raise OptionError("name the parameter matrices in the .mat file, e.g. Theta1,Theta2.")

    def value(name: str, what: str) -> Any:
        if name in found:
            v = np.asarray(found[name])
            return float(v.squeeze()) if v.size == 1 and what == "args" else v
        if what == "args":
            try:
                return float(name)
            except ValueError:
                pass
        raise OptionError(
            f"--{what} {name!r} is not a variable of {file.name} (it holds "
            f"{', '.join(sorted(found)) or 'nothing'})" + (" nor a number." if what == "args" else ".")
        )

    named = {n: value(n, "params") for n in params}
    return named, tuple(value(a, "args") for a in args)


def _theta(params: Any, layout: Any) -> tuple[np.ndarray, Layout]:
    """The column vector Octave receives, and how to read it."""
    if isinstance(params, Mapping):
        if layout is not None:
            raise OptionError(
                "params is a dict of named matrices, whose shapes are the layout: leave "
                "layout=None (or pass the flat nn_params with layout=)."
            )
        named = {str(k): np.asarray(v, dtype=np.float64) for k, v in params.items()}
        lay = Layout({k: v.shape for k, v in named.items()}, order="F")
        return lay.flatten(named).reshape(-1, 1), lay
    if layout is None:
        raise OptionError(
            "a flat nn_params needs layout= (e.g. {'Theta1': (25, 401), 'Theta2': (10, 26)}), "
            "or pass the matrices by name: {'Theta1': Theta1, 'Theta2': Theta2}."
        )
    lay = layout if isinstance(layout, Layout) else Layout(layout, order="F")
    return np.asarray(params, dtype=np.float64).reshape(-1, 1), lay


def _octave_args(args: Sequence[Any]) -> Iterator[Any]:
    """Numbers as doubles (an int would be an int64 in Octave and turn its arithmetic integer)."""
    if isinstance(args, str | bytes) or not isinstance(args, Sequence):
        raise OptionError(f"args={args!r} must be a tuple of the function's other arguments.")
    for a in args:
        if isinstance(a, bool | int | float | np.integer | np.floating):
            yield float(a)
        elif isinstance(a, np.ndarray) and a.dtype.kind in "iub":
            yield a.astype(np.float64)
        else:
            yield a


def _call(octave: Any, name: str, theta: np.ndarray, args: tuple[Any, ...]) -> tuple[Any, Any]:
    from oct2py import Oct2PyError

    try:
        j, grad = octave.feval(name, np.asarray(theta, dtype=np.float64).reshape(-1, 1), *args, nout=2)
    except Oct2PyError as error:
        raise LossRaisedError(
            f"Octave raised in {name}: {' '.join(str(error).split())}"
        ) from error
    return float(np.squeeze(j)), np.asarray(grad, dtype=np.float64)
