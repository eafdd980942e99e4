"""``check_layer``: checks one NumPy layer written as a forward and a backward function.

The cs231n style: ``out, cache = layer_forward(x, w, b)`` and ``dx, dw, db =
layer_backward(dout, cache)``. The check builds the scalar J = Σ ⟨out, dout⟩ with a fixed random
cotangent ``dout`` (drawn from ``seed``), whose gradient with respect to each input is exactly
what ``backward(dout, cache)`` returns, and hands it to ``check``.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck._errors import LossOutputError, LossRaisedError, ShapeMismatchError, StructureError
from gradcheck.checks._check import check
from gradcheck.core._axes import only_size_one
from gradcheck.core._validate import shape_hint
from gradcheck.report._report import Report
from gradcheck.report._sentences import Note, NoteCode

COTANGENT_STREAM = 0x1A7E  # dout comes from its own stream of the seed, apart from the check's


def check_layer(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    *inputs: Any,
    cache: bool | None = None,
    **options: Any,
) -> Report:
    """Checks a layer's ``backward`` against finite differences of its ``forward``.

    Args:
      forward: ``forward(*inputs)`` returning ``out``, ``(out, cache)`` or
        ``(out1, ..., outK, cache)``; each out a float array (or a float).
      backward: ``backward(dout, cache)`` (or ``backward(dout)`` without a cache; with several
        outputs ``backward(dout1, ..., doutK, cache)`` or ``backward((dout1, ...), cache)``),
        returning one gradient, or a tuple with one gradient per differentiable input, in order.
      inputs: the forward's positional arguments. Float arrays are the differentiable ones;
        anything else (a ``bn_param`` dict, an int, an integer array of labels) is passed
        through unchanged (a fresh deep copy for every call, so yours is never modified).
      cache: whether the forward's last returned value is a cache; None infers it: a tuple
        whose length is the number of ``backward``'s positional parameters ends in a cache.
      options: every option of ``gradcheck.check`` (``eps``, ``scheme``, ``seed``, ``rtol``,
        ``atol``, ``coords``, ...). ``seed`` also draws the cotangents.

    Returns:
      A ``Report`` whose components are named after the forward's arguments (``x``, ``w``,
      ``b``, ``gamma``, ...).

    >>> import numpy as np, gradcheck
    >>> def affine_forward(x, w, b):
    ...     return x @ w + b, (x, w)
    >>> def affine_backward(dout, cache):
    ...     x, w = cache
    ...     return dout @ w.T, x.T @ dout, dout.sum(axis=0)
    >>> rng = np.random.default_rng(0)
    >>> x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), np.zeros(2)
    >>> gradcheck.check_layer(affine_forward, affine_backward, x, w, b).passed
    True
    >>> def bad_backward(dout, cache):
    ...     x, w = cache
    ...     return dout @ w.T, x.T @ dout, dout.mean(axis=0)   # db: mean instead of sum
    >>> gradcheck.check_layer(affine_forward, affine_backward, x, w, b).suspects
    ()
    >>> gradcheck.check_layer(affine_forward, bad_backward, x, w, b).suspects
    ('b',)
    """
    if not callable(forward) or not callable(backward):
        raise StructureError(
            "check_layer(forward, backward, *inputs): forward and backward must be functions, "
            f"got {type(forward).__name__} and {type(backward).__name__}."
        )
    names = _names(forward, len(inputs))
    slots = [i for i, a in enumerate(inputs) if _differentiable(a)]
    if not slots:
        raise StructureError(
            f"check_layer: none of the {len(inputs)} inputs is a float array, so there is "
            "nothing to differentiate. Pass the layer's inputs as float NumPy arrays, e.g. "
            "x.astype(np.float64)."
        )
    diff = [names[i] for i in slots]
    arity = _positional_arity(backward)
    seed = options.get("seed", 0)

    first = _call_forward(forward, _fresh(inputs))
    has_cache = _has_cache(first, arity) if cache is None else bool(cache)
    outs, saved = _split(first, has_cache)
    rng = np.random.default_rng([int(seed), COTANGENT_STREAM])
    douts = [_cotangent(out, k, rng) for k, out in enumerate(outs)]

    def loss(params: dict[str, np.ndarray]) -> float:
        args = _fresh(inputs)
        for name, i in zip(diff, slots, strict=True):
            args[i] = params[name]
        result_outs, _ = _split(_call_forward(forward, args), has_cache)
        if len(result_outs) != len(douts):
            raise LossOutputError(
                f"forward returned {len(douts)} outputs at the inputs and {len(result_outs)} "
                "at a perturbed point; it must return the same structure every time."
            )
        return float(sum(np.sum(np.asarray(o, dtype=np.float64) * d)
                         for o, d in zip(result_outs, douts, strict=True)))

    grads = _call_backward(backward, douts, saved, has_cache, arity)
    if not isinstance(grads, tuple | list):
        grads = (grads,)
    if len(grads) != len(slots):
        raise StructureError(
            f"backward returned {len(grads)} gradient{'s' * (len(grads) != 1)} but the "
            f"layer has {len(slots)} differentiable input{'s' * (len(slots) != 1)} "
            f"({', '.join(diff)}: the float arrays among forward's arguments). Return one "
            "gradient per float-array input, in the order of forward's arguments."
        )
    params = {name: inputs[i] for name, i in zip(diff, slots, strict=True)}
    gradients = {}
    for name, g in zip(diff, grads, strict=True):
        g = np.asarray(g) if g is not None else g
        if g is None:
            raise StructureError(
                f"backward returned None for d{name}; return its gradient (zeros if the "
                "output does not depend on it)."
            )
        if g.shape != params[name].shape and not only_size_one(g.shape, params[name].shape):
            raise ShapeMismatchError(
                f"backward's gradient d{name} has shape {g.shape} but {name} has shape "
                f"{params[name].shape}.{shape_hint(g.shape, params[name].shape)}"
            )
        gradients[name] = g
    report = check(loss, params, gradients, **options)
    passed_through = [f"{names[i]} ({type(inputs[i]).__name__})"
                      for i in range(len(inputs)) if i not in slots]
    note = Note(NoteCode.LAYER_CHECK, None, {"seed": seed, "outputs": len(outs),
                                             "diff": list(diff), "passed_through": passed_through})
    return dataclasses.replace(report, notes=(*report.notes, note))


def _differentiable(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _names(forward: Callable[..., Any], n: int) -> list[str]:
    """The forward's parameter names for ``n`` positional inputs (``input0``... if unknown)."""
    try:
        params = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    names: list[str] = []
    for i in range(n):
        if i < len(params) and params[i].kind in (
            inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
        ):
            names.append(params[i].name)
        else:
            star = next((p.name for p in params if p.kind == inspect.Parameter.VAR_POSITIONAL),
                        "input")
            names.append(f"{star}{i}")
    return names


