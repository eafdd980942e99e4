"""Across tensors: an error that starts at the output delta (``delta``).

Backprop only carries an error towards the input. The last layer's gradients are built from
its input a_{L−1} and its delta δ_L = dJ/dz_L alone (dW_L = a_{L−1}ᵀδ_L, db_L = Σ δ_L), and
every earlier layer's from δ_L carried back through W_Lᵀ. So an error that shows in the last
layer comes from that layer's backward pass: either its own dW / db formula, which is a
relation of that tensor alone (a scale, a sign, a transpose, an L2 term …) and stays there,
or δ_L, which also reaches every tensor of every layer before it. When the last layer is wrong
with no relation of its own and so is every tensor of every earlier layer, one mistake
explains all of it: the output delta. Not this kind: a hidden layer's wrong f′ (the output
layer is right: the origin is that hidden layer), the same factor or sign everywhere ("scale",
"sign": the delta is off by that factor, which those kinds say more precisely), the same
per-tensor mistake in every dW (the biases, which that formula does not touch, stay right).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gradcheck.diagnose._evidence import MIN_FIT, evidence
from gradcheck.diagnose._hints import DELTA_HINT, delta_earlier_hint
from gradcheck.diagnose._signatures import own_relation
from gradcheck.report._format import layer_keys
from gradcheck.report._model import KINK, Component, Finding, FindingKind


def layer_chain(
    components: Mapping[str, Component], layers: Sequence[str] | None
) -> list[list[str]]:
    """Parameters from input to output, grouped into layers (``same_layer``: W2 and b2).

    The order is ``layers=`` if given, else the layer numbers in the names when every name has
    one (as ``likely_origin``), else insertion order. A tensor with no checked entry, or one J
    does not depend on (every numeric entry 0), is no link of the chain and is left out.
    """
    names = list(components)
    keys = layer_keys({n: components[n].shape for n in names})
    if layers is not None:
        order = [n for n in dict.fromkeys(layers) if n in components]
    elif all(k is not None for k in keys.values()):
        order = sorted(names, key=lambda n: keys[n])  # stable: ties keep insertion order
    else:
        order = names
    groups: list[list[str]] = []
    for name in order:
        e = evidence(components[name])
        if not e.n.size or not np.any(e.n):
            continue
        previous = groups[-1][-1] if groups else None
        if previous is not None and same_layer(name, previous, keys):
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def same_layer(a: str, b: str, keys: Mapping[str, tuple[int, ...] | None]) -> bool:
    """One layer: the same layer number (W2, b2) or the same module (fc.weight, fc.bias)."""
    if keys[a] is not None and keys[a] == keys[b]:
        return True
    return "." in a and a.rsplit(".", 1)[0] == b.rsplit(".", 1)[0]


def output_delta(
    components: Mapping[str, Component],
    findings: Mapping[str, Finding],
    layers: Sequence[str] | None,
    established: frozenset[str] = frozenset(),
) -> dict[str, Finding]:
    """"delta" findings for every suspect when the error starts at the output delta, else {}.

    ``findings`` are the per-tensor findings of the suspects (after any re-check). The rule:
    the parameters are a network's (``layers=`` given, or a layer with more than one tensor);
    every suspect is a link of the chain; the last layer has a wrong tensor with at least
    ``MIN_FIT`` checked entries and no relation of its own; every tensor of every earlier
    layer is wrong (with one layer: all of its tensors, at least two); and no wrong tensor has a
    relation of its own (``own_relation``; ``established``: suspects whose kind a re-check
    confirmed).
    """
    wrong = set(findings)
    if len(wrong) < 2:  # before the chain: building it reads every tensor's entries
        return {}
    groups = layer_chain(components, layers)
    if not groups or not wrong <= {n for g in groups for n in g}:
        return {}
    # Only a network has an output delta: without layers=, the names must show one (a layer
    # holding a weight and its bias, W2 and b2). input0, input1 of a function are no layers.
    if layers is None and all(len(g) < 2 for g in groups):
        return {}
    *earlier_groups, last = groups
    earlier = [n for g in earlier_groups for n in g]
    if not set(earlier) <= wrong or (not earlier and not set(last) <= wrong):
        return {}
    found = {n: evidence(components[n]) for n in wrong}
    if any(own_relation(found[n], findings[n], n in established) for n in wrong):
        return {}
    last_wrong = [n for n in last if n in wrong]
    if not any(found[n].n.size >= MIN_FIT for n in last_wrong):
        return {}
    last_right = [n for n in last if n not in wrong]
    out = {n: _delta_last(n, findings[n], last_wrong, last_right, earlier, components)
           for n in last_wrong}
    kinks = any(np.any(c.flags == KINK) for c in components.values())
    out.update({n: _delta_earlier(n, findings[n], last, kinks) for n in earlier})
    return out


def _listed(names: list[str], at_most: int = 6) -> str:
    """Names joined with commas, the rest counted ("W1, b1, W2, b2, W3, b3 and 9 more")."""
    shown = ", ".join(names[:at_most])
    return shown if len(names) <= at_most else f"{shown} and {len(names) - at_most} more"


def _delta_last(
    name: str, base: Finding, last_wrong: list[str], last_right: list[str], earlier: list[str],
    components: Mapping[str, Component],
) -> Finding:
    who = _listed(last_wrong)
    if earlier:
        detail = (
            f"d{name} has no relation of its own to the right gradient, and every layer before "
            "it is wrong too: the error starts at the output delta δ_L = dJ/dz_L of the last "
            f"layer ({who} wrong; {_listed(earlier)} wrong as a consequence)."
        )
    else:
        both = "both" if len(last_wrong) == 2 else "all"
        detail = (
            f"{' and '.join('d' + n for n in last_wrong)} are {both} wrong with no relation of "
            f"their own: the mistake is most likely in the output delta δ_L = dJ/dz_L they are "
            f"{both} built from (dW = a_prevᵀδ_L, db = Σ δ_L)."
        )
    if base.kind is FindingKind.LOCALIZED:
        detail += f" {base.detail[:1].upper()}{base.detail[1:]}"  # "Only row 7 of dW2 is wrong …"
    for right in last_right:
        if len(components[right].shape) == 1:
            detail += (f" d{right} = Σ δ_L is right, so the error in δ_L sums to zero over the "
                       "batch: are the labels paired with the right samples?")
        else:
            detail += (f" d{right} is right, so it is built from another δ_L than {who} and "
                       "the backprop to earlier layers: compute δ_L once and use it for all.")
    return Finding(name, FindingKind.DELTA, detail, DELTA_HINT, where=base.where)


def _delta_earlier(name: str, base: Finding, last: list[str], kinks: bool) -> Finding:
    return Finding(
        name, FindingKind.DELTA,
        f"d{name} is wrong because the output delta is: backprop carries δ_L from the last "
        f"layer ({_listed(last)}) into every earlier layer, so d{name} cannot be judged on "
        "its own until δ_L is fixed.",
        delta_earlier_hint(name, kinks),
        where=base.where,
    )
