"""Which parameter is wrong first, and what kind of mistake it looks like."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.core._tree import flatten
from gradcheck.diagnose._delta import output_delta, same_layer
from gradcheck.diagnose._evidence import MIN_FIT, evidence, fit
from gradcheck.diagnose._hints import Context, unexplained_hint
from gradcheck.diagnose._signatures import (
    classify,
    classify_as,
    confirmed,
    swapped,
    swapped_finding,
)
from gradcheck.diagnose._taylor import second_opinion
from gradcheck.report._format import layer_key, layer_keys
from gradcheck.report._model import KINK, Component, Finding, FindingKind
from gradcheck.report._report import Report

# Kinds that one mistake gives to several tensors at once (a missing 1/m, a sign, L2 on biases).
SHARED = (FindingKind.SIGN, FindingKind.SCALE, FindingKind.REGULARIZATION, FindingKind.ZERO)


def diagnose(
    components: dict[str, Component],
    suspects: tuple[str, ...],
    layers: Sequence[str] | None,
    *,
    batch_size: int | None = None,
) -> tuple[tuple[Finding, ...], str | None]:
    """Findings for each suspect, and the suspect closest to the output (the likely origin).

    Args:
      components: the per-parameter results of a check.
      suspects: names of the parameters whose gradients are wrong.
      layers: parameter names from input to output, if the user gave them.
      batch_size: m, so that a factor of m or 1/m can be named ("a missing 1/m").

    Returns:
      One ``Finding`` per suspect (in suspect order) and the likely origin.

    >>> import numpy as np, gradcheck
    >>> w = np.array([1.0, 2.0, 3.0])
    >>> r = gradcheck.check(lambda p: float((p["w"] ** 2).sum()), {"w": w}, {"w": -2 * w})
    >>> [(f.param, f.kind) for f in r.findings]
    [('w', 'sign')]
    """
    if not suspects:  # nothing wrong: no finding and no origin (nothing below is needed)
        return (), None
    found = {name: evidence(components[name], batch_size) for name in suspects}
    findings: dict[str, Finding] = {}
    for i, a in enumerate(suspects):
        for b in suspects[i + 1 :]:
            if a not in findings and b not in findings and swapped(found[a], found[b]):
                findings[a], findings[b] = swapped_finding(a, b), swapped_finding(b, a)
    small = [n for n in suspects if n not in findings and found[n].n.size < MIN_FIT]
    for name in suspects:
        if name not in findings and name not in small:
            findings[name] = classify(found[name])
    peers = Counter(f.kind for f in findings.values() if f.kind in SHARED)
    for name in small:
        fits = (classify_as(found[name], kind) for kind, _ in peers.most_common())
        findings[name] = next((f for f in fits if f is not None), None) or classify(found[name])
    keys = layer_keys({n: c.shape for n, c in components.items()})
    findings = with_context(findings, components, layers)
    return tuple(findings[n] for n in suspects), likely_origin(list(components), suspects, layers,
                                                               keys)


def with_context(
    findings: dict[str, Finding], components: Mapping[str, Component],
    layers: Sequence[str] | None,
) -> dict[str, Finding]:
    """Unexplained findings with the hint the evidence supports (``_hints.HINTS``).

    The layer order comes from ``layers=`` or the numbers in the names, never from the order
    of the arguments: without either, a tensor has no layer and no next layer.
    """
    out = dict(findings)
    if all(f.kind is not FindingKind.UNEXPLAINED for f in findings.values()):
        return out  # nothing to word: the layers and the kinks are not needed
    chain = _ordered_layers(components, layers)
    kinks = any(np.any(np.asarray(c.flags) == KINK) for c in components.values())
    for name, f in findings.items():
        if f.kind is not FindingKind.UNEXPLAINED:
            continue
        at = next((i for i, group in enumerate(chain) if name in group), None)
        layer = chain[at] if at is not None else []
        after = chain[at + 1] if at is not None and at + 1 < len(chain) else []
        verdict = lambda names: tuple((n, n not in findings) for n in names)  # noqa: E731
        context = Context(name, components[name].shape, verdict(layer), verdict(after), kinks,
                          tuple(components[n].shape for n in layer))
        out[name] = dataclasses.replace(f, hint=unexplained_hint(context))
    return out


def _ordered_layers(
    components: Mapping[str, Component], layers: Sequence[str] | None
) -> list[list[str]]:
    """Layers from input to output, by ``layers=`` or the layer numbers of every name; [] when
    neither gives an order. A layer is the tensors that share a number (W2, b2)."""
    keys = layer_keys({n: c.shape for n, c in components.items()})
    if layers is not None:
        order = [n for n in dict.fromkeys(layers) if n in components]
        return _group(order, keys)
    if not components or any(k is None for k in keys.values()):
        return []
    return _group(sorted(components, key=lambda n: keys[n]), keys)


def _group(order: list[str], keys: Mapping[str, tuple[int, ...] | None]) -> list[list[str]]:
    groups: list[list[str]] = []
    for name in order:
        if groups and same_layer(name, groups[-1][-1], keys):
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups



def rediagnose(report: Report, *, batch_size: int | None) -> Report:
    """The same report with its findings recomputed (e.g. knowing the batch size)."""
    findings, _ = diagnose(report.components, report.suspects, None, batch_size=batch_size)
    return dataclasses.replace(report, findings=findings)


def likely_origin(
    names: list[str], suspects: tuple[str, ...], layers: Sequence[str] | None,
    by_name: Mapping[str, tuple[int, ...] | None] | None = None,
) -> str | None:
    """Backprop runs from the output back, so the suspect nearest the output is where it starts.

    ``by_name``: each name's layer (``layer_keys``); by default the numbers in the name."""
    if not suspects:
        return None
    if layers is not None:
        ranked = [n for n in layers if n in suspects]
        return ranked[-1] if ranked else suspects[-1]
    keys = [(by_name or {}).get(n, layer_key(n)) for n in names]
    if all(k is not None for k in keys):
        position = {n: (k, i) for i, (n, k) in enumerate(zip(names, keys, strict=True))}
        return max(suspects, key=lambda n: position[n])
    return max(suspects, key=names.index)


