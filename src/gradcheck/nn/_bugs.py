"""Planted backprop bugs, for learning: each is a switch in ``_net.py``'s backward pass."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gradcheck._errors import OptionError


class Bug(StrEnum):
    """Mistakes people make when they write backprop by hand (``Net(..., bug=Bug.SIGN_DB2)``).

    >>> Bug("act-deriv-of-a") is Bug.ACT_DERIV_OF_A
    True
    """

    ACT_DERIV_OF_A = "act-deriv-of-a"
    MISSING_L2 = "missing-l2"
    MISSING_1_OVER_M = "missing-1-over-m"
    SIGN_DB2 = "sign-db2"
    TRANSPOSED_DW1 = "transposed-dW1"
    STALE_ACTIVATIONS = "stale-activations"


@dataclass(frozen=True)
class Plant:
    """What a bug does, and which parameters a correct checker must then flag."""

    what: str
    wrong: str  # the parameters whose gradient becomes wrong, in words
    derivative_at_a: bool = False
    drop_l2: bool = False
    drop_1_over_m: bool = False
    negate_last_bias: bool = False
    transpose_w1: bool = False
    stale: bool = False


PLANTS: dict[Bug, Plant] = {
    Bug.ACT_DERIV_OF_A: Plant(
        "g'(A) instead of g'(Z): the activation's derivative taken at its output (seed 003)",
        "every W_l, b_l below the output layer", derivative_at_a=True),
    Bug.MISSING_L2: Plant(
        "the λ/m · W_l term of the L2 penalty left out of dW_l (J still includes it)",
        "every W_l (not the biases)", drop_l2=True),
    Bug.MISSING_1_OVER_M: Plant(
        "the data term's gradient summed over the batch instead of averaged (no 1/m)",
        "every parameter", drop_1_over_m=True),
    Bug.SIGN_DB2: Plant(
        "db of the output layer (db2 in a 2-layer net) with its sign flipped",
        "the output bias bL", negate_last_bias=True),
    Bug.TRANSPOSED_DW1: Plant(
        "dW1 computed as δ1ᵀ·X (transposed) and reshaped into W1's shape, as flat-vector code does",
        "W1", transpose_w1=True),
    Bug.STALE_ACTIVATIONS: Plant(
        "backprop reads a stale cache: each example's δ meets the hidden Z, A cached for another "
        "example (the cache is one slot behind)",
        "every W_l and the hidden biases", stale=True),
}


def plant(bug: Bug | str | None) -> tuple[Bug | None, Plant]:
    """The ``Bug`` named by ``bug`` (None: a correct net) and what it switches on."""
    if bug is None:
        return None, Plant("none", "none")
    try:
        named = Bug(bug)
    except ValueError:
        valid = ", ".join(b.value for b in Bug)
        raise OptionError(f"bug={bug!r} is not a planted bug; choose one of: {valid}.") from None
    return named, PLANTS[named]
