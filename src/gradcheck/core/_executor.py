"""Spreading the loss calls over a ``concurrent.futures`` executor or a Dask client, and
``make_evaluator``, which picks the evaluator for the options (serial, batched, or a pool).

Workers get a private copy of the parameters and run the serial loop on chunks of coordinates
(``_coordinates_chunk``), so a pool gives the same numbers as the loop. A process pool whose
worker died is never used again: the chunks it left unfinished go to a fresh pool the checker
owns, whose workers are *spawned* (a forked worker can inherit a lock that another thread held
at the fork, and wait on it forever), and whose processes end with the check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck._errors import GradCheckError, OptionError
from gradcheck.core._evaluate import BatchedEvaluator, SerialEvaluator, Workspace

RETRIES = 3  # a chunk whose worker process died is run again this many times
RESTART_WAIT = 60  # seconds to wait for a Dask worker to come back before shipping data again
CHUNKS_PER_WORKER = 4
FRESH_START = 120  # seconds a fresh pool's spawned workers get to start and load the loss
STOP_WAIT = 10  # seconds our pools' workers get to exit at the end before they are killed
KILL_WAIT = 10  # seconds a killed worker gets to be gone
LOCAL = 64  # requests smaller than this (refinement, tiny tensors) run in this process


class _InBand:
    """A pickled object, unpickled once where it lands, so its arrays get fresh aligned memory.

    Dask hands large buffers over zero-copy: arrays inside a shipped loss (its data X) can land at
    odd addresses, and NumPy copies a misaligned operand before every matmul (measured: each loss
    call 2.4x slower on a Dask worker). Plain in-band pickle bytes unpickle into new allocations.
    """

    def __init__(self, obj: Any) -> None:
        try:  # by value for a loss defined in __main__, which a spawned worker may not import
            from cloudpickle import dumps
        except ImportError:  # pragma: no cover - cloudpickle comes with dask
            from pickle import dumps
        self.payload = dumps(obj)
        self._obj: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"payload": self.payload}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.payload, self._obj = state["payload"], None

    def get(self) -> Any:
        if self._obj is None:
            import pickle

            self._obj = pickle.loads(self.payload)
        return self._obj


def _coordinates_chunk(
    loss: Callable[[Any], Any], struct: Any, t: int, idx: np.ndarray, values: np.ndarray, cs: bool
) -> np.ndarray:
    """The serial loop on a private copy of ``struct`` (run on a worker)."""
    from gradcheck.core._tree import flatten

    loss = loss.get() if isinstance(loss, _InBand) else loss
    ws = Workspace(flatten(struct), np.complex128 if cs else np.float64)
    return SerialEvaluator(loss, ws, complex_step=cs).coordinates(t, idx, values)


class ExecutorEvaluator(SerialEvaluator):
    """Ships chunks of coordinate requests to a ``concurrent.futures.Executor`` or Dask client."""

    def __init__(
        self,
        loss: Callable[[Any], Any],
        workspace: Workspace,
        executor: Any,
        *,
        complex_step: bool = False,
    ) -> None:
        super().__init__(loss, workspace, complex_step=complex_step)
        self.executor = executor
        self.dask = _is_dask(executor)
        self.workers = _worker_count(executor, self.dask)
        self.block = 2048 * self.workers
        self._owned: list[Any] = []  # replacement pools we created and must shut down
        self._shipped: Any = loss  # what the pool's workers get: the loss, or its pickle bytes
        _require_picklable(loss, executor, self.dask)
        self._struct = self._loss = None  # on Dask, loss and parameters go to each worker once
        if self.dask:
            self._scatter()

    def _scatter(self) -> None:
        """Ship the loss and the parameters to every Dask worker (again, after workers died)."""
        wait = getattr(self.executor, "wait_for_workers", None)
        if wait is not None:  # a dead worker's nanny restarts it: scatter to nobody loses the data
            try:
                wait(1, timeout=RESTART_WAIT)
            except Exception as error:  # noqa: BLE001 - the cluster has no worker at all
                raise GradCheckError(
                    f"the Dask cluster has no worker left ({type(error).__name__}: {error}); "
                    "restart the cluster or run with executor=None."
                ) from error
        scatter = self.executor.scatter
        self._struct = scatter([self.ws.struct], broadcast=True, hash=False)[0]
        self._loss = scatter([_InBand(self.loss)], broadcast=True, hash=False)[0]

    def coordinates(self, t: int, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        if len(idx) < LOCAL:  # a round trip to the workers would cost more than the calls
            return super().coordinates(t, idx, values)
        n_chunks = min(len(idx), CHUNKS_PER_WORKER * self.workers) or 1
        split = zip(np.array_split(idx, n_chunks), np.array_split(values, n_chunks), strict=True)
        parts = [(i, v) for i, v in split if len(i)]
        results = self._dask(t, parts) if self.dask else self._pool(t, parts)
        self.calls += len(idx)
        return np.concatenate(results) if results else np.empty(0)

    def _pool(self, t: int, parts: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Run the chunks on the pool; those a dead worker left unfinished go to a fresh pool."""
        results: list[np.ndarray | None] = [None] * len(parts)
        for attempt in range(RETRIES + 1):
            todo = [k for k, r in enumerate(results) if r is None]
            if not self._run_chunks(t, parts, todo, results):
                return results  # type: ignore[return-value]
            if attempt == RETRIES:
                raise GradCheckError(
                    f"worker processes died {RETRIES + 1} times in a row while evaluating the "
                    "loss (out of memory? a crash in native code?). This is not a gradient "
                    "error; run with fewer workers or executor=None to see the failure."
                )
            self._fresh_pool()
        raise AssertionError("unreachable")  # pragma: no cover

    def _run_chunks(
        self, t: int, parts: list[tuple[np.ndarray, np.ndarray]], todo: list[int],
        results: list[np.ndarray | None],
    ) -> bool:
        """Fill ``results[k]`` for the chunks ``todo``; whether a worker process died."""
        from concurrent.futures.process import BrokenProcessPool

        futures: list[Any] = []
        broken = False
        try:
            for k in todo:
                i, v = parts[k]
                futures.append(self.executor.submit(
                    _coordinates_chunk, self._shipped, self.ws.struct, t, i, v, self.complex_step
                ))
        except BrokenProcessPool:  # broken before or while we submitted: keep what did go
            broken = True
        except RuntimeError as error:  # "cannot schedule new futures after shutdown"
            raise GradCheckError(
                f"executor={self.executor!r} cannot run the loss ({error}): it was shut down "
                "(a `with` block that ended, or .shutdown()). Pass a live executor, or "
                "executor=None to evaluate in this process."
            ) from error
        try:
            for k, future in zip(todo, futures, strict=False):
                try:
                    results[k] = future.result()
                except BrokenProcessPool:  # every unfinished future of that pool ends so
                    broken = True
        finally:
            for future in futures:
                future.cancel()
        return broken

    def _fresh_pool(self) -> None:
        """Replace the broken pool (never submitted to again) by a spawned one we own."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if any(self.executor is pool for pool in self._owned):
            _stop(self.executor)  # a pool of ours that broke: its processes end now
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=getattr(self.executor, "_initializer", None),
            initargs=getattr(self.executor, "_initargs", ()),
        )
        self._owned.append(pool)
        try:  # cloudpickle, which ships a loss defined in __main__ by value
            self._shipped = _InBand(self.loss)
        except Exception as error:
            raise GradCheckError(
                f"a worker process died, and the loss cannot be pickled for fresh worker "
                f"processes ({type(error).__name__}: {error}); run with executor=None."
            ) from error
        self.executor = pool
        _await_ready(pool, self._shipped)

    def _dask(self, t: int, parts: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        from concurrent.futures import CancelledError

        client = self.executor
        for attempt in range(RETRIES + 1):
            futures = [
                client.submit(
                    _coordinates_chunk, self._loss, self._struct, t, i, v, self.complex_step,
                    pure=False, retries=RETRIES,
                )
                for i, v in parts
            ]
            try:
                return list(client.gather(futures))
            except (CancelledError, *_dask_lost()) as error:  # type: ignore[misc]
                # The workers holding the scattered loss and parameters died (their data went
                # with them): ship both again and rerun the chunks.
                if attempt == RETRIES:
                    raise GradCheckError(
                        f"Dask workers died {RETRIES + 1} times in a row while evaluating the loss "
                        f"({type(error).__name__}: {error}); this is not a gradient error. Check "
                        "the cluster (worker memory limits, crashes in native code), or run with "
                        "executor=None."
                    ) from error
                self._scatter()
            finally:
                client.cancel([f for f in futures if not f.done()])
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        for pool in self._owned:  # the pools we started: none of their processes outlives us
            _stop(pool)
        for future in (self._struct, self._loss):
            if future is not None:
                future.release()


def make_evaluator(
    loss: Callable[[Any], Any],
    workspace: Workspace,
    *,
    complex_step: bool = False,
    batched_loss: Callable[[np.ndarray], Any] | None = None,
    executor: Any = None,
) -> SerialEvaluator:
    """The evaluator for these options: serial, batched, or spread over an executor / Dask."""
    if batched_loss is not None and executor is not None:
        raise OptionError(
            "batched_loss and executor cannot be combined: a batched loss already evaluates "
            "many perturbations at once. Pass one of them."
        )
    if batched_loss is not None:
        if complex_step:
            raise OptionError(
                "scheme='complex' needs complex parameters, which batched_loss (float64 rows) "
                "cannot carry; use scheme='central' or drop batched_loss."
            )
        if not callable(batched_loss):
            raise OptionError(f"batched_loss={batched_loss!r} must be a function thetas -> Js.")
        return BatchedEvaluator(batched_loss, workspace)
    if executor is not None:
        from concurrent.futures import Executor

        if not (isinstance(executor, Executor) or _is_dask(executor)):
            raise OptionError(
                f"executor={executor!r} must be a concurrent.futures.Executor (ThreadPoolExecutor, "
                "ProcessPoolExecutor) or a dask.distributed Client."
            )
        if _is_shut_down(executor):
            raise OptionError(
                f"executor={executor!r} was shut down (a `with` block that ended, or "
                ".shutdown()/.close()); pass a live executor, or executor=None to evaluate in "
                "this process."
            )
        return ExecutorEvaluator(loss, workspace, executor, complex_step=complex_step)
    return SerialEvaluator(loss, workspace, complex_step=complex_step)


def _dask_lost() -> tuple[type[BaseException], ...]:
    """Dask's errors for work lost with its workers (KilledWorker), where it can be imported."""
    try:
        from distributed.scheduler import KilledWorker
    except ImportError:  # pragma: no cover - only reached with a Dask-like client
        return ()
    return (KilledWorker,)