def check_batch_size(batch_size: object) -> None:
    """Validate ``check``'s ``batch_size=`` at the boundary."""
    ok = isinstance(batch_size, int | np.integer) and not isinstance(batch_size, bool)
    if batch_size is not None and not (ok and int(batch_size) >= 1):  # type: ignore[call-overload]
        raise OptionError(
            f"batch_size={batch_size!r} must be a positive int (the number of examples the loss "
            "averages over), or None."
        )


Recheck = Callable[..., bool]  # recheck(loss, params, grads, name): the verdict


def finish(
    report: Report,
    loss: Any,
    params: Any,
    grads: Any,
    *,
    seed: int,
    batch_size: int | None,
    recheck: Recheck,
    calls_left: Callable[[], int] | None = None,
    layers: Sequence[str] | None = None,
) -> Report:
    """Findings that know the batch size, and the Taylor test's note on borderline parameters.

    ``recheck(loss, params, grads, name) -> passed`` is the verdict itself, handed in by the caller:
    it confirms a candidate correction of an "unexplained" tensor (the diagnosis does not import
    the verdict). ``calls_left()`` is what the budget still allows (None: no limit); a step
    that does not fit is skipped and the report says so. Last, with ``layers`` (input to
    output, as ``check``'s ``layers=``), suspects that are wrong only through a wrong output
    delta are named so (``with_output_delta``).
    """
    if batch_size is not None and report.suspects:
        report = rediagnose(report, batch_size=int(batch_size))
    before = report.findings
    if any(f.kind is FindingKind.UNEXPLAINED for f in report.findings):
        report = confirm(report, loss, params, recheck, batch_size=batch_size, calls_left=calls_left)
    established = frozenset(f.param for f, b in zip(report.findings, before, strict=True) if f != b)
    report = with_output_delta(report, layers, established)
    return second_opinion(report, loss, params, grads, seed, calls_left=calls_left)


