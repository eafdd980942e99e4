"""JAX adapter, part 2: compiled evaluation (``jax.jit`` of the plain and the vmapped J, kept
across checks of the same function); the batched loss is ``_jax_stacks``'s."""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck._errors import short
from gradcheck.frameworks import _jit
from gradcheck.frameworks._jax_problem import (
    _Problem,
    _View,
)
from gradcheck.report._sentences import Note, NoteCode

if TYPE_CHECKING:
    pass

# Rows per jax.vmap call; every request is padded to it so that jit compiles one shape only.
# On XLA's CPU backend the per-row cost grows with the chunk (64 rows: 90 µs/row, 256: 158,
# 1024: 229 on the 64-32-10 MLP, loaded machine), so the chunk stays small.
CHUNK = 64


# --- compiled evaluation: jax.jit of the plain and the vmapped J, kept across checks ---------

# Compiled functions per user function (weak keys: they go with it), so that checking the same
# function again with arguments of the same shapes compiles nothing. At most this many per
# function (the oldest go first).
MAX_COMPILED = 16
_COMPILED: weakref.WeakKeyDictionary[Any, dict[tuple, Any]] = weakref.WeakKeyDictionary()


class _Traced:
    """J as a function of the checked leaves ``values`` and of ``dynamic``: every other array
    leaf of the arguments (cast), passed as an input of the compiled function rather than
    baked into it as a constant. One compiled function then serves every check of ``fn`` with
    arguments of the same shapes and static leaves: ``key`` says what it depends on (None:
    not reusable, e.g. an unhashable static argument or a leaf with non-finite entries).

    Where ``fn`` needs a concrete value of such a leaf (Python control flow on it), tracing
    fails; ``baked()`` is then the same J with every leaf a constant, as ``jax.jit(j_of)``.
    """

    def __init__(
        self,
        problem: _Problem,
        cast: Callable,
        dtypes: Sequence[Any],
        wide: bool,
        real_cotangent: bool,
        objective: Callable,
        gradient: list[Any] | None = None,
    ) -> None:
        import jax
        import jax.numpy as jnp

        self.shapes = [problem.views[s].real.shape for s in problem.slots]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.dtypes = list(dtypes)
        where = {slot: k for k, slot in enumerate(problem.slots)}
        layout, dynamic, static = [], [], []
        for a, arg in enumerate(problem.args):
            leaves, treedef = jax.tree_util.tree_flatten(arg)
            spec = []
            for i, leaf in enumerate(leaves):
                if a in problem.argnums and (a, i) in where:
                    spec.append(("value", where[(a, i)]))
                elif _numeric_array(leaf, jax):
                    spec.append(("dynamic", len(dynamic)))
                    dynamic.append(jnp.asarray(cast(leaf)))
                else:  # Python scalars, strings and other static leaves: baked in
                    spec.append(("static", leaf))
                    static.append((type(leaf), leaf))
            layout.append((treedef, spec))
        # An object that can change under the same identity (a model instance holding its own
        # arrays, a list) could not be told apart by the key: no reuse then.
        reusable = all(type(leaf) in _IMMUTABLE for _, leaf in static)
        self.dynamic = dynamic
        decoders = [_decoder(problem.views[s]) for s in problem.slots]
        try:
            fn_ref: Callable[[], Any] = weakref.ref(problem.fn)
        except TypeError:  # not weak-referenceable: kept, and nothing is reused
            fn_ref = (lambda f: lambda: f)(problem.fn)
        self.key: tuple | None = (
            tuple(td for td, _ in layout),
            # which leaf is checked (argnums) and which is an input: f(x, y) checked w.r.t. x,
            # then y, has the same shapes, but not the same compiled function
            tuple(tuple(kind if kind == "static" else (kind, k) for kind, k in spec)
                  for _, spec in layout),
            tuple(static),
            tuple((d.shape, str(d.dtype), bool(getattr(d, "weak_type", False))) for d in dynamic),
            tuple((v.real.shape, v.complex) for v in (problem.views[s] for s in problem.slots)),
            tuple(str(np.dtype(d)) for d in dtypes),
            bool(wide), bool(real_cotangent), problem.seed, getattr(objective, "picks", None),
            CHUNK,
            bool(jax.config.jax_enable_x64),
        )
        if not reusable or any(problem.views[s].fill is not None for s in problem.slots):
            self.key = None
        self._fn = fn_ref
        # the check's compiled (J, gradient) program, once traced: its J is this check's
        self.gradient = gradient if gradient is not None else []
        self.hits: set[Any] = set()  # patterns this check took from the cache
        # What is compiled (and cached) closes over none of this check's arrays.
        self.j = _j_function(fn_ref, layout, decoders, objective)
        self.values = _values_function(self.shapes, self.sizes, self.dtypes)

    def compiled(self, pattern: Any, build: Callable[[Callable], Any]) -> _Compiled:
        """``build(j)``, from the cache when this function was compiled before (then nothing
        is compiled again)."""
        fn = self._fn()
        if self.key is None or fn is None:
            return _Compiled(build(self.j))
        try:
            per_fn = _COMPILED.setdefault(fn, {})
        except TypeError:  # unhashable function: compiled for this check only
            return _Compiled(build(self.j))
        key = (*self.key, pattern)
        if key in per_fn:
            self.hits.add(pattern)
            return per_fn[key]
        if len(per_fn) >= MAX_COMPILED:
            per_fn.pop(next(iter(per_fn)))
        per_fn[key] = _Compiled(build(self.j))
        return per_fn[key]

    def forget(self, pattern: Any = None) -> None:
        """Drop a cached function that failed (None: every one of this key: stale)."""
        fn = self._fn()
        if self.key is None or fn is None:
            return
        with contextlib.suppress(TypeError):
            per_fn = _COMPILED.get(fn, {})
            for key in [k for k in per_fn if k[:-1] == self.key]:
                if pattern is None or key[-1] == pattern:
                    del per_fn[key]
        if pattern is None:
            self.hits.clear()
        else:
            self.hits.discard(pattern)

    def fresh(
        self,
        cached: Callable[[np.ndarray], Any],
        j_of: Callable,
        theta: np.ndarray,
        at_theta: Callable[[], float] | None = None,
    ) -> bool:
        """Whether a function taken from the cache still computes this function's J: equal to
        a plain call, up to rounding, at θ and at a point beside it. A cached trace bakes in
        what ``fn`` reads besides its arguments (globals, closures); where that changed since,
        J changes with it. ``at_theta``: the plain J at θ when it is known already."""
        side = np.random.default_rng(0).uniform(-1, 1, theta.size)
        rows = np.stack([theta, theta + 1e-2 * (1 + np.abs(theta)) * side])
        try:
            got = np.asarray(cached(rows), dtype=np.float64)
            want = np.array([
                at_theta() if k == 0 and at_theta is not None else self._plain(j_of, r)
                for k, r in enumerate(rows)
            ])
        except Exception:  # noqa: BLE001 - the point beside θ left fn's domain: trace again
            return False
        eps = max([float(np.finfo(np.dtype(d)).eps) for d in self.dtypes], default=2.2e-16)
        close = np.abs(got - want) <= 1024 * eps * np.maximum(1.0, np.abs(want))
        return bool(np.all(close | (np.isnan(got) & np.isnan(want))))

    def _plain(self, j_of: Callable, row: np.ndarray) -> float:
        """J at one flat row, computed afresh: by the check's own compiled gradient program
        where it exists (nothing compiled again), else op by op."""
        values = _jit.device(_jit.split(row, self.shapes, self.dtypes))
        if self.gradient:
            return float(self.gradient[0](values)[0])
        return float(_jit.value(j_of, values))

    def baked(self) -> Callable[[Sequence[Any], Sequence[Any]], Any]:
        """J with the other array leaves baked in as constants (the ``dynamic`` input ignored)."""
        j, dynamic = self.j, self.dynamic
        return lambda values, _: j(values, dynamic)