def _is_dask(executor: Any) -> bool:
    return all(hasattr(executor, m) for m in ("scatter", "gather", "submit", "cancel"))


def _is_shut_down(executor: Any) -> bool:
    """Whether a standard pool or a Dask client can no longer take work (best effort)."""
    if _is_dask(executor):
        return getattr(executor, "status", "running") in ("closed", "closing")
    return bool(getattr(executor, "_shutdown", False) or getattr(executor, "_shutdown_thread", False))


def _worker_count(executor: Any, dask: bool) -> int:
    if dask:
        info = executor.scheduler_info()
        return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
    return max(1, int(getattr(executor, "_max_workers", 0) or 1))


def _require_picklable(loss: Any, executor: Any, dask: bool) -> None:
    from concurrent.futures import ProcessPoolExecutor

    if dask:
        from distributed.protocol.pickle import dumps
    elif isinstance(executor, ProcessPoolExecutor):
        from pickle import dumps
    else:
        return
    try:
        dumps(loss)
    except Exception as error:
        raise GradCheckError(
            f"loss cannot be sent to worker processes: pickling it failed ({type(error).__name__}: "
            f"{error}). Define the loss at module level (not a lambda or a nested function), "
            "use functools.partial for its data, or pass a ThreadPoolExecutor."
        ) from error


