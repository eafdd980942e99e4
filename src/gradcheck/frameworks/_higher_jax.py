"""order=2 and forward mode for JAX: JVPs by ``jax.jvp`` (vmapped), and G(x, u)'s gradient by
``jax.grad`` of the vjp (the shared parts are ``_higher``'s)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradcheck._errors import GradCheckError, short
from gradcheck.frameworks._higher import Second
from gradcheck.report._report import Report


def inexact_leaves(out: Any) -> list[Any]:
    """The floating and complex arrays of an output pytree. Other leaves (integer arrays, and
    what has no dtype: Python numbers, strings, None in an ``aux`` dict) cannot carry a
    gradient and are left out of J."""
    import jax
    import jax.numpy as jnp

    def inexact(x: Any) -> bool:
        kind = getattr(x, "dtype", None)
        if kind is None or not hasattr(x, "shape"):
            return False
        with contextlib.suppress(TypeError):  # an extended dtype (a PRNG key) is not a number
            return bool(jnp.issubdtype(kind, jnp.inexact))
        return False

    return [x for x in jax.tree_util.tree_leaves(out) if inexact(x)]


def jax_jvps(
    j_of: Callable, values: Sequence[Any], names: Sequence[str], api: str
) -> Callable[[str, np.ndarray], np.ndarray]:
    """``jvps(name, rows)``: J's derivative along each tangent row, ``jax.jvp`` vmapped over
    the rows (a ``custom_jvp`` rule runs); a loop where vmap fails."""
    import jax
    import jax.numpy as jnp

    values = [jnp.asarray(v) for v in values]
    index = {n: k for k, n in enumerate(names)}

    def jvps(name: str, rows: np.ndarray) -> np.ndarray:
        k = index[name]
        v = values[k]

        def along(t: Any) -> Any:
            tangents = [jnp.zeros_like(x) for x in values]
            tangents[k] = t.reshape(v.shape).astype(v.dtype)
            return jax.jvp(lambda *xs: j_of(list(xs)), tuple(values), tuple(tangents))[1]

        batch = jnp.asarray(rows, dtype=v.dtype)
        try:
            return np.asarray(jax.vmap(along)(batch), dtype=np.float64).reshape(-1)
        except Exception as error:  # custom_vjp has no forward rule; or vmap cannot batch
            if "custom_vjp" in str(error):
                raise GradCheckError(
                    f"{api}(mode='forward' or 'both'): jax.jvp failed on {name} "
                    f"({short(error)}). A jax.custom_vjp function has no forward-mode "
                    "rule; give it a custom_jvp, or use mode='reverse'."
                ) from error
            return np.array([float(along(row)) for row in batch])

    return jvps


def jax_second(
    problem: Any,
    cast: Callable,
    dtypes: Sequence[Any],
    options: Mapping[str, Any],
    notes: Sequence[str],
) -> Report:
    """The order-2 check of a JAX problem: G(x, u) = ⟨vjp(x, u), w⟩, ``jax.grad`` of it."""
    import jax
    import jax.numpy as jnp


    names = list(problem.names)
    seed = options.get("seed", 0)
    x0 = [np.asarray(x, dtype=d) for x, d in zip(problem.originals(), dtypes, strict=True)]

    def outputs(xs: Sequence[Any]) -> list[Any]:
        out = problem.call(list(xs), cast)
        # A complex output as its real and imaginary parts (a last axis of 2): a real-linear
        # view of it, so that its cotangent u is real like every other input of G.
        return [
            jnp.stack([jnp.real(o), jnp.imag(o)], axis=-1)
            if jnp.issubdtype(o.dtype, jnp.complexfloating) else o
            for o in inexact_leaves(out)
        ]

    probe = outputs([jnp.asarray(x) for x in x0])
    if not probe:
        raise GradCheckError(
            "gradcheck.jax.check(order=2): fn returned no floating-point array; return the "
            "array your custom rule differentiates."
        )
    setup = Second.of(names, x0, [(tuple(o.shape), np.dtype(o.dtype)) for o in probe], seed)
    in_names, cot_names, params = setup.in_names, setup.cot_names, setup.params
    weights = [jnp.asarray(w, dtype=x.dtype) for w, x in zip(setup.weights, x0, strict=True)]

    def g_of(xs: list[Any], us: list[Any]) -> Any:
        _, vjp = jax.vjp(lambda *v: outputs(v), *xs)
        back = vjp(list(us))
        return sum(jnp.sum(b * w) for b, w in zip(back, weights, strict=True))

    g_jit = jax.jit(g_of)

    def split(p: dict[str, np.ndarray]) -> tuple[list[Any], list[Any]]:
        xs = [jnp.asarray(p[a]) for a in in_names]
        us = [jnp.asarray(p[c]) for c in cot_names]
        return xs, us

    def loss(p: dict[str, np.ndarray]) -> float:
        return float(g_jit(*split(p)))

    dx, du = jax.grad(g_of, argnums=(0, 1))(*split(params))
    return setup.report(loss, [np.asarray(d) for d in [*dx, *du]], options, notes)
