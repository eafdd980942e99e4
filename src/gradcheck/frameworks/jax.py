"""Checking JAX functions (``jit``, ``custom_vjp``, ``custom_jvp``, pytrees) with the NumPy core.

Analytic gradients come from ``jax.grad`` (which runs the user's custom rules); numeric ones
from finite differences of the same function, both in float64 under a scoped ``jax_enable_x64``
when the function runs in float64, else in its own dtype with the core's noise-aware tolerance.
jax is imported inside the functions: ``import gradcheck`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gradcheck._errors import GradCheckError, NonFiniteError, short
from gradcheck.frameworks import _batching, _higher, _higher_jax, _jit, _protocol
from gradcheck.frameworks import _shared as _adapters
from gradcheck.frameworks._jax_compiled import (  # noqa: F401 - CHUNK, _COMPILED: for tests
    _COMPILED,
    CHUNK,
    _Compiled,
    _PlainLoss,
    _Traced,
)
from gradcheck.frameworks._jax_problem import (
    _cast64,
    _Problem,
    _x64,
)
from gradcheck.frameworks._jax_stacks import (  # noqa: F401 - _Stacks: for tests
    _AtTheta,
    _batched,
    _Stacks,
    merged_program,
)
from gradcheck.report._sentences import Note

if TYPE_CHECKING:
    from gradcheck.report._report import Report


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
    combined = _objective(problem)  # its cotangents, once drawn, say which outputs J sums
    wide, why, program = _wants_x64(problem, precision, combined, vectorize)
    if not wide:
        _refuse_narrow(problem, precision, why)
    with _x64(wide):
        report = _check_outputs(
            problem, wide, why, options, vectorize, higher[1], combined, program
        )
        if higher[0] == 1:
            return report
        cast = _cast64 if wide else (lambda x: x)
        dtypes = [np.float64 if wide else np.dtype(x.dtype) for x in problem.originals()]
        note = _precision_note(problem, wide, why)
        second = _higher_jax.jax_second(problem, cast, dtypes, options, [note])
        return _higher.merge_orders(report, second)


def _check_outputs(
    problem: _Problem,
    wide: bool,
    why: str,
    options: dict[str, Any],
    vectorize: str,
    mode: str,
    combined: _protocol.Objective,
    program: _Compiled | None = None,
) -> Report:
    """The first-order check by the protocol's rule: the outputs together, then one by one
    (``_protocol.by_output``) where that fails; the conjugation probe for complex inputs."""

    def one(pick: int | None) -> Report:
        objective, made = (combined, program) if pick is None else (None, None)
        report = _check(
            problem, wide, why, options, vectorize, mode, pick=pick, objective=objective,
            merged=made,
        )
        if mode == "reverse" and _adapters.wants_conjugation_probe(report, problem.complex):
            again = _check(problem, wide, why, options, vectorize, mode, True, pick)
            report = _adapters.conjugation_probe(report, again, problem.complex, _adapters.JAX)
        return report

    screen = None  # the linearity screen: reverse mode, real inputs (as in torch)
    if mode == "reverse" and not problem.complex:
        screen = _adds_up(problem, wide, combined)
    return _protocol.by_output(one(None), lambda: range(_n_outputs(problem, wide)), one, screen)


def _adds_up(problem: _Problem, wide: bool, objective: _protocol.Objective) -> Callable[[], bool]:
    """The protocol's linearity screen of several outputs: ``jax.grad`` of each output alone
    against the combined one, all in one compiled program (no loss call). The outputs are the
    leaves the check drew a cotangent for (none for a scalar J): nothing is traced to count
    them."""

    def screen() -> bool:
        import jax

        outputs = sorted(objective.cotangents)
        if len(outputs) < 2:
            return True
        cast = _cast64 if wide else (lambda x: x)
        values = [_cast64(x) if wide else x for x in problem.originals()]
        parts = [objective, *(objective.alone(k) for k in outputs)]

        def gradients(v: list[Any]) -> list[Any]:
            return [jax.grad(lambda u, o=o: o(problem.call(u, cast)))(v) for o in parts]

        try:
            run = _jit.program(gradients, values)
        except Exception:  # noqa: BLE001 - fn does not trace: op by op
            run = gradients
        combined, *alone = (
            {n: np.asarray(g, dtype=np.float64) for n, g in zip(problem.names, grads, strict=True)}
            for grads in run(values)
        )
        eps = max(float(np.finfo(np.float64 if wide else x.dtype).eps) for x in values)
        return _protocol.gradients_add_up(combined, alone, eps)

    return screen


JAX_HOW = "jax.grad, under a scoped jax_enable_x64,"


def _precision_note(problem: _Problem, wide: bool, why: str) -> Any:
    """Which dtype was evaluated, and why (the dtype policy's note)."""
    kinds = ", ".join(sorted({str(np.dtype(x.dtype)) for x in problem.originals()}))
    if wide:
        return _protocol.precision_note(kinds.split(", "), "float64", JAX_HOW)
    return _protocol.precision_note(kinds.split(", "), kinds, JAX_HOW, why)


def _n_outputs(problem: _Problem, wide: bool) -> int:
    """How many floating and complex leaves ``fn``'s output has (traced, nothing computed)."""
    import jax

    cast = _cast64 if wide else (lambda x: x)
    values = [_cast64(x) if wide else x for x in problem.originals()]
    try:
        shapes = jax.eval_shape(lambda *v: problem.call(list(v), cast), *values)
    except Exception:  # noqa: BLE001 - fn needs concrete values: one plain call
        shapes = problem.call(values, cast)
    return len(_higher_jax.inexact_leaves(shapes))


class _Jax:
    """JAX's side of the adapter protocol (``_protocol.Adapter``)."""

    def leaves(self, out: Any) -> list[Any]:
        leaves = _higher_jax.inexact_leaves(out)
        if not leaves:
            raise GradCheckError(
                "gradcheck.jax.check: fn returned no floating-point array; return J or the "
                "array your custom rule differentiates."
            )
        return leaves

    def is_complex(self, leaf: Any) -> bool:
        import jax.numpy as jnp

        return bool(jnp.issubdtype(leaf.dtype, jnp.complexfloating))

    def real_view(self, leaf: Any) -> Any:
        import jax.numpy as jnp

        if self.is_complex(leaf):
            return jnp.stack([jnp.real(leaf), jnp.imag(leaf)], axis=-1)
        return leaf

    def shape(self, view: Any) -> tuple[int, ...]:
        return tuple(view.shape)

    def size(self, leaf: Any) -> int:
        return int(np.prod(leaf.shape))

    def scalar(self, leaf: Any) -> Any:
        return leaf.reshape(())

    def constant(self, view: Any, r: np.ndarray) -> Any:
        import jax.numpy as jnp

        return jnp.asarray(r, dtype=view.dtype)

    def key(self, view: Any) -> Any:
        return None  # made while tracing: a constant of the traced function, no cost per call

    def dot(self, view: Any, c: Any) -> Any:
        import jax.numpy as jnp

        return jnp.sum(view * c)

    def entry(self, view: Any, m: int) -> Any:
        return view.reshape(-1)[m]

    def loss(self, j: Any) -> Any:
        return j


JAX = _Jax()


def _objective(
    problem: _Problem, real_cotangent: bool = False, pick: int | None = None
) -> _protocol.Objective:
    """J from the output by the protocol's rule: itself when one real scalar, else
    Σ_k ⟨out_k, R_k⟩ (``pick``: output k alone)."""
    picks = None if pick is None else (pick,)
    return _protocol.Objective(JAX, problem.seed, picks=picks, real_cotangent=real_cotangent)


def _padded(values: Sequence[Any]) -> np.ndarray:
    """The leaves as one flat float64 row, repeated to CHUNK rows (the one program's input)."""
    row = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in values])
    return np.repeat(row[None, :], CHUNK, axis=0)


