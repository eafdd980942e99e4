"""The wording of the notes the framework adapters (torch, JAX, TensorFlow) add: one renderer
per adapter ``NoteCode``, looked up by ``_sentences.render``.

>>> precision(None, evaluated="float32", native="float32", how="autograd")
"Evaluated in the tensors' own dtype (float32)."
"""

from __future__ import annotations


def precision(_: None, evaluated: str, native: str, how: str, why: str = "") -> str:
    """Which dtype the check evaluated: float64 copies, or the tensors' own (and why)."""
    if evaluated == "float64" and native != "float64":
        return (f"Evaluated on float64 copies of the {native} tensors ({how} in float64 too); "
                "the originals were not touched.")
    return f"Evaluated in the tensors' own dtype ({native})" + (f": {why}." if why else ".")


def evaluation(
    _: None, tool: str, path: str, reason: str = "", batched_us: float = 0.0,
    loop_us: float = 0.0,
) -> str:
    """How the perturbed losses were evaluated: ``path`` "batched", "loop" (measured faster)
    or "fallback" (batching refused or failed, ``reason``)."""
    if path == "fallback":
        return f"Perturbed losses were evaluated one by one (loop fallback): {reason}"
    if path == "loop":
        return (f"Perturbed losses were evaluated one by one: the loop measured faster than "
                f"{tool} on the first stack ({loop_us:.3g} µs per row against "
                f"{batched_us:.3g} µs).")
    text = f"Perturbed losses were evaluated in batches with {tool} (chunked"
    if batched_us:  # the figures are in the note's numbers; the sentence stays the same
        return text + "; not slower than the loop, measured on the first stack)."
    return text + ")."


def by_output(_: None, outputs: int, found: bool) -> str:
    """The multi-output convention at work: checked together, then one by one."""
    head = f"The {outputs} outputs were checked together (J = Σ_k ⟨output k, R_k⟩); that check failed"
    if not found:
        return head + "; checked alone, no single output was found wrong."
    return (head + ", so each output was then checked alone with the same R_k: a component "
            "'<input> (output k)' names the pair.")


def empty(name: str, shape: tuple[int, ...]) -> str:
    return f"{name} is empty (shape {tuple(shape)}): nothing to check."


def nothing_checked(_: None) -> str:
    return ("Nothing was checked: every tensor to check is empty, so there is no gradient "
            "entry to compare (the verdict is incomplete, not passed).")


def complex_input(name: str, convention: str) -> str:
    return (f"{name} is complex: its real and imaginary parts were perturbed separately (its "
            f"component has a last axis of 2: 0 = real, 1 = imaginary), against {convention}.")
