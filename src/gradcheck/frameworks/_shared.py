"""What the torch and JAX adapters share: option checks, batched wiring, notes, merged reports.

The adapters turn a framework function into a NumPy ``loss(params)`` plus analytic gradients
and hand both to the core ``check``; nothing here knows about torch or JAX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.frameworks._batching import accepts_batched
from gradcheck.report._model import (
    AGREES,
    MISMATCH,
    relative_error,
    verdict,
)
from gradcheck.report._report import Report
from gradcheck.report._sentences import Note, NoteCode

# Keyword options the adapters forward to ``gradcheck.check`` (the rest are their own).
FORWARDED = (
    "eps",
    "scheme",
    "seed",
    "rtol",
    "atol",
    "layers",
    "batch_size",
    "coords",
    "budget",
    "progress",
    "on_interrupt",
)
PRECISIONS = ("auto", "float64", "native")
VECTORIZE = ("auto", "vmap", "loop")


def check_options(api: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options for ``check``, or an ``OptionError`` naming the unknown one and the valid ones."""
    unknown = sorted(set(options) - set(FORWARDED))
    if unknown:
        raise OptionError(
            f"{api}() got an unexpected option {unknown[0]!r}. Valid options: "
            + ", ".join(FORWARDED)
            + ", plus the adapter's own (precision, vectorize, ...)."
        )
    if options.get("scheme") == "complex":
        raise OptionError(
            f"{api}(scheme='complex') is not supported: framework functions are evaluated on "
            "real tensors. Use scheme='central' (default) or 'richardson'."
        )
    return dict(options)


def input_labels(inputs: Sequence[Any], names: Sequence[str] | None) -> list[str]:
    """One name per input of ``check_function`` (default ``input0``, ``input1``, ...), or an
    ``OptionError`` when ``names`` does not give one per input."""
    labels = [f"input{i}" for i in range(len(inputs))] if names is None else list(names)
    if len(labels) != len(inputs):
        raise OptionError(
            f"check_function(names=...) has {len(labels)} names for {len(inputs)} inputs; "
            "give one name per input (non-tensor inputs included)."
        )
    return labels


def choose(api: str, what: str, value: Any, valid: Sequence[str]) -> str:
    """``value`` if it is one of ``valid``, else an ``OptionError`` listing them."""
    if value not in valid:
        raise OptionError(
            f"{api}({what}={value!r}) is not valid. Valid values: "
            + ", ".join(repr(v) for v in valid)
            + "."
        )
    return value


def run_check(
    loss: Callable[[Any], float],
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    options: dict[str, Any],
    batched: Callable[[np.ndarray], np.ndarray] | None,
    notes: Sequence[str],
    native: Mapping[str, str] | None = None,
) -> Report:
    """``gradcheck.check`` with the batched loss when the core accepts one, plus our notes and
    each tensor's dtypes (``with_dtypes``; ``native``: the user's dtype of each tensor)."""
    from gradcheck.checks._check import check

    if batched is not None and accepts_batched():
        report = check(loss, params, grads, batched_loss=batched, **options)
    else:
        report = check(loss, params, grads, **options)
    # with_dtypes(with_notes(report, notes), native) as one new report, not two
    said = tuple(n() if callable(n) else n for n in notes)
    return _updated(report, components=_dtyped(report, native or {}),
                    notes=(*report.notes, *said))


_COMPLEX = {"float64": "complex128", "float32": "complex64", "float16": "complex32"}


def dtype_name(dtype: Any, complex_view: bool = False) -> str:
    """A framework dtype's plain name ("float32"); ``complex_view``: the dtype is a complex
    tensor's real view, named as the complex dtype.

    >>> dtype_name(np.float32), dtype_name("torch.float32", complex_view=True)
    ('float32', 'complex64')
    """
    name = str(np.dtype(dtype) if isinstance(dtype, type) else dtype).removeprefix("torch.")
    return _COMPLEX.get(name, name) if complex_view else name


def with_dtypes(report: Report, native: Mapping[str, str]) -> Report:
    """The adapters' dtypes on each component: ``evaluated_dtype``, the dtype the framework ran
    the function and its gradient in (the dtype of the arrays the adapter handed the core; a
    complex tensor's real view counts as its complex dtype), and ``dtype``, the user's own
    (``native``: tensor name → dtype name; a name not there keeps the evaluated one).

    >>> from gradcheck.checks._check import check
    >>> r = check(lambda p: float((p["x"] ** 2).sum()), {"x": np.ones(2)}, {"x": 2 * np.ones(2)})
    >>> c = with_dtypes(r, {"x": "float32"}).components["x"]
    >>> c.dtype, c.evaluated_dtype
    ('float32', 'float64')
    """
    return _updated(report, components=_dtyped(report, native))


