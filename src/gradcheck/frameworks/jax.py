"""Checking JAX functions (``jit``, ``custom_vjp``, ``custom_jvp``, pytrees) with the NumPy core.

Analytic gradients come from ``jax.grad`` (which runs the user's custom rules); numeric ones
from finite differences of the same function, both in float64 under a scoped ``jax_enable_x64``
when the function runs in float64, else in its own dtype with the core's noise-aware tolerance.
jax is imported inside the functions: ``import gradcheck`` stays light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gradcheck._errors import GradCheckError, OptionError
from gradcheck.frameworks import _higher
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
    order: int = 1,
    mode: Literal["reverse", "forward", "both"] = "reverse",
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
      order: 1 checks the gradient; 2 also the backward's own derivatives (``jax.grad`` of the
        vjp, w.r.t. the arguments and the cotangent), as ``check_grads(order=2)``.
      mode: "reverse" (``jax.grad``), "forward" (``jax.jvp``: a ``custom_jvp`` rule) or "both"
        (the report names the mode that disagrees).
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
    higher = _higher.validate("gradcheck.jax.check", order, mode)
    precision = _adapters.choose(
        "gradcheck.jax.check", "precision", precision, _adapters.PRECISIONS
    )
    vectorize = _adapters.choose("gradcheck.jax.check", "vectorize", vectorize, _adapters.VECTORIZE)
    problem = _Problem.build(fn, args, argnums, options.get("seed", 0))
    if not problem.names:
        return _adapters.nothing_checked(problem.notes, options.get("scheme", "central"))
    wide, why = _wants_x64(problem, precision)
    with _x64(wide):
        report = _check(problem, wide, why, options, vectorize, higher)
        if higher == (1, "reverse") and _adapters.wants_conjugation_probe(report, problem.complex):
            again = _check(problem, wide, why, options, vectorize, higher, real_cotangent=True)
            report = _adapters.conjugation_probe(report, again, problem.complex, _adapters.JAX)
        return report


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
    views: dict[tuple[int, int], _View] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, fn: Callable, args: tuple, argnums: Any, seed: int) -> _Problem:
        import jax

        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        if not nums or any(not isinstance(a, int) or not 0 <= a < len(args) for a in nums):
            raise OptionError(
                f"gradcheck.jax.check(argnums={argnums!r}) must name positions of the "
                f"{len(args)} arguments given (an int or a tuple of ints)."
            )
        names, slots, leaves, treedefs, views, notes = [], [], {}, {}, {}, []
        for a in nums:
            pairs, treedefs[a] = jax.tree_util.tree_flatten_with_path(args[a])
            leaves[a] = [leaf for _, leaf in pairs]
            for i, (path, leaf) in enumerate(pairs):
                kind = np.asarray(leaf).dtype
                if np.issubdtype(kind, np.floating) or np.issubdtype(kind, np.complexfloating):
                    key = jax.tree_util.keystr(path, simple=True, separator=".")
                    prefix = f"arg{a}" if len(nums) > 1 or not key else ""
                    name = ".".join(p for p in (prefix, key) if p)
                    if np.asarray(leaf).size == 0:  # nothing to perturb: stays as it is
                        notes.append(f"{name} is empty (shape {np.shape(leaf)}): nothing to check.")
                        continue
                    names.append(name)
                    slots.append((a, i))
                    views[(a, i)] = _View(name, np.asarray(leaf))
        if not names and notes:
            return cls(fn, tuple(args), nums, names, slots, leaves, treedefs, seed, views, notes)
        if not names:
            raise OptionError(
                f"gradcheck.jax.check(argnums={argnums!r}): those arguments hold no "
                "floating-point array, so there is nothing to check."
            )
        notes += [n for v in views.values() for n in v.notes()]
        return cls(fn, tuple(args), nums, names, slots, leaves, treedefs, seed, views, notes)

    def call(self, values: Sequence[Any], cast: Callable[[Any], Any]) -> Any:
        """``fn`` with the checked leaves replaced by ``values`` and the rest cast."""
        import jax

        args = [jax.tree_util.tree_map(cast, a) for a in self.args]
        fresh = {a: [cast(x) for x in self.leaves[a]] for a in self.argnums}
        for (a, i), v in zip(self.slots, values, strict=True):
            fresh[a][i] = self.views[(a, i)].decode(v)
        for a in self.argnums:
            args[a] = jax.tree_util.tree_unflatten(self.treedefs[a], fresh[a])
        return self.fn(*args)

    def originals(self) -> list[np.ndarray]:
        """The checked leaves as the core sees them: real (complex: a last axis of 2), finite."""
        return [self.views[s].real for s in self.slots]

    @property
    def unchecked(self) -> dict[str, np.ndarray]:
        return {v.name: ~v.finite for v in self.views.values() if v.fill is not None}

    @property
    def complex(self) -> list[str]:
        return [v.name for v in self.views.values() if v.complex]


class _View:
    """One checked leaf as the core sees it: real and finite; ``decode`` turns it back
    (complex from a last axis of 2, ±inf/NaN entries put back) inside the traced function, so
    that ``jax.grad`` maps its gradient onto the same real coordinates by JAX's convention."""

    def __init__(self, name: str, x: np.ndarray) -> None:
        self.name = name
        self.complex = np.iscomplexobj(x)
        real = np.stack([x.real, x.imag], axis=-1) if self.complex else np.array(x, copy=True)
        self.finite = np.isfinite(real)
        self.fill = None if self.finite.all() else real
        self.real = np.where(self.finite, real, 0).astype(real.dtype) if self.fill is not None else real

    def decode(self, r: Any) -> Any:
        import jax.numpy as jnp
        from jax import lax

        if self.fill is not None:
            r = jnp.where(self.finite, r, jnp.asarray(self.fill, dtype=r.dtype))
        if self.complex:
            r = lax.complex(r[..., 0], r[..., 1])
        return r

    def notes(self) -> list[str]:
        bad = 0 if self.fill is None else int((~self.finite).sum())
        return _adapters.view_notes(self.name, self.complex, _adapters.JAX[0], bad)


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
    if hasattr(x, "dtype") and np.issubdtype(np.dtype(x.dtype), np.complexfloating):
        return jnp.asarray(x, dtype=jnp.complex128)
    return x


