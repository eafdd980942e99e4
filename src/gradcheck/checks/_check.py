"""``check``: the public NumPy check, composing the verdict (``core``) with the diagnosis.

The verdict knows nothing of the diagnosis; the diagnosis gets the verdict as a function
(``recheck``) to confirm a candidate correction. This module is where the two meet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.checks._forms import prepare
from gradcheck.core._coords import DEFAULT_BUDGET, BudgetSpent
from gradcheck.core._layout import Layout
from gradcheck.core._options import replaced, validate
from gradcheck.core._progress import CheckInterrupted
from gradcheck.core._tree import Params
from gradcheck.core._validate import course_extras, shared_memory
from gradcheck.core.verdict import SchemeName, run
from gradcheck.diagnose._diagnose import check_batch_size, diagnose, finish
from gradcheck.report._report import Report
from gradcheck.report._sentences import Note, NoteCode


def check(
    loss: Callable[..., Any],
    params: Params,
    grads: Params | Callable[..., Params] | Literal["returned"],
    *,
    eps: float | dict[str, float] | None = None,
    scheme: SchemeName = "central",
    seed: int = 0,
    rtol: float | dict[Any, float] | None = None,
    atol: float | dict[Any, float] | None = None,
    layers: Sequence[str] | None = None,
    order: int = 1,
    batch_size: int | None = None,
    coords: Literal["auto", "all", "directional"] | int | float = "auto",
    budget: int = DEFAULT_BUDGET,
    batched_loss: Callable[[np.ndarray], Any] | None = None,
    executor: Any = None,
    progress: bool | None = None,
    on_interrupt: Literal["raise", "report"] = "raise",
    layout: Mapping[str, Any] | Layout | None = None,
    args: Sequence[Any] = (),
) -> Report:
    """Compares backprop gradients with finite differences, parameter by parameter.

    Args:
      loss: ``loss(params) -> J``, a float or a size-1 array (``loss(params, *args)`` with
        ``args``; ``(J, grad)`` with ``grads="returned"``).
      params: an ndarray, or dicts / lists / tuples of ndarrays (``{"W1": ..., "b1": ...}``).
      grads: the analytic gradients in the same structure, ``grads(params)`` returning them, or
        "returned" when ``loss`` returns ``(J, grad)`` (Octave's ``[J grad]``, scipy's
        ``jac=True``, cs231n's ``loss, grads``): one call per point gives both.
      eps: the step; None chooses one per parameter from the measured noise and its scale.
      scheme: "central" (default), "forward", "backward", "richardson" or "complex".
      seed: seeds gradcheck's own generator (random directions); the global RNG is untouched.
      rtol, atol: precision allowed to the analytic gradient, by dtype (``{np.float32: 1e-4}``).
      layers: parameter names from input to output, for locating where a bug starts.
      order: the derivative order checked; the NumPy check compares first derivatives
        (``order=1``); second order is in the torch and JAX adapters.
      batch_size: the batch size m, if known; only used to name a wrong factor of m or 1/m
        ("looks like a missing 1/m") in ``report.findings``.
      coords: which coordinates: "all"; an int k or a fraction (a sample stratified per tensor);
        "directional" (random directions per tensor, bisected down to wrong entries); "auto"
        (default): "all" when the loss calls fit ``budget``, else directional plus a sample.
      budget: loss calls "auto" may spend, every phase counted (noise probes, directions, the
        sample, second opinions, the diagnosis); default 4,000: every coordinate up to
        N ≈ 1,700, above that directions, bisection and a stratified sample (the report says
        what was left out). The other modes do what they name and are not capped.
      batched_loss: ``fn(thetas) -> Js`` for a (B, N) stack of flattened parameter vectors
        (every parameter raveled in C order, concatenated in structure order); used in place of
        ``loss`` for the perturbed evaluations.
      executor: a ``concurrent.futures`` executor or a Dask ``Client`` to spread evaluations.
      progress: show a progress bar after 1 s; None (default) only when stderr is a terminal.
      on_interrupt: on Ctrl-C, "raise" ``CheckInterrupted`` (a KeyboardInterrupt whose
        ``.report`` is the partial report) or "report" to return the partial report.
      layout: for a flat θ, the names and shapes packed in it, in θ's order
        (``{"W1": (784, 300), "b1": 300, ...}``, read row-major as NumPy's ravel), or
        ``gradcheck.Layout(shapes, order="F")`` for Octave/MATLAB's ``[Theta1(:); Theta2(:)]``.
        θ and a flat grad are then checked and reported as those named tensors (``W1[i, j]``);
        the loss still receives a flat vector of θ's shape, and ``eps``/``layers`` use the names.
      args: extra positional arguments of ``loss`` (and of a ``grads`` function), as in
        ``scipy.optimize.minimize``: ``loss(theta, *args)``.

    Returns:
      A frozen ``Report``; ``report.passed`` is the verdict, ``print(report)`` shows a table.

    >>> w = np.array([1.0, 2.0, 3.0])
    >>> check(lambda p: (p["w"] ** 3).sum(), {"w": w}, {"w": 3 * w**2}).passed
    True
    >>> check(lambda p: (p["w"] ** 3).sum(), {"w": w}, {"w": 3 * w}).suspects
    ('w',)
    >>> theta = np.arange(1.0, 5.0)  # a flat θ holding W (2, 2), read with a layout
    >>> g = 3 * theta**2 * np.array([1, 1, 1, 2])
    >>> check(lambda t: (t ** 3).sum(), theta, g, layout={"W": (2, 2)}).components["W"].worst_index
    (1, 1)
    """
    numerics = validate(eps=eps, scheme=scheme, seed=seed, rtol=rtol, atol=atol)
    check_batch_size(batch_size)
    layers = validate_layers(layers)
    validate_order(order)
    config = numerics.selecting(
        coords=coords, budget=budget, batched_loss=batched_loss, executor=executor,
        progress=progress,
    )
    if on_interrupt not in ("raise", "report"):
        raise OptionError(f"on_interrupt={on_interrupt!r} must be 'raise' or 'report'.")
    forms = prepare(loss, params, grads, layout=layout, args=args, batched_loss=batched_loss)
    loss, params, grads = forms.loss, forms.params, forms.grads
    if forms.batched_loss is not batched_loss:  # read through a layout
        config = dataclasses.replace(config, batched_loss=forms.batched_loss)
    report = run(loss, params, grads, config)
    report = replaced(report, notes=(*forms.notes(), *report.notes))
    findings, origin = diagnose(report.components, report.suspects, layers)
    report = replaced(report, findings=findings, origin=origin,
                                 layers=None if layers is None else tuple(layers))
    extras = () if callable(grads) else course_extras(params, grads)
    shared = shared_memory(params)
    if shared:
        pairs = ", ".join(f"{a} and {b}" for a, b in shared)
        report = replaced(report, notes=(
            *report.notes, Note(NoteCode.SHARED_MEMORY, None, {"pairs": pairs})))
    if extras:
        report = replaced(report, notes=(
            *report.notes, Note(NoteCode.EXTRA_GRADS, None, {"extras": list(extras)})))
    if report.interrupted:
        if on_interrupt == "raise":
            raise CheckInterrupted(report)
        return report
    extra = 0
    # The diagnosis's re-checks and Taylor tests spend what "auto" left of the budget.
    left = budget - report.evaluations if coords == "auto" else None

    def counted(p: Params) -> Any:  # the diagnosis's re-checks and Taylor test call it too
        nonlocal extra
        if left is not None and extra >= left:
            raise BudgetSpent(f"budget={budget:,} loss calls spent")
        extra += 1
        return loss(p)

    def recheck(fn: Callable[[Params], Any], p: Params, corrected: Params, name: str) -> bool:
        # A candidate correction of one tensor (``name``) is judged as the check judged it:
        # the user's eps, scheme, seed, rtol and atol, on every coordinate, here.
        eps = config.eps_value(name)  # the tensor alone is "theta": its own forced step
        rechecks = dataclasses.replace(config, coords="all", budget=DEFAULT_BUDGET,
                                       batched_loss=None, executor=None, progress=False, eps=eps)
        again = run(fn, p, corrected, rechecks)
        if again.interrupted:  # Ctrl-C in a re-check: not a "no", a stop
            raise KeyboardInterrupt
        return bool(again.passed)

    try:
        report = finish(
            report, counted, params, grads, seed=seed, batch_size=batch_size, recheck=recheck,
            calls_left=(lambda: left - extra) if left is not None else None, layers=layers,
        )
    except KeyboardInterrupt:  # the verdict is complete; only the diagnosis was cut short
        note = Note(NoteCode.DIAGNOSIS_INTERRUPTED)
        report = replaced(report, notes=(*report.notes, note))
        if on_interrupt == "raise":
            raise CheckInterrupted(report) from None
    return replaced(report, evaluations=report.evaluations + extra)


def validate_layers(layers: Any) -> list[str] | None:
    """``layers=``: parameter names from input to output, or None."""
    if layers is None:
        return None
    if isinstance(layers, str | bytes) or not isinstance(layers, Sequence):
        raise OptionError(
            f"layers={layers!r} must be a sequence of parameter names from input to output, "
            "e.g. layers=['W1', 'b1', 'W2', 'b2'] (or None)."
        )
    return [str(name) for name in layers]


def validate_order(order: Any) -> None:
    """``order=``: the derivative order (as in ``jax.test_util.check_grads``)."""
    if isinstance(order, bool) or order != 1:
        hint = (
            " The NumPy check compares first derivatives; second derivatives are checked by "
            "gradcheck.torch / gradcheck.jax with order=2."
            if order == 2 and not isinstance(order, bool) else ""
        )
        raise OptionError(
            f"order={order!r} is the derivative order and must be 1 here.{hint} To name the "
            "parameters from input to output, use layers=[...]."
        )