def with_output_delta(
    report: Report, layers: Sequence[str] | None, established: frozenset[str] = frozenset()
) -> Report:
    """The report with "delta" findings where the error starts at the output delta.

    Runs after ``confirm``: a tensor whose re-check named a relation of its own (a sign, a
    missing 1/m hidden by kinks; ``established``) is a mistake of its own, not a wrong delta.
    """
    findings = {f.param: f for f in report.findings}
    found = output_delta(report.components, findings, layers, established)
    if not found:
        return report
    return dataclasses.replace(
        report, findings=tuple(found.get(f.param, f) for f in report.findings)
    )


CONFIRM_MAX = 512  # entries: a re-check per candidate costs two loss calls per entry


def confirm(
    report: Report,
    loss: Any,
    params: Any,
    recheck: Recheck,
    *,
    batch_size: int | None,
    calls_left: Callable[[], int] | None = None,
) -> Report:
    """Test simple corrections of "unexplained" tensors by checking the corrected gradient.

    Where entries sit on kinks, a numeric value is a midpoint of two slopes and no relation fits
    exactly, though the mistake may still be a plain sign flip or a missing 1/m. The check's own
    kink-aware verdict is then the judge: if −g, g/c or g + k·θ passes, that is the kind.
    The re-check uses the default tolerances (the user's rtol / atol are not in the report).
    """
    findings = list(report.findings)
    peers = [f for f in findings if f.kind in SHARED and f.factor is not None]
    skipped: list[str] = []
    for i, f in enumerate(findings):
        c = report.components[f.param]
        if f.kind is not FindingKind.UNEXPLAINED or np.size(c.value_array) > CONFIRM_MAX:
            continue
        for kind, factor, corrected in candidates(c, peers, batch_size):
            if calls_left is not None and calls_left() < recheck_calls(np.size(c.value_array)):
                skipped.append(f.param)
                break
            if _passes(recheck, loss, params, f.param, corrected):
                findings[i] = confirmed(f.param, kind, factor, batch_size)
                break
    _confirm_swaps(report, findings, loss, params, recheck, calls_left)
    notes = tuple(
        f"{name}: the diagnosis could not afford to re-check candidate corrections within the "
        "budget (raise budget= to let it try)." for name in dict.fromkeys(skipped)
    )
    return dataclasses.replace(report, findings=tuple(findings), notes=report.notes + notes)


def recheck_calls(n: int) -> int:
    """Loss calls a full central re-check of an n-entry tensor may take (with second opinions)."""
    return 3 + 6 + 2 * n + 16


def _confirm_swaps(
    report: Report,
    findings: list[Finding],
    loss: Any,
    params: Any,
    recheck: Recheck,
    calls_left: Callable[[], int] | None = None,
) -> None:
    """Two still-unexplained tensors of one shape: does exchanging their gradients pass?"""
    left = [i for i, f in enumerate(findings) if f.kind is FindingKind.UNEXPLAINED]
    comps = report.components
    for x, i in enumerate(left):
        for j in left[x + 1 :]:
            a, b = findings[i].param, findings[j].param
            if not findings[i].kind == findings[j].kind == FindingKind.UNEXPLAINED:
                continue
            if comps[a].shape != comps[b].shape or np.size(comps[a].value_array) > CONFIRM_MAX:
                continue
            ga, gb = comps[a].analytic_array, comps[b].analytic_array
            if not (_swap_plausible(comps[a], gb) and _swap_plausible(comps[b], ga)):
                continue  # the exchange would not remove most of the error: no re-check
            if calls_left is not None and calls_left() < 2 * recheck_calls(np.size(comps[a].value_array)):
                continue
            if _passes(recheck, loss, params, a, gb) and _passes(recheck, loss, params, b, ga):
                findings[i], findings[j] = swapped_finding(a, b), swapped_finding(b, a)