def _gradient(j_of: Callable, values: list[Any], keep: list[Any]) -> tuple[Any, Any]:
    """J and ``jax.grad`` of J at ``values``: traced afresh (what ``fn`` and its custom rules
    say now), run as one compiled program (``_jit.program``: compiled once per distinct
    program), or op by op where ``fn`` does not trace (Python control flow on values).
    ``keep`` receives the compiled program, whose J serves as the plain J elsewhere."""
    import jax

    try:
        run = _jit.program(jax.value_and_grad(j_of), values)
    except Exception:  # noqa: BLE001 - op by op: it works, or raises jax.grad's own error
        return jax.value_and_grad(j_of)(values)
    keep.append(run)
    return run(values)


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


def _wants_x64(
    problem: _Problem, precision: str, objective: _protocol.Objective, vectorize: str
) -> tuple[bool, str, _Compiled | None]:
    """Whether to run in float64, and if not, why (for the note). J's dtype comes from the
    trace of the check's one program in float64 (``merged_program``), kept for the check
    where it is float64; else from a trace of J alone."""
    if precision == "native":
        return False, "precision='native' was asked for", None
    program = None
    try:
        with _x64(True):
            originals = problem.originals()

            def j(v: Sequence[Any]) -> Any:
                return objective(problem.call(v, _cast64))

            program = merged_program(j, originals, [np.float64] * len(originals), vectorize)
            if program is not None:
                ok = np.dtype(program.fn.dtype) == np.float64
            else:
                out = _jit.output_type(j, [_cast64(x) for x in originals])
                ok = np.dtype(out.dtype) == np.float64
        why = "its output is not float64"
    except Exception as error:  # a float32-only kernel: check it in its own dtype
        ok, why = False, f"it raised in float64 ({short(error)})"
    if not ok and precision == "float64":
        raise GradCheckError(
            f"gradcheck.jax.check(precision='float64'): fn cannot run in float64 ({why}). "
            "Use precision='auto' to check it in its own dtype."
        )
    return ok, why, program if ok else None


