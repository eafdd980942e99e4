"""Beyond first-order reverse mode: ``order=2`` (the backward's own derivatives) and forward mode.

Both reduce to the NumPy ``check`` (noise-aware verdict, components, suspects):

- **order=2.** For inputs x, outputs y and a backward ``vjp(x, u) = uᵀ ∂y/∂x``, the scalar
  G(x, u) = ⟨vjp(x, u), w⟩ (u, w random from the seed) is a function of x *and* of the cotangent
  u. Finite differences of G (each value one forward and one first-order backward) are compared
  with G's gradient from double backward (``create_graph=True`` / ``jax.grad`` of the vjp), as
  ``gradgradcheck`` does. Components: ``<input> (backward w.r.t. input)`` (∂G/∂x: the backward's
  derivative w.r.t. that input) and ``cotangent`` (∂G/∂u = J·w: its derivative w.r.t. u).
  The first-order check runs too, so one report covers both orders.
- **forward mode.** The gradient of the same J is assembled from JVPs along each coordinate
  (torch forward AD with dual numbers, a custom Function's ``jvp``; ``jax.jvp``, ``custom_jvp``)
  and compared with finite differences, coordinate by coordinate: ∂J/∂x_j = ⟨R, J_y(x)·e_j⟩.
  ``mode="both"`` checks reverse and forward and names the mode that disagrees.

Nothing here imports the adapters (they call in, passing what they know): no cycle.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck._errors import GradCheckError, OptionError
from gradcheck.frameworks import _shared as _adapters
from gradcheck.report._report import Report

MODES = ("reverse", "forward", "both")
# Forward mode: one JVP per coordinate up to this many in all; beyond, random tangents.
FULL_FORWARD = 4_096
TANGENTS = 16  # random tangents per large tensor beyond FULL_FORWARD
CHUNK = 64  # tangents per batched JVP call
INPUT = "backward w.r.t. input"
COTANGENT = "cotangent"


def keyword_of_fn(fn: Callable, options: dict[str, Any], api: str) -> None:
    """An unknown option that is a keyword parameter of ``fn``: say how to pass it."""
    import inspect

    unknown = sorted(set(options) - set(_adapters.FORWARDED))
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or C function without a signature
        return
    mine = [k for k in unknown if k in params]
    if mine:
        raise OptionError(
            f"{api}() got {mine[0]}=..., a keyword argument of fn, not an option of the check. "
            f"Bind it first: {api}(functools.partial(fn, {mine[0]}=...), *args)."
        )


def validate(api: str, order: Any, mode: Any, jacobian: bool = False) -> tuple[int, str]:
    """``(order, mode)`` checked, or an ``OptionError`` naming the option and the fix."""
    if isinstance(order, bool) or order not in (1, 2):
        raise OptionError(
            f"{api}(order={order!r}): order is the derivative order and must be 1 (the "
            "gradient) or 2 (the derivatives of the backward too, as gradgradcheck). To name "
            "parameters from input to output, use layers=[...]."
        )
    mode = _adapters.choose(api, "mode", mode, MODES)
    if order == 2 and mode != "reverse":
        raise OptionError(
            f"{api}(order=2, mode={mode!r}): second order is checked in reverse mode (double "
            "backward); check the JVPs in a separate call with order=1, mode='forward'."
        )
    if jacobian and (order != 1 or mode != "reverse"):
        raise OptionError(
            f"{api}(jacobian=True) compares first-order reverse-mode Jacobians only; drop "
            "jacobian=True to use order=2 or mode='forward' (random cotangents catch the same bugs)."
        )
    return int(order), mode


def by_mode(
    mode: str,
    run: Callable[..., Report],
    reverse: Callable[[], dict[str, np.ndarray]],
    forward: Callable[[], Forward],
) -> Report:
    """The report for ``mode``: ``run(grads)`` with reverse- and/or forward-mode gradients.

    ``run(grads, reduced=None)`` runs the check; ``reduced=(loss, params)`` replaces the loss
    and parameters (forward mode on random tangents). Components are ``<name> (forward)`` /
    ``<name> (reverse)``; with "both", a note says which mode disagrees.
    """
    if mode == "reverse":
        return run(reverse())
    done = forward()
    reports = {"forward": _adapters.with_notes(run(done.grads, done.reduced), done.notes)}
    if mode == "both":
        reports = {"reverse": run(reverse()), **reports}
    merged = _adapters.merge(reports, lambda name, key: f"{name} ({key})")
    wrong = [k for k, r in reports.items() if r.passed is False]  # incomplete is not wrong
    if mode == "both" and len(wrong) == 1:
        other = "reverse" if wrong[0] == "forward" else "forward"
        rule = "the forward-mode rule (jvp)" if wrong[0] == "forward" else "the backward (vjp)"
        merged = _adapters.with_notes(
            merged,
            [
                f"mode='both': {wrong[0]} mode disagrees with finite differences while {other} "
                f"mode agrees, so {rule} is wrong."
            ],
        )
    return merged


@dataclass(frozen=True)
class Forward:
    """Forward-mode gradients, and the reduced problem when random tangents stood in."""

    grads: dict[str, np.ndarray]
    reduced: tuple[Callable[[dict[str, np.ndarray]], float], dict[str, np.ndarray]] | None
    notes: tuple[str, ...]


def forward_gradient(
    jvps: Callable[[str, np.ndarray], np.ndarray],
    params: dict[str, np.ndarray],
    loss: Callable[[dict[str, np.ndarray]], float],
    seed: int,
) -> Forward:
    """∂J from JVPs: ``jvps(name, rows (B, size)) -> (B,)`` directional derivatives of J.

    Up to ``FULL_FORWARD`` coordinates in all, one tangent per coordinate (the forward-mode
    gradient, compared entry by entry). Beyond, each tensor larger than ``TANGENTS`` entries
    is checked along ``TANGENTS`` random unit Rademacher tangents V: the check's parameter is
    then the coefficient vector c (at 0) of x = x₀ + V·c, whose gradient is the JVP along each
    tangent, compared with finite differences of J along it.
    """
    sizes = {n: int(a.size) for n, a in params.items()}
    full = sum(sizes.values()) <= FULL_FORWARD
    rng = np.random.default_rng([seed, 15, 4])
    bases = {
        n: None if full or size <= TANGENTS
        else rng.choice((-1.0, 1.0), size=(TANGENTS, size)) / np.sqrt(size)
        for n, size in sizes.items()
    }
    grads: dict[str, np.ndarray] = {}
    for n, a in params.items():
        basis = bases[n]
        if basis is None:
            eye = np.eye(sizes[n])
            col = np.concatenate(
                [jvps(n, eye[i : i + CHUNK]) for i in range(0, sizes[n], CHUNK)]
            ) if sizes[n] else np.zeros(0)
            grads[n] = col.reshape(a.shape)
        else:
            grads[n] = np.asarray(jvps(n, basis), dtype=np.float64)
    count = sum(sizes[n] if b is None else TANGENTS for n, b in bases.items())
    notes = [
        f"Forward mode: the gradient was assembled from {count:,} JVPs and compared with "
        "finite differences along the same tangents."
    ]
    if full:
        return Forward(grads, None, tuple(notes))
    x0 = {n: np.array(a, copy=True) for n, a in params.items()}

    def reduced_loss(p: dict[str, np.ndarray]) -> float:
        point = {
            n: p[n] if b is None
            else (x0[n].astype(np.float64) + (b.T @ p[n].astype(np.float64)).reshape(x0[n].shape))
            .astype(x0[n].dtype)
            for n, b in bases.items()
        }
        return loss(point)

    reduced = {n: x0[n] if b is None else np.zeros(TANGENTS, x0[n].dtype) for n, b in bases.items()}
    cut = [n for n, b in bases.items() if b is not None]
    notes.append(
        f"{', '.join(cut)}: checked along {TANGENTS} random tangents each (x = x0 + V·c; "
        f"entry k of the component is the JVP along tangent k): more than {FULL_FORWARD:,} "
        "coordinates in all would take one JVP each."
    )
    return Forward(grads, (reduced_loss, reduced), tuple(notes))


def merge_orders(first: Report, second: Report) -> Report:
    """One report for order=2: the first-order components and the backward's derivatives."""
    merged = _adapters.merge(
        {"order 1": first, "order 2": second}, lambda name, key: name
    )
    if first.passed and second.passed is False:
        merged = _adapters.with_notes(
            merged,
            [
                "order=2: the gradient itself agrees with finite differences, but the backward's "
                "own derivatives do not: the backward is right in value and wrong under "
                "differentiation (a detached or stop_gradient'ed factor, a missing "
                "create_graph path)."
            ],
        )
    return merged


