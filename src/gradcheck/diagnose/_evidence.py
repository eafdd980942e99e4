"""What the signatures look at: one suspect tensor's checked entries, and when a relation fits.

A relation *fits* when, after it is applied, what is left of the error is small: either within
the check's own per-entry tolerance (times ``SLACK``), or under ``EXPLAINED`` of both the error
it started from and the gradient itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck.report._model import AGREES, MISMATCH, Component

EXPLAINED = 1e-2  # residual norm, over min(‖g − n‖, ‖g‖), below which a relation fits
SLACK = 3.0  # or: every residual entry within this many times the check's own tolerance
NAMED = 1e-3  # relative closeness for a factor to be called 2, 1/2, m or 1/m
ZERO = 1e-8  # ‖g‖ ≤ ZERO·‖n‖ counts as "all zeros"
CONCENTRATED = 0.5  # localized: at most this fraction of rows / columns / entries is wrong
ENTRIES = 6  # name single entries when at most this many are wrong
# With fewer checked entries than this, any one-constant relation fits (a scalar is a "scale"
# of anything); such a tensor takes the kind that explains the other suspects, if it fits
# (``classify_as``), and ``classify`` alone only names kinds that fit no constant.
MIN_FIT = 3


@dataclass(frozen=True)
class Evidence:
    """What the signatures look at for one suspect tensor (flattened, checked entries only)."""

    component: Component
    mask: np.ndarray  # flat bool: entries that were compared (not kink-skipped, not unchecked)
    n: np.ndarray
    g: np.ndarray
    theta: np.ndarray
    bound: np.ndarray
    batch_size: int | None = None
    strict: bool = False  # only fits within the per-entry tolerance count (the first pass)

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def error(self) -> float:
        return float(np.linalg.norm(self.g - self.n))

    def explains(self, residual: np.ndarray, slack: float = 1.0) -> bool:
        """Whether ``residual`` (what a relation leaves of g − n) is small enough to call a fit.

        A true relation leaves only the numerical error of n: within the check's own per-entry
        tolerance (times ``SLACK``). Failing that, the residual must be tiny next to both the
        error and the gradient, so that a large error (a sign flip) cannot hide a poor fit.
        """
        if not residual.size:
            return False
        if np.all(np.abs(residual) <= SLACK * slack * self.bound):
            return True
        if self.strict:
            return False
        scale = min(self.error, float(np.linalg.norm(self.g)))
        return float(np.linalg.norm(residual)) <= EXPLAINED * scale


def evidence(c: Component, batch_size: int | None = None) -> Evidence:
    """The checked entries of a component as flat float64 arrays."""
    flags = c.flags.ravel()
    mask = (flags == AGREES) | (flags == MISMATCH)  # np.isin's answer, without its cost
    flat = lambda a: np.asarray(a, dtype=np.float64).ravel()[mask]  # noqa: E731
    return Evidence(
        c, mask, flat(c.numeric_array), flat(c.analytic_array), flat(c.value_array),
        flat(c.bound_array), batch_size,
    )


def fit(y: np.ndarray, x: np.ndarray) -> float:
    """Least-squares k in y ≈ k·x (0.0 when x is all zeros)."""
    xx = float(x @ x)
    return 0.0 if xx == 0.0 else float(x @ y) / xx


