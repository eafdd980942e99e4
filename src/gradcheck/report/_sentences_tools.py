"""The wording of the notes the tools around the engine add (``Monitor``, ``nn.Net``, the pytest
plugin, progress): one renderer per ``NoteCode``, looked up by ``_sentences.render``.

>>> monitor_found(None, step=7, check=2, steps=100, worst=3.5, names="W", path="/tmp/s")[:34]
'Monitor: found at training step 7 '
"""

from __future__ import annotations


def monitor_found(_: None, step: int, check: int, steps: int, worst: float, names: str,
                  path: str) -> str:
    return (
        f"Monitor: found at training step {step} (check {check} of {steps:,} "
        f"steps): a random direction disagreed by {worst:.3g}× its noise bound, and this "
        f"check of {names} confirmed it. The step's parameters, gradients and "
        f"batch are saved in {path}: gradcheck.monitor.reproduce({path!r}, loss) runs "
        "this check again."
    )


def net_l2(_: None, l2: float) -> str:
    return f"J includes the L2 term λ/(2m) Σ‖W_l‖² (λ = {l2:g})."


def net_dropout(_: None, keep_prob: float) -> str:
    return (
        f"Dropout (keep_prob = {keep_prob:g}) was made deterministic for the check: "
        "one fixed mask for every loss call and for backprop."
    )


def net_planted_bug(_: None, bug: str, what: str, wrong: str) -> str:
    return f"Planted bug {bug!r}: {what}; it corrupts {wrong}."


def taylor_skipped(_: None, names: str) -> str:
    return (f"{names}: borderline, but the budget left no calls for the Taylor test's second "
            "opinion (raise budget= to get it).")


def taylor_linear(name: str) -> str:
    return (f"{name} is borderline; the Taylor test saw no remainder above the noise (J is "
            "linear along its direction), so it gives no second opinion.")


def taylor_rate(name: str, border: float, rate: float, agrees: bool, verdict: str,
                suspect: bool) -> str:
    why = "" if agrees else (
        " (an error this small can lie below what the Taylor test resolves)" if suspect
        else f": look closer at {name}")
    return (f"{name} is borderline (its worst difference is within {border:g}x of the "
            f"tolerance); Taylor test rate {rate:.2f} (≈2 right, ≈1 wrong) "
            + ("agrees with" if agrees else "disagrees with") + f" the verdict '{verdict}'{why}.")


LOOP = "Perturbed losses were evaluated one by one (loop fallback)"

SHORT = {"evaluation": LOOP}  # what a note repeated from an earlier failure says instead


def shown_before(_: None, code: str) -> str:
    return f"{SHORT[code]}, as in an earlier failure."