def _dtyped(report: Report, native: Mapping[str, str]) -> dict[str, Any]:
    """``with_dtypes``' components (a component copied only where its dtypes change)."""
    components = {}
    for name, c in report.components.items():
        own = native.get(name, c.dtype)
        evaluated = _COMPLEX.get(c.dtype, c.dtype) if own.startswith("complex") else c.dtype
        same = (c.dtype, c.evaluated_dtype) == (own, evaluated)  # already so: no copy to make
        components[name] = c if same else dataclasses.replace(
            c, dtype=own, evaluated_dtype=evaluated)
    return components


def _updated(report: Report, **changes: Any) -> Report:
    """``dataclasses.replace(report, **changes)`` for a ``Report`` (every field an init field,
    none derived), built from its fields without replace's walk over them."""
    return type(report)(**{**vars(report), **changes})


def nonfinite_grad_note(message: str, grads: str, where: str) -> str:
    """Added to the core's NonFiniteError on grads[...]: what grads is (``grads``: the
    framework's gradient, e.g. "jax.grad(fn)") and, for a NaN, the commonest cause (``where``:
    the framework's where, e.g. "jnp.where").

    >>> "double-where" in nonfinite_grad_note("grads['x'] holds nan", "jax.grad(fn)", "jnp.where")
    True
    """
    note = f"gradcheck: 'grads' here is {grads}, the framework's own gradient at the given inputs."
    if "holds nan" not in message:
        return note
    return note + (
        f" A NaN there while J itself is finite is most often {where}(cond, f(x), y) with f "
        "non-finite where cond is False (sqrt, log, 1/x of a negative or zero x): the unused "
        "branch's derivative is NaN, and 0·NaN = NaN. Make f's input safe too "
        f"({where}(cond, x, 1.0) inside f: the double-where trick)."
    )


def with_notes(report: Report, notes: Sequence[str | Callable[[], str]]) -> Report:
    """``report`` with ``notes`` added (a function: the note it returns now, after the check)."""
    said = tuple(n() if callable(n) else n for n in notes)
    if not said:  # nothing to add: the report as it is
        return report
    return _updated(report, notes=tuple(report.notes) + said)


def merge(reports: Mapping[str, Report], label: Callable[[str, str], str]) -> Report:
    """One report from several (one per output), renaming each parameter ``label(name, key)``."""
    components, eps, suspects, findings, notes = {}, {}, [], [], []
    for key, r in reports.items():
        for name, c in r.components.items():
            new = label(name, key)
            components[new] = dataclasses.replace(c, name=new)
            eps[new] = r.eps[name]
        suspects += [label(s, key) for s in r.suspects]
        findings += [dataclasses.replace(f, param=label(f.param, key)) for f in r.findings]
        notes += [Note(NoteCode.PART, None, {"part": key, "note": n}) for n in r.notes]
    # Outputs are not layers: name an origin only when the suspects all come from one part.
    failed = [(key, r) for key, r in reports.items() if r.origin is not None]
    origin = label(failed[0][1].origin, failed[0][0]) if len(failed) == 1 else None
    checked = [(c.flags == AGREES) | (c.flags == MISMATCH) for c in components.values()]
    numeric = [c.numeric_array[m] for c, m in zip(components.values(), checked, strict=True)]
    analytic = [c.analytic_array[m] for c, m in zip(components.values(), checked, strict=True)]
    first = next(iter(reports.values()))
    return Report(
        passed=verdict(r.passed for r in reports.values()),
        relative_error=relative_error(np.concatenate(numeric), np.concatenate(analytic)),
        evaluations=sum(r.evaluations for r in reports.values()),
        eps=eps,
        scheme=first.scheme,
        components=components,
        suspects=tuple(suspects),
        notes=_dedupe(notes),
        findings=tuple(findings),
        origin=origin,
        interrupted=any(r.interrupted for r in reports.values()),
        seconds=sum(r.seconds for r in reports.values()),
    )


def _dedupe(notes: list[Note]) -> tuple[Note, ...]:
    """Notes that several parts repeat are said once, without the part's label.

    Two notes are the same when their code, tensor and sentence are (a note's numbers may hold
    figures its sentence does not show, such as timings, which differ between parts)."""
    keys = [_key(n.numbers["note"]) for n in notes]
    out: list[Note] = []
    for note, key in zip(notes, keys, strict=True):
        said = note.numbers["note"] if keys.count(key) > 1 else note
        if all(_key(n) != _key(said) for n in out):
            out.append(said)
    return tuple(out)


def _key(note: Note) -> tuple[Any, ...]:
    return (note.code, note.tensor, str(note))


# Special tensors live in _special; these names stay reachable from here for the adapters.
from gradcheck.frameworks._special import (  # noqa: E402, F401
    JAX,
    TORCH,
    complex_findings,
    conjugation_probe,
    leave_unchecked,
    nothing_checked,
    recount,
    view_notes,
    wants_conjugation_probe,
)