def _swap_plausible(c: Component, other: np.ndarray) -> bool:
    """Whether ``other`` (another tensor's gradient) is much closer to c's numeric gradient than
    c's own gradient is, on c's checked entries (41 scalar tensors make 820 pairs: only these
    are re-checked)."""
    n = np.asarray(c.numeric_array, dtype=np.float64).reshape(-1)
    mask = np.isfinite(n)
    g = np.asarray(c.analytic_array, dtype=np.float64).reshape(-1)
    o = np.asarray(other, dtype=np.float64).reshape(-1)
    return bool(mask.any()) and _closer(o[mask], n[mask], g[mask], PLAUSIBLE)


def candidates(
    c: Component, peers: list[Finding], batch_size: int | None
) -> list[tuple[str, float, np.ndarray]]:
    """(kind, factor, corrected gradient): the peers' relations first, then sign and scale."""
    g = np.asarray(c.analytic_array, dtype=np.float64)
    theta = np.asarray(c.value_array, dtype=np.float64)
    e = evidence(c, batch_size)
    fitted = fit(e.g, e.n)
    # The peers' factors are fitted to many entries: pull them onto a round value only when
    # they are already within 0.1% of it (a fitted 10.0000001 is a missing 1/m of 10).
    tried = [(f.kind, _snap(float(f.factor), batch_size, 1e-3)) for f in peers]  # type: ignore[arg-type]
    tried.append(("sign", -1.0))
    snapped = _snap(fitted, batch_size)
    # A factor fitted to one entry proves nothing; on two or more, the re-check tests it on the
    # others at the verdict's own tolerance.
    if snapped != fitted or e.n.size >= 2:
        tried.append(("scale", snapped))
    out = []
    for kind, k in dict.fromkeys(tried):
        if kind == FindingKind.REGULARIZATION:
            out.append((kind, k, g + k * theta))
        elif kind in ("sign", "scale") and k not in (0.0, 1.0) and np.isfinite(k):
            out.append(("sign" if k == -1.0 else "scale", k, g / k))
    # Only corrections that already remove most of the error are worth a re-check.
    mask = e.mask.reshape(g.shape)
    return [x for x in out if _closer(x[2][mask], e.n, e.g, PLAUSIBLE)]


PLAUSIBLE = 0.5  # a correction must leave at most half the error norm to be re-checked


def _closer(corrected: np.ndarray, n: np.ndarray, g: np.ndarray, fraction: float) -> bool:
    return float(np.linalg.norm(corrected - n)) <= fraction * float(np.linalg.norm(g - n))


def _snap(c: float, batch_size: int | None, within: float = 0.1) -> float:
    """A fitted factor pulled to 2, 1/2, m, 1/m or a whole number (or 1/whole) if close.

    Never to 1: a factor of 1 is no correction (a fitted 1.001 stays 1.001).
    """
    targets = [2.0, 0.5] + ([float(batch_size), 1.0 / batch_size] if batch_size else [])
    if abs(c) >= 1.0:
        targets.append(float(round(c)))
    elif c != 0.0 and round(1.0 / c) != 0:
        targets.append(1.0 / round(1.0 / c))
    return next((t for t in targets if t != 1.0 and abs(c / t - 1.0) <= within), c)


def _passes(recheck: Recheck, loss: Any, params: Any, name: str, corrected: np.ndarray) -> bool:
    """Does the verdict pass tensor ``name`` with the gradient ``corrected`` (the others fixed)?"""
    tree = flatten(params)
    t = tree.names.index(name)

    def one(theta: np.ndarray) -> Any:
        return loss(tree.rebuild([theta if i == t else x for i, x in enumerate(tree.leaves)]))

    try:
        return recheck(one, np.array(tree.leaves[t], copy=True), corrected, name)
    except Exception:  # a confirmation must never turn a finished check into an error
        return False