def second_names(names: Sequence[str], outputs: int) -> tuple[list[str], list[str]]:
    """Component names of the order-2 check: one per input, one cotangent per output."""
    inputs = [f"{n} ({INPUT})" for n in names]
    cots = [COTANGENT] if outputs == 1 else [f"{COTANGENT} (output {k})" for k in range(outputs)]
    return inputs, cots


def second_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of the order-2 check: ``layers`` renamed to its components."""
    out = dict(options)
    if out.get("layers") is not None:
        out["layers"] = [f"{n} ({INPUT})" for n in out["layers"]]
    return out


def second_note(n_outputs: int) -> str:
    return (
        "order=2: G(x, u) = ⟨vjp(x, u), w⟩ with random cotangent u and weights w (from seed); "
        "its finite differences w.r.t. the inputs and u are compared with double backward. "
        f"'<input> ({INPUT})' is the backward's derivative w.r.t. that input, "
        f"'{COTANGENT}' its derivative w.r.t. the cotangent"
        + (" of each output." if n_outputs > 1 else ".")
    )


def _random(seed: int, salt: int, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    rng = np.random.default_rng([seed, 15, salt])
    return [rng.standard_normal(tuple(s)) for s in shapes]


# --- PyTorch ----------------------------------------------------------------------------------


def torch_jvps(
    problem: Any, objective: Callable, leaves: Mapping[str, Any], cast: Callable, api: str
) -> Callable[[str, np.ndarray], np.ndarray]:
    """``jvps(name, rows)``: J's derivative along each tangent row, by forward AD with dual
    numbers (which runs a custom Function's ``jvp``), one evaluation per row."""
    import torch
    import torch.autograd.forward_ad as fwAD

    primal = {n: t.detach() for n, t in leaves.items()}

    def jvps(name: str, rows: np.ndarray) -> np.ndarray:
        t = primal[name]
        out = np.zeros(len(rows))
        with torch.no_grad(), warnings.catch_warnings():
            # forward AD loads its decompositions with torch.jit.script the first time
            warnings.filterwarnings("ignore", ".*torch.jit.script", DeprecationWarning)
            for k, row in enumerate(rows):
                tangent = torch.as_tensor(row, dtype=t.dtype, device=t.device).reshape(t.shape)
                with fwAD.dual_level():
                    duals = dict(primal)
                    duals[name] = fwAD.make_dual(t, tangent)
                    try:
                        j = objective(problem.call(duals, cast))
                    except (NotImplementedError, RuntimeError) as error:
                        raise GradCheckError(
                            f"{api}(mode='forward'): forward-mode AD failed on {name} "
                            f"({_adapters.short(error)}). A custom autograd.Function needs a "
                            "jvp staticmethod for forward mode; use mode='reverse' otherwise."
                        ) from error
                    d = fwAD.unpack_dual(j).tangent
                out[k] = 0.0 if d is None else float(d)
        return out

    return jvps


def torch_second(
    problem: Any,
    objective: Any,
    dtypes: Mapping[str, Any],
    cast: Callable,
    options: Mapping[str, Any],
    notes: Sequence[str],
    leaves: Callable[[Any], list[Any]],
) -> Report:
    """The order-2 check of a torch problem (see the module docstring)."""
    import torch

    device = next(iter(problem.tensors.values())).device
    names = list(problem.names)
    seed = options.get("seed", 0)

    def outputs(tensors: dict[str, Any]) -> list[Any]:
        out = problem.call(tensors, cast)
        if objective.loss_fn is not None:
            j = objective.loss_fn(out)
            return [j.reshape(())] if isinstance(j, torch.Tensor) else leaves(j)
        return leaves(out)

    x0 = {n: problem.tensors[n].detach().to(device="cpu", dtype=dtypes[n]).numpy().copy()
          for n in names}
    with torch.no_grad():
        probe = outputs({n: torch.tensor(x0[n], dtype=dtypes[n], device=device) for n in names})
    out_dtypes = [o.dtype for o in probe]
    in_names, cot_names = second_names(names, len(probe))
    params = {a: x0[n] for a, n in zip(in_names, names, strict=True)}
    for c, o, u in zip(cot_names, probe, _random(seed, 1, [o.shape for o in probe]), strict=True):
        params[c] = u.astype(np.dtype(str(o.dtype).replace("torch.", "")))
    weights = [
        torch.tensor(w, dtype=dtypes[n], device=device)
        for n, w in zip(names, _random(seed, 2, [x0[n].shape for n in names]), strict=True)
    ]

    def g_of(p: dict[str, np.ndarray], create: bool) -> tuple[Any, list[Any]]:
        xs = [torch.tensor(p[a], dtype=dtypes[n], device=device, requires_grad=True)
              for a, n in zip(in_names, names, strict=True)]
        us = [torch.tensor(p[c], dtype=d, device=device, requires_grad=create)
              for c, d in zip(cot_names, out_dtypes, strict=True)]
        with torch.enable_grad():
            outs = outputs(dict(zip(names, xs, strict=True)))
            pairs = [(o, u) for o, u in zip(outs, us, strict=True) if o.requires_grad]
            if not pairs:
                return torch.zeros((), dtype=torch.float64), xs + us
            vjp = torch.autograd.grad(
                [o for o, _ in pairs], xs, grad_outputs=[u for _, u in pairs],
                allow_unused=True, create_graph=create,
            )
            g = sum((v * w).sum() for v, w in zip(vjp, weights, strict=True) if v is not None)
        return g, xs + us

    def loss(p: dict[str, np.ndarray]) -> float:
        return float(g_of(p, False)[0])

    try:
        g, wrt = g_of(params, True)
        with torch.enable_grad():
            if isinstance(g, torch.Tensor) and g.requires_grad:
                second = torch.autograd.grad(g, wrt, allow_unused=True)
            else:
                second = [None] * len(wrt)
    except RuntimeError as error:  # @once_differentiable, a backward that breaks create_graph
        raise GradCheckError(
            f"order=2: the backward could not be differentiated ({_adapters.short(error)}). "
            "A custom Function's backward must be built from differentiable torch operations "
            "(no @once_differentiable, no .numpy() round trip) for double backward; check it "
            "with order=1 otherwise."
        ) from error
    grads = {
        a: np.zeros(params[a].shape) if d is None else d.detach().cpu().double().numpy()
        for a, d in zip([*in_names, *cot_names], second, strict=True)
    }
    report = _adapters.run_check(
        loss, params, grads, second_options(options), None,
        [second_note(len(probe)), *notes],
    )
    cut = [a for a, d in zip([*in_names, *cot_names], second, strict=True) if d is None]
    if not report.passed and set(cut) & set(report.suspects):
        report = _adapters.with_notes(report, [
            f"order=2: double backward found no path from the backward to {', '.join(cut)} "
            "(None from autograd.grad): the backward is not differentiable there "
            "(@once_differentiable, .detach(), a NumPy round trip, no create_graph path)."
        ])
    return report


# --- JAX --------------------------------------------------------------------------------------


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
                    f"({_adapters.short(error)}). A jax.custom_vjp function has no forward-mode "
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
    in_names, cot_names = second_names(names, len(probe))
    params = {a: x for a, x in zip(in_names, x0, strict=True)}
    for c, o, u in zip(cot_names, probe, _random(seed, 1, [o.shape for o in probe]), strict=True):
        params[c] = u.astype(np.dtype(o.dtype))
    weights = [jnp.asarray(w, dtype=x.dtype)
               for w, x in zip(_random(seed, 2, [x.shape for x in x0]), x0, strict=True)]

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
    grads = {
        a: np.asarray(d, dtype=np.float64)
        for a, d in zip([*in_names, *cot_names], [*dx, *du], strict=True)
    }
    return _adapters.run_check(
        loss, params, grads, second_options(options), None,
        [second_note(len(probe)), *notes],
    )
