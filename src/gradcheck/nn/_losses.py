"""Output layers as data: the output activation, its per-example cost, all with delta = A_L − Y.

Each pair below is a *canonical link*: the output activation is matched to the cost so that
∂cost/∂Z_L = A_L − Y exactly (softmax + cross-entropy, sigmoid + binary cross-entropy, identity
+ squared error). That is why the backprop in ``_net.py`` starts from ``delta = (A_L − Y) / m``
whichever output is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.nn._activations import _sigmoid


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class Output:
    """A_L = output(Z_L) and the summed cost Σ_i cost(Z_L[i], Y[i]) computed stably from Z_L.

    >>> import numpy as np
    >>> ce = OUTPUTS["softmax-ce"]
    >>> ce.output(np.zeros((1, 2))).tolist(), round(ce.cost(np.zeros((1, 2)), np.eye(2)[:1]), 6)
    ([[0.5, 0.5]], 0.693147)
    """

    name: str
    output: Callable[[np.ndarray], np.ndarray]
    cost: Callable[[np.ndarray, np.ndarray], float]
    classifier: bool


OUTPUTS: dict[str, Output] = {
    o.name: o
    for o in (
        # −Σ y log softmax(z)
        Output("softmax-ce", lambda z: np.exp(_log_softmax(z)),
               lambda z, y: float(-np.sum(y * _log_softmax(z))), True),
        # −Σ y log σ(z) + (1−y) log(1−σ(z)) = Σ log(1 + e^z) − y z
        Output("sigmoid-bce", _sigmoid,
               lambda z, y: float(np.sum(np.logaddexp(0.0, z) - y * z)), True),
        # ½ Σ (z − y)²
        Output("linear-mse", lambda z: z, lambda z, y: float(0.5 * np.sum((z - y) ** 2)), False),
    )
}
