"""What the torch and JAX adapters share: option checks, batched wiring, notes, merged reports.

The adapters turn a framework function into a NumPy ``loss(params)`` plus analytic gradients
and hand both to the core ``check``; nothing here knows about torch or JAX.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradcheck._errors import GradCheckError, OptionError
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


@functools.cache
def accepts_batched() -> bool:
    """Whether this ``gradcheck.check`` takes ``batched_loss`` (the scale engine's hook);
    asked once (``inspect.signature`` costs more than a small check's loss call)."""
    from gradcheck.checks._check import check

    return "batched_loss" in inspect.signature(check).parameters


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


def evaluation_note(
    batched: Callable | None, reason: str, tool: str
) -> Note | Callable[[], Note]:
    """One sentence saying how perturbed losses were evaluated, and why; where the path is
    chosen by measurement (``Chosen``), a function that says it once the check has run."""
    if isinstance(batched, Chosen):
        return batched.note
    if batched is not None:
        return Note(NoteCode.EVALUATION, None, {"tool": tool, "path": "batched"})
    return Note(NoteCode.EVALUATION, None, {"tool": tool, "path": "fallback", "reason": reason})


# A check of at most SMALL entries (all checked tensors together) runs every loss call through
# the adapter's own loop: it makes a few dozen calls, and one at a time they cost less than the
# batched path's fixed cost per call (torch.func.vmap: 0.2-0.5 ms a call however few rows, about
# nine calls per check, where a plain call of a small op costs tens of microseconds; measured
# break-even near 16-25 entries, BENCHMARKS.md "Small checks through the loop"). A rule on the
# size, not a timing: the path, and so J's last bits, are the same on every run.
SMALL = 16


def small(params: Mapping[str, np.ndarray], vectorize: str) -> int | None:
    """The number of entries when ``vectorize="auto"`` and the check is small enough to run
    through the loop (see ``SMALL``); None: the batched path is tried as usual.

    >>> small({"x": np.zeros(3), "y": np.zeros((2, 2))}, "auto"), small({"x": np.zeros(3)}, "vmap")
    (7, None)
    """
    n = sum(p.size if type(p) is np.ndarray else int(np.size(p)) for p in params.values())
    return n if vectorize == "auto" and n <= SMALL else None


def small_note(tool: str, entries: int) -> Note:
    """The evaluation note of a check run through the loop because it is small."""
    return Note(NoteCode.EVALUATION, None, {"tool": tool, "path": "small", "entries": entries})


# The loop takes over only where it measured clearly faster (a fifth): near a tie, timings on a
# loaded machine would flip the path (and its note) from run to run.
MARGIN = 0.8


class Chosen:
    """The batched loss, or the adapter's own loop where the loop measured faster: batching
    never loses by more than the measurement.

    Undecided until a stack of at least four chunks comes: its first chunk runs batched
    (warm-up: torch's dispatch, JAX's compilation), its second is timed, and rows of the same
    stack go through ``row_loss`` one by one for as long (after one untimed call); the faster
    path per row (the loop by a fifth at least) takes that whole stack (one path per stack: a central difference never mixes
    them) and every later one. The measurement costs at most one chunk's time more. ``vectorize="vmap"`` never gets here.

    >>> c = Chosen(lambda th: th.sum(1), lambda row: float(row.sum()), chunk=2, tool="vmap")
    >>> c(np.ones((3, 2))).tolist(), c.path   # too few rows to measure: batched, undecided
    ([2.0, 2.0, 2.0], None)
    """

    SAMPLE = 8

    def __init__(
        self,
        batched: Callable[[np.ndarray], np.ndarray],
        row_loss: Callable[[np.ndarray], float],
        chunk: int,
        tool: str,
        theta: np.ndarray | None = None,
        sizes: Sequence[int] = (),
    ) -> None:
        self.batched, self.row_loss, self.chunk, self.tool = batched, row_loss, chunk, tool
        # θ and where each tensor starts in it: the loop's full rows for one-tensor stacks
        self.theta = theta
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.path: str | None = None  # None: not measured yet; "batched" or "loop"
        self.per_row: dict[str, float] = {}  # seconds per row, as measured
        if getattr(batched, "by_tensor", None) is not None:
            self.by_tensor = lambda t, rows: self._stack(rows, t)

    def __call__(self, thetas: np.ndarray) -> np.ndarray:
        return self._stack(thetas, None)

    def _stack(self, rows: np.ndarray, t: int | None) -> np.ndarray:
        def go(r: np.ndarray) -> np.ndarray:
            out = self.batched(r) if t is None else self.batched.by_tensor(t, r)  # type: ignore[attr-defined]
            return np.asarray(out, dtype=np.float64).reshape(-1)

        if self.path == "loop":
            return self._loop(rows, t)
        if self.path == "batched" or len(rows) < 4 * self.chunk:
            return go(rows)
        first = go(rows[: self.chunk])
        start = time.perf_counter()
        second = go(rows[self.chunk : 2 * self.chunk])
        spent = time.perf_counter() - start
        self.per_row["batched"] = spent / self.chunk
        self._loop(rows[:1], t)  # untimed: the plain path's own first-call cost
        # The loop runs for as long as the timed chunk did (SAMPLE rows at least, a chunk at
        # most): on a loaded machine a short burst would fit in one time slice and look
        # faster than it is; spans of equal length share the load alike.
        done, start = 0, time.perf_counter()
        while done < self.chunk and (done < self.SAMPLE or time.perf_counter() - start < spent):
            self._loop(rows[1 + done : 2 + done], t)
            done += 1
        self.per_row["loop"] = (time.perf_counter() - start) / done
        if self.per_row["loop"] >= MARGIN * self.per_row["batched"]:
            self.path = "batched"
            return np.concatenate([first, second, go(rows[2 * self.chunk :])])
        self.path = "loop"
        return self._loop(rows, t)

    def _loop(self, rows: np.ndarray, t: int | None) -> np.ndarray:
        if t is not None:  # tensor t's entries alone: full rows, the others at their values
            whole = np.repeat(np.asarray(self.theta)[None, :], len(rows), axis=0)
            whole[:, self.starts[t] : self.starts[t + 1]] = rows
            rows = whole
        return np.array([self.row_loss(row) for row in rows], dtype=np.float64)

    def note(self) -> Note:
        """Which path ran, and the figures that chose it."""
        if self.path is None:
            return Note(NoteCode.EVALUATION, None, {"tool": self.tool, "path": "batched"})
        return Note(NoteCode.EVALUATION, None, {
            "tool": self.tool, "path": self.path,
            "batched_us": 1e6 * self.per_row["batched"], "loop_us": 1e6 * self.per_row["loop"],
        })


def choose_path(
    batched: Callable[[np.ndarray], np.ndarray] | None,
    loss: Callable[[dict[str, np.ndarray]], float],
    params: Mapping[str, np.ndarray],
    chunk: int,
    tool: str,
    vectorize: str,
) -> Callable[[np.ndarray], np.ndarray] | None:
    """``batched`` wrapped in ``Chosen`` for ``vectorize="auto"`` (the loop being ``loss`` of
    one row split into ``params``' shapes and dtypes); as it is otherwise."""
    if batched is None or vectorize != "auto":
        return batched
    names = list(params)
    shapes = [params[n].shape for n in names]
    sizes = [math.prod(s) for s in shapes]
    cuts = np.cumsum(sizes)[:-1]

    def row_loss(row: np.ndarray) -> float:
        parts = np.split(row, cuts)
        return float(loss({n: p.reshape(s).astype(params[n].dtype)
                           for n, p, s in zip(names, parts, shapes, strict=True)}))

    theta = np.concatenate([np.asarray(params[n], dtype=np.float64).reshape(-1) for n in names])
    return Chosen(batched, row_loss, chunk, tool, theta, sizes)


NO_HOOK = "this gradcheck.check takes no batched_loss."


def batched_refusal(vectorize: str) -> str | None:
    """Why no batched path is tried (``vectorize="loop"``, or a core without the hook); None:
    try one."""
    if vectorize == "loop":
        return "vectorize='loop' was asked for."
    return None if accepts_batched() else NO_HOOK


def probe_batched(
    fn: Callable[[np.ndarray], np.ndarray],
    rows: np.ndarray,
    plain: Callable[[], float],
    vectorize: str,
    tool: str,
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str]:
    """``(fn, "")`` if the batched ``fn`` agrees with a plain call on ``rows``; else
    ``(None, reason)`` for the loop fallback (or an error when ``vectorize="vmap"`` was asked)."""
    try:
        got, want = fn(rows), plain()
        ok = bool(np.allclose(got, want, rtol=1e-6, atol=1e-12 * max(1.0, abs(want))))
        reason = f"vmap gave {got[0]!r} where a plain call gives {want!r}."
    except Exception as error:  # no vmap rule, host callbacks, dropout, .item(), control flow...
        ok, reason = False, f"{tool} cannot batch it ({short(error)})."
    if ok:
        return fn, ""
    if vectorize == "vmap":
        raise GradCheckError(f"vectorize='vmap' was asked for, but {reason}")
    return None, reason


class Batched:
    """The batched loss handed to the core: ``self(thetas)`` for full (B, N) rows, and
    ``self.by_tensor(t, rows)`` for stacks that move tensor t alone (rows (B, n_t)).

    ``full(thetas)`` batches every tensor; ``moving(t, rows)`` batches tensor t only and holds
    the others at their given values (vmap's ``in_dims=None``), so what comes before t in the
    computation runs once per chunk, not once per row (None: no such path for t, use full
    rows). A tensor's ``moving`` path is trusted once
    its J at the given θ equals the full path's bit for bit (checked on its first stack, with
    one extra row); where it raises or differs, that tensor's stacks go through ``full`` (rows
    rebuilt here), so the numbers the verdict sees never depend on which path ran.

    >>> b = Batched(lambda th: th.sum(1), lambda t, r: r.sum(1) + (1.0 if t else 2.0),
    ...             np.array([1.0, 2.0]), [1, 1])
    >>> b.by_tensor(0, np.array([[5.0]])).tolist(), b.trusted
    ([7.0], {0: True})
    """

    def __init__(
        self,
        full: Callable[[np.ndarray], np.ndarray],
        moving: Callable[[int, np.ndarray], np.ndarray],
        theta: np.ndarray,
        sizes: Sequence[int],
        block: Callable[[np.ndarray, int, np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.full, self.moving, self.theta = full, moving, np.asarray(theta, dtype=np.float64)
        self.block = block  # block(θ, a, rows): full of θ with columns a: set to rows
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.trusted: dict[int, bool] = {}
        self._reference: float | None = None

    def __call__(self, thetas: np.ndarray) -> np.ndarray:
        js = self.full(thetas)
        if self._reference is None and len(thetas) == 1 and np.array_equal(thetas[0], self.theta):
            # J(θ) through the full path (the engine asks it first): the by-tensor reference,
            # the same call on the same row, so it is not made again
            self._reference = float(np.asarray(js).reshape(-1)[0])
        return js

    def by_tensor(self, t: int, rows: np.ndarray) -> np.ndarray:
        """J for each row of tensor t's entries, every other tensor at its given value."""
        if t not in self.trusted:
            own = self.theta[self.starts[t] : self.starts[t + 1]]
            try:
                js = self.moving(t, np.concatenate([rows, own[None, :]]))
                ok = js is not None and np.shape(js) == (len(rows) + 1,)
                ok = ok and bool(js[-1] == self.reference())
            except Exception:  # noqa: BLE001 - no batching rule for this pattern: use full rows
                ok = False
            self.trusted[t] = ok
            if ok:
                return js[:-1]
        if self.trusted[t]:
            try:
                js = self.moving(t, rows)
                if js is not None:
                    return js
            except Exception:  # noqa: BLE001 - the full path raises it again if it is real
                pass
            self.trusted[t] = False
        if self.block is not None:  # the full path builds its rows chunk by chunk
            return self.block(self.theta, int(self.starts[t]), rows)
        whole = np.repeat(self.theta[None, :], len(rows), axis=0)
        whole[:, self.starts[t] : self.starts[t + 1]] = rows
        return self.full(whole)

    def reference(self) -> float:
        """J at the given θ through the full path (computed once)."""
        if self._reference is None:
            self._reference = float(np.asarray(self.full(self.theta[None, :]))[0])
        return self._reference


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


def short(error: BaseException, limit: int = 160) -> str:
    """``Type: first sentence`` of an exception, for a one-line note."""
    text = str(error).strip().split("\n")[0]
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}"


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
