"""Checking JAX functions (``jit``, ``custom_vjp``, ``custom_jvp``, pytrees) with the NumPy core.

Analytic gradients come from ``jax.grad`` (which runs the user's custom rules); numeric ones
from finite differences of the same function, both in float64 under a scoped ``jax_enable_x64``
when the function runs in float64, else in its own dtype with the core's noise-aware tolerance.
jax is imported inside the functions: ``import gradcheck`` stays light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gradcheck._errors import GradCheckError, OptionError
from gradcheck.frameworks import _shared as _adapters

if TYPE_CHECKING:
    from gradcheck.report._report import Report

# Rows per jax.vmap call; every request is padded to it so that jit compiles one shape only.
# On XLA's CPU backend the per-row cost grows with the chunk (64 rows: 90 µs/row, 256: 158,
# 1024: 229 on the 64-32-10 MLP, loaded machine), so the chunk stays small.
CHUNK = 64


def check(
    fn: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    precision: Literal["auto", "float64", "native"] = "auto",
    vectorize: Literal["auto", "vmap", "loop"] = "auto",
    **options: Any,
) -> Report:
    """Checks ``jax.grad`` of ``fn`` (custom rules included) against finite differences.

    Args:
      fn: ``fn(*args)``; a scalar output is J itself, any other output is reduced to
        J = ⟨output, R⟩ with a fixed random R drawn from ``seed``.
      args: the arguments; those in ``argnums`` are pytrees (dicts, lists, tuples, NamedTuples,
        registered modules) whose floating leaves are checked, named by key path
        (``W1``, ``layers.0.W``; ``arg1.W`` when several argnums are given).
      argnums: which arguments to check (an int or a tuple of ints).
      precision: "auto" runs in float64 (scoped ``jax_enable_x64``) when the function allows it,
        else in its own dtype; "float64" insists; "native" keeps the leaves' dtype.
      vectorize: "auto" batches perturbed losses with ``jax.vmap`` where possible, "loop" never.
      options: keywords of ``gradcheck.check`` (``eps``, ``seed``, ``rtol``, ``coords``, ...).

    Returns:
      The ``Report`` of ``gradcheck.check``, with notes on precision and evaluation.

    >>> import jax.numpy as jnp, numpy as np, gradcheck.jax
    >>> params = {"W": np.ones((2, 3)), "b": np.zeros(3)}
    >>> f = lambda p, x: jnp.sum(jnp.tanh(x @ p["W"] + p["b"]))
    >>> gradcheck.jax.check(f, params, np.ones((4, 2))).passed
    True
    """
    options = _adapters.check_options("gradcheck.jax.check", options)
    precision = _adapters.choose(
        "gradcheck.jax.check", "precision", precision, _adapters.PRECISIONS
    )
    vectorize = _adapters.choose("gradcheck.jax.check", "vectorize", vectorize, _adapters.VECTORIZE)
    problem = _Problem.build(fn, args, argnums, options.get("seed", 0))
    wide, why = _wants_x64(problem, precision)
    with _x64(wide):
        return _check(problem, wide, why, options, vectorize)


@dataclass
class _Problem:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    argnums: tuple[int, ...]
    names: list[str]
    slots: list[tuple[int, int]]  # (argnum, leaf index) of each checked leaf
    leaves: dict[int, list[Any]]
    treedefs: dict[int, Any]
    seed: int

    @classmethod
    def build(cls, fn: Callable, args: tuple, argnums: Any, seed: int) -> _Problem:
        import jax

        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        if not nums or any(not isinstance(a, int) or not 0 <= a < len(args) for a in nums):
            raise OptionError(
                f"gradcheck.jax.check(argnums={argnums!r}) must name positions of the "
                f"{len(args)} arguments given (an int or a tuple of ints)."
            )
        names, slots, leaves, treedefs = [], [], {}, {}
        for a in nums:
            pairs, treedefs[a] = jax.tree_util.tree_flatten_with_path(args[a])
            leaves[a] = [leaf for _, leaf in pairs]
            for i, (path, leaf) in enumerate(pairs):
                if np.issubdtype(np.asarray(leaf).dtype, np.floating):
                    key = jax.tree_util.keystr(path, simple=True, separator=".")
                    prefix = f"arg{a}" if len(nums) > 1 or not key else ""
                    names.append(".".join(p for p in (prefix, key) if p))
                    slots.append((a, i))
        if not names:
            raise OptionError(
                f"gradcheck.jax.check(argnums={argnums!r}): those arguments hold no "
                "floating-point array, so there is nothing to check."
            )
        return cls(fn, tuple(args), nums, names, slots, leaves, treedefs, seed)

    def call(self, values: Sequence[Any], cast: Callable[[Any], Any]) -> Any:
        """``fn`` with the checked leaves replaced by ``values`` and the rest cast."""
        import jax

        args = [jax.tree_util.tree_map(cast, a) for a in self.args]
        fresh = {a: [cast(x) for x in self.leaves[a]] for a in self.argnums}
        for (a, i), v in zip(self.slots, values, strict=True):
            fresh[a][i] = v
        for a in self.argnums:
            args[a] = jax.tree_util.tree_unflatten(self.treedefs[a], fresh[a])
        return self.fn(*args)

    def originals(self) -> list[np.ndarray]:
        return [np.asarray(self.leaves[a][i]) for a, i in self.slots]


@contextlib.contextmanager
def _x64(enabled: bool) -> Iterator[None]:
    """``jax_enable_x64`` for the duration of the check only, restored after."""
    import jax

    if not enabled:
        yield
        return
    scope = getattr(jax, "enable_x64", None)
    if scope is None:  # older JAX
        from jax.experimental import enable_x64 as scope
    with scope(True):
        yield


def _cast64(x: Any) -> Any:
    import jax.numpy as jnp

    if hasattr(x, "dtype") and np.issubdtype(np.dtype(x.dtype), np.floating):
        return jnp.asarray(x, dtype=jnp.float64)
    return x


def _objective(problem: _Problem) -> Callable[[Any], Any]:
    """J from the output: itself when scalar, else ⟨output, R⟩ with R from the seed."""
    import jax
    import jax.numpy as jnp

    cotangents: dict[int, list[np.ndarray]] = {}

    def objective(out: Any) -> Any:
        leaves = [
            x for x in jax.tree_util.tree_leaves(out) if jnp.issubdtype(x.dtype, jnp.floating)
        ]
        if len(leaves) == 1 and leaves[0].size == 1:
            return leaves[0].reshape(())
        if not leaves:
            raise GradCheckError(
                "gradcheck.jax.check: fn returned no floating-point array; return J or the "
                "array your custom rule differentiates."
            )
        key = len(leaves)
        if key not in cotangents:
            rng = np.random.default_rng(problem.seed)
            cotangents[key] = [rng.standard_normal(x.shape) for x in leaves]
        return sum(
            jnp.sum(x * jnp.asarray(r, dtype=x.dtype))
            for x, r in zip(leaves, cotangents[key], strict=True)
        )

    return objective


def _wants_x64(problem: _Problem, precision: str) -> tuple[bool, str]:
    """Whether to run in float64, and if not, why (for the note)."""
    if precision == "native":
        return False, "precision='native' was asked for"
    objective = _objective(problem)
    try:
        with _x64(True):
            values = [_cast64(x) for x in problem.originals()]
            j = objective(problem.call(values, _cast64))
            ok = np.dtype(j.dtype) == np.float64
        why = "its output is not float64"
    except Exception as error:  # a float32-only kernel: check it in its own dtype
        ok, why = False, f"it raised in float64 ({_adapters.short(error)})"
    if not ok and precision == "float64":
        raise GradCheckError(
            f"gradcheck.jax.check(precision='float64'): fn cannot run in float64 ({why}). "
            "Use precision='auto' to check it in its own dtype."
        )
    return ok, why


def _check(
    problem: _Problem, wide: bool, why: str, options: dict[str, Any], vectorize: str
) -> Report:
    import jax
    import jax.numpy as jnp

    cast = _cast64 if wide else (lambda x: x)
    originals = problem.originals()
    dtypes = [np.float64 if wide else np.dtype(jnp.asarray(x).dtype) for x in originals]
    objective = _objective(problem)

    def j_of(values: Sequence[Any]) -> Any:
        return objective(problem.call(values, cast))

    j_fn, jit_note = _maybe_jit(
        j_of, [jnp.asarray(x, dtype=d) for x, d in zip(originals, dtypes, strict=True)]
    )
    params = {
        n: np.asarray(x, dtype=d) for n, x, d in zip(problem.names, originals, dtypes, strict=True)
    }

    def values_of(p: dict[str, np.ndarray]) -> list[Any]:
        return [jnp.asarray(p[n], dtype=d) for n, d in zip(problem.names, dtypes, strict=True)]

    def loss(p: dict[str, np.ndarray]) -> float:
        return float(j_fn(values_of(p)))

    grad_values = jax.grad(j_of)(values_of(params))
    grads = {
        n: np.asarray(g, dtype=np.float64) for n, g in zip(problem.names, grad_values, strict=True)
    }
    batched, reason = _batched(j_of, params, dtypes, loss, vectorize)
    kinds = ", ".join(sorted({str(np.dtype(x.dtype)) for x in originals}))
    precision_note = (
        f"Evaluated in float64 (scoped jax_enable_x64) from {kinds} leaves."
        if wide
        else f"Evaluated in the leaves' own dtype ({kinds}): {why}."
    )
    notes = [precision_note, _adapters.evaluation_note(batched, reason, "jax.vmap"), *jit_note]
    return _adapters.run_check(loss, params, grads, options, batched, notes)


def _maybe_jit(j_of: Callable, values: list[Any]) -> tuple[Callable, list[str]]:
    """``jax.jit(j_of)`` when it traces; the plain function (and a note) when it does not."""
    import jax

    jitted = jax.jit(j_of)
    try:
        jitted(values)
    except Exception as error:  # Python control flow on values, host callbacks, ...
        return j_of, [f"fn could not be jitted ({_adapters.short(error)}); it ran op by op."]
    return jitted, []


def _batched(
    j_of: Callable, params: dict[str, np.ndarray], dtypes: list[Any], loss: Callable, vectorize: str
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str]:
    """``fn(thetas (B, N)) -> J (B,)`` through ``jax.vmap`` (chunked, jitted), or None and why."""
    import jax
    import jax.numpy as jnp

    if vectorize == "loop":
        return None, "vectorize='loop' was asked for."
    if not _adapters.accepts_batched():
        return None, _adapters.NO_HOOK
    shapes = [a.shape for a in params.values()]
    cuts = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]

    def one(theta: Any) -> Any:
        parts = jnp.split(theta, cuts)
        return j_of([p.reshape(s).astype(d) for p, s, d in zip(parts, shapes, dtypes, strict=True)])

    chunked = jax.jit(jax.vmap(one))

    def fn(thetas: np.ndarray) -> np.ndarray:
        thetas = np.asarray(thetas, dtype=np.float64)
        out = []
        for start in range(0, len(thetas), CHUNK):
            rows = thetas[start : start + CHUNK]
            padded = np.concatenate([rows, np.repeat(rows[:1], CHUNK - len(rows), axis=0)])
            out.append(
                np.asarray(chunked(jnp.asarray(padded, dtype=jnp.result_type(float))))[: len(rows)]
            )
        return np.concatenate(out).astype(np.float64)

    theta = np.concatenate([a.reshape(-1).astype(np.float64) for a in params.values()])
    return _adapters.probe_batched(fn, theta[None, :], lambda: loss(params), vectorize, "jax.vmap")
