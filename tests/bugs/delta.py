"""MLPs whose backward pass gets the output delta dJ/dz_L wrong (issue 12, "delta" kind).

Every mistake here is made once, in δ_L = dJ/dz_L of the output layer, and the rest of the
backward pass is right: dW_L = a_{L−1}ᵀδ_L and db_L = Σ δ_L are wrong, and backprop carries the
wrong δ_L through W_Lᵀ to every earlier layer. Heads: softmax cross-entropy (optionally with
label smoothing, class weights or a temperature), sigmoid BCE, a sigmoid or tanh output with
squared error (the seed-003 net), a linear output with MSE or Huber loss.

``heldout(case, trap, s)`` and ``gallery(case, trap, s)`` return (bugs, traps) built with the
gallery's own ``_case`` / ``_trap`` (passed in: ``bugs/__init__`` imports this module).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bugs.mlp import ACT as _MLP_ACT
from bugs.mlp import _sigmoid

Params = dict[str, np.ndarray]

# activation -> (f, f' at the pre-activation z): the MLP gallery's, and softplus
ACT: dict[str, tuple[Callable, Callable]] = {
    **_MLP_ACT,
    "softplus": (lambda z: np.logaddexp(0.0, z), _sigmoid),
}
# output activation of the squared-error heads
OUT = {"sigmoid-mse": "sigmoid", "tanh-mse": "tanh"}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def delta_net(
    act: str = "tanh",
    head: str = "softmax",
    sizes: tuple[int, ...] = (5, 8, 3),
    *,
    m: int = 12,
    seed: int = 0,
    smooth: float = 0.0,
    weights: tuple[float, ...] | None = None,
    temperature: float = 1.0,
) -> tuple[Callable, Params, Callable]:
    """(loss, params, grads(params, **bug)); grads with no bug is the exact backprop.

    Bugs of the output delta (keyword switches of ``grads``): ``mse_delta`` (softmax CE with
    the squared error's (p − y)·p(1 − p)), ``sigmoid_delta`` (σ(z) − y with a softmax head),
    ``roll_classes`` (one-hot labels off by one class), ``one_label`` (the first sample's
    only), ``roll_samples`` (labels paired with the next sample), ``int_labels`` (p − y with y the integer labels, broadcast over the
    classes), ``jacobian_twice`` (the softmax Jacobian applied to p − y again), ``extra_prime``
    (the BCE delta times σ′(z) once more), ``no_prime`` (squared error on a sigmoid / tanh output
    without f′(z_L)), ``prime_at_a`` (f′ of the output applied to a_L, not z_L), ``seed003``
    (dW_L right, but db_L and the backprop use dJ/da_L without σ′: seed 003's code),
    ``hard_labels`` (label smoothing in the loss, not in δ), ``unweighted`` (class weights in
    the loss, not in δ), ``mse_for_huber`` (Huber loss, MSE delta). Other kinds through the
    delta: ``sign`` (y − p), ``no_mean`` (no 1/m), ``no_temperature`` (the 1/T left out), and
    ``hidden_prime_at_a`` (a hidden layer's f′ at a: the output delta is right).
    """
    rng = np.random.default_rng(seed)
    k = sizes[-1]
    x = rng.standard_normal((m, sizes[0]))
    labels = rng.integers(0, k, m)
    if head == "softmax":
        y = np.eye(k)[labels]
    elif head in ("bce", "sigmoid-mse"):
        y = rng.integers(0, 2, (m, k)).astype(float)
    elif head == "huber":
        y = 2.5 * rng.standard_normal((m, k))  # residuals beyond the Huber threshold 1
    else:
        y = 0.8 * np.tanh(rng.standard_normal((m, k)))
    y_soft = (1.0 - smooth) * y + smooth / k if head == "softmax" else y
    w_class = np.asarray(weights if weights is not None else (1.0,) * k)
    w_sample = w_class[labels] if head == "softmax" else np.ones(m)
    depth = len(sizes) - 1
    params: Params = {}
    for i in range(1, depth + 1):
        params[f"W{i}"] = rng.standard_normal((sizes[i - 1], sizes[i])) / np.sqrt(sizes[i - 1])
        params[f"b{i}"] = 0.3 * rng.standard_normal(sizes[i])
    f, df = ACT[act]

    def forward(p: Params) -> list[tuple[np.ndarray, np.ndarray]]:
        a = x
        cache = [(a, a)]
        for i in range(1, depth + 1):
            z = a @ p[f"W{i}"] + p[f"b{i}"]
            a = f(z) if i < depth else z
            cache.append((z, a))
        return cache

    def loss(p: Params) -> float:
        z = forward(p)[-1][0]
        if head == "softmax":
            zt = z / temperature
            logp = zt - zt.max(axis=1, keepdims=True)
            logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
            j = -np.sum(w_sample[:, None] * y_soft * logp)
        elif head == "bce":
            j = np.sum(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z))
        elif head in OUT:
            j = 0.5 * np.sum((ACT[OUT[head]][0](z) - y) ** 2)
        elif head == "huber":
            r = np.abs(z - y)
            j = np.sum(np.where(r <= 1.0, 0.5 * r**2, r - 0.5))
        else:
            j = 0.5 * np.sum((z - y) ** 2)
        return float(j / m)

    def output_delta(z: np.ndarray, bug: dict[str, Any]) -> np.ndarray:
        """δ_L = dJ/dz_L (summed over the batch; 1/m is applied by the caller)."""
        target = y
        if bug.get("roll_classes"):
            target = np.roll(y, 1, axis=1)
        if bug.get("roll_samples"):
            target = np.roll(y, 1, axis=0)
        if bug.get("one_label"):
            target = y.copy()
            target[0] = np.roll(y[0], 1)
        if head == "softmax":
            p = _softmax(z / temperature)
            if bug.get("sigmoid_delta"):
                return _sigmoid(z) - target
            if bug.get("int_labels"):
                return p - labels[:, None]
            soft = target if bug.get("hard_labels") else (1.0 - smooth) * target + smooth / k
            d = p - soft
            if bug.get("mse_delta"):
                d = d * p * (1.0 - p)
            if bug.get("jacobian_twice"):
                d = p * d - p * np.sum(p * d, axis=1, keepdims=True)
            if not bug.get("unweighted"):
                d = d * w_sample[:, None]
            return d if bug.get("no_temperature") else d / temperature
        if head == "bce":
            d = _sigmoid(z) - target
            return d * _sigmoid(z) * (1.0 - _sigmoid(z)) if bug.get("extra_prime") else d
        if head in OUT:
            out, dout = ACT[OUT[head]]
            a = out(z)
            if bug.get("no_prime") or bug.get("seed003"):
                return a - target
            return (a - target) * (dout(a) if bug.get("prime_at_a") else dout(z))
        r = z - target
        return r if head != "huber" or bug.get("mse_for_huber") else np.clip(r, -1.0, 1.0)

    def grads(p: Params, **bug: Any) -> Params:
        cache = forward(p)
        scale = (1.0 if bug.get("no_mean") else 1.0 / m) * (-1.0 if bug.get("sign") else 1.0)
        delta = output_delta(cache[-1][0], bug) * scale
        out: Params = {}
        if bug.get("seed003"):  # seed 003: dW_L uses dJ/dz_L, db_L and the backprop dJ/da_L
            out[f"W{depth}"] = cache[depth - 1][1].T @ (output_delta(cache[-1][0], {}) / m)
        for i in range(depth, 0, -1):
            out.setdefault(f"W{i}", cache[i - 1][1].T @ delta)
            out[f"b{i}"] = delta.sum(axis=0)
            if i > 1:
                z, a = cache[i - 1]
                deriv = df(a) if bug.get("hidden_prime_at_a") and i == depth else df(z)
                delta = (delta @ p[f"W{i}"].T) * deriv
        return {n: out[n] for n in params}

    return loss, params, grads


def heldout(case: Callable, trap: Callable, s: int) -> tuple[list, list]:
    """Written before the "delta" rule: output-delta bugs, other kinds through δ, correct nets."""
    ce2 = lambda **kw: delta_net("tanh", "softmax", (6, 9, 4), m=14, seed=s + 60, **kw)  # noqa: E731
    relu3 = lambda **kw: delta_net("relu", "softmax", (5, 10, 8, 3), m=16, seed=s + 61, **kw)  # noqa: E731
    bce4 = lambda **kw: delta_net("sigmoid", "bce", (4, 7, 6, 5, 3), m=12, seed=s + 62, **kw)  # noqa: E731
    smse3 = lambda **kw: delta_net("tanh", "sigmoid-mse", (6, 8, 8, 4), m=15, seed=s + 63, **kw)  # noqa: E731
    smooth2 = lambda **kw: delta_net("softplus", "softmax", (4, 8, 5), m=18, smooth=0.1,  # noqa: E731
                                     seed=s + 64, **kw)
    jac3 = lambda **kw: delta_net("tanh", "softmax", (5, 7, 6, 4), m=10, seed=s + 65, **kw)  # noqa: E731
    huber2 = lambda **kw: delta_net("relu", "huber", (5, 9, 2), m=16, seed=s + 66, **kw)  # noqa: E731
    temp2 = lambda **kw: delta_net("tanh", "softmax", (4, 6, 3), m=12, temperature=2.0,  # noqa: E731
                                   seed=s + 67, **kw)
    bugs_ = [
        case("delta CE-2: MSE's (p - y)·p(1 - p) with softmax CE", ce2(), "delta", mse_delta=True),
        case("delta ReLU-3: one-hot labels off by one class", relu3(), "delta", roll_classes=True),
        case("delta BCE-4: sigmoid BCE delta times σ′(z) again", bce4(), "delta", extra_prime=True),
        case("delta sigmoid-MSE-3: σ′(z_L) left out of δ_L", smse3(), "delta", no_prime=True),
        case("delta smoothing-2: δ uses the hard labels", smooth2(), "delta", hard_labels=True),
        case("delta CE-3: softmax Jacobian applied twice", jac3(), "delta", jacobian_twice=True),
        case("delta Huber-2: MSE delta for a Huber loss", huber2(), "delta", mse_for_huber=True),
        # the same head, but a mistake that other kinds name (or an origin at a hidden layer)
        case("delta sigmoid-MSE-3: y - a", smse3(), "sign", sign=True),
        case("delta temperature-2: 1/T left out of δ", temp2(), "scale", no_temperature=True),
        case("delta sigmoid-MSE-3: hidden f′ at a, output right", smse3(), None,
             hidden_prime_at_a=True),
    ]
    traps_ = [
        trap("heldout trap: softmax with label smoothing", smooth2()),
        trap("heldout trap: sigmoid output, squared error", smse3()),
        trap("heldout trap: Huber loss", huber2()),
        trap("heldout trap: softmax with temperature 2", temp2()),
    ]
    return bugs_, traps_


def gallery(case: Callable, trap: Callable, s: int) -> tuple[list, list]:
    """Gallery cases (other variants than the held-out ones) and correct traps."""
    sig3 = lambda **kw: delta_net("tanh", "softmax", (5, 8, 8, 3), m=16, seed=s + 70, **kw)  # noqa: E731
    relu2 = lambda **kw: delta_net("relu", "softmax", (6, 10, 4), m=14, seed=s + 71, **kw)  # noqa: E731
    seed = lambda **kw: delta_net("sigmoid", "sigmoid-mse", (6, 10, 4), m=20, seed=s + 72, **kw)  # noqa: E731
    ints = lambda **kw: delta_net("softplus", "softmax", (4, 7, 3), m=12, seed=s + 73, **kw)  # noqa: E731
    weighted = lambda **kw: delta_net("tanh", "softmax", (5, 6, 6, 3), m=15,  # noqa: E731
                                      weights=(1.0, 3.0, 0.5), seed=s + 74, **kw)
    tmse = lambda **kw: delta_net("tanh", "tanh-mse", (4, 9, 3), m=10, seed=s + 75, **kw)  # noqa: E731
    linear = lambda **kw: delta_net("tanh", "softmax", (6, 4), m=20, seed=s + 76, **kw)  # noqa: E731
    huber = lambda **kw: delta_net("tanh", "huber", (4, 6, 2), m=12, seed=s + 77, **kw)  # noqa: E731
    bugs_ = [
        case("delta: σ(z) - y with a softmax head", sig3(), "delta", sigmoid_delta=True),
        case("delta: labels paired with the next sample", relu2(), "delta", roll_samples=True),
        case("delta: seed 003's code (db2 and backprop without σ′)", seed(), "delta",
             seed003=True),
        case("delta: seed_net's σ′(a) at every layer", seed(), "delta", prime_at_a=True,
             hidden_prime_at_a=True),
        case("delta: p - y with integer labels broadcast", ints(), "delta", int_labels=True),
        case("delta: class weights left out of δ", weighted(), "delta", unweighted=True),
        case("delta: tanh output, f′ at a_L", tmse(), "delta", prime_at_a=True),
        case("delta: one layer, MSE's delta with softmax CE", linear(), "delta", mse_delta=True),
        case("delta: Huber, missing 1/m", huber(), "scale", m=12, no_mean=True),
        case("delta: sigmoid output, hidden f′ at a only", seed(), None, hidden_prime_at_a=True),
    ]
    traps_ = [
        trap("trap: delta class-weighted softmax", weighted()),
        trap("trap: delta sigmoid output, squared error", seed()),
        trap("trap: delta softmax regression", linear()),
    ]
    return bugs_, traps_