_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes)


def _numeric_array(leaf: Any, jax: Any) -> bool:
    """A JAX array, or a NumPy array or scalar of numbers: an input of the compiled code."""
    if isinstance(leaf, jax.Array):
        return True
    return isinstance(leaf, np.ndarray | np.generic) and leaf.dtype.kind in "biufc"


def _j_function(
    fn_ref: Callable[[], Any], layout: list, decoders: list[Callable], objective: Callable
) -> Callable[[Sequence[Any], Sequence[Any]], Any]:
    """J at the checked leaves ``values``, the other array leaves being ``dynamic``."""

    def j(values: Sequence[Any], dynamic: Sequence[Any]) -> Any:
        import jax

        args = []
        for treedef, spec in layout:
            leaves = [
                decoders[k](values[k]) if kind == "value"
                else dynamic[k] if kind == "dynamic" else k
                for kind, k in spec
            ]
            args.append(jax.tree_util.tree_unflatten(treedef, leaves))
        return objective(fn_ref()(*args))

    return j


def _values_function(
    shapes: list[tuple[int, ...]], sizes: list[int], dtypes: list[Any]
) -> Callable[[Any], list[Any]]:
    """The checked leaves from one flat row (traced)."""
    cuts = np.cumsum(sizes)[:-1]

    def values(row: Any) -> list[Any]:
        import jax.numpy as jnp

        return [
            p.reshape(s).astype(d)
            for p, s, d in zip(jnp.split(row, cuts), shapes, dtypes, strict=True)
        ]

    return values


