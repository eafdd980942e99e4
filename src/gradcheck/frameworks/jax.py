"""Checking JAX functions (``jit``, ``custom_vjp``, ``custom_jvp``, pytrees) with the NumPy core.

Analytic gradients come from ``jax.grad`` (which runs the user's custom rules); numeric ones
from finite differences of the same function, both in float64 under a scoped ``jax_enable_x64``
when the function runs in float64, else in its own dtype with the core's noise-aware tolerance.
jax is imported inside the functions: ``import gradcheck`` stays light.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gradcheck._errors import GradCheckError, NonFiniteError, OptionError
from gradcheck.frameworks import _higher, _jit
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
    _higher.keyword_of_fn(fn, options, "gradcheck.jax.check")
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
    if not wide:
        _refuse_narrow(problem, precision, why)
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
        import jax.numpy as jnp

        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        if not nums or any(not isinstance(a, int) or not -len(args) <= a < len(args) for a in nums):
            raise OptionError(
                f"gradcheck.jax.check(argnums={argnums!r}) must name positions of the "
                f"{len(args)} arguments given (an int or a tuple of ints)."
            )
        nums = tuple(a % len(args) for a in nums)  # negative as in jax.grad: -1 is the last
        if len(set(nums)) != len(nums):
            twice = next(a for a in nums if nums.count(a) > 1)
            raise OptionError(
                f"gradcheck.jax.check(argnums={argnums!r}) names argument {twice} twice; "
                "give each position once."
            )
        names, slots, leaves, treedefs, views, notes = [], [], {}, {}, {}, []
        for a in nums:
            pairs, treedefs[a] = jax.tree_util.tree_flatten_with_path(args[a])
            leaves[a] = [leaf for _, leaf in pairs]
            keys = _leaf_keys(args[a], [path for path, _ in pairs])
            for i, ((_, leaf), key) in enumerate(zip(pairs, keys, strict=True)):
                # A typed PRNG key (key<fry>) has no NumPy dtype: not a float, left as it is.
                kind = getattr(leaf, "dtype", None) or np.asarray(leaf).dtype
                if jnp.issubdtype(kind, jnp.floating) or jnp.issubdtype(kind, jnp.complexfloating):
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
            held = [f"arg{a}: {_kind(leaf)}" for a in nums for leaf in leaves[a]][:4]
            raise OptionError(
                f"gradcheck.jax.check(argnums={argnums!r}): those arguments hold no "
                "floating-point array, so there is nothing to check ("
                + (", ".join(held) if held else "no leaf at all: None or an empty container")
                + "). Integers and bools have no gradient: pass floats (2.0, "
                "jnp.asarray(x, float)), or point argnums at the parameters."
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


def _kind(leaf: Any) -> str:
    """A leaf as an error message shows it: its type and dtype (``int 3``, ``int32[2]``)."""
    if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
        return f"{leaf.dtype}{list(np.shape(leaf))}"
    return f"{type(leaf).__name__} {leaf!r}"[:40]


def _leaf_keys(tree: Any, paths: list[tuple]) -> list[str]:
    """Each leaf's key path as a name (``layers.0.W``). A node registered without keys
    (``register_pytree_node``: an equinox-style module, a frozen mapping) only numbers its
    children; such a child is named after the node's attribute that holds it (``w`` rather
    than ``0``) where one does, by identity. Falls back to the plain key paths if that makes
    two names equal."""
    import jax

    def plain(path: tuple) -> str:
        return jax.tree_util.keystr(path, simple=True, separator=".")

    def readable(path: tuple) -> str:
        parts, node = [], tree
        for entry in path:
            child = next(c for k, c in jax.tree_util.flatten_one_level_with_keys(node)[0]
                         if k == entry)
            name = None
            if isinstance(entry, jax.tree_util.FlattenedIndexKey):
                name = _holder(node, child)
            parts.append(name if name is not None else plain((entry,)))
            node = child
        return ".".join(p for p in parts if p)

    names = [plain(p) for p in paths]
    if not any(isinstance(e, jax.tree_util.FlattenedIndexKey) for p in paths for e in p):
        return names
    try:
        better = [readable(p) for p in paths]
    except Exception:  # noqa: BLE001 - an exotic node: keep JAX's own key paths
        return names
    return better if len(set(better)) == len(better) else names


def _holder(node: Any, child: Any) -> str | None:
    """The attribute of ``node`` (or key of a dict attribute) that is ``child``, if one is."""
    fields = dict(getattr(node, "__dict__", {}) or {})
    for slot in getattr(type(node), "__slots__", ()):
        if isinstance(slot, str) and hasattr(node, slot):
            fields.setdefault(slot, getattr(node, slot))
    hits = [n for n, v in fields.items() if v is child and not n.startswith("_")]
    if len(hits) != 1:
        hits = [f"{n}.{k}" for n, v in fields.items() if isinstance(v, dict)
                for k, w in v.items() if w is child and not n.startswith("_")]
    return hits[0] if len(hits) == 1 else None


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
    """``jax_enable_x64`` for the duration of the check only, restored after.

    Where the flag was off, JAX's tracing caches are cleared on the way out (``_forget_x64``).
    """
    import jax

    if not enabled or jax.config.jax_enable_x64:
        yield
        return
    scope = getattr(jax, "enable_x64", None)
    if scope is None:  # older JAX
        from jax.experimental import enable_x64 as scope
    try:
        with scope(True):
            yield
    finally:
        _forget_x64()


def _forget_x64() -> None:
    """Clears what JAX 0.10 traced under the scoped x64 and would reuse without it.

    A jaxpr traced inside the scope (``jnp.take``'s inner jit with a NumPy index) keeps its
    64-bit argument types in two staging caches; reused outside, the user's own ``jax.grad``
    fails with "expected s32[5], got s64[5]". Clearing those two costs a re-trace; compiled
    executables stay. Where they cannot be found (another JAX), every cache is cleared.
    """
    import jax

    try:
        from jax._src import pjit
        from jax._src.interpreters import partial_eval

        caches = (pjit._infer_params_cached, partial_eval.trace_to_jaxpr)
        for cache in caches:
            cache.cache_clear()
    except (ImportError, AttributeError):
        jax.clear_caches()


def _cast64(x: Any) -> Any:
    import jax.numpy as jnp

    # jnp.issubdtype, not np.dtype: extended dtypes (a typed PRNG key, key<fry>) are no NumPy
    # dtype, and a key is passed as it is.
    if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating):
        return jnp.asarray(x, dtype=jnp.float64)
    if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.complexfloating):
        return jnp.asarray(x, dtype=jnp.complex128)
    return x


def _objective(problem: _Problem, real_cotangent: bool = False) -> Callable[[Any], Any]:
    """J from the output: itself when scalar, else ⟨output, R⟩ with R from the seed."""
    import jax.numpy as jnp

    cotangents: dict[int, list[np.ndarray]] = {}
    seed = problem.seed  # the closure keeps the seed, not the problem (and its arguments)

    def objective(out: Any) -> Any:
        leaves = _higher.inexact_leaves(out)
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
            rng = np.random.default_rng(seed)
            cotangents[key] = [rng.standard_normal(x.shape) for x in leaves]
            for r, c in zip(cotangents[key], complex_out, strict=True):
                if c and real_cotangent:  # the conjugation probe: a real R on complex outputs
                    r[..., 1] = 0.0
        return sum(
            jnp.sum(x * jnp.asarray(r, dtype=x.dtype))
            for x, r in zip(leaves, cotangents[key], strict=True)
        )

    return objective


def _grad_hint(error: BaseException) -> str:
    """What a failure of ``jax.grad(fn)`` means, and what to do about it (added to the error)."""
    text = str(error)
    hint = "jax.grad(fn) fails the same way outside gradcheck"
    if "while_loop" in text or "fori_loop" in text:
        hint += (": reverse mode cannot go through a while_loop with dynamic bounds; use "
                 "lax.scan or fori_loop with static bounds, or check with mode='forward'")
    elif "Concretization" in type(error).__name__ or "Tracer" in type(error).__name__:
        hint += (": fn turns a traced value into a Python one (float(), bool(), if on an "
                 "array, .item()); use jnp.where / lax.cond instead")
    return (f"gradcheck.jax.check: this was raised while jax.grad differentiated fn at the "
            f"given arguments (reverse mode); {hint}.")


def _refuse_narrow(problem: _Problem, precision: str, why: str) -> None:
    """A leaf NumPy cannot compute in (bfloat16, float8: ml_dtypes, not float16/32/64) can only
    be checked on float64 copies: an error naming it where those are not used."""
    for name, x in zip(problem.names, problem.originals(), strict=True):
        if np.dtype(x.dtype).name not in ("float16", "float32", "float64"):
            fix = ("use precision='auto' (float64 copies)" if precision == "native"
                   else "make fn run in float64, or pass the leaf as float32")
            raise GradCheckError(
                f"gradcheck.jax.check(precision={precision!r}): {name} is "
                f"{np.dtype(x.dtype).name}, which NumPy cannot compute in, so it is checked on "
                f"float64 copies only, and they are not used here ({why}): {fix}."
            )


def _wants_x64(problem: _Problem, precision: str) -> tuple[bool, str]:
    """Whether to run in float64, and if not, why (for the note)."""
    if precision == "native":
        return False, "precision='native' was asked for"
    objective = _objective(problem)
    try:
        with _x64(True):
            values = [_cast64(x) for x in problem.originals()]
            j = _jit.output_type(lambda v: objective(problem.call(v, _cast64)), values)
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

    params = {
        n: np.asarray(x, dtype=d) for n, x, d in zip(problem.names, originals, dtypes, strict=True)
    }

    def values_of(p: dict[str, np.ndarray]) -> list[Any]:
        return [jnp.asarray(p[n], dtype=d) for n, d in zip(problem.names, dtypes, strict=True)]

    traced = _Traced(problem, cast, dtypes, wide, real_cotangent, objective)
    jit_note: list[str] = []  # filled when the plain loss is first called and cannot be jitted
    plain = _PlainLoss(traced, j_of, jit_note)

    def loss(p: dict[str, np.ndarray]) -> float:
        return float(plain(values_of(p)))

    at_theta: list[float] = []  # J at θ from the gradient's own (op-by-op) forward pass

    def reverse() -> dict[str, np.ndarray]:
        # Traced afresh on every check (never a cached trace): the backward is what is judged.
        try:
            value, grad_values = jax.value_and_grad(j_of)(values_of(params))
            at_theta.append(float(value))
        except GradCheckError:
            raise
        except Exception as error:  # fn cannot be differentiated by jax.grad: say so, keep it
            error.add_note(_grad_hint(error))
            raise
        return {
            n: np.asarray(g, dtype=np.float64)
            for n, g in zip(problem.names, grad_values, strict=True)
        }

    # The reverse-mode gradient first: its forward pass gives the plain J at θ that the
    # batched probe compares with, so no plain J is compiled or run op by op for it.
    early = reverse() if higher[1] == "reverse" else None
    batched, reason = _batched(
        traced, params, lambda: at_theta[0] if at_theta else loss(params), vectorize, j_of
    )
    kinds = ", ".join(sorted({str(np.dtype(x.dtype)) for x in originals}))
    precision_note = (
        f"Evaluated in float64 (scoped jax_enable_x64) from {kinds} leaves."
        if wide
        else f"Evaluated in the leaves' own dtype ({kinds}): {why}."
    )
    notes = [precision_note, _adapters.evaluation_note(batched, reason, "jax.vmap")]

    def run(grads: dict[str, np.ndarray], reduced: tuple | None = None) -> Report:
        fn, p, b = (loss, params, batched) if reduced is None else (*reduced, None)
        try:
            report = _adapters.run_check(fn, p, grads, options, b, [])
        except NonFiniteError as error:
            if str(error).startswith("grads["):
                error.add_note(_adapters.nonfinite_grad_note(str(error), "jax.grad(fn)", "jnp.where"))
            raise
        report = _adapters.with_notes(report, notes + jit_note + problem.notes)
        report = _adapters.leave_unchecked(report, problem.unchecked)
        return _adapters.complex_findings(report, problem.complex, _adapters.JAX)

    def forward() -> _higher.Forward:  # built only for mode="forward"/"both"
        jvps = _higher.jax_jvps(j_of, values_of(params), problem.names, "gradcheck.jax.check")
        return _higher.forward_gradient(jvps, params, loss, options.get("seed", 0))

    first = _higher.by_mode(higher[1], run, reverse if early is None else lambda: early, forward)
    if higher[0] == 1:
        return first
    second = _higher.jax_second(problem, cast, dtypes, options, [precision_note])
    return _higher.merge_orders(first, second)


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
            bool(wide), bool(real_cotangent), problem.seed, CHUNK,
            bool(jax.config.jax_enable_x64),
        )
        if not reusable or any(problem.views[s].fill is not None for s in problem.slots):
            self.key = None
        self._fn = fn_ref
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
                at_theta() if k == 0 and at_theta is not None
                else float(_jit.value(j_of, _jit.device(_jit.split(r, self.shapes, self.dtypes))))
                for k, r in enumerate(rows)
            ])
        except Exception:  # noqa: BLE001 - the point beside θ left fn's domain: trace again
            return False
        eps = max([float(np.finfo(np.dtype(d)).eps) for d in self.dtypes], default=2.2e-16)
        close = np.abs(got - want) <= 1024 * eps * np.maximum(1.0, np.abs(want))
        return bool(np.all(close | (np.isnan(got) & np.isnan(want))))

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

    def __call__(self, *args: Any) -> Any:
        if self.seconds is not None:
            return self.fn(*args)
        start = time.perf_counter()
        out = self.fn(*args)
        jax_block(out)
        self.seconds = time.perf_counter() - start
        return out


def jax_block(out: Any) -> None:
    if hasattr(out, "block_until_ready"):
        out.block_until_ready()


class _PlainLoss:
    """J of one point, ``jax.jit``-compiled on its first call (cached across checks), op by op
    (and a note) where ``fn`` does not trace. On the batched path the check itself never calls
    it, so a passing check does not compile it at all; the diagnosis of a failing one does."""

    def __init__(self, traced: _Traced, j_of: Callable, note: list[str]) -> None:
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
            self.note.append(f"fn could not be jitted ({_adapters.short(error)}); it ran op by op.")
            return self.j_of


class _Stacks:
    """Stacks of rows through ``jit(vmap(J))``, in chunks padded to CHUNK rows (one compiled
    shape per function): ``full`` batches every checked leaf; ``moving(t, rows)`` leaf t only,
    the others fixed at their given values, where that pays (see ``_batched``)."""

    def __init__(self, traced: _Traced, dynamic: bool, theta: np.ndarray) -> None:
        self.traced, self.dynamic = traced, dynamic
        self.base = _jit.split(theta, traced.shapes, traced.dtypes)  # NumPy: nothing compiled
        self.row_seconds: float | None = None  # per padded row through the full path
        self.own: dict[int, _Compiled | None] = {}
        self._functions: dict[Any, _Compiled] = {}

    def _function(self, pattern: Any) -> _Compiled:
        if pattern not in self._functions:
            self._functions[pattern] = self._build(pattern)
        return self._functions[pattern]

    def _build(self, pattern: Any) -> _Compiled:
        import jax

        traced = self.traced
        if pattern == "full":
            of_row = traced.values

            def build(j: Callable) -> Any:
                return jax.jit(jax.vmap(lambda row, d: j(of_row(row), d), in_axes=(0, None)))
        else:
            t, shape, dtype = pattern, traced.shapes[pattern], traced.dtypes[pattern]

            def build(j: Callable) -> Any:
                def one(row: Any, fixed: list[Any], d: list[Any]) -> Any:
                    values = list(fixed)
                    values[t] = row.reshape(shape).astype(dtype)
                    return j(values, d)

                return jax.jit(jax.vmap(one, in_axes=(0, None, None)))
        if self.dynamic:
            return traced.compiled(pattern, build)
        return _Compiled(build(traced.baked()))

    def _run(
        self, f: _Compiled, rows: np.ndarray, *fixed: Any, into: tuple | None = None
    ) -> np.ndarray:
        """J of each row, CHUNK rows per call (the last chunk padded with its first row).
        ``into=(buffer, a)``: ``rows`` are columns a: of full rows whose other columns
        ``buffer`` (CHUNK, N) holds: each chunk is written into it, never a (B, N) stack."""
        import jax.numpy as jnp

        rows = np.asarray(rows, dtype=np.float64)
        out = []
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            if into is not None:
                buffer, a = into
                buffer[: len(chunk), a : a + chunk.shape[1]] = chunk
                buffer[len(chunk) :, a : a + chunk.shape[1]] = chunk[:1]
                padded = buffer
            else:
                padded = chunk if len(chunk) == CHUNK else np.concatenate(
                    [chunk, np.repeat(chunk[:1], CHUNK - len(chunk), axis=0)]
                )
            js = f(jnp.asarray(padded, dtype=jnp.result_type(float)), *fixed, self.traced.dynamic)
            out.append(np.asarray(js)[: len(chunk)])  # done before the buffer is written again
        return np.concatenate(out).astype(np.float64)

    def full(self, thetas: np.ndarray, into: tuple | None = None) -> np.ndarray:
        f = self._function("full")
        warm = f.seconds is not None
        start = time.perf_counter()
        out = self._run(f, thetas, into=into)
        if warm:  # the cost of a row through the full path, compilation excluded
            padded = CHUNK * -(-len(thetas) // CHUNK)
            self.row_seconds = (time.perf_counter() - start) / padded
        return out

    def block(self, theta: np.ndarray, a: int, rows: np.ndarray) -> np.ndarray:
        """``full`` of the rows θ with columns a: replaced by ``rows``, built chunk by chunk."""
        buffer = np.repeat(np.asarray(theta, dtype=np.float64)[None, :], CHUNK, axis=0)
        return self.full(rows, into=(buffer, a))

    def moving(self, t: int, rows: np.ndarray) -> np.ndarray | None:
        if t not in self.own:
            own = self._function(t) if self.dynamic else None
            pays = own is not None and self._pays(own, len(rows))
            if own is not None and not pays and own.seconds is None:
                self.traced.forget(t)
            self.own[t] = own if pays else None
        if self.own[t] is None:
            return None
        return self._run(self.own[t], rows, self.base)


    def _pays(self, own: _Compiled, rows: int) -> bool:
        """Whether leaf t gets its own function: when it is compiled already, or when these
        rows through the full path would take longer than compiling the full path did."""
        full = self._function("full")
        if own.seconds is not None:
            return True
        if full.seconds is None or self.row_seconds is None:
            return False
        return rows * self.row_seconds > full.seconds


def _batched(
    traced: _Traced,
    params: dict[str, np.ndarray],
    plain: Callable[[], float],
    vectorize: str,
    j_of: Callable[[Sequence[Any]], Any],
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str]:
    """``fn(thetas (B, N)) -> J (B,)`` through ``jax.vmap`` (chunked, jitted), or None and why.

    The other array leaves of the arguments are inputs of the compiled functions (reused by the
    next check of the same function); where ``fn`` cannot trace them, they are baked in."""
    if (refused := _adapters.batched_refusal(vectorize)) is not None:
        return None, refused
    known: list[float] = []  # the plain J at θ: one op-by-op call for every probe and check

    def plain_once() -> float:
        if not known:
            known.append(plain())
        return known[0]

    theta = np.concatenate([a.reshape(-1).astype(np.float64) for a in params.values()])
    for _ in range(2 if traced.key is not None else 0):
        stacks = _Stacks(traced, True, theta)
        fn, _ = _adapters.probe_batched(
            stacks.full, theta[None, :], plain_once, "auto", "jax.vmap"
        )
        if fn is not None and "full" in traced.hits and not traced.fresh(
            stacks.full, j_of, theta, plain_once
        ):
            traced.forget()  # stale: fn reads something that changed since; trace again
            continue
        if fn is not None:
            return _adapters.Batched(
                stacks.full, stacks.moving, theta, traced.sizes, stacks.block
            ), ""
        traced.forget("full")
        break
    stacks = _Stacks(traced, False, theta)
    fn, reason = _adapters.probe_batched(
        stacks.full, theta[None, :], plain_once, vectorize, "jax.vmap"
    )
    if fn is None:
        return None, reason
    return _adapters.Batched(stacks.full, stacks.moving, theta, traced.sizes, stacks.block), ""
