"""Hidden-layer activations as data: each entry is f(z) and its derivative f'(z) at the pre-activation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LEAK = 0.01  # slope of leaky ReLU for z < 0


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # 1 / (1 + e^-z) written with tanh: no overflow warning for large |z|, same value.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass(frozen=True)
class Activation:
    """g(z) and g'(z). The derivative takes the pre-activation Z, never the output A = g(Z).

    >>> import numpy as np
    >>> tanh = ACTIVATIONS["tanh"]
    >>> tanh.df(np.zeros(1)).tolist(), tanh.kinked, ACTIVATIONS["relu"].kinked
    ([1.0], False, True)
    """

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray], np.ndarray]
    kinked: bool = False  # g' jumps at 0: g'(g(z)) == g'(z), so "derivative of A" is invisible


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", _sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
        Activation("tanh", np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
        Activation("relu", lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype), True),
        Activation(
            "leaky-relu",
            lambda z: np.where(z > 0, z, LEAK * z),
            lambda z: np.where(z > 0, 1.0, LEAK).astype(z.dtype),
            True,
        ),
    )
}
