"""The wording of the notes ``check`` and its relatives add around the engine's (kinks skipped,
a loss's precision, dtypes, the textbook ratio, a flat θ's layout, size-1 axes, shared memory,
the course's extra gradients, a layer or H·v check): one renderer per ``NoteCode``, looked up
by ``_sentences.render``.

>>> shared_memory(None, pairs="a and b")[:30]
'params a and b share memory (o'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradcheck.report._format import fmt, index_text


def kinks_skipped(name: str, where: Sequence[tuple[int, ...]], count: int) -> str:
    first = ", ".join(index_text(name, tuple(int(i) for i in w)) for w in where[:3])
    more = f" and {count - 3} more" if count > 3 else ""
    return (
        f"{count} coordinate{'s' if count > 1 else ''} of {name} sit on a kink "
        f"(ReLU at 0, |w|, hinge): kink at {first}{more}. The analytic value lies between the "
        "left and right slopes (a valid subgradient), so they were skipped, not blamed."
    )


def low_precision(_: None, names: Sequence[str], noise: float, j0: float) -> str:
    digits = f"about {fmt(noise / abs(j0))} of its value" if j0 else f"±{fmt(noise)}"
    return (
        f"J is only known to {digits} (measured noise {fmt(noise)} on J = {fmt(j0)}: low "
        "precision inside the loss, float32 or cancellation); the check of "
        f"{', '.join(names)} is limited by the loss's precision, and the step "
        "and tolerance were widened to the measured noise."
    )


def dtype_allowance(_: None, names: Sequence[str], dtype: str) -> str:
    return (
        f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} {dtype}: the analytic "
        f"gradient was judged with the {dtype} precision allowance (the loss gets float64 "
        "copies of the values; an adapter's note says which dtype the function ran in)."
    )


def textbook_worry(_: None, relative_error: float) -> str:
    return (
        f"The textbook ratio reads 'worry' ({fmt(relative_error)}), but every difference is "
        "within the estimated numerical error: tiny, cancelling or kinked gradients make "
        "that ratio unreliable here, not a bug."
    )


def textbook_great(_: None, relative_error: float) -> str:
    return (
        f"The textbook ratio looks 'great' ({fmt(relative_error)}) only because larger "
        "gradients elsewhere dominate it; the entries named above are wrong all the same."
    )


def flat_layout(_: None, size: int, shape: tuple[int, ...], order: str, where: str) -> str:
    reading = ("column-major, as Octave/MATLAB's Theta(:) unrolls" if order == "F"
               else "row-major, as NumPy's ravel unrolls")
    octave = (" Indices are NumPy's, from 0: Theta1[i, j] is Theta1(i+1, j+1) in Octave "
              "(column 0 here is Octave's column 1: in ex4, the bias column)." if order == "F" else "")
    return (f"θ (shape {shape}, {size:,} entries) was checked as named tensors, {reading}: "
            f"{where}.{octave}")


def size_one_axes(_: None, found: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]]) -> str:
    parts = "; ".join(f"grads['{n}'] has shape {g} but params['{n}'] has shape {p}"
                      for n, g, p in found)
    name, g, p = found[0]
    name = name if "." not in name else f"grads[{name!r}]"
    grown = np.broadcast_shapes(g, p)
    return (
        f"{parts}: the shapes differ only by size-1 axes (a keepdims=True sum, or a row vector "
        "for a vector), so the values were judged, as if reshaped. Reshape before the update: "
        f"{name} − lr·d{name} broadcasts to shape {grown}, silently turning the parameter of "
        f"shape {p} into that (a column against a row even makes a matrix): return "
        f"d{name}.reshape({p}) (or sum without keepdims)."
    )


def shared_memory(_: None, pairs: str) -> str:
    return (
        f"params {pairs} share memory (one array twice, or views of one array): each was "
        "perturbed on its own copy, so each gradient was checked as the partial derivative "
        "through that entry alone. For tied weights, pass the array once with the summed "
        "gradient."
    )


def extra_grads(_: None, extras: Sequence[str]) -> str:
    return (
        f"grads also holds {', '.join(extras)}, which "
        f"{'belongs' if len(extras) == 1 else 'belong'} to no parameter (the course's "
        "intermediate gradients, such as dZ3 and dA2): not checked."
    )


def diagnosis_interrupted(_: None) -> str:
    return ("Ctrl-C stopped the diagnosis: the verdict is complete, but findings (what kind "
            "of mistake) may be missing.")


def layer_check(_: None, seed: int, outputs: int, diff: Sequence[str],
                passed_through: Sequence[str]) -> str:
    return (
        f"Layer check: J = Σ out·dout with a fixed random dout (seed {seed}) for "
        f"{outputs} output{'s' * (outputs != 1)}; differentiated: {', '.join(diff)}"
        + (f"; passed through unchanged: {', '.join(passed_through)}" if passed_through else "")
        + "."
    )


def hvp_components(_: None) -> str:
    return (
        "check_hvp: each parameter's component is H·v coordinate by coordinate (the gradient "
        "of ⟨grads(θ), v⟩, H symmetric); 'along v' is vᵀHv from finite differences of grads "
        "along v itself. Each loss evaluation is one call of grads."
    )


def hvp_along_only(_: None) -> str:
    return (
        "Only 'along v' disagrees: H·v is right coordinate by coordinate but not along v, "
        "so grads is not the gradient of one loss (its Jacobian is not symmetric) or H·v "
        "was evaluated at another point."
    )
