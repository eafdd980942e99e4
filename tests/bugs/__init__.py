"""A gallery of real backprop bugs and of correct "traps", each case carrying its truth.

``BUGS``: networks with one planted mistake; ``Case.faulty`` is the set of parameters whose
gradient differs from the correct backprop (computed, not typed in), ``Case.kind`` the kind a
diagnosis should name (None where no simple kind describes it). ``TRAPS``: correct gradients
that make naive checkers cry wolf. ``stochastic()``: a loss with a fresh dropout mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bugs import delta
from bugs.conv import conv2d
from bugs.kinks import dead_relu, mixed_scale, relu_zeros, sort32, staircase, stairs, unread
from bugs.layers import batchnorm, embed_conv
from bugs.mlp import mlp

Params = dict[str, np.ndarray]


def _norm(d: Params) -> float:
    return float(np.sqrt(sum(np.sum(np.asarray(v, dtype=float) ** 2) for v in d.values())))


@dataclass(frozen=True)
class Case:
    """One network: its loss, params, the gradients under test, and the truth about them."""

    name: str
    family: str
    loss: Callable[[Params], float]
    params: Params
    grads: Params
    correct: Params
    kind: str | None = None
    batch_size: int | None = None
    faulty: frozenset[str] = field(default=frozenset())

    @property
    def severity(self) -> float:
        """The textbook relative error of the planted mistake, against the exact backprop."""
        diff = {k: self.grads[k].astype(float) - self.correct[k].astype(float) for k in self.grads}
        return _norm(diff) / (_norm(self.grads) + _norm(self.correct))


def _case(name: str, net: tuple, kind: str | None = None, post: Callable | None = None,
          m: int | None = None, **bug: Any) -> Case:
    loss, params, grads = net
    correct = grads(params)
    wrong = grads(params, **bug)
    if post is not None:
        wrong = post({k: v.copy() for k, v in wrong.items()})
    faulty = frozenset(
        k for k in params
        if np.max(np.abs(wrong[k] - correct[k]), initial=0.0)
        > 1e-12 * (np.max(np.abs(correct[k]), initial=0.0) + 1e-300)
    )
    family = name.split(":")[0]
    return Case(name, family, loss, params, wrong, correct, kind, m, faulty)


def _set(name: str, f: Callable[[np.ndarray], np.ndarray]) -> Callable[[Params], Params]:
    def post(g: Params) -> Params:
        g[name] = f(g[name])
        return g
    return post


def _swap(a: str, b: str) -> Callable[[Params], Params]:
    def post(g: Params) -> Params:
        g[a], g[b] = g[b], g[a]
        return g
    return post


def _zero_at(name: str, index: Any) -> Callable[[Params], Params]:
    def f(v: np.ndarray) -> np.ndarray:
        v = v.copy()
        v[index] = 0.0
        return v
    return _set(name, f)


def _l2(net: tuple, name: str, k: float, how: str) -> Callable[[Params], Params]:
    """Mistakes in a gradient made of a data term and a (right) L2 term k·W."""
    w = net[1][name]

    def post(g: Params) -> Params:
        data = g[name] - k * w
        g[name] = data.T + k * w if how == "transposed" else k * w
        return g
    return post


def bugs(seed: int = 0) -> list[Case]:
    """At least 30 planted mistakes across the families (``seed`` redraws data and weights)."""
    s = 100 * seed
    tanh = lambda **kw: mlp("tanh", "softmax", (5, 8, 8, 3), m=16, seed=s, **kw)  # noqa: E731
    sig = lambda **kw: mlp("sigmoid", "bce", (5, 6, 1), m=12, seed=s + 1, **kw)  # noqa: E731
    relu = lambda **kw: mlp("relu", "mse", (4, 10, 2), m=10, seed=s + 2, **kw)  # noqa: E731
    deep = lambda **kw: mlp("tanh", "mse", (4, 6, 6, 6, 2), m=9, seed=s + 3, **kw)  # noqa: E731
    bn = lambda: batchnorm(seed=s)  # noqa: E731
    emb = lambda: embed_conv(seed=s)  # noqa: E731
    return [
        _case("tanh-ce: missing 1/m", tanh(), "scale", m=16, no_mean=True),
        _case("tanh-ce: dW3 sign", tanh(), "sign", _set("W3", np.negative)),
        _case("tanh-ce: y - a", tanh(), "sign", flip=True),
        _case("tanh-ce: L2 missing in dW", tanh(lam=0.8), "regularization", reg_scale=0.0),
        _case("tanh-ce: L2 uses λ, not λ/m", tanh(lam=0.5), "regularization", reg_scale=16.0),
        _case("tanh-ce: L2 on biases", tanh(lam=0.8), "regularization", reg_bias=True),
        _case("tanh-ce: dW2 transposed", tanh(), "transposed", _set("W2", np.transpose)),
        _case("tanh-ce: db1, db2 swapped", tanh(), "swapped", _swap("b1", "b2")),
        _case("tanh-ce: f' at a, not z", tanh(), None, act_on_a=True),
        _case("tanh-ce: W2 not transposed in delta", tanh(), None, no_transpose=2),
        _case("tanh-ce: row 7 of dW2 at 0", tanh(), "localized", _zero_at("W2", 7)),
        _case("tanh-ce: one entry of dW1 at 0", tanh(), "localized", _zero_at("W1", (2, 3))),
        _case("tanh-ce: db3 mean, not sum", tanh(), "scale", _set("b3", lambda g: g / 16), m=16),
        _case("tanh-ce: dW1 x1.01", tanh(), "scale", _set("W1", lambda g: 1.01 * g)),
        _case("tanh-ce: dW1 x1.001", tanh(), "scale", _set("W1", lambda g: 1.001 * g)),
        _case("tanh-ce: db3 missing", tanh(), "zero", _set("b3", np.zeros_like)),
        _case("tanh-ce: stale activations in dW2", tanh(), None, stale=2),
        _case("sigmoid-bce: f' at a, not z", sig(), None, act_on_a=True),
        _case("sigmoid-bce: dW2 missing 1/m", sig(), "scale", _set("W2", lambda g: 12 * g), m=12),
        _case("sigmoid-bce: y - a", sig(), "sign", flip=True),
        _case("sigmoid-bce: db1 missing", sig(), "zero", _set("b1", np.zeros_like)),
        _case("sigmoid-bce: dW1 x2", sig(), "scale", _set("W1", lambda g: 2 * g)),
        _case("sigmoid-bce: L2 on biases", sig(lam=0.8), "regularization", reg_bias=True),
        _case("relu-mse: no 1/2 in MSE", relu(), "scale", double=True),
        _case("relu-mse: ReLU derivative left out", relu(), None, no_deriv=True),
        _case("relu-mse: dW1 transposed and reshaped", relu(), "transposed",
              _set("W1", lambda g: g.T.reshape(g.shape))),
        _case("relu-mse: L1 missing in dW", relu(l1=0.3), "regularization", reg_scale=0.0),
        _case("relu-mse: dW2 halved", relu(), "scale", _set("W2", lambda g: g / 2)),
        _case("relu-mse: y - a, L2 right", relu(lam=2.0), "sign", flip=True),
        _case("tanh-ce: missing 1/m, L2 right", tanh(lam=0.8), "scale", m=16, no_mean=True),
        _case("deep-mse: dW2, dW3 swapped", deep(), "swapped", _swap("W2", "W3")),
        _case("deep-mse: last row of dW3 at 0", deep(), "localized", _zero_at("W3", 5)),
        _case("deep-mse: dW3 transposed", deep(), "transposed", _set("W3", np.transpose)),
        _case("deep-mse: stale activations in dW3", deep(), None, stale=3),
        _case("deep-mse: W3 not transposed in delta", deep(), None, no_transpose=3),
        _case("batchnorm: dgamma sign", bn(), "sign", dgamma_sign=True),
        _case("batchnorm: mean term left out", bn(), None, no_mean_term=True),
        _case("batchnorm: variance term left out", bn(), None, no_var_term=True),
        _case("batchnorm: dgamma uses z, not x̂", bn(), None, dgamma_z=True),
        _case("batchnorm: dbeta mean, not sum", bn(), "scale", m=12, dbeta_mean=True),
        _case("embed-conv: dE assigned, not accumulated", emb(), None, assign=True),
        _case("embed-conv: kernel flipped", emb(), "flipped", flip_kernel=True),
        _case("embed-conv: pooling 1/T left out", emb(), "scale", no_pool_mean=True),
        _case("embed-conv: dWo missing 1/m", emb(), "scale", m=8, no_mean=True),
        # Issue 12: mixed scales, exact-zero kinks, conv kernels, L2 next to the data term.
        _case("mixed-scale: dW1 x1.001", mixed_scale(seed=s), "scale", w1_scale=1.001),
        _case("relu-zeros 1%: dW1 x1.001", relu_zeros(1, 1, seed=s), "scale", w1_scale=1.001),
        _case("relu-zeros 10%: dW1 x1.001", relu_zeros(2, 5, seed=s), "scale", w1_scale=1.001),
        _case("relu-zeros 50%: dW2 x1.001", relu_zeros(10, 5, seed=s), "scale", w2_scale=1.001),
        _case("conv2d: kernel flipped", conv2d(seed=s), "flipped", flip_kernel=True),
        _case("conv2d: kernel spatial axes exchanged", conv2d(seed=s), "flipped", swap_axes=True),
        _case("tanh-ce: dW2 data term transposed, L2 right", tanh(lam=0.8), "transposed",
              _l2(tanh(lam=0.8), "W2", 0.8 / 16, "transposed")),
        _case("tanh-ce: dW2 only the L2 term", tanh(lam=0.8), "data term",
              _l2(tanh(lam=0.8), "W2", 0.8 / 16, "only")),
        _case("unread: dW3 of a layer the loss never reads", unread(seed=s), "independent",
              leftover=True),
        *delta.gallery(_case, _trap, s)[0],
        _case("stairs round(x, 3): straight-through dx", staircase(seed=s), None,
              straight_through=1.0),
        _case("dead ReLU units: derivative leaked", dead_relu(seed=s), None, leak=True),
        # Only the entries off every kink can show a scale: the diagnosis sees too few of them.
        _case("float32 sort: dx x1.2", sort32(seed=s), None, scale=1.2),
    ]


def _trap(name: str, net: tuple) -> Case:
    loss, params, grads = net
    g = grads(params)
    return Case(name, name.split(":")[0], loss, params, g, g)


def _unused(s: int) -> tuple:
    loss, params, grads = mlp("tanh", "softmax", (4, 5, 3), m=8, seed=s + 7)
    params = {**params, "unused": np.ones((2, 3))}
    return loss, params, lambda p, **_: {**grads(p), "unused": np.zeros((2, 3))}


def _l1_at_zero(s: int) -> tuple:
    loss, params, grads = mlp("tanh", "mse", (4, 6, 2), m=8, l1=0.5, seed=s + 8)
    params = {k: v.copy() for k, v in params.items()}
    params["W1"][:2] = 0.0  # |w| at its kink; sign(0) = 0 is a valid subgradient
    return loss, params, grads


def traps(seed: int = 0) -> list[Case]:
    """At least 12 correct networks that trip naive checkers (``seed`` redraws them)."""
    s = 100 * seed
    return [
        _trap("trap: ReLU kinks", mlp("relu", "softmax", (4, 8, 3), m=10, zero_rows=3, seed=s + 4)),
        _trap("trap: float32 model", mlp("tanh", "softmax", (5, 8, 3), dtype=np.float32, seed=s + 5)),
        _trap("trap: saturated sigmoids", mlp("sigmoid", "bce", (5, 6, 1), x_scale=30.0, seed=s + 6)),
        _trap("trap: gradients ~1e-9", mlp("tanh", "softmax", (5, 6, 3), out_scale=1e-9, seed=s)),
        _trap("trap: loss ~1e6", mlp("tanh", "mse", (5, 6, 2), out_scale=1e6, seed=s + 1)),
        _trap("trap: λ = 50", mlp("tanh", "softmax", (5, 6, 3), lam=50.0, seed=s + 2)),
        _trap("trap: hinge loss", mlp("tanh", "hinge", (5, 6, 3), m=12, seed=s + 3)),
        _trap("trap: L1 at zero weights", _l1_at_zero(s)),
        _trap("trap: mixed scales", mlp("tanh", "softmax", (4, 6, 3), x_scale=1e-3,
                                        w_scales=(1e3, 1e-2), seed=s + 9)),
        _trap("trap: zero-gradient parameter", _unused(s)),
        _trap("trap: batch norm", batchnorm(seed=s + 1)),
        _trap("trap: embedding + conv", embed_conv(seed=s + 1)),
        _trap("trap: deep ReLU MSE", mlp("relu", "mse", (4, 8, 8, 8, 2), m=10, seed=s + 10)),
        _trap("trap: sigmoid BCE", mlp("sigmoid", "bce", (5, 6, 2), seed=s + 11)),
        _trap("trap: features 1e-3..1e3", mixed_scale(seed=s)),
        _trap("trap: 1% exact-zero ReLU inputs", relu_zeros(1, 1, seed=s)),
        _trap("trap: 50% exact-zero ReLU inputs", relu_zeros(10, 5, seed=s)),
        _trap("trap: staircase round(x, 3)", staircase(seed=s)),
        _trap("trap: float32 sort of a permutation", sort32(seed=s)),
        _trap("trap: conv2d", conv2d(seed=s + 1)),
        *delta.gallery(_case, _trap, s)[1],
        _trap("trap: floor(x / 0.01)", stairs("floor", seed=s)),
        _trap("trap: sign(x)", stairs("sign", n=20, seed=s)),
        _trap("trap: dead ReLU units", dead_relu(seed=s)),
        _trap("trap: float16 tanh net", mlp("tanh", "softmax", (5, 8, 3), dtype=np.float16, seed=s)),
    ]


def stochastic() -> tuple[Callable, Params, Params]:
    """A loss with dropout drawing a fresh mask on every call (keep_prob = 0.8)."""
    loss, params, grads = mlp("tanh", "softmax", (5, 8, 3), seed=12)
    rng = np.random.default_rng(0)

    def dropout_loss(p: Params) -> float:
        mask = rng.random(p["W1"].shape) < 0.8
        return loss({**p, "W1": p["W1"] * mask / 0.8})

    return dropout_loss, params, grads(params)


def heldout(seed: int = 0) -> tuple[list[Case], list[Case]]:
    """(bugs, traps) written after the signatures were settled, to probe unseen variants.

    Not used by the tests; ``benchmarks/bug_gallery.py --heldout`` reports them separately.
    """
    s = 100 * seed + 50
    kinked = lambda: mlp("relu", "softmax", (4, 8, 3), m=10, zero_rows=3, seed=s)  # noqa: E731
    deep = lambda **kw: mlp("relu", "mse", (6, 12, 12, 2), m=20, seed=s + 1, **kw)  # noqa: E731
    f32 = lambda **kw: mlp("tanh", "softmax", (6, 10, 4), m=20, dtype=np.float32, seed=s + 2, **kw)  # noqa: E731
    wide = lambda **kw: mlp("tanh", "softmax", (6, 10, 10, 4), m=24, seed=s + 3, **kw)  # noqa: E731
    sig3 = lambda **kw: mlp("sigmoid", "bce", (5, 6, 6, 3), m=14, seed=s + 4, **kw)  # noqa: E731
    linear = mlp("tanh", "softmax", (20, 5), m=64, seed=s + 5)
    deep_l2 = lambda: mlp("tanh", "mse", (4, 6, 6, 6, 2), m=9, lam=1.5, seed=s + 15)  # noqa: E731
    sig_l2 = lambda: mlp("sigmoid", "bce", (5, 6, 1), m=12, lam=0.6, seed=s + 16)  # noqa: E731

    def column(g: Params) -> Params:
        g["W1"][:, 1] *= 1.5
        return g

    bugs_ = [
        _case("relu-kinks: dW1 x2", kinked(), "scale", _set("W1", lambda g: 2 * g)),
        _case("relu-kinks: db1 sign", kinked(), "sign", _set("b1", np.negative)),
        _case("relu-kinks: missing 1/m", kinked(), "scale", m=10, no_mean=True),
        _case("relu-deep: dW2 / m", deep(), "scale", _set("W2", lambda g: g / 20), m=20),
        _case("relu-deep: L2 halved", deep(lam=1.0), "regularization", reg_scale=0.5),
        _case("relu-deep: ReLU derivative left out", deep(), None, no_deriv=True),
        _case("f32: db2 sign", f32(), "sign", _set("b2", np.negative)),
        _case("f32: dW1 x1.01", f32(), "scale", _set("W1", lambda g: (1.01 * g).astype(g.dtype))),
        _case("f32: L2 missing", f32(lam=2.0), "regularization", reg_scale=0.0),
        _case("loss 1e6: dW1 halved", mlp("tanh", "mse", (5, 6, 2), out_scale=1e6, seed=s + 6),
              "scale", _set("W1", lambda g: 0.5 * g)),
        _case("grads 1e-9: dW1 sign", mlp("tanh", "softmax", (5, 6, 3), out_scale=1e-9, seed=s + 7),
              "sign", _set("W1", np.negative)),
        _case("hinge: dW2 x2", mlp("tanh", "hinge", (5, 6, 3), m=12, seed=s + 8), "scale",
              _set("W2", lambda g: 2 * g)),
        _case("softmax-regression: missing 1/m", linear, "scale", m=64, no_mean=True),
        _case("softmax-regression: dW1 halved", linear, "scale", _set("W1", lambda g: g / 2)),
        _case("sigmoid-bce-3: W2 not transposed in delta", sig3(), None, no_transpose=2),
        _case("sigmoid-bce-3: y - a", sig3(), "sign", flip=True),
        _case("sigmoid-bce-3: L1 doubled", sig3(l1=0.2), "regularization", reg_scale=2.0),
        _case("tanh-wide: db1, db2 swapped", wide(), "swapped", _swap("b1", "b2")),
        _case("tanh-wide: stale activations in dW2", wide(), None, stale=2),
        _case("tanh-wide: one entry of db2 at 0", wide(), "localized", _zero_at("b2", 4)),
        _case("tanh-wide: column 1 of dW1 x1.5", wide(), "localized", column),
        _case("tanh-wide: dW2 transposed", wide(), "transposed", _set("W2", np.transpose)),
        _case("batchnorm: dgamma x2", batchnorm(seed=s), "scale", _set("gamma", lambda g: 2 * g)),
        _case("embed-conv: dbc sign", embed_conv(seed=s), "sign", _set("bc", np.negative)),
        _case("embed-conv: row 2 of dWo at 0", embed_conv(seed=s), "localized", _zero_at("Wo", 2)),
        # Issue 12 families, written before the verdict and diagnosis were tuned to them.
        _case("mixed-scale 1e-4..1e4: dW1 x1.0005", mixed_scale(d=9, span=4.0, seed=s),
              "scale", w1_scale=1.0005),
        _case("relu-zeros 30%: dW1 x1.001", relu_zeros(6, 5, m=20, seed=s + 1), "scale",
              w1_scale=1.001),
        _case("relu-zeros 5% wide: dW2 x1.0001", relu_zeros(2, 4, m=16, hid=10, seed=s + 2),
              "scale", w2_scale=1.0001),
        _case("conv2d 2x2, 3 channels: kernel flipped",
              conv2d(cin=3, size=7, kh=2, kw=2, seed=s + 3), "flipped", flip_kernel=True),
        _case("conv2d 1 channel: kernel axes exchanged", conv2d(cin=1, cout=4, seed=s + 4),
              "flipped", swap_axes=True),
        _case("deep-mse: dW3 data term transposed, L2 right", deep_l2(), "transposed",
              _l2(deep_l2(), "W3", 1.5 / 9, "transposed")),
        _case("sigmoid-bce: dW1 only the L2 term", sig_l2(), "data term",
              _l2(sig_l2(), "W1", 0.6 / 12, "only")),
        _case("unread 2: dW3 of a layer the loss never reads", unread(seed=s + 5),
              "independent", leftover=True),
        *delta.heldout(_case, _trap, s)[0],
        # Issue 12, second round (written before the verdict was tuned to them).
        _case("stairs floor(x/0.01): straight-through dx", stairs("floor", seed=s + 22), None,
              straight_through=1.0),
        _case("stairs sign: straight-through dx", stairs("sign", n=20, seed=s + 23), None,
              straight_through=1.0),
        _case("dead ReLU units: derivative leaked", dead_relu(seed=s + 24), None, leak=True),
        _case("float32 sort of 3000: dx x1.01", sort32(n=3000, seed=s + 25), "scale", scale=1.01),
    ]
    traps_ = [
        _trap("heldout trap: float32 deep ReLU",
              mlp("relu", "mse", (6, 12, 12, 2), m=20, dtype=np.float32, seed=s + 9)),
        _trap("heldout trap: ReLU kinks, λ = 5", mlp("relu", "softmax", (4, 8, 3), m=10,
                                                     zero_rows=4, lam=5.0, seed=s + 10)),
        _trap("heldout trap: saturated tanh, loss 1e4",
              mlp("tanh", "mse", (5, 6, 2), x_scale=20.0, out_scale=1e4, seed=s + 11)),
        _trap("heldout trap: float32 batch of 64", mlp("sigmoid", "bce", (8, 16, 1), m=64,
                                                       dtype=np.float32, seed=s + 12)),
        _trap("heldout trap: hinge, L1", mlp("tanh", "hinge", (5, 6, 3), m=12, l1=0.5, seed=s + 13)),
        _trap("heldout trap: batch norm", batchnorm(m=20, d=5, h=8, seed=s + 14)),
        _trap("heldout trap: features 1e-4..1e4", mixed_scale(d=9, span=4.0, seed=s + 17)),
        _trap("heldout trap: 20% exact-zero ReLU inputs", relu_zeros(4, 5, seed=s + 18)),
        _trap("heldout trap: staircase round(x, 2)", staircase(n=300, decimals=2, seed=s + 19)),
        _trap("heldout trap: float32 sort of 1000", sort32(n=1000, seed=s + 20)),
        _trap("heldout trap: conv2d 2x2", conv2d(cin=3, size=7, kh=2, kw=2, seed=s + 21)),
        *delta.heldout(_case, _trap, s)[1],
        _trap("heldout trap: quantised x // 0.05 * 0.05", stairs("quantise", q=0.05, seed=s + 26)),
        _trap("heldout trap: ceil(x / 0.001)", stairs("ceil", q=0.001, seed=s + 27)),
        _trap("heldout trap: dead ReLU units", dead_relu(dead=3, seed=s + 28)),
        _trap("heldout trap: float32 sort of 6000", sort32(n=6000, seed=s + 29)),
        _trap("heldout trap: float16 tanh net",
              mlp("tanh", "softmax", (6, 12, 4), m=24, dtype=np.float16, seed=s + 30)),
    ]
    return bugs_, traps_
