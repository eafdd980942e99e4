"""Losses that compute in float32 and return a Python float: their precision must be measured.

Each J here is a float32 computation handed back through ``.item()``, so nothing in the returned
type says "float32". The exact gradients come from torch autograd in float32.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck.report._sentences import NoteCode

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _case(name: str, seed: int):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).float()

    if name == "attention":
        x, y = r(4, 6, 8), r(4, 6, 8)
        params = {k: r(8, 8, scale=0.3) for k in ("Wq", "Wk", "Wv", "Wo")}

        def f(p):
            a = torch.softmax((x @ p["Wq"]) @ (x @ p["Wk"]).transpose(1, 2) / 8**0.5, -1)
            return ((a @ (x @ p["Wv"]) @ p["Wo"] - y) ** 2).mean()

    elif name == "batch norm":
        x, labels = r(24, 5), torch.randint(0, 3, (24,), generator=g)
        params = {"W1": r(5, 10, scale=0.5), "b1": r(10), "gamma": 1 + r(10, scale=0.1),
                  "beta": r(10, scale=0.1), "W2": r(10, 3, scale=0.5), "b2": r(3)}

        def f(p):
            z = x @ p["W1"] + p["b1"]  # b1's gradient is 0: batch norm removes the mean
            z = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)
            return F.cross_entropy(F.elu(z * p["gamma"] + p["beta"]) @ p["W2"] + p["b2"], labels)

    else:  # gradients of 1e-9
        x = r(24, 3)
        params = {"w": r(3, 1), "b": r(1)}

        def f(p):
            return 1e-9 * torch.tanh(x @ p["w"] + p["b"]).sum()

    def loss(p):
        with torch.no_grad():
            return f({k: torch.from_numpy(np.asarray(v)).float() for k, v in p.items()}).item()

    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    grads = torch.autograd.grad(f(leaves), list(leaves.values()))
    as_numpy = {k: v.numpy().copy() for k, v in params.items()}
    return loss, as_numpy, {k: d.numpy().copy() for k, d in zip(leaves, grads, strict=True)}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", ["attention", "batch norm", "gradients of 1e-9"])
def test_float32_inside_the_loss_passes_and_says_so(name: str, seed: int) -> None:
    loss, params, grads = _case(name, seed)
    report = gradcheck.check(loss, params, grads)
    assert report.passed, str(report)
    assert NoteCode.LOW_PRECISION in report.note_codes


@pytest.mark.parametrize("name", ["attention", "batch norm", "gradients of 1e-9"])
def test_float32_inside_the_loss_still_catches_one_percent(name: str) -> None:
    loss, params, grads = _case(name, 0)
    big = max(grads, key=lambda k: np.linalg.norm(grads[k]))
    report = gradcheck.check(loss, params, {**grads, big: grads[big] * 1.01})
    assert big in report.suspects


def test_a_float32_loss_whose_last_bit_varies_between_calls_is_not_stochastic() -> None:
    # A float32 kernel that reduces in a different order on each call (lstsq's gelsy, threaded
    # sums) returns J ± 1 float32 ulp: rounding of a float32 loss, not dropout.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 4)).astype(np.float32)

    def loss(p):
        j = np.float32(np.sum(np.tanh(x @ p["w"].astype(np.float32)) ** 2))
        return float(np.nextafter(j, np.float32(np.inf)) if rng.random() < 0.5 else j)

    w = rng.standard_normal(4)
    t = np.tanh(x.astype(np.float64) @ w)
    g = x.T.astype(np.float64) @ (2 * t * (1 - t**2))
    assert gradcheck.check(loss, {"w": w}, {"w": g}).passed
    assert gradcheck.check(loss, {"w": w}, {"w": 1.02 * g}).suspects == ("w",)
    with pytest.raises(gradcheck.StochasticLossError):  # a float32 dropout still is
        gradcheck.check(lambda p: float(np.float32(loss(p) * (1 + (rng.random() < 0.5)))),
                        {"w": w}, {"w": g})
