"""Fewer XLA compilations per JAX check: trace where only a type is needed, and build
NumPy-side values in NumPy.

Run op by op, every JAX primitive a check touches (``sin``, ``multiply``, ``reduce_sum``...)
is compiled on its own the first time it meets a shape: 10 to 25 compilations for a small
function, each tens of milliseconds on a CPU. Here:

- ``output_type``: J's dtype from a trace (``jax.eval_shape``), nothing compiled; it falls
  back to the op-by-op call where ``j`` does not trace (Python control flow on values,
  ``float()`` of a tracer), so what runs and what it raises is what it was before;
- ``split``: the leaves of a flat row, cut and cast in NumPy (``device``: put on the device
  as they are);
- ``value``: J op by op where a cached compiled J is checked against it, through the
  gradient's own primitives (compiled by the check already).

The gradient stays op by op (``jax.grad`` of the plain J): compiled as one program it would be
compiled again on every check, since it is traced afresh each time (the backward is what is
judged, never a cached trace), and its primitives, once compiled, serve every later check.

>>> import numpy as np
>>> [a.shape for a in split(np.arange(5.0), [(2,), (3, 1)], [np.float64, np.float32])]
[(2,), (3, 1)]
"""

from __future__ import annotations

import functools
import time
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def output_type(j: Callable[[Any], Any], values: Sequence[Any]) -> Any:
    """J's output as shape and dtype (``jax.eval_shape``), or J itself computed op by op where
    ``j`` does not trace.

    >>> import jax.numpy as jnp
    >>> str(output_type(lambda v: jnp.sum(v[0]), [jnp.ones(3, dtype=jnp.float32)]).dtype)
    'float32'
    """
    import jax

    try:
        return jax.eval_shape(j, list(values))
    except Exception:  # noqa: BLE001 - does not trace: call it (it raises what it raises)
        return j(list(values))


def split(theta: np.ndarray, shapes: Sequence[tuple[int, ...]], dtypes: Sequence[Any]
          ) -> list[np.ndarray]:
    """The leaves of one flat row ``theta``: cut, reshaped and cast in NumPy (the values are
    those of the leaves, exact in their dtype, so no rounding differs from JAX's cast)."""
    sizes = [int(np.prod(s)) for s in shapes]
    cuts = np.cumsum(sizes)[:-1]
    return [
        np.asarray(p).reshape(s).astype(d)
        for p, s, d in zip(np.split(np.asarray(theta), cuts), shapes, dtypes, strict=True)
    ]


def device(arrays: Sequence[np.ndarray]) -> list[Any]:
    """NumPy arrays as JAX arrays (``jax.device_put``: a copy, no compiled conversion)."""
    import jax

    return [jax.device_put(a) for a in arrays]


def value(j: Callable[[Any], Any], values: Sequence[Any]) -> Any:
    """J op by op, through ``jax.value_and_grad`` (its value): the primitives the check's own
    gradient ran are compiled already, where a plain op-by-op call compiles its own.

    >>> import jax.numpy as jnp
    >>> float(value(lambda v: jnp.sum(v[0] ** 2), [jnp.ones(2)]))
    2.0
    """
    import jax

    return jax.value_and_grad(j)(list(values))[0]


# --- one compiled program per distinct traced program ------------------------------------------

# Compiled evaluators of traced programs, by the program's text (``str`` of its jaxpr: every
# primitive, its parameters, shapes, dtypes and inlined scalar constants; array constants are
# inputs). The oldest go first beyond MAX_PROGRAMS.
MAX_PROGRAMS = 64
_PROGRAMS: dict[str, Any] = {}

# Primitives whose Python callables only serve differentiation (their forward is the jaxpr
# they carry): evaluating the program never calls them.
_SAFE_CALLABLES = frozenset({"custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr"})


_FUNCTIONS = (types.FunctionType, types.MethodType, types.BuiltinFunctionType, functools.partial)


def program(fn: Callable[..., Any], *args: Any) -> Callable[..., Any]:
    """``fn`` traced afresh at ``args`` (``jax.make_jaxpr``: what ``fn`` reads now, custom
    rules included), run as one compiled program; the program is compiled once per distinct
    text, so a later trace that gives the same program (the same function checked again, or
    an equal one) compiles nothing. A program that calls back into Python (a host callback,
    an effect) is compiled for this trace only. Raises what tracing raises.

    >>> import jax.numpy as jnp, numpy as np
    >>> float(program(lambda v: jnp.sum(v[0] ** 2), [np.ones(2)])([np.full(2, 3.0)]))
    18.0
    """
    import jax

    closed, shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    jaxpr = closed.jaxpr
    run = _compiled(_text(jaxpr), lambda: lambda consts, *leaves: jax.core.eval_jaxpr(
        jaxpr, consts, *leaves))
    consts, tree = _plain(closed.consts), jax.tree_util.tree_structure(shape)

    def call(*a: Any) -> Any:
        return jax.tree_util.tree_unflatten(tree, run(consts, *jax.tree_util.tree_leaves(a)))

    call.seconds = lambda: run.seconds  # type: ignore[attr-defined]
    return call


def _compiled(key: str | None, build: Callable[[], Callable]) -> Any:
    """``jax.jit(build())``, kept under ``key`` (None: for this call only)."""
    import jax

    run = _PROGRAMS.pop(key, None) if key is not None else None
    if run is None:
        run = _Timed(jax.jit(build()))
    if key is not None:
        _PROGRAMS[key] = run
        while len(_PROGRAMS) > MAX_PROGRAMS:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
    return run


