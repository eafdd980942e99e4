"""The hints: where to look, offered only where the evidence supports it, as rows of tables.

A finding's *detail* says what was observed; its *hint* says where to look. A relation that fits
(a sign, a missing 1/m) is evidence enough and its signature words its own hint. This module
holds the hints that need more than one tensor's relation: the named factors (``FACTORS``), the
tensors no relation explains (``HINTS``, the first row that applies wins) and the output delta.
Each row carries its reason, as the signatures do. A hint drawn from a name or a shape alone,
or with nothing behind it, is a guess and starts with "A guess".

>>> [rule.name for rule in HINTS]
['hidden delta', 'layer input', 'kernel', 'normalisation', 'embedding', 'input', 'fallback']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

NAMED = 1e-3  # relative closeness for a factor to be called 2, 1/2, m or 1/m
MAX_BATCH = 10**7  # a whole factor above this is not read as a batch size


# --- factors ---------------------------------------------------------------------------------


def factor_name(c: float, m: int | None) -> tuple[str, str] | None:
    """(name, hint) for a factor of ``FACTORS`` (2, 1/2; m and 1/m when the batch size is known).

    >>> factor_name(32.0, 32)[0], factor_name(2.0, None)[0], factor_name(3.0, None)
    ('m', '2', None)
    """
    for target, name, hint in _named_factors(m):
        if abs(c / target - 1.0) <= NAMED:
            return name, hint
    return None


def _named_factors(m: int | None) -> list[tuple[float, str, str]]:
    rows = [
        (2.0, "2", "A factor of 2: the derivative of a squared error without the ½ "
         "(d/da ½(a−y)² = a−y), or a term counted twice."),
        (0.5, "1/2", "A factor of 1/2: a ½ applied twice, or a (a − y) missing its 2."),
    ]
    if m is not None and m > 2:
        rows += [
            (float(m), "m", f"Looks like a missing 1/m (batch size m = {m}): average the loss "
             "gradient over the batch."),
            (1.0 / m, "1/m", f"Looks like 1/m applied twice (batch size m = {m})."),
        ]
    return rows


def whole_number(c: float) -> tuple[str, str] | None:
    """A whole factor k ≥ 3 with no batch size given: a batch size is only a guess, so said.

    >>> whole_number(4.0)[1]
    'A guess: if your batch size is 4, this is a missing 1/m (pass batch_size= to check to confirm).'
    """
    for value, word in ((c, "missing"), (1.0 / c if c else 0.0, "doubled")):
        k = round(value) if value < MAX_BATCH else 0  # 1.5e136 is no batch size
        if k >= 3 and abs(value / k - 1.0) <= NAMED:
            shown = str(k) if word == "missing" else f"1/{k}"
            what = "this is a missing 1/m" if word == "missing" else "1/m is applied twice"
            return shown, (f"A guess: if your batch size is {k}, {what} (pass batch_size= to "
                           "check to confirm).")
    return None


# --- tensors no relation explains ------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What the evidence says about an unexplained tensor beyond its own numbers.

    ``layer`` / ``after``: the tensors of its layer and of the next layer, each with its verdict
    (True right, False wrong), known only from a declared (``layers=``) or inferred (numbers in
    the names) order, never from argument order; ``kinks``: whether any entry of the check sat
    on a kink (a ReLU-like activation, for which f′(a) = f′(z)).
    """

    name: str
    shape: tuple[int, ...]
    layer: tuple[tuple[str, bool], ...] = ()
    after: tuple[tuple[str, bool], ...] = ()
    kinks: bool = False
    shapes: tuple[tuple[int, ...], ...] = ()  # the shapes of ``layer``'s tensors

    @property
    def words(self) -> list[str]:
        return [w for w in re.split(r"[^a-z]+", self.name.lower()) if w]


NORMALISATION = ("gamma", "beta", "scale", "shift", "norm", "bn", "ln")
EMBEDDING = ("emb", "embed", "embedding", "lookup", "token", "vocab")
KERNEL = ("w", "weight", "weights", "kernel", "filter", "filters", "conv", "k")
DATA = ("x", "xs", "input", "inputs", "data", "image", "images", "img", "h", "prev", "seq",
        "sequence", "feats", "features", "a", "dout", "upstream")
SMALL_WINDOW = 11  # a kernel's spatial axes are at most this long


def _kernel_shaped(c: Context) -> bool:
    if len(c.shape) < 3 or any(w in DATA for w in c.words):
        return False
    square = c.shape[-1] == c.shape[-2] <= SMALL_WINDOW
    return any(w in KERNEL for w in c.words) or square


def _is_input(c: Context) -> bool:
    return bool(c.words) and c.words[0] in DATA


def _hidden_delta(c: Context) -> bool:
    wrong = [n for n, ok in c.layer if not ok]
    bias = any(len(s) == 1 for s in c.shapes)
    return (len(c.layer) >= 2 and len(wrong) == len(c.layer) and bias and bool(c.after)
            and all(ok for _, ok in c.after))


def _bias_right(c: Context) -> bool:
    return len(c.shape) >= 2 and any(
        ok and len(s) == 1 for (_, ok), s in zip(c.layer, c.shapes, strict=True))


def _names(pairs: tuple[tuple[str, bool], ...]) -> str:
    return ", ".join(n for n, _ in pairs)


def _hidden_delta_text(c: Context) -> str:
    f_prime = ("the ReLU's mask (left out, or not this forward pass's units with z > 0)"
               if c.kinks else "the activation's derivative (left out, or taken at its output "
               "a = f(z) instead of its input z)")
    return (f"Every tensor of this layer ({_names(c.layer)}) is wrong, its bias too, and the next "
            f"({_names(c.after)}) is right, so the mistake is in this layer's delta δ = "
            f"(δ_next W_nextᵀ) ⊙ f′(z): {f_prime}, or the product through W_nextᵀ.")


