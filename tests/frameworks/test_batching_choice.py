"""Batching never loses: the adapters measure the batched path against their own loop on the
first large stack and keep the faster one; the report says which ran. (The margins here are
a hundredfold: the choice, not a speed, is what is tested.)"""

from __future__ import annotations

import time

import numpy as np
import pytest

from gradcheck.frameworks._batching import Chosen, choose_path
from gradcheck.report._sentences import NoteCode

ROWS = np.random.default_rng(0).standard_normal((40, 3))


def _slow_batched(thetas: np.ndarray) -> np.ndarray:
    time.sleep(0.05)  # a batched call with a large fixed cost
    return (thetas**2).sum(1)


def _slow_row(row: np.ndarray) -> float:
    time.sleep(0.005)  # a loop whose every call is slow
    return float((row**2).sum())


@pytest.mark.parametrize(
    ("batched", "row", "path"),
    [(_slow_batched, lambda r: float((r**2).sum()), "loop"),
     (lambda th: (th**2).sum(1), _slow_row, "batched")],
)
def test_the_faster_path_takes_the_stack_and_gives_the_same_values(batched, row, path) -> None:
    chosen = Chosen(batched, row, chunk=4, tool="vmap")
    out = chosen(ROWS)
    assert chosen.path == path
    np.testing.assert_allclose(out, (ROWS**2).sum(1), rtol=1e-15)
    note = chosen.note()
    assert note.code is NoteCode.EVALUATION and note.numbers["path"] == path
    assert note.numbers["batched_us"] > 0 and note.numbers["loop_us"] > 0


def test_small_stacks_and_an_explicit_vectorize_are_not_measured() -> None:
    chosen = Chosen(_slow_batched, _slow_row, chunk=16, tool="vmap")
    chosen(ROWS)  # fewer than four chunks: batched, undecided
    assert chosen.path is None and chosen.note().numbers["path"] == "batched"
    params = {"x": np.zeros(3)}
    assert choose_path(_slow_batched, lambda p: 0.0, params, 4, "vmap", "vmap") is _slow_batched
    assert choose_path(None, lambda p: 0.0, params, 4, "vmap", "auto") is None


def test_one_tensor_stacks_run_through_the_loop_as_full_rows() -> None:
    theta = np.array([1.0, 2.0, 3.0])  # tensor 0: entry 0; tensor 1: entries 1 and 2

    class Slow:
        def __call__(self, thetas):
            return _slow_batched(thetas)

        def by_tensor(self, t, rows):
            time.sleep(0.05)
            whole = np.repeat(theta[None, :], len(rows), axis=0)
            whole[:, 1:] = rows
            return (whole**2).sum(1)

    chosen = Chosen(Slow(), lambda r: float((r**2).sum()), chunk=4, tool="vmap",
                    theta=theta, sizes=[1, 2])
    rows = ROWS[:, :2]
    out = chosen.by_tensor(1, rows)
    assert chosen.path == "loop"
    np.testing.assert_allclose(out, 1.0 + (rows**2).sum(1), rtol=1e-15)


def test_a_small_check_runs_every_loss_call_through_the_loop() -> None:
    """Up to SMALL entries (all tensors together) and vectorize="auto": the loop, by a size
    rule (the same path on every run), and the note says so; above it, or with
    vectorize="vmap", the batched path. The verdict is the same on both paths."""
    torch = pytest.importorskip("torch")
    import gradcheck.torch as gt
    from gradcheck.frameworks._batching import SMALL

    def paths(*xs: object, **kw: object) -> tuple[list[str], bool | None]:
        report = gt.check_function(lambda a, b: torch.sin(a) * b.sum(), *xs, **kw)
        said = [n.numbers["path"] for n in report.notes if n.code is NoteCode.EVALUATION]
        return said, report.passed

    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, generator=gen, dtype=torch.float64, requires_grad=True)
            for n in (SMALL - 3, 3))
    wide = torch.randn(4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert paths(a, b) == (["small"], True)
    assert paths(a, wide) == (["batched"], True)  # SMALL + 1 entries
    assert paths(a, b, vectorize="vmap") == (["batched"], True)
    assert paths(a, b, vectorize="loop")[0] == ["fallback"]


def test_the_by_tensor_reference_is_the_j_of_theta_already_asked() -> None:
    """J(θ) through the full path, asked once by the engine, is the reference the by-tensor
    path is trusted against: no second full call for it (same call, same row, same bits)."""
    from gradcheck.frameworks._batching import Batched

    calls: list[int] = []

    def full(thetas: np.ndarray) -> np.ndarray:
        calls.append(len(thetas))
        return (thetas**2).sum(1)

    b = Batched(full, lambda t, rows: (rows**2).sum(1) + 4.0, np.array([1.0, 2.0]), [1, 1])
    assert b(b.theta[None, :]).tolist() == [5.0]
    assert b.by_tensor(0, np.array([[3.0]])).tolist() == [13.0]
    assert calls == [1] and b.trusted == {0: True}


def test_vmap_without_its_argument_checks_gives_the_same_values() -> None:
    """The later calls of a vmap pattern skip torch.func.vmap's checks of the arguments'
    structure (done on the first call): the same batched run, bit for bit."""
    torch = pytest.importorskip("torch")
    from gradcheck.frameworks._torch_vmap import _unchecked_vmap

    fast = _unchecked_vmap(2)
    if fast is None:
        pytest.skip("this torch has no _flat_vmap")
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(5, 7, generator=gen, dtype=torch.float64) for _ in range(2))
    w = torch.randn(7, 3, generator=gen, dtype=torch.float64)

    def one(x: object, y: object) -> object:
        return (torch.tanh(x @ w).sum() * y.exp().mean()).reshape(())

    for dims, args in (((0, 0), [a, b]), ((0, None), [a, b[0]])):
        want = torch.func.vmap(one, in_dims=dims)(*args)
        assert torch.equal(fast(one, 5, list(dims), args), want)
