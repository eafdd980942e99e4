"""Batched, thread- and process-pool evaluation give the serial numbers; Ctrl-C; dead workers."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from nets import snapshot

import gradcheck
from gradcheck.core._progress import CheckInterrupted, Progress
from gradcheck.report._sentences import NoteCode


def _processes(n: int) -> ProcessPoolExecutor:
    """Workers started fresh ("spawn"): forking a test process that has imported JAX or torch
    (multithreaded) warns and can deadlock, and the suite's order decides what is imported."""
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))


class Net:
    """A picklable (module-level) tanh MLP loss on fixed data, as process pools need."""

    def __init__(self, seed: int = 0, sizes: tuple[int, int, int] = (6, 12, 3)) -> None:
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((16, sizes[0]))
        self.y = np.eye(sizes[2])[rng.integers(0, sizes[2], 16)]
        self.params = {
            "W1": rng.standard_normal(sizes[:2]) / 3,
            "b1": 0.1 * rng.standard_normal(sizes[1]),
            "W2": rng.standard_normal(sizes[1:]) / 3,
            "b2": 0.1 * rng.standard_normal(sizes[2]),
        }

    def __call__(self, p: dict[str, np.ndarray]) -> float:
        z = np.tanh(self.x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - (z * self.y).sum(axis=1)))

    def grads(self) -> dict[str, np.ndarray]:
        p = self.params
        h = np.tanh(self.x @ p["W1"] + p["b1"])
        s = np.exp(h @ p["W2"] + p["b2"])
        d2 = (s / s.sum(axis=1, keepdims=True) - self.y) / len(self.x)
        d1 = (d2 @ p["W2"].T) * (1 - h**2)
        return {"W1": self.x.T @ d1, "b1": d1.sum(0), "W2": h.T @ d2, "b2": d2.sum(0)}

    def batched(self, thetas: np.ndarray) -> np.ndarray:
        """The same loss on each row of a (B, N) stack of flattened parameter vectors."""
        shapes = [(k, v.shape) for k, v in self.params.items()]
        out = []
        for row in thetas:
            p, at = {}, 0
            for k, shape in shapes:
                size = int(np.prod(shape))
                p[k], at = row[at : at + size].reshape(shape), at + size
            out.append(self(p))
        return np.array(out)