def _objective(problem: _Problem, real_cotangent: bool = False) -> Callable[[Any], Any]:
    """J from the output: itself when scalar, else ⟨output, R⟩ with R from the seed."""
    import jax
    import jax.numpy as jnp

    cotangents: dict[int, list[np.ndarray]] = {}

    def objective(out: Any) -> Any:
        leaves = [
            x
            for x in jax.tree_util.tree_leaves(out)
            if jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.complexfloating)
        ]
        if len(leaves) == 1 and leaves[0].size == 1 and jnp.issubdtype(leaves[0].dtype, jnp.floating):
            return leaves[0].reshape(())
        # Complex outputs enter J through their real and imaginary parts: J = Re⟨R, out⟩.
        complex_out = [jnp.issubdtype(x.dtype, jnp.complexfloating) for x in leaves]
        leaves = [
            jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1)
            if jnp.issubdtype(x.dtype, jnp.complexfloating)
            else x
            for x in leaves
        ]
        if not leaves:
            raise GradCheckError(
                "gradcheck.jax.check: fn returned no floating-point array; return J or the "
                "array your custom rule differentiates."
            )
        key = len(leaves)
        if key not in cotangents:
            rng = np.random.default_rng(problem.seed)
            cotangents[key] = [rng.standard_normal(x.shape) for x in leaves]
            for r, c in zip(cotangents[key], complex_out, strict=True):
                if c and real_cotangent:  # the conjugation probe: a real R on complex outputs
                    r[..., 1] = 0.0
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
    problem: _Problem,
    wide: bool,
    why: str,
    options: dict[str, Any],
    vectorize: str,
    higher: tuple[int, str] = (1, "reverse"),
    real_cotangent: bool = False,
) -> Report:
    import jax
    import jax.numpy as jnp

    cast = _cast64 if wide else (lambda x: x)
    originals = problem.originals()
    dtypes = [np.float64 if wide else np.dtype(jnp.asarray(x).dtype) for x in originals]
    objective = _objective(problem, real_cotangent)

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

    def reverse() -> dict[str, np.ndarray]:
        grad_values = jax.grad(j_of)(values_of(params))
        return {
            n: np.asarray(g, dtype=np.float64)
            for n, g in zip(problem.names, grad_values, strict=True)
        }

    batched, reason = _batched(j_of, params, dtypes, loss, vectorize)
    kinds = ", ".join(sorted({str(np.dtype(x.dtype)) for x in originals}))
    precision_note = (
        f"Evaluated in float64 (scoped jax_enable_x64) from {kinds} leaves."
        if wide
        else f"Evaluated in the leaves' own dtype ({kinds}): {why}."
    )
    notes = [precision_note, _adapters.evaluation_note(batched, reason, "jax.vmap"), *jit_note]
    def run(grads: dict[str, np.ndarray], reduced: tuple | None = None) -> Report:
        fn, p, b = (loss, params, batched) if reduced is None else (*reduced, None)
        report = _adapters.run_check(fn, p, grads, options, b, notes + problem.notes)
        report = _adapters.leave_unchecked(report, problem.unchecked)
        return _adapters.complex_findings(report, problem.complex, _adapters.JAX)

    jvps = _higher.jax_jvps(j_of, values_of(params), problem.names, "gradcheck.jax.check")
    first = _higher.by_mode(
        higher[1], run, reverse,
        lambda: _higher.forward_gradient(jvps, params, loss, options.get("seed", 0)),
    )
    if higher[0] == 1:
        return first
    second = _higher.jax_second(problem, cast, dtypes, options, [precision_note])
    return _higher.merge_orders(first, second)


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

    if (refused := _adapters.batched_refusal(vectorize)) is not None:
        return None, refused
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
