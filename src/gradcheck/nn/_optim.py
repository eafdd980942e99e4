"""Optimisers: each turns (params, grads) into a new params dict; state lives in the object."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gradcheck._errors import OptionError

Params = dict[str, np.ndarray]


@dataclass
class SGD:
    """θ ← θ − α g.

    >>> import numpy as np
    >>> SGD(lr=0.5).step({"w": np.ones(2)}, {"w": np.ones(2)})["w"].tolist()
    [0.5, 0.5]
    """

    lr: float = 0.1

    def step(self, params: Params, grads: Params) -> Params:
        return {k: params[k] - self.lr * grads[k] for k in params}


@dataclass
class Momentum:
    """v ← β v + (1 − β) g;  θ ← θ − α v.

    >>> import numpy as np
    >>> Momentum(lr=1.0, beta=0.5).step({"w": np.zeros(1)}, {"w": np.ones(1)})["w"].tolist()
    [-0.5]
    """

    lr: float = 0.1
    beta: float = 0.9
    v: Params = field(default_factory=dict, repr=False)

    def step(self, params: Params, grads: Params) -> Params:
        for k, g in grads.items():
            self.v[k] = self.beta * self.v.get(k, 0.0) + (1 - self.beta) * g
        return {k: params[k] - self.lr * self.v[k] for k in params}


@dataclass
class RMSprop:
    """s ← β s + (1 − β) g²;  θ ← θ − α g / (√s + ε).

    >>> import numpy as np
    >>> w = RMSprop(lr=0.1, beta=0.0).step({"w": np.zeros(1)}, {"w": np.full(1, 4.0)})["w"]
    >>> round(float(w[0]), 6)
    -0.1
    """

    lr: float = 1e-3
    beta: float = 0.9
    eps: float = 1e-8
    s: Params = field(default_factory=dict, repr=False)

    def step(self, params: Params, grads: Params) -> Params:
        for k, g in grads.items():
            self.s[k] = self.beta * self.s.get(k, 0.0) + (1 - self.beta) * g * g
        return {k: params[k] - self.lr * grads[k] / (np.sqrt(self.s[k]) + self.eps) for k in params}


@dataclass
class Adam:
    """Momentum and RMSprop with bias correction (Kingma & Ba, 2015).

    >>> import numpy as np
    >>> w = Adam(lr=0.1).step({"w": np.zeros(1)}, {"w": np.full(1, 3.0)})["w"]
    >>> round(float(w[0]), 6)  # the first step moves by lr, whatever the gradient's size
    -0.1
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    t: int = 0
    m: Params = field(default_factory=dict, repr=False)
    v: Params = field(default_factory=dict, repr=False)

    def step(self, params: Params, grads: Params) -> Params:
        self.t += 1
        out = {}
        for k, g in grads.items():
            self.m[k] = self.beta1 * self.m.get(k, 0.0) + (1 - self.beta1) * g
            self.v[k] = self.beta2 * self.v.get(k, 0.0) + (1 - self.beta2) * g * g
            m_hat = self.m[k] / (1 - self.beta1**self.t)
            v_hat = self.v[k] / (1 - self.beta2**self.t)
            out[k] = params[k] - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return out


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "rmsprop": RMSprop, "adam": Adam}


def make_optimizer(name: str, lr: float | None = None) -> SGD | Momentum | RMSprop | Adam:
    """An optimiser by name, with its default learning rate unless ``lr`` is given.

    Args:
      name: ``"sgd"``, ``"momentum"``, ``"rmsprop"`` or ``"adam"``.
      lr: the learning rate (default: the optimiser's own).

    Returns:
      A fresh optimiser with a ``step(params, grads) -> params`` method; an unknown name is an
      ``OptionError`` that lists the known ones.

    >>> make_optimizer("adam", lr=0.01)
    Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-08, t=0)
    """
    if name not in OPTIMIZERS:
        raise OptionError(f"optimizer={name!r} is not known; choose one of: {', '.join(OPTIMIZERS)}.")
    return OPTIMIZERS[name]() if lr is None else OPTIMIZERS[name](lr=lr)