def _positional_arity(fn: Callable[..., Any]) -> int | None:
    """How many positional arguments ``fn`` takes; None when it takes ``*args`` or is opaque."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
    ) and p.default is inspect.Parameter.empty)


def _has_cache(result: Any, arity: int | None) -> bool:
    if not isinstance(result, tuple):
        return False
    if arity is None:  # the cs231n convention: (out, cache)
        return len(result) == 2
    return arity >= 2 and (arity == len(result) or arity == 2)


def _split(result: Any, has_cache: bool) -> tuple[list[Any], Any]:
    if has_cache:
        if not isinstance(result, tuple) or len(result) < 2:
            raise LossOutputError(
                "forward must return (out, cache) when backward takes a cache; it returned "
                f"{type(result).__name__}. Pass cache=False if forward returns only out."
            )
        outs, saved = result[:-1], result[-1]
        if len(outs) == 1 and isinstance(outs[0], tuple):
            outs = outs[0]  # ((out1, out2), cache)
    else:
        outs, saved = (result if isinstance(result, tuple) else (result,)), None
    checked = []
    for k, out in enumerate(outs):
        a = np.asarray(out)
        if a.dtype.kind not in "fc":
            raise LossOutputError(
                f"forward's output {k} has dtype {a.dtype}, not a float; each output must be a "
                "float array (or pass cache=True/False if the cache was taken for an output)."
            )
        checked.append(a)
    return checked, saved


def _cotangent(out: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    if out.size == 0:
        raise LossOutputError(f"forward's output {k} is empty (shape {out.shape}).")
    return rng.standard_normal(out.shape)


def _fresh(inputs: tuple[Any, ...]) -> list[Any]:
    """Copies of the inputs for one call: arrays copied, anything else deep-copied."""
    return [a.copy() if isinstance(a, np.ndarray) else copy.deepcopy(a) for a in inputs]


def _call_forward(forward: Callable[..., Any], args: list[Any]) -> Any:
    try:
        return forward(*args)
    except Exception as error:
        raise LossRaisedError(
            f"forward raised {type(error).__name__}: {error}. Your inputs are untouched."
        ) from error


def _call_backward(backward: Callable[..., Any], douts: list[np.ndarray], saved: Any,
                   has_cache: bool, arity: int | None) -> Any:
    k = len(douts)
    douts = [d.copy() for d in douts]  # a backward may write into dout (dx = dout; dx[...] = 0)
    if k == 1:
        args: list[Any] = [douts[0]]
    elif arity is not None and arity == (k + 1 if has_cache else k):
        args = list(douts)  # backward(dout1, ..., doutK[, cache])
    else:
        args = [tuple(douts)]  # backward((dout1, ..., doutK)[, cache])
    if has_cache:
        args.append(saved)
    try:
        return backward(*args)
    except Exception as error:
        raise LossRaisedError(
            f"backward raised {type(error).__name__}: {error}. Your inputs are untouched."
        ) from error