class DiesOnce(Net):
    """Kills its worker process the first time it runs there (a crash, not a wrong gradient)."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = marker

    def __call__(self, p: dict[str, np.ndarray]) -> float:
        if os.getpid() != self.parent and not self.marker.exists():
            self.marker.write_text("died")
            os._exit(1)
        return super().__call__(p)


def _wrong(net: Net) -> dict[str, np.ndarray]:
    g = net.grads()
    g["W1"][2, 5] += 0.01
    g["b2"] = -g["b2"]
    return g


def _same(a: gradcheck.Report, b: gradcheck.Report) -> None:
    da, db = a.to_dict(), b.to_dict()
    da.pop("seconds"), db.pop("seconds")
    assert da == db
    for name, c in a.components.items():
        for field in ("numeric_array", "analytic_array", "bound_array", "flags"):
            assert getattr(c, field).tobytes() == getattr(b.components[name], field).tobytes()


@pytest.mark.parametrize("coords", ["all", 40, "directional"])
def test_batched_loss_gives_the_serial_report(coords: object) -> None:
    net = Net()
    before = snapshot(net.params)
    serial = gradcheck.check(net, net.params, _wrong(net), coords=coords)
    batched = gradcheck.check(
        net, net.params, _wrong(net), coords=coords, batched_loss=net.batched
    )
    _same(serial, batched)
    assert "b2" in serial.suspects and snapshot(net.params) == before
    assert coords == 40 or set(serial.suspects) == {"W1", "b2"}


def test_batched_chunks_are_bounded_by_memory() -> None:
    from gradcheck.core._evaluate import BatchedEvaluator, Workspace
    from gradcheck.core._tree import flatten

    net, sizes = Net(), []
    def counted(thetas: np.ndarray) -> np.ndarray:
        sizes.append(len(thetas))
        return net.batched(thetas)

    ev = BatchedEvaluator(counted, Workspace(flatten(net.params)), memory=8 * 123 * 10)
    values = ev.coordinates(0, np.arange(72), np.zeros(72))
    assert max(sizes) == 10 and sum(sizes) == 72 == ev.calls and values.shape == (72,)


def test_batched_loss_errors() -> None:
    net = Net()
    with pytest.raises(gradcheck.LossOutputError, match=r"one J per row, shape \(1,\)"):
        gradcheck.check(net, net.params, net.grads(), batched_loss=lambda t: np.zeros(3))
    with pytest.raises(gradcheck.OptionError, match="complex"):
        gradcheck.check(net, net.params, net.grads(), scheme="complex", batched_loss=net.batched)
    with pytest.raises(gradcheck.OptionError, match="executor"):
        gradcheck.check(net, net.params, net.grads(), executor="two workers")


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_pools_give_the_serial_report(kind: str) -> None:
    net = Net()
    serial = gradcheck.check(net, net.params, _wrong(net))
    pool = ThreadPoolExecutor(2) if kind == "thread" else _processes(2)
    with pool:
        pooled = gradcheck.check(net, net.params, _wrong(net), executor=pool)
        sampled = gradcheck.check(net, net.params, _wrong(net), executor=pool, coords=50)
    _same(serial, pooled)
    _same(gradcheck.check(net, net.params, _wrong(net), coords=50), sampled)


def test_unpicklable_loss_gets_a_clear_error() -> None:
    net = Net()
    error = pytest.raises(gradcheck.GradCheckError, match="module level")
    with _processes(1) as pool, error:
        gradcheck.check(lambda p: net(p), net.params, net.grads(), executor=pool)


def test_a_dead_worker_is_retried(tmp_path: Path) -> None:
    loss = DiesOnce(tmp_path / "died")
    loss.parent = os.getpid()
    with _processes(2) as pool:
        r = gradcheck.check(loss, loss.params, loss.grads(), executor=pool)
    assert (tmp_path / "died").exists() and r.passed and r.evaluations == 2 * 123 + 3 + 24  # 2N, J(θ) three times, 6 noise probes a tensor


def _interrupting(net: Net, after: int):
    calls = 0

    def loss(p: dict[str, np.ndarray]) -> float:
        nonlocal calls
        calls += 1
        if calls == after:
            raise KeyboardInterrupt
        return net(p)

    return loss


def test_ctrl_c_raises_with_a_partial_report() -> None:
    net = Net(sizes=(40, 30, 3))  # W1 has 1,200 entries: more than one block of 1,024
    before = snapshot(net.params)
    with pytest.raises(CheckInterrupted) as info:
        gradcheck.check(_interrupting(net, 2_300), net.params, net.grads())
    r = info.value.report
    assert isinstance(info.value, KeyboardInterrupt) and r.interrupted
    assert snapshot(net.params) == before
    assert r.components["W1"].checked == 1_024 and r.components["W2"].checked == 0
    assert r.notes[-1].code is NoteCode.INTERRUPTED
    assert r.notes[-1].numbers == {"done": 1_024, "planned": 1_323}
    # the exception only carries the record the engine returned (its argument), nothing else
    assert str(info.value) == r.notes[-1] and info.value.args[1] is r
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, CheckInterrupted) and again.report.note_codes == r.note_codes


def test_ctrl_c_can_return_the_partial_report() -> None:
    net = Net()
    r = gradcheck.check(_interrupting(net, 200), net.params, net.grads(), on_interrupt="report")
    assert r.interrupted and 0 < sum(c.checked for c in r.components.values()) < 123
    assert np.isnan(r.components["W2"].numeric_array).all()


def test_progress_bar(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import gradcheck.core._progress as progress

    net = Net()
    monkeypatch.setattr(progress, "DELAY", 0.0)
    assert gradcheck.check(net, net.params, net.grads(), progress=True).passed
    quiet = Progress(10, enabled=None)  # stderr is captured here: not a terminal
    quiet.advance(10)
    assert quiet._bar is None and quiet.done == 10
