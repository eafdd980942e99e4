"""The wording of the notes the framework adapters (torch, JAX, TensorFlow) add: one renderer
per adapter ``NoteCode``, named after it (``NoteCode.BY_OUTPUT``: ``by_output``); ``_sentences``
builds its table from these names.

>>> precision(None, evaluated="float32", native="float32", how="autograd")
"Evaluated in the tensors' own dtype (float32)."
"""

from __future__ import annotations

from gradcheck.report._sentences_tools import LOOP


def precision(_: None, evaluated: str, native: str, how: str, why: str = "") -> str:
    """Which dtype the check evaluated: float64 copies, or the tensors' own (and why)."""
    if evaluated == "float64" and native != "float64":
        return (f"Evaluated on float64 copies of the {native} tensors ({how} in float64 too); "
                f"the originals were not touched. precision='native' checks the {native} "
                "arithmetic itself.")
    return f"Evaluated in the tensors' own dtype ({native})" + (f": {why}." if why else ".")


def evaluation(
    _: None, tool: str, path: str, reason: str = "", batched_us: float = 0.0,
    loop_us: float = 0.0, entries: int = 0,
) -> str:
    """How the perturbed losses were evaluated: ``path`` "batched", "loop" (measured faster),
    "small" (a check of few ``entries``: the loop) or "fallback" (batching refused or failed,
    ``reason``)."""
    if path == "fallback":
        return f"{LOOP}: {reason}"
    if path == "small":
        return (f"Perturbed losses were evaluated one by one: {entries} entries make a check "
                f"of a few dozen loss calls, where {tool}'s cost per call would outweigh "
                "batching.")
    if path == "loop":
        return (f"Perturbed losses were evaluated one by one: the loop measured faster than "
                f"{tool} on the first stack ({loop_us:.3g} µs per row against "
                f"{batched_us:.3g} µs).")
    text = f"Perturbed losses were evaluated in batches with {tool} (chunked"
    if batched_us:  # the figures are in the note's numbers; the sentence stays the same
        return text + "; not slower than the loop, measured on the first stack)."
    return text + ")."


def by_output(_: None, outputs: int, found: bool, screened: bool = False) -> str:
    """The multi-output convention at work: checked together, then one by one (also where the
    combined check passed but the outputs' gradients did not add up to the combined one)."""
    if screened:
        head = (f"The {outputs} outputs passed checked together (J = Σ_k ⟨output k, R_k⟩), but "
                "the gradients of each output alone did not add up to the combined gradient (a "
                "backward that is not linear in its cotangents)")
    else:
        head = (f"The {outputs} outputs were checked together (J = Σ_k ⟨output k, R_k⟩); that "
                "check failed")
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


def grad_inside(_: None) -> str:
    return ("fn runs only with gradients enabled (it differentiates inside, e.g. "
            "torch.autograd.grad): each perturbed loss was evaluated with grad enabled, on inputs "
            "that require grad.")


def written_buffers(_: None, buffers: tuple[str, ...]) -> str:
    shown = ", ".join(buffers[:4]) + (", ..." if len(buffers) > 4 else "")
    return (
        f"The forward writes into buffer(s) {shown} (each evaluation started from their "
        "original values). If the output depends on what it writes there through code autograd "
        "does not differentiate (spectral_norm's power iteration in train mode), autograd's "
        "gradient is not the derivative of the forward and this failure is expected: check "
        "such a module in eval mode (module.eval())."
    )


def hooks(_: None, params: tuple[str, ...]) -> str:
    return (
        f"Parameter(s) {', '.join(params[:4])} have gradient hooks (register_hook), which the "
        "check does not run: it compares autograd's gradient of the forward, before any hook "
        "rescales or clips it, with finite differences."
    )


def integer_outputs(_: None, count: int, dtypes: tuple[str, ...]) -> str:
    return (f"{count} integer/bool output(s) ({', '.join(dtypes)}) have no gradient and were "
            "left out.")


def undifferentiable_outputs(_: None, outputs: tuple[int, ...]) -> str:
    left = ", ".join(f"output {k}" for k in outputs)
    return (f"Floating output(s) without grad_fn left out ({left}: not differentiable, e.g. "
            "saved mean/rstd); outputs are numbered among the floating ones.")


