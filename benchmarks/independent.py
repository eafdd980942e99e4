"""False alarms and misses on networks written independently of tests/bugs (losses in torch).

Run: .venv/bin/python benchmarks/independent.py [--seeds 10]

Eight architectures the bug gallery does not have (im2col-free conv + ReLU + max-pool, an RNN
unrolled over 6 steps, train-mode batch norm + ELU, self-attention, L1 + Huber + L1 penalty with
softplus, multi-class hinge with tied weights and leaky ReLU, a loss of 1e6, gradients of 1e-9).
The loss is a torch function called through NumPy and returned as a Python float (so its dtype
is invisible to the checker); the exact gradient comes from torch autograd in the parameters'
dtype. Each correct case is checked, then two planted errors in the tensor with the largest
gradient: the whole tensor scaled by (1 + e), and its largest entry's sign flipped. e is 1e-4
for a float64 loss, 1e-2 for a float32 loss, 1 (a factor 2) for a float16 loss, and at least
0.05 for float16 gradients (which hold about 3 digits).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

import gradcheck

F = torch.nn.functional
CONFIGS = {  # (parameter dtype, dtype the loss computes in)
    "float64 params, float64 loss": (torch.float64, torch.float64),
    "float32 params, float64 loss": (torch.float32, torch.float64),
    "float32 params, float32 loss": (torch.float32, torch.float32),
    "float16 params, float64 loss": (torch.float16, torch.float64),
    "float16 params, float16 loss": (torch.float16, torch.float16),
}
# Planted relative error: what the loss's precision and the gradient's dtype can show at all
# (a float16 gradient holds about 3 digits: ×(1 + 1e-4) would round back to the right value).
LOSS_ERROR = {torch.float64: 1e-4, torch.float32: 1e-2, torch.float16: 1.0}
GRAD_ERROR = {torch.float64: 1e-4, torch.float32: 1e-4, torch.float16: 0.05}


def networks(seed: int) -> dict[str, tuple[Callable, dict[str, torch.Tensor]]]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    def labels(k, m=24):
        return torch.randint(0, k, (m,), generator=g)

    out = {}
    x, y = r(24, 1, 8, 8), labels(5)
    out["conv-relu-maxpool"] = (
        lambda p, x=x, y=y: F.cross_entropy(
            F.max_pool2d(F.relu(F.conv2d(x.to(p["K"].dtype), p["K"], p["kb"])), 2).flatten(1)
            @ p["W"] + p["b"], y),
        {"K": r(4, 1, 3, 3, scale=0.5), "kb": r(4, scale=0.1), "W": r(36, 5, scale=0.3), "b": r(5)},
    )
    xs, ys = r(24, 6, 3), r(24, 2)

    def rnn(p, xs=xs, ys=ys):
        h = torch.zeros(24, 8, dtype=p["Wx"].dtype)
        for t in range(6):
            h = torch.tanh(xs[:, t].to(h.dtype) @ p["Wx"] + h @ p["Wh"] + p["bh"])
        return ((h @ p["Wo"] + p["bo"] - ys.to(h.dtype)) ** 2).mean() / 2

    out["rnn-tanh"] = (rnn, {"Wx": r(3, 8, scale=0.5), "Wh": r(8, 8, scale=0.3), "bh": r(8, scale=0.1),
                             "Wo": r(8, 2, scale=0.5), "bo": r(2)})
    x, y = r(24, 5), labels(3)

    def bn(p, x=x, y=y):
        z = x.to(p["W1"].dtype) @ p["W1"] + p["b1"]
        z = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5) * p["gamma"] + p["beta"]
        return F.cross_entropy(F.elu(z) @ p["W2"] + p["b2"], y)

    out["batchnorm-elu"] = (bn, {"W1": r(5, 10, scale=0.5), "b1": r(10), "gamma": 1 + r(10, scale=0.1),
                                 "beta": r(10, scale=0.1), "W2": r(10, 3, scale=0.5), "b2": r(3)})
    x, y = r(4, 6, 8), r(4, 6, 8)

    def attention(p, x=x, y=y):
        x = x.to(p["Wq"].dtype)
        a = torch.softmax((x @ p["Wq"]) @ (x @ p["Wk"]).transpose(1, 2) / 8**0.5, -1)
        return ((a @ (x @ p["Wv"]) @ p["Wo"] - y.to(x.dtype)) ** 2).mean()

    out["attention"] = (attention, {k: r(8, 8, scale=0.3) for k in ("Wq", "Wk", "Wv", "Wo")})
    x, y = r(24, 4), r(24, 2)

    def robust(p, x=x, y=y):
        o = F.softplus(x.to(p["W1"].dtype) @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        t = y.to(o.dtype)
        return (o - t).abs().mean() + F.huber_loss(o, t) + 0.01 * p["W1"].abs().sum()

    out["l1-huber-softplus"] = (robust, {"W1": r(4, 6), "b1": r(6), "W2": r(6, 2), "b2": r(2)})
    x, y = r(24, 6), labels(4)
    out["hinge-tied-leaky"] = (
        lambda p, x=x, y=y: F.multi_margin_loss(
            F.leaky_relu(x.to(p["W"].dtype) @ p["W"]) @ p["W"].T @ p["V"] + p["c"], y),
        {"W": r(6, 6, scale=0.4), "V": r(6, 4, scale=0.4), "c": r(4, scale=0.1)},
    )
    x, y = r(24, 3), r(24, 1)
    linear = {"w": r(3, 1), "b": r(1)}
    out["loss 1e6"] = (
        lambda p, x=x, y=y: 1e6 * ((x.to(p["w"].dtype) @ p["w"] + p["b"] - y.to(p["w"].dtype)) ** 2).mean() + 1e6,
        linear)
    out["gradients 1e-9"] = (
        lambda p, x=x: 1e-9 * torch.tanh(x.to(p["w"].dtype) @ p["w"] + p["b"]).sum(), linear)
    return out


def as_numpy(f, params, dtype, loss_dtype):
    """(loss, params, grads) in NumPy, or None where torch has no kernel or the values overflow."""
    leaves = {k: v.to(dtype).requires_grad_(True) for k, v in params.items()}
    try:
        grads = torch.autograd.grad(f(leaves), list(leaves.values()))
    except (NotImplementedError, RuntimeError):
        return None

    def loss(p):
        with torch.no_grad():
            return f({k: torch.from_numpy(np.asarray(v)).to(loss_dtype) for k, v in p.items()}).item()

    p = {k: v.detach().numpy().copy() for k, v in leaves.items()}
    g = {k: d.numpy().copy() for k, d in zip(leaves, grads, strict=True)}
    if not all(np.all(np.isfinite(a)) for a in [*p.values(), *g.values()]):
        return None
    return loss, p, g


def _half(report: gradcheck.Report) -> bool:
    """The report says the mismatches may be the float16 backward's own accuracy."""
    return any("may be float16 accuracy" in n for n in report.notes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| parameters, loss | correct cases | false alarms | planted errors (e) | missed |")
    print("|---|---|---|---|---|")
    start = time.perf_counter()
    for label, (dtype, loss_dtype) in CONFIGS.items():
        cases = alarms = planted = missed = half = 0
        notes = []
        for seed in range(args.seeds):
            for name, (f, params) in networks(seed).items():
                case = as_numpy(f, params, dtype, loss_dtype)
                if case is None:
                    continue
                loss, p, g = case
                cases += 1
                report = gradcheck.check(loss, p, g)
                if not report.passed:
                    alarms += 1
                    said = " (report: may be float16 accuracy)" if _half(report) else ""
                    notes.append(f"false alarm: {name} seed {seed} {report.suspects}{said}")
                big = max(g, key=lambda k: float(np.linalg.norm(g[k].astype(np.float64))))
                e = max(LOSS_ERROR[loss_dtype], GRAD_ERROR[dtype])
                flipped = g[big].copy()
                i = np.unravel_index(np.argmax(np.abs(flipped)), flipped.shape)
                flipped[i] = -flipped[i]
                for kind, wrong in (("scale", g[big] * (1 + e)), ("sign of one entry", flipped)):
                    wrong = wrong.astype(g[big].dtype)
                    if np.array_equal(wrong, g[big]):  # e.g. a float16 gradient that underflowed to 0
                        continue
                    planted += 1
                    caught = gradcheck.check(loss, p, {**g, big: wrong})
                    if big not in caught.suspects:
                        missed += 1
                        notes.append(f"missed: {kind} in {big} of {name} seed {seed}")
                    elif _half(caught):
                        half += 1
        e = max(LOSS_ERROR[loss_dtype], GRAD_ERROR[dtype])
        print(f"| {label} | {cases} | {alarms} | {planted} (e = {e:g}) | {missed} |")
        for note in notes[:6]:
            print(f"|   {note} | | | | |")
        if half:
            print(f"|   caught planted errors whose report says 'may be float16 accuracy': {half} "
                  "| | | | |")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
