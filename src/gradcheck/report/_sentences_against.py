"""The wording of check_against's notes (the three runs, the inputs, the tolerance's
statistics): one renderer per ``NoteCode``, named after it (``NoteCode.AGAINST_HELD``:
``against_held``).

>>> against_held(None)[:34]
"The modules' parameters were held "
"""

from __future__ import annotations

from gradcheck.report._format import fmt


def against_runs(_: None, dtype: str) -> str:
    return (f"fn ran in {dtype}; the reference in float64 (the truth) and in {dtype} (the "
            f"yardstick), all three at the same inputs and seeded cotangents rounded to "
            f"{dtype}. The textbook relative error is the kernel's against the truth: in a low "
            "dtype it reads 'worry' for any kernel, and the verdict does not use it.")


def against_rounded(_: None, inputs: tuple[int, ...], dtype: str) -> str:
    return (f"inputs {list(inputs)} were rounded to {dtype} for all three runs (the truth "
            "is computed at the kernel's inputs, not at the unrounded ones).")


def against_drawn(_: None, inputs: tuple[int, ...], dtype: str) -> str:
    return (f"inputs {list(inputs)} were drawn from the seed (standard normal), then rounded "
            f"to {dtype}.")


def against_held(_: None) -> str:
    return ("The modules' parameters were held fixed (copied to each dtype): only the "
            "inputs' gradients are compared; pass a parameter as an input to check its own.")


def against_jvp(_: None, who: str = "", error: str = "") -> str:
    """Forward mode compared, or not (``who`` has no forward-mode derivative: ``error``)."""
    if not who:
        return "Forward mode: JVPs with seeded tangents compared as 'jvp out'."
    return f"Forward mode not checked: {who} has no forward-mode derivative ({error})."


def against_unjudged(name: str, count: int, dtype: str) -> str:
    return (f"{name}: {count} entr{'y' if count == 1 else 'ies'} not judged: the truth or the "
            f"reference in {dtype} is not finite there, so there is no yardstick error to "
            "compare with (a NaN of the function itself, or the low dtype's overflow).")


def against_stats(
    name: str, blocks: int, describe: str, yard: tuple[float, float],
    ratio: tuple[float, float], median: float, level: float, z: float, spread: float | None,
    allowed_mean: tuple[float, float], allowed_q: tuple[float, float], failed: int,
) -> str:
    """The tolerance's statistics for one tensor (``spread`` None: no outlier test)."""
    outlier = (f"or (an outlier test, {blocks} blocks) beyond the median ratio by "
               f"exp(z·max(s, s₀)), s = {fmt(spread)} (log, 1.4826·MAD)"
               if spread is not None else "no outlier test (fewer than 5 blocks)")
    return (f"{name}: {blocks} block{'s' * (blocks != 1)} ({describe}); "
            f"yardstick mean |error| per block {fmt(yard[0])} to {fmt(yard[1])}; "
            f"kernel/yardstick ratio of the means {fmt(ratio[0])} to {fmt(ratio[1])}, median "
            f"{fmt(median)}. Allowed ratio: level {fmt(level)}× times exp(z·s₀), "
            f"s₀ the block's sampling noise, z = {z:.2f}, {outlier}: "
            f"{fmt(allowed_mean[0])}× to {fmt(allowed_mean[1])}× on the mean, "
            f"{fmt(allowed_q[0])}× to {fmt(allowed_q[1])}× on the high quantile; "
            f"{failed} of {blocks} exceeded it.")