def sparse_input(name: str, kind: str, stored: int, size: int) -> str:
    return (f"{name} is sparse ({kind}, {stored} stored entries of {size}): checked through "
            "its stored values only (the component is indexed by stored entry); the other "
            "entries are not perturbed.")


def unconnected(name: str, depends: bool) -> str:
    head = (f"{name}: GradientTape returned None (the output is not connected to it through "
            "differentiable operations); its gradient was taken as zeros")
    if not depends:
        return (f"{head}, and the finite differences agree that J does not depend on it, so no "
                "gradient of it was tested. If it should be used, check that the computation "
                "reads it: check_function passes fn a copy, so fn must compute with its "
                "argument (not a tf.Variable from a closure or a global); a Keras layer's "
                "call() must read the weight it created.")
    return (f"{head}, but J does change with it: the path from {name} to the output is cut (a "
            ".numpy() or float() call, tf.stop_gradient, a cast to an integer, or a "
            "custom_gradient that returns None for it).")


def part(_: None, part: str, note: str) -> str:
    """A note of one part of a merged report (an output, a mode, an order), labelled."""
    return f"[{part}] {note}"


def jit_fallback(_: None, error: str) -> str:
    return f"fn could not be jitted ({error}); it ran op by op."


def _cfmt(z: complex) -> str:
    return f"{z.real:.6g}{z.imag:+.6g}j"


def complex_worst(name: str, index: tuple[int, ...], numeric: complex, analytic: complex) -> str:
    """The worst entry of a complex tensor, as the framework writes its complex gradient."""
    return (f"{name} (complex): at {name}[{', '.join(map(str, index))}] numeric "
            f"{_cfmt(numeric)}, analytic {_cfmt(analytic)} (as the framework writes it).")


def modes_disagree(_: None, wrong: str) -> str:
    """mode='both': one mode disagrees with finite differences, the other agrees."""
    other = "reverse" if wrong == "forward" else "forward"
    rule = "the forward-mode rule (jvp)" if wrong == "forward" else "the backward (vjp)"
    return (f"mode='both': {wrong} mode disagrees with finite differences while {other} "
            f"mode agrees, so {rule} is wrong.")


def forward_jvps(_: None, count: int) -> str:
    return (f"Forward mode: the gradient was assembled from {count:,} JVPs and compared with "
            "finite differences along the same tangents.")


def forward_tangents(_: None, names: tuple[str, ...], tangents: int, full: int) -> str:
    return (f"{', '.join(names)}: checked along {tangents} random tangents each (x = x0 + V·c; "
            f"entry k of the component is the JVP along tangent k): more than {full:,} "
            "coordinates in all would take one JVP each.")


def order2_backward(_: None) -> str:
    return ("order=2: the gradient itself agrees with finite differences, but the backward's "
            "own derivatives do not: the backward is right in value and wrong under "
            "differentiation (a detached or stop_gradient'ed factor, a missing "
            "create_graph path).")


def order2_cut(_: None, names: tuple[str, ...]) -> str:
    return (f"order=2: double backward found no path from the backward to {', '.join(names)} "
            "(None from autograd.grad): the backward is not differentiable there "
            "(@once_differentiable, .detach(), a NumPy round trip, no create_graph path).")


def jacobian(_: None) -> str:
    return ("Full Jacobians compared (jacobian=True): one check per output entry; a component "
            "is indexed [output index..., input index...].")


def sparse_loop(_: None) -> str:
    return "Sparse inputs: perturbed losses evaluated one by one."


def order2(_: None, outputs: int) -> str:
    """What the order-2 check compares (G(x, u) and its components)."""
    return (
        "order=2: G(x, u) = ⟨vjp(x, u), w⟩ with random cotangent u and weights w (from seed); "
        "its finite differences w.r.t. the inputs and u are compared with double backward. "
        "'<input> (backward w.r.t. input)' is the backward's derivative w.r.t. that input, "
        "'cotangent' its derivative w.r.t. the cotangent"
        + (" of each output." if outputs > 1 else ".")
    )