def _decoder(view: _View) -> Callable[[Any], Any]:
    """``view.decode`` without the view (which holds a copy of the leaf): what is cached keeps
    only what decoding needs."""
    if view.fill is not None:
        return view.decode
    if not view.complex:
        return lambda r: r

    def decode(r: Any) -> Any:
        from jax import lax

        return lax.complex(r[..., 0], r[..., 1])

    return decode


@dataclass
class _Compiled:
    """A jitted function, and how long its first call took (its compilation) once known."""

    fn: Any
    seconds: float | None = None
    trace: Callable[[], None] | None = None  # builds fn's program ahead of its first call

    def __call__(self, *args: Any) -> Any:
        if self.seconds is not None:
            return self.fn(*args)
        start = time.perf_counter()
        out = self.fn(*args)
        jax_block(out)
        self.seconds = time.perf_counter() - start
        return out


def jax_block(out: Any) -> None:
    import jax

    jax.block_until_ready(out)


class _PlainLoss:
    """J of one point, ``jax.jit``-compiled on its first call (cached across checks), op by op
    (and a note) where ``fn`` does not trace. On the batched path the check itself never calls
    it, so a passing check does not compile it at all; the diagnosis of a failing one does."""

    def __init__(self, traced: _Traced, j_of: Callable, note: list[Note]) -> None:
        self.traced, self.j_of, self.note = traced, j_of, note
        self.fn: Callable | None = None

    def __call__(self, values: list[Any]) -> Any:
        import jax

        if self.fn is None:
            self.fn = self._first(values, jax)
        return self.fn(values)

    def _first(self, values: list[Any], jax: Any) -> Callable:
        dynamic, traced = self.traced.dynamic, self.traced
        for _ in range(2):
            try:  # the other array leaves as inputs: reusable by the next check
                jitted = traced.compiled("plain", jax.jit)
                jitted(values, dynamic)
                if "plain" in traced.hits and not traced.fresh(
                    lambda rows, f=jitted: [
                        f(_jit.split(r, traced.shapes, traced.dtypes), dynamic) for r in rows],
                    self.j_of, np.concatenate([np.ravel(v) for v in values]).astype(np.float64),
                ):
                    traced.forget()  # stale: fn reads something that changed; trace again
                    continue
                return lambda v: jitted(v, dynamic)
            except Exception:  # noqa: BLE001 - fn needs a concrete leaf: bake the leaves in
                traced.forget("plain")
                break
        baked = jax.jit(self.traced.baked())
        try:
            baked(values, dynamic)
            return lambda v: baked(v, dynamic)
        except Exception as error:  # Python control flow on values, host callbacks, ...
            self.note.append(Note(NoteCode.JIT_FALLBACK, None, {"error": short(error)}))
            return self.j_of
