"""Loading a check target, ``path/to/file.py:name`` or ``module.path:name``, for the command line.

A target is a function of no arguments returning ``(loss, params, grads)``. Every way this can go
wrong becomes a ``TargetError`` whose message is one sentence the command line prints as is.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradcheck._errors import GradCheckError


class TargetError(GradCheckError):
    """A check target could not be loaded or called, or returned the wrong thing."""


def load_target(spec: str) -> Callable[[], Any]:
    """The callable named by ``spec``: ``path/to/file.py:name`` or ``package.module:name``.

    Args:
      spec: a file path or a dotted module path, a colon, and the name of a function in it.

    Returns:
      The function (not yet called).

    >>> load_target("gradcheck.cli._target:load_target") is load_target
    True
    """
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise TargetError(
            f"target {spec!r} must look like path/to/file.py:function or package.module:function."
        )
    module = _load_file(where) if _is_path(where) else _import(where)
    if not hasattr(module, name):
        defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        raise TargetError(
            f"{where} has no function {name!r}. Functions defined there: "
            f"{', '.join(defined) or 'none'}."
        )
    target = getattr(module, name)
    if not callable(target):
        raise TargetError(f"{where}:{name} is a {type(target).__name__}, not a function.")
    return target


def call_target(target: Callable[[], Any], spec: str = "the target") -> tuple[Any, Any, Any]:
    """Calls ``target()`` and checks that it returned ``(loss, params, grads)``.

    Args:
      target: a function of no arguments.
      spec: how to name it in error messages.

    Returns:
      The triple ``(loss, params, grads)``; ``loss`` is callable.

    >>> loss, params, grads = call_target(lambda: (sum, [1.0], [1.0]))
    >>> call_target(lambda: (1, 2))
    Traceback (most recent call last):
    ...
    gradcheck.cli._target.TargetError: the target returned a tuple of 2 items; it must return (loss, params, grads).
    """
    try:
        result = target()
    except Exception as error:  # the user's code: report it in one line
        raise TargetError(
            f"{spec} raised {type(error).__name__}: {error}".rstrip(": ")
        ) from error
    if not isinstance(result, tuple | list) or len(result) != 3:
        got = (
            f"a tuple of {len(result)} items"
            if isinstance(result, tuple | list)
            else f"a {type(result).__name__}"
        )
        raise TargetError(f"{spec} returned {got}; it must return (loss, params, grads).")
    loss, params, grads = result
    if not callable(loss):
        raise TargetError(
            f"{spec} returned a {type(loss).__name__} as loss; the first item of "
            "(loss, params, grads) must be a function loss(params) -> float."
        )
    return loss, params, grads


def _is_path(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def _load_file(where: str) -> Any:
    path = Path(where).expanduser()
    if not path.is_file():
        raise TargetError(f"file {where!r} does not exist (looked in {Path.cwd()}).")
    # A private module name per file, so that loading never shadows a real module.
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"gradcheck_target_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"file {where!r} cannot be loaded as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # lets pickle find the module's functions (for --workers)
    sys.path.insert(0, str(path.resolve().parent))  # sibling imports of the target file
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(name, None)
        raise TargetError(
            f"{where} has a syntax error at line {error.lineno}: {error.msg}."
        ) from error
    except Exception as error:
        sys.modules.pop(name, None)
        raise TargetError(
            f"importing {where} raised {type(error).__name__}: {error}".rstrip(": ")
        ) from error
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def _import(where: str) -> Any:
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as error:
        raise TargetError(
            f"no module named {where!r} ({error}); give a file path (path/to/file.py:function) "
            "or install the package."
        ) from error
    except SyntaxError as error:
        raise TargetError(f"{where} has a syntax error at line {error.lineno}: {error.msg}.") from error
    except Exception as error:
        raise TargetError(
            f"importing {where} raised {type(error).__name__}: {error}".rstrip(": ")
        ) from error