def _layer_input_text(c: Context) -> str:
    bias = next(n for (n, ok), s in zip(c.layer, c.shapes, strict=True) if ok and len(s) == 1)
    return (f"d{bias} = Σ δ is right, so this layer's delta δ is right and the mistake is in "
            f"d{c.name} = a_prevᵀ δ itself: the layer's input a_prev (this forward pass's, not "
            "a stale cache or another layer's) or the order of the product.")


@dataclass(frozen=True)
class HintRule:
    """One row of ``HINTS``: when it applies, why that is evidence, and what it says."""

    name: str
    applies: Callable[[Context], bool]
    text: Callable[[Context], str]
    reason: str


HINTS: tuple[HintRule, ...] = (
    HintRule(
        "hidden delta", _hidden_delta, _hidden_delta_text,
        "db = Σ δ wrong means the layer's δ is wrong; the next layer right means its δ is right, "
        "so the error arises between the two. f′ at a is named only without kinks: for a ReLU "
        "f′(a) = f′(z), so that mistake cannot show there."),
    HintRule(
        "layer input", _bias_right, _layer_input_text,
        "db = Σ δ right means δ is right, so dW = a_prevᵀ δ is wrong through a_prev or the "
        "product (needs the layer order, declared or inferred)."),
    HintRule(
        "kernel", _kernel_shaped,
        lambda c: (f"A guess from its shape: {c.name} {c.shape} looks like a convolution kernel; "
                   "dK must sum over every output position and batch entry, with the forward "
                   "pass's padding, stride, index order and input windows."),
        "A kernel has 3 or more axes and small square spatial axes (or a kernel's name); data "
        "has as many axes (an RNN's (T, N, D) input, a pooling layer's (N, C, H, W) input), so "
        "rank alone is no evidence and a data name rules it out."),
    HintRule(
        "normalisation",
        lambda c: len(c.shape) == 1 and (any(w in NORMALISATION for w in c.words)
                                         or c.name.lower() in ("g", "b_norm")),
        lambda c: (f"A guess from its name: {c.name} looks like a normalisation scale or shift; "
                   "dgamma = Σ dout · x̂ (the normalised input, not z), dbeta = Σ dout, summed "
                   "over the batch (and the spatial axes for images); the input gradient needs "
                   "the mean and variance terms."),
        "Only the name says it: a 1-D gamma / beta / bn / ln."),
    HintRule(
        "embedding",
        lambda c: len(c.shape) == 2 and (any(w in EMBEDDING for w in c.words)
                                         or c.name.lower() == "e"),
        lambda c: (f"A guess from its name: {c.name} looks like an embedding table; rows of "
                   "repeated tokens must accumulate (np.add.at(dE, tokens, dx)), not be "
                   "assigned (dE[tokens] = dx)."),
        "Only the name says it: a 2-D emb / token / vocab table."),
    HintRule(
        "input", _is_input,
        lambda c: (f"A guess from its name: {c.name} is an input of the computation; d{c.name} "
                   "must send each output's gradient back to exactly the inputs it was computed "
                   "from (a max-pool window's maximum only, each copy of an upsampled entry "
                   "summed, every time step of a recurrence summed)."),
        "Only the name says it (x, inputs, h, …): routing is the commonest input-gradient bug."),
    HintRule(
        "fallback", lambda c: True,
        lambda c: (f"A guess (nothing points further): step through the backward pass that "
                   f"produces d{c.name}, comparing each intermediate with finite differences "
                   "of its forward step (check_layer does one layer)."),
        "Nothing in the evidence points anywhere: say so."),
)


def unexplained_hint(context: Context) -> str:
    """The first row of ``HINTS`` that applies to a tensor no relation explains.

    >>> unexplained_hint(Context("x", (5, 4, 10)))[:40]
    'A guess from its name: x is an input of '
    >>> unexplained_hint(Context("w", (8, 3, 3, 3)))[:38]
    'A guess from its shape: w (8, 3, 3, 3)'
    """
    return hint_rule(context).text(context)


def hint_rule(context: Context) -> HintRule:
    """The row of ``HINTS`` that words the hint of an unexplained tensor (the first that applies).

    >>> hint_rule(Context("K", (3, 2, 3, 3))).name, hint_rule(Context("W1", (4, 6))).name
    ('kernel', 'fallback')
    """
    return next(rule for rule in HINTS if rule.applies(context))


# --- the output delta ------------------------------------------------------------------------

DELTA_HINT = (
    "Check δ_L = dJ/dz_L, the loss's derivative through the output activation: with a squared "
    "error (a − y)·f′(z_L)/m, f′ taken at z_L, not at a_L; with softmax or sigmoid + "
    "cross-entropy (a − y)/m, with no extra f′. Then: y one-hot, in the right class and paired "
    "with its own sample; 1/m applied once; δ_L from this call's forward pass (not a stale "
    "cache); and the same δ_L for dW_L, db_L and the backprop through W_Lᵀ."
)


def delta_earlier_hint(name: str, kinks: bool) -> str:
    """A layer before the output: judged only once δ_L is fixed (f′ at a named without kinks).

    >>> delta_earlier_hint("W1", kinks=True)[-31:]
    "this layer's own backward pass."
    """
    where = "" if kinks else " (the activation's derivative at z, not at a = f(z))"
    return (f"Fix δ_L first and check again; if d{name} is still wrong, the mistake is in this "
            f"layer's own backward pass{where}.")
