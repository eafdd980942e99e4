"""A pool worker that dies, many times in a row (issue 22, item 9).

Each run forks a child process (the check runs there, as under a job runner or a test worker),
which runs ``gradcheck.check(loss, params, grads, executor=ProcessPoolExecutor(2))`` with the
platform's default pool (fork, on Linux) and a loss that calls ``os.abort()`` in a worker the
first time (a marker file; then all is well). A run is fine when the check ends within
``--timeout`` seconds with a report that passed or a clear ``GradCheckError``, and no process it
started is still alive once it ended (every process of a run carries an environment tag, so an
orphan adopted by init is found in /proc too). Stragglers and hung children are killed.

    PYTHONPATH=src python benchmarks/pool_stress.py --runs 20 [--timeout 120] [--json out.json]

Exit status 0 when every run was fine. Linux only (/proc). The test suite runs it with
``--runs 1`` (tests/core/test_pool_deaths.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import resource
import signal
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import gradcheck

TAG = "GRADCHECK_POOL_STRESS"
GRACE = 5.0  # seconds the processes of a finished run get to exit


class AbortsOnce:
    """sin + square on ``n`` entries; the first call in a worker process aborts that worker."""

    def __init__(self, marker: Path, n: int = 300) -> None:
        self.marker, self.check_pid = str(marker), os.getpid()
        self.params = {"w": np.random.default_rng(0).standard_normal(n)}

    def __call__(self, p: dict[str, np.ndarray]) -> float:
        if os.getpid() != self.check_pid:
            try:  # exactly one worker wins the marker and aborts
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                os.abort()
            except FileExistsError:
                pass
        return float(np.sum(np.sin(p["w"])) + 0.5 * np.sum(p["w"] ** 2))

    def grads(self) -> dict[str, np.ndarray]:
        return {"w": np.cos(self.params["w"]) + self.params["w"]}


def _proc(pid: int) -> tuple[int, str, str]:
    """(parent pid, state letter, command line) of a process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return int(fields[1]), fields[0], cmd.strip()


def _tagged(tag: str) -> dict[int, str]:
    """The living (not zombie) processes whose environment carries ``tag``, but this one."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if f"{TAG}={tag}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                _, state, cmd = _proc(int(entry.name))
                if state != "Z":  # what it waits on: futex_wait_queue is a lock never released
                    wchan = (entry / "wchan").read_text().strip()
                    found[int(entry.name)] = f"{cmd} [state {state}, waiting in {wchan or '-'}]"
        except OSError:  # gone, or not ours
            continue
    return found


def _child(marker: str, conn: Any) -> None:
    """The check, in the forked child; sends back its outcome and seconds."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # os.abort() leaves no core file
    loss = AbortsOnce(Path(marker))
    start = time.perf_counter()
    try:
        with ProcessPoolExecutor(2) as pool:  # the default context (fork on Linux)
            report = gradcheck.check(loss, loss.params, loss.grads(), executor=pool)
        outcome = "passed" if report.passed else f"wrong verdict: {report.verdict}"
    except gradcheck.GradCheckError as error:
        outcome = f"clear error: {error}"
    except Exception as error:  # noqa: BLE001 - any other exception is a failure of the run
        outcome = f"unexpected {type(error).__name__}: {error}"
    conn.send({"outcome": outcome, "seconds": time.perf_counter() - start,
               "aborted": os.path.exists(marker)})


def one_run(tag: str, timeout: float) -> dict[str, Any]:
    """One forked child running the check; its outcome, and the processes that outlived it."""
    fork = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory() as tmp:
        receive, send = fork.Pipe(duplex=False)
        child = fork.Process(target=_child, args=(str(Path(tmp) / "aborted"), send))
        start = time.perf_counter()
        child.start()
        send.close()
        result = receive.recv() if receive.poll(timeout) else None
        child.join(max(1.0, timeout - (time.perf_counter() - start)))
        if result is None:
            result = {"outcome": "hang" if child.is_alive() else f"crash ({child.exitcode})",
                      "seconds": time.perf_counter() - start, "aborted": None}
        child.kill() if child.is_alive() else None
        child.join()
    deadline = time.monotonic() + GRACE
    while (left := _tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:  # clean up for the next run; they are reported
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return {**result, "orphans": sorted(left.values())}


def fine(run: dict[str, Any]) -> bool:
    outcome = run["outcome"]
    return not run["orphans"] and (outcome == "passed" or outcome.startswith("clear error"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if TAG not in os.environ:  # tag this process from its start: forked children show it too
        env = {**os.environ, TAG: uuid.uuid4().hex}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    runs = []
    for k in range(args.runs):
        runs.append(one_run(os.environ[TAG], args.timeout))
        run = runs[-1]
        print(f"run {k + 1:2d}: {run['seconds']:6.2f} s  aborted={run['aborted']}  "
              f"orphans={len(run['orphans'])}  {run['outcome'][:100]}", flush=True)
    ok = sum(fine(r) for r in runs)
    seconds = [r["seconds"] for r in runs]
    print(f"{ok}/{len(runs)} fine; seconds per run: median {np.median(seconds):.2f}, "
          f"max {max(seconds):.2f}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    return 0 if ok == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