class _Timed:
    """A compiled program, and how long its first call took (its compilation), once known."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.seconds = fn, None

    def __call__(self, *args: Any) -> Any:
        if self.seconds is not None:
            return self.fn(*args)
        import jax

        start = time.perf_counter()
        out = jax.block_until_ready(self.fn(*args))
        self.seconds = time.perf_counter() - start
        return out


def _plain(consts: Sequence[Any]) -> list[Any]:
    """NumPy constants as plain copies: JAX's own wrapper of a NumPy constant is shared with
    later traces of the same array and would keep a buffer of this trace's dtype (x64)."""
    return [np.array(c) if isinstance(c, np.ndarray) else c for c in consts]


def _text(jaxpr: Any) -> str | None:
    """The program's text, or None where equal text need not mean the same program: effects
    (callbacks, prints), or a parameter that is a Python callable JAX would call."""
    if jaxpr.effects or not _pure(jaxpr):
        return None
    return str(jaxpr)


def _pure(jaxpr: Any, allowed: frozenset[str] = _SAFE_CALLABLES) -> bool:
    """No equation (nested ones included) holds a callable that evaluating it would call
    (``allowed``: primitives whose callables only serve differentiation)."""
    for eqn in jaxpr.eqns:
        if "callback" in eqn.primitive.name or (
            eqn.primitive.name in _SAFE_CALLABLES and eqn.primitive.name not in allowed
        ):
            return False
        for value in eqn.params.values():
            for item in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(item, "jaxpr", item)  # a ClosedJaxpr's jaxpr
                if hasattr(inner, "eqns"):
                    if not _pure(inner, allowed):
                        return False
                elif isinstance(item, _FUNCTIONS) and eqn.primitive.name not in allowed:
                    return False
    return True


def rows_and_gradient(
    j: Callable[[Any], Any],
    of_row: Callable[[Any], Any],
    theta: np.ndarray,
    chunk: int,
    shapes: Sequence[tuple[int, ...]],
) -> Callable[[Any], Any]:
    """One program for a whole check: J of ``chunk`` flat rows (``jax.vmap``), and J with its
    gradient at the first row (``jax.value_and_grad``, split into leaves of ``shapes``). A
    check compiles it once at most: the gradient is asked with θ in the rows, every stack of
    rows with its own (the gradient then is one backward beside ``chunk`` forwards).
    ``.rows(rows)``: the Js alone (the gradient computed, not split into leaves).

    J of one row is traced afresh (what ``fn`` reads now). Where its program holds no Python
    callable (no custom rule, no callback), both parts are built from that program and kept
    under its text: checking the same function again traces J alone, once. Otherwise both
    parts are traced through ``fn`` (its custom rules applied then) and kept under the text
    of the result (``program``).

    >>> import jax.numpy as jnp, numpy as np
    >>> run = rows_and_gradient(lambda v: jnp.sum(v[0] ** 2), lambda r: [r], np.ones(2), 4, [(2,)])
    >>> js, (value, grads) = run(np.full((4, 2), 3.0))
    >>> js.tolist(), float(value), grads[0].tolist()
    ([18.0, 18.0, 18.0, 18.0], 18.0, [6.0, 6.0])
    """
    import jax

    row = np.asarray(theta)
    closed = jax.make_jaxpr(lambda r: j(of_row(r)))(row)
    cuts = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]

    def leaves(grad: Any) -> list[np.ndarray]:
        return [p.reshape(s) for p, s in zip(np.split(np.asarray(grad), cuts), shapes, strict=True)]

    if closed.jaxpr.effects or not _pure(closed.jaxpr, frozenset()):
        def both(rows: Any) -> Any:
            return jax.vmap(lambda r: j(of_row(r)))(rows), jax.value_and_grad(
                lambda r: j(of_row(r)))(rows[0])

        traced = program(both, np.repeat(row[None, :], chunk, axis=0))

        def call_traced(rows: Any) -> Any:
            js, (value, grad) = traced(rows)
            return js, (value, leaves(grad))

        call_traced.seconds = traced.seconds  # type: ignore[attr-defined]
        call_traced.rows = lambda rows: traced(rows)[0]  # type: ignore[attr-defined]
        call_traced.dtype = closed.out_avals[0].dtype  # type: ignore[attr-defined]
        return call_traced
    jaxpr = closed.jaxpr

    def build() -> Callable:
        def both(consts: list[Any], rows: Any) -> Any:
            def f(r: Any) -> Any:
                return jax.core.eval_jaxpr(jaxpr, consts, r)[0]

            return jax.vmap(f)(rows), jax.value_and_grad(f)(rows[0])

        return both

    run = _compiled(f"rows and gradient, {chunk} rows, of\n{jaxpr}", build)
    consts = _plain(closed.consts)

    def call(rows: Any) -> Any:
        js, (value, grad) = run(consts, rows)
        return js, (value, leaves(grad))

    call.seconds = lambda: run.seconds  # type: ignore[attr-defined]
    call.rows = lambda rows: run(consts, rows)[0]  # type: ignore[attr-defined]  # J's alone
    call.dtype = closed.out_avals[0].dtype  # type: ignore[attr-defined]  # J's
    return call