def _load(shipped: Any) -> str:
    """In a fresh worker: load the loss; the error that stops it, if any (else "")."""
    try:
        shipped.get()
    except Exception as error:  # noqa: BLE001 - reported, with the fix, by _await_ready
        return f"{type(error).__name__}: {error}"
    return ""


def _await_ready(pool: Any, shipped: _InBand) -> None:
    """Wait (at most ``FRESH_START`` s) until a worker of a fresh pool has loaded the loss."""
    from concurrent.futures import TimeoutError as FutureTimeout

    fix = (
        "This is not a gradient error. Define the loss (and the pool's initializer) in a module "
        "a new Python process can import, keep a script's work under `if __name__ == "
        '"__main__":`, or run with executor=None.'
    )
    try:
        error = pool.submit(_load, shipped).result(timeout=FRESH_START)
    except FutureTimeout:
        raise GradCheckError(
            f"a worker process died, and the fresh worker processes started to replace it did not "
            f"answer within {FRESH_START} s. {fix}"
        ) from None
    except Exception as failure:
        raise GradCheckError(
            f"a worker process died, and the fresh (spawned) worker processes started to replace "
            f"it failed ({type(failure).__name__}: {failure}). {fix}"
        ) from failure
    if error:
        raise GradCheckError(
            f"a worker process died, and a fresh (spawned) worker process could not load the loss "
            f"({error}). {fix}"
        )


def _stop(pool: Any) -> None:
    """Shut ``pool`` down; kill the processes still alive ``STOP_WAIT`` s later (stuck ones)."""
    from multiprocessing.connection import wait

    processes = list(dict(getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    alive = {p.sentinel: p for p in processes}  # a sentinel is ready once its process is gone
    deadline = time.monotonic() + STOP_WAIT
    while alive and (left := deadline - time.monotonic()) > 0:
        for sentinel in wait(list(alive), left):
            alive.pop(sentinel)  # type: ignore[call-overload]
    for process in alive.values():  # deadlocked (a lock held forever) or a chunk still running
        process.kill()
    if alive:  # (wait() on nothing would sleep the whole timeout)
        wait(list(alive), KILL_WAIT)
