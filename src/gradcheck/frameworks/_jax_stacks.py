"""JAX adapter, part 3: the batched loss handed to the core: stacks of rows through the check's
one compiled program (``merged_program``), or through ``jax.jit(jax.vmap(J))`` kept across
checks of the same function (``_batched``'s fallback), chunk by chunk."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradcheck.frameworks import _batching, _jit
from gradcheck.frameworks._jax_compiled import CHUNK, _Compiled, _Traced, _values_function


class _Stacks:
    """Stacks of rows through ``jit(vmap(J))``, in chunks padded to CHUNK rows (one compiled
    shape per function): ``full`` batches every checked leaf; ``moving(t, rows)`` leaf t only,
    the others fixed at their given values, where that pays (see ``_batched``)."""

    def __init__(
        self, traced: _Traced, dynamic: bool, theta: np.ndarray, merged: _Compiled | None = None
    ) -> None:
        self.traced, self.dynamic, self.merged = traced, dynamic, merged
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
        if self.merged is not None:
            return self._traced_afresh(pattern)
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

    def _traced_afresh(self, pattern: Any) -> _Compiled:
        """With the check's one program (``_jit.rows_and_gradient``): the full path is that
        program's J of the rows; leaf t alone gets a program of its own, traced afresh and
        compiled once per distinct program (``_jit.program``), the other leaves its inputs."""
        import jax

        merged = self.merged
        assert merged is not None
        if pattern == "full":  # its seconds: the program's compilation, whichever check paid it
            first = merged.fn.seconds() if hasattr(merged.fn, "seconds") else merged.seconds
            rows_of = getattr(merged.fn, "rows", None) or (lambda rows: merged(rows)[0])
            return _Compiled(lambda rows, _: rows_of(rows), first)
        t, j = pattern, self.traced.baked()
        shape, dtype = self.traced.shapes[t], self.traced.dtypes[t]

        def one(row: Any, fixed: list[Any]) -> Any:
            values = list(fixed)
            values[t] = row.reshape(shape).astype(dtype)
            return j(values, None)

        built: list[Callable] = []  # traced only where it pays (``trace``, from ``moving``)

        def trace() -> None:
            if not built:
                rows = np.zeros((CHUNK, self.traced.sizes[t]))
                built.append(_jit.program(jax.vmap(one, in_axes=(0, None)), rows, list(self.base)))

        def run(rows: Any, fixed: Any, _: Any) -> Any:
            trace()
            return built[0](rows, list(fixed))

        return _Compiled(run, trace=trace)

    def _run(
        self, f: _Compiled, rows: np.ndarray, *fixed: Any, into: tuple | None = None
    ) -> np.ndarray:
        """J of each row, CHUNK rows per call (the last chunk padded with its first row).
        ``into=(buffer, a)``: ``rows`` are columns a: of full rows whose other columns
        ``buffer`` (CHUNK, N) holds: each chunk is written into it, never a (B, N) stack."""
        import jax.numpy as jnp

        rows = np.asarray(rows, dtype=np.float64)
        kind = jnp.result_type(float)  # the rows' dtype: float64, or float32 where x64 is off
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
            rows_in = np.asarray(padded, dtype=kind)  # NumPy: no conversion compiled
            js = f(rows_in, *fixed, self.traced.dynamic)
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
            if pays and own is not None and own.trace is not None:
                try:  # traced now that it pays
                    own.trace()
                except Exception:  # noqa: BLE001 - leaf t alone does not trace: full rows
                    own, pays = None, False
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


class _AtTheta:
    """The gradient at θ through the check's one program (``merged``), and the Js of θ's rows
    that the same call gives: the batched probe's answer (J of θ through ``jax.vmap``), which
    a second call of the same program on the same rows would give again.

    >>> _AtTheta(None).probe(lambda rows: rows.sum(1))(np.ones((1, 2))).tolist()
    [2.0]
    """

    def __init__(self, merged: _Compiled | None) -> None:
        self.merged = merged
        self.js: Any = None  # the Js of θ's rows, once the gradient at θ was computed
        self.seconds: float | None = None  # that call's time, where nothing was compiled

    def gradient(self, rows: np.ndarray) -> Any:
        """``(J, gradient leaves)`` at θ, ``rows`` being CHUNK copies of θ's flat row."""
        assert self.merged is not None
        warm = self.merged.fn.seconds() is not None
        start = time.perf_counter()
        js, out = self.merged(rows)
        self.js = np.asarray(js)
        self.seconds = time.perf_counter() - start if warm else None
        return out

    def probe(self, full: Callable[[np.ndarray], np.ndarray], stacks: _Stacks | None = None
              ) -> Callable[[np.ndarray], np.ndarray]:
        """``full`` for the probe's one row θ: the Js of the gradient's call where it was made
        (``stacks.row_seconds`` from its time, as ``full`` would measure it)."""
        if self.js is None:
            return full

        def answered(thetas: np.ndarray) -> np.ndarray:
            if stacks is not None and self.seconds is not None:
                stacks.row_seconds = self.seconds / CHUNK
            return self.js[: len(thetas)].astype(np.float64)

        return answered


