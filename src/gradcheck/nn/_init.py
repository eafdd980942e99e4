"""Weight initialisation from the notes: a variance per layer, times a multiplier."""

from __future__ import annotations

import numpy as np

# Variance of W_l's entries given n[l-1] (fan in) and n[l] (fan out).
INITS = {
    "he": lambda n_in, n_out: 2.0 / n_in,  # ReLU nets
    "xavier": lambda n_in, n_out: 1.0 / n_in,  # tanh nets
    "glorot": lambda n_in, n_out: 2.0 / (n_in + n_out),
}


def init_params(
    sizes: tuple[int, ...], init: str, scale: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """W1, b1, …, WL, bL: W_l ~ N(0, scale² · variance(n[l−1], n[l])), b_l = 0.

    Args:
      sizes: layer widths n[0], …, n[L].
      init: ``"he"``, ``"xavier"`` or ``"glorot"`` (the variance rule, ``INITS``).
      scale: multiplier on the standard deviation.
      rng: the generator to draw from.

    Returns:
      The dict of parameters, in layer order.

    >>> p = init_params((4, 3, 2), "he", 1.0, np.random.default_rng(0))
    >>> list(p), p["W1"].shape, p["b2"].tolist()
    (['W1', 'b1', 'W2', 'b2'], (4, 3), [0.0, 0.0])
    """
    params: dict[str, np.ndarray] = {}
    for layer in range(1, len(sizes)):
        n_in, n_out = sizes[layer - 1], sizes[layer]
        std = scale * np.sqrt(INITS[init](n_in, n_out))
        params[f"W{layer}"] = rng.standard_normal((n_in, n_out)) * std
        params[f"b{layer}"] = np.zeros(n_out)
    return params