def _check(
    problem: _Problem,
    wide: bool,
    why: str,
    options: dict[str, Any],
    vectorize: str,
    mode: str = "reverse",
    real_cotangent: bool = False,
    pick: int | None = None,
    objective: _protocol.Objective | None = None,
    merged: _Compiled | None = None,
) -> Report:
    """The first-order check of J (``pick``: output ``pick`` alone; ``objective``: J's rule,
    when the caller keeps it) in ``mode``."""
    import jax

    cast = _cast64 if wide else (lambda x: x)
    originals = problem.originals()
    # the leaves' dtypes as JAX holds them (float64 is float32 where x64 is off): no array made
    dtypes = [np.float64 if wide else jax.dtypes.canonicalize_dtype(x.dtype) for x in originals]
    objective = objective or _objective(problem, real_cotangent, pick)

    def j_of(values: Sequence[Any]) -> Any:
        return objective(problem.call(values, cast))

    params = {
        n: np.asarray(x, dtype=d) for n, x, d in zip(problem.names, originals, dtypes, strict=True)
    }

    def values_of(p: dict[str, np.ndarray]) -> list[Any]:
        # device_put of NumPy arrays: jnp.asarray would compile a conversion per shape
        return [jax.device_put(np.asarray(p[n], dtype=d)) for n, d in zip(problem.names, dtypes, strict=True)]

    gradient: list[Any] = []  # the compiled (value, gradient) program, once traced
    traced = _Traced(problem, cast, dtypes, wide, real_cotangent, objective, gradient)
    # One program for the check where fn traces: the stacks' J and the gradient at θ.
    if merged is None:  # else traced already, by the dtype test
        merged = merged_program(j_of, list(params.values()), dtypes, vectorize)
    if merged is not None:
        gradient.append(lambda values: merged(_padded(values))[1])

    def at(p: dict[str, np.ndarray]) -> list[Any]:
        """The point as the gradient program takes it: the check's one program reads NumPy
        rows (cast to the leaves' dtypes here), so nothing is put on the device and back."""
        if merged is None:
            return values_of(p)
        return [np.asarray(p[n], dtype=d) for n, d in zip(problem.names, dtypes, strict=True)]

    jit_note: list[Note] = []  # filled when the plain loss is first called and cannot be jitted
    plain = _PlainLoss(traced, j_of, jit_note)

    batching: list[bool] = []  # whether the batched path was taken

    def loss(p: dict[str, np.ndarray]) -> float:
        # Beside the batched path, the few plain Js (the diagnosis') come from the compiled
        # gradient program (its forward pass), so the plain J is not compiled on its own.
        if batching and batching[0] and gradient:
            return float(gradient[0](at(p))[0])
        return own(p)

    def own(p: dict[str, np.ndarray]) -> float:  # the plain J, compiled on its first call
        return float(plain(values_of(p)))

    at_theta: list[float] = []  # J at θ from the gradient's own forward pass
    theta_rows = _AtTheta(merged)  # and the one program's J of θ's rows, from the same call

    def reverse() -> dict[str, np.ndarray]:
        # Traced afresh on every check (never a cached trace): the backward is what is judged.
        try:
            if merged is not None:  # the check's one program (traced afresh above)
                value, grad_values = theta_rows.gradient(_padded(at(params)))
            elif gradient:
                value, grad_values = gradient[0](at(params))
            else:
                value, grad_values = _gradient(j_of, values_of(params), gradient)
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
    early = reverse() if mode == "reverse" else None
    batched, reason = _batched(
        traced, params, lambda: at_theta[0] if at_theta else loss(params), vectorize, j_of,
        merged, theta_rows,
    )
    batched = _batching.choose_path(batched, own, params, CHUNK, "jax.vmap", vectorize)
    batching.append(batched is not None)
    notes = [
        _precision_note(problem, wide, why), _batching.evaluation_note(batched, reason, "jax.vmap")
    ]

    def again(q: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # the gradient at another point
        # the check's compiled program where fn traced (the gradient judged at θ), else op by op
        g = gradient[0](at(q))[1] if gradient else jax.grad(j_of)(values_of(q))
        return {n: np.asarray(v, dtype=np.float64) for n, v in zip(problem.names, g, strict=True)}

    def run(grads: dict[str, np.ndarray], reduced: tuple | None = None) -> Report:
        fn, p, b = (loss, params, batched) if reduced is None else (*reduced, None)
        given: Any = grads
        if reduced is None and mode == "reverse":  # judged off kinks and ties with jax.grad
            given = _higher.GradsAt(params, grads, again)
        try:
            report = _adapters.run_check(fn, p, given, options, b, [], problem.dtypes)
        except NonFiniteError as error:
            if str(error).startswith("grads["):
                error.add_note(_adapters.nonfinite_grad_note(str(error), "jax.grad(fn)", "jnp.where"))
            raise
        report = _adapters.with_notes(report, notes + jit_note + problem.notes)
        report = _adapters.leave_unchecked(report, problem.unchecked)
        return _adapters.complex_findings(report, problem.complex, _adapters.JAX)

    def forward() -> _higher.Forward:  # built only for mode="forward"/"both"
        jvps = _higher_jax.jax_jvps(j_of, values_of(params), problem.names, "gradcheck.jax.check")
        return _higher.forward_gradient(jvps, params, loss, options.get("seed", 0))

    return _higher.by_mode(mode, run, reverse if early is None else lambda: early, forward)