def merged_program(
    j_of: Callable, leaves: Sequence[np.ndarray], dtypes: Sequence[Any], vectorize: str
) -> _Compiled | None:
    """The check's one program (``_jit.rows_and_gradient``: J of CHUNK rows and the gradient
    at the first; J's dtype as ``.fn.dtype``) at the checked ``leaves`` (real views) in
    ``dtypes``, or None where it is not used (``vectorize="loop"``, a core without the
    batched hook) or ``fn`` does not trace so (then the separate paths and their fallbacks)."""
    if _batching.batched_refusal(vectorize) is not None:
        return None
    shapes = [np.shape(a) for a in leaves]
    sizes = [int(np.prod(s)) for s in shapes]
    theta = np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in leaves])
    of_row = _values_function(shapes, sizes, list(dtypes))
    try:
        return _Compiled(_jit.rows_and_gradient(j_of, of_row, theta, CHUNK, shapes))
    except Exception:  # noqa: BLE001 - vmap or grad does not trace: the separate paths
        return None


def _batched(
    traced: _Traced,
    params: dict[str, np.ndarray],
    plain: Callable[[], float],
    vectorize: str,
    j_of: Callable[[Sequence[Any]], Any],
    merged: _Compiled | None = None,
    at_theta: _AtTheta | None = None,
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str]:
    """``fn(thetas (B, N)) -> J (B,)`` through ``jax.vmap`` (chunked, jitted), or None and why.

    ``merged``: the check's one program (rows and gradient), traced afresh: its J of the rows
    (``at_theta``: its Js of θ's rows where the gradient at θ computed them, the probe's).
    Else the other array leaves of the arguments are inputs of the compiled functions (reused
    by the next check of the same function); where ``fn`` cannot trace them, they are baked
    in."""
    if (refused := _batching.batched_refusal(vectorize)) is not None:
        return None, refused
    if merged is not None:
        theta = np.concatenate([a.reshape(-1).astype(np.float64) for a in params.values()])
        stacks = _Stacks(traced, True, theta, merged)
        probe = stacks.full if at_theta is None else at_theta.probe(stacks.full, stacks)
        fn, reason = _batching.probe_batched(
            probe, theta[None, :], plain, vectorize, "jax.vmap"
        )
        if fn is None:
            return None, reason
        return _batching.Batched(stacks.full, stacks.moving, theta, traced.sizes, stacks.block), ""
    known: list[float] = []  # the plain J at θ: one op-by-op call for every probe and check

    def plain_once() -> float:
        if not known:
            known.append(plain())
        return known[0]

    theta = np.concatenate([a.reshape(-1).astype(np.float64) for a in params.values()])
    for _ in range(2 if traced.key is not None else 0):
        stacks = _Stacks(traced, True, theta)
        fn, _ = _batching.probe_batched(
            stacks.full, theta[None, :], plain_once, "auto", "jax.vmap"
        )
        if fn is not None and "full" in traced.hits and not traced.fresh(
            stacks.full, j_of, theta, plain_once
        ):
            traced.forget()  # stale: fn reads something that changed since; trace again
            continue
        if fn is not None:
            return _batching.Batched(
                stacks.full, stacks.moving, theta, traced.sizes, stacks.block
            ), ""
        traced.forget("full")
        break
    stacks = _Stacks(traced, False, theta)
    fn, reason = _batching.probe_batched(
        stacks.full, theta[None, :], plain_once, vectorize, "jax.vmap"
    )
    if fn is None:
        return None, reason
    return _batching.Batched(stacks.full, stacks.moving, theta, traced.sizes, stacks.block), ""

