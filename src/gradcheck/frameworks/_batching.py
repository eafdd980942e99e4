"""What the adapters share about evaluating J: the batched path (``Batched``, its probe against
the plain call, ``choose_path`` between it and the adapter's own loop, the small checks' loop
rule) and the notes that say which path ran."""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from gradcheck._errors import GradCheckError, short
from gradcheck.report._sentences import Note, NoteCode


@functools.cache
def accepts_batched() -> bool:
    """Whether this ``gradcheck.check`` takes ``batched_loss`` (the scale engine's hook);
    asked once (``inspect.signature`` costs more than a small check's loss call)."""
    from gradcheck.checks._check import check

    return "batched_loss" in inspect.signature(check).parameters


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

