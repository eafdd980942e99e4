"""A process-pool worker that dies: the rest runs on a fresh spawned pool the checker owns, or a
clear error comes; never a hang, never a process left behind (issue 22, item 9)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import pytest
from test_evaluate import DiesOnce, Net, _processes

import gradcheck
from gradcheck.core import _executor

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and /proc")


def test_a_worker_that_aborts_in_a_child_process_ends_cleanly(tmp_path: Path) -> None:
    """The issue's scenario, three times in a row: the check in a forked child, the default (fork)
    pool, ``os.abort()`` in one worker once. benchmarks/pool_stress.py runs it 20 times."""
    out = tmp_path / "runs.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    script = [sys.executable, str(ROOT / "benchmarks" / "pool_stress.py"), "--runs", "3"]
    done = subprocess.run([*script, "--timeout", "150", "--json", str(out)], env=env,
                          capture_output=True, text=True, timeout=540, cwd=tmp_path)
    runs = json.loads(out.read_text())
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(r["outcome"], r["aborted"], r["orphans"]) for r in runs] == [("passed", True, [])] * 3


def _living_children(but: set[int] | None = None) -> set[int]:
    """This process's living children; with ``but``, those beyond it, once the broken pool's
    workers (which the pool's own thread terminates a moment after it reports the break) are gone."""
    deadline = time.monotonic() + 30
    while True:
        alive = {p.pid for p in multiprocessing.active_children() if p.pid is not None}
        if but is None or alive <= but or time.monotonic() > deadline:
            return alive - (but or set())
        time.sleep(0.05)


def test_the_broken_pool_is_left_alone_and_ours_are_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh: list[ProcessPoolExecutor] = []
    ready = _executor._await_ready
    monkeypatch.setattr(_executor, "_await_ready", lambda p, s: fresh.append(p) or ready(p, s))
    loss = DiesOnce(tmp_path / "died")
    loss.parent = os.getpid()
    before = _living_children()
    with _processes(2) as pool:  # (a forked pool here could inherit the suite's JAX threads)
        context = pool._mp_context
        report = gradcheck.check(loss, loss.params, loss.grads(), executor=pool)
        assert pool._broken and pool._mp_context is context  # the user's pool: as it broke
        # one fresh pool, ours, whose workers are spawned (they inherit no lock held at a fork)
        assert [p._mp_context.get_start_method() for p in fresh] == ["spawn"]
        assert not _living_children(but=before)  # the fresh pool's workers ended with the check
    assert report.passed and (tmp_path / "died").exists()


def _only_here(pid: int, seed: int) -> Net:
    if os.getpid() != pid:
        raise ImportError("this loss loads only in the process that made it")
    return Unloadable(seed)


class Unloadable(Net):
    """A loss whose pickle loads in its own process only: every worker that gets it dies."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.seed = seed

    def __reduce__(self) -> tuple[Any, ...]:
        return (_only_here, (os.getpid(), self.seed))


def test_a_loss_fresh_workers_cannot_load_gets_a_clear_error() -> None:
    loss = Unloadable()
    before = _living_children()
    with _processes(2) as pool, pytest.raises(gradcheck.GradCheckError, match="could not load"):
        gradcheck.check(loss, loss.params, loss.grads(), executor=pool)
    assert not _living_children(but=before)


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_a_stuck_worker_of_ours_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_executor, "STOP_WAIT", 0.5)
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    assert pool.submit(_sleep, 0.0).result(timeout=120) == 0.0
    pool.submit(_sleep, 600.0)
    (worker,) = pool._processes.values()
    _executor._stop(pool)  # asks, waits 0.5 s, kills
    assert wait([worker.sentinel], 60)  # gone (a sentinel is ready once its process ended)
