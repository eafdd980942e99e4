"""``check_against``: a low-precision kernel's outputs and gradients against a reference.

Finite differences are noise in bfloat16, so a kernel in a low dtype is checked the way kernel
libraries check theirs, made sound: ``fn`` runs in the low dtype; ``reference`` runs in float64
(the truth) and in the same low dtype (the yardstick: how large a correct kernel's error is).
The outputs, the vector-Jacobian products with a seeded random cotangent (and, with
``jvp=True``, the Jacobian-vector products) are compared block by block (heads, rows, tiles):
a block fails when the kernel's mean or high-quantile |error| exceeds the yardstick's by more
than the tolerance (``_against_blocks``), and the failed blocks are described by the kinds
table (``_against_kinds``). torch is imported inside the functions.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradcheck._errors import LossRaisedError, OptionError, ShapeMismatchError
from gradcheck.frameworks import _shared
from gradcheck.frameworks._against_blocks import Blocks, Judgement, judge, make_blocks
from gradcheck.frameworks._against_kinds import Evidence, findings
from gradcheck.report._model import AGREES, MISMATCH, UNCHECKED, Component, relative_error
from gradcheck.report._model import verdict as decide
from gradcheck.report._report import Report
from gradcheck.report._sentences import Note, NoteCode

BlockSpec = Sequence[int] | Mapping[str, Sequence[int] | None] | None


def check_against(
    fn: Callable[..., Any],
    reference: Callable[..., Any],
    *inputs: Any,
    dtype: Any = "bfloat16",
    seed: int = 0,
    names: Sequence[str] | None = None,
    blocks: BlockSpec = None,
    level: float = 2.0,
    quantile: float = 0.95,
    alpha: float = 1e-3,
    jvp: bool = False,
) -> Report:
    """Checks a low-precision kernel against a reference run in float64 and in its own dtype.

    The rule. Per block of each tensor, the kernel's mean and 95% quantile of |error| against
    the float64 truth are divided by the same statistics of the reference run in ``dtype`` (the
    yardstick). A block fails when a ratio exceeds ``level`` beyond its sampling noise (a
    whole-tensor mistake: every block is far off), or, with 5 blocks or more, stands out from
    the kernel's median ratio by more than z times the ratios' spread (a mistake in a few blocks:
    one head, one tile). The noise and the spread are measured (the yardstick's errors within
    each block, the 1.4826·MAD of the ratios across blocks), z is set by ``alpha`` and the
    number of blocks; only ``level`` is a stated allowance, on the stable mean, not on the
    noisy maximum that the usual ``max|d - d_ref| <= 2·max|d_pt - d_ref|`` rule uses.

    Args:
        fn: the kernel, called with the inputs in ``dtype``; returns a tensor or a tuple.
        reference: the same function written plainly (differentiated by autograd); an
            ``nn.Module`` is copied, never converted in place.
        *inputs: tensors (floating ones are rounded to ``dtype``; the rest, like integer
            targets, are passed as they are), or shapes (tuples) to draw from ``seed``.
        dtype: the kernel's dtype: "bfloat16", "float16", "float32" or a torch dtype.
        seed: draws the shapes' inputs, the cotangents and the tangents.
        names: one name per input (default x0, x1, ...); gradients are named "d" + name.
        blocks: the axes to group by, for every tensor or as {name: axes}, names being "out",
            "out[1]", an input's name or "d" + its name; None: all but the last two axes,
            the rows of a matrix, ⌈√n⌉ tiles of a vector (of 16 entries or more).
        level: how much larger a correct kernel's mean error may be than the yardstick's.
        quantile: the high quantile of |error| compared per block, beside the mean.
        alpha: the false-alarm rate per tensor that sets the noise allowance.
        jvp: also compare forward-mode derivatives (needs ``fn`` to support forward AD).

    Returns:
        A ``gradcheck.Report``: a component per output and per input gradient (numeric: the
        float64 truth, analytic: the kernel), findings naming the failed blocks and the kinds
        that fit, and notes that state each tensor's tolerance statistics.

    >>> import torch, gradcheck.torch
    >>> ref = lambda x, w: torch.nn.functional.layer_norm(x, x.shape[-1:], w)
    >>> gradcheck.torch.check_against(ref, ref, (8, 64), (64,), dtype="bfloat16").passed
    True
    """
    import torch

    started = time.perf_counter()
    low = _dtype(torch, dtype)
    options = _check_options(level, quantile, alpha)
    generator = torch.Generator().manual_seed(seed)
    values = _materialize(torch, inputs, generator)
    names = _names(names, len(values))
    _check_blocks(blocks, names)
    runs = {key: _run(torch, f, values, cast, low, seed=seed, jvp=jvp, who=who)
            for key, f, cast, who in (("kernel", fn, low, "fn"),
                                      ("truth", reference, torch.float64, "the reference"),
                                      ("yard", reference, low, "the reference (the yardstick)"))}
    notes = (_input_notes(torch, inputs, values, low) + _jvp_notes(runs, jvp)
             + _module_notes(torch, fn, reference))
    components, found, stats = _judge_all(_tensors(runs, names), blocks, names,
                                          float(torch.finfo(low).eps), str(low), options)
    return _report(components, found, notes + stats, low, len(runs), started)


def _judge_all(tensors: dict[str, tuple[np.ndarray, ...]], blocks: BlockSpec, names: list[str],
               unit: float, low: str, options: dict[str, float]) -> tuple[dict, list, list]:
    """A component per tensor, the findings of the failed ones, and the statistics' notes."""
    components, found, stats = {}, [], []
    for name, (kernel, truth, yard) in tensors.items():
        part = _blocks_for(blocks, name, names, kernel.shape)
        verdict = judge(kernel, truth, yard, part, unit=unit, **options)
        components[name] = _component(name, kernel, truth, yard, part, verdict, low)
        stats.append(_stat_note(name, part, verdict, options["level"]))
        stats += _unjudged_note(name, truth, yard, low)
        if verdict.failed.any():
            found += findings(Evidence(name, kernel, truth, yard, part, verdict, options["level"]))
    return components, found, stats


def _dtype(torch: Any, dtype: Any) -> Any:
    chosen = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(chosen, torch.dtype) or not chosen.is_floating_point:
        raise OptionError(
            f"check_against(dtype={dtype!r}): give a floating torch dtype or its name, e.g. "
            "'bfloat16', 'float16', 'float32' (or a float8 dtype where the reference runs in it)."
        )
    if chosen == torch.float64:
        raise OptionError("check_against(dtype=float64): float64 is the truth's dtype; check a "
                          "float64 function with gradcheck.torch.check_function instead.")
    return chosen


def _check_options(level: float, quantile: float, alpha: float) -> dict[str, float]:
    for label, value, low, high in (("level", level, 1.0, np.inf), ("quantile", quantile, 0.5, 1.0),
                                    ("alpha", alpha, 0.0, 1.0)):
        if not (isinstance(value, int | float) and low <= value < high) or value == 0.0:
            raise OptionError(f"check_against({label}={value!r}): give a number in "
                              f"[{low}, {high}) (not 0); see the docstring for its meaning.")
    return {"level": float(level), "quantile": float(quantile), "alpha": float(alpha)}


def _materialize(torch: Any, inputs: tuple[Any, ...], generator: Any) -> list[Any]:
    """Each input as a fresh tensor (a shape drawn from the generator, on the device of the
    first tensor given); the user's tensors are never touched."""
    if not inputs:
        raise OptionError("check_against(fn, reference, *inputs): give at least one input "
                          "(a tensor or a shape such as (2, 4, 64, 32)).")
    device = next((x.device for x in inputs if isinstance(x, torch.Tensor)), "cpu")
    out = []
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor):
            out.append(x.detach().clone())
        elif isinstance(x, tuple) and all(isinstance(s, int) and s >= 0 for s in x):
            out.append(torch.randn(x, generator=generator, dtype=torch.float64).to(device))
        else:
            raise OptionError(f"check_against: inputs[{i}] is a {type(x).__name__}; give a "
                              "torch.Tensor or a shape (a tuple of ints) to draw from the seed.")
    return out


def _names(names: Sequence[str] | None, count: int) -> list[str]:
    if names is None:
        return [f"x{i}" for i in range(count)]
    if len(names) != count or len(set(names)) != count:
        raise OptionError(f"check_against(names=...): give {count} distinct names, one per "
                          f"input; got {list(names)!r}.")
    return [str(n) for n in names]


def _check_blocks(blocks: BlockSpec, names: list[str]) -> None:
    if blocks is None or not isinstance(blocks, Mapping):
        return
    known = {"out", "jvp out", *names, *(f"d{n}" for n in names)}
    unknown = [k for k in blocks if k not in known and not str(k).startswith(("out[", "jvp "))]
    if unknown:
        raise OptionError(f"check_against(blocks=...): no tensor is named {unknown[0]!r}; the "
                          f"names are 'out', 'out[i]' and {sorted(known - {'out'})!r}.")


def _blocks_for(blocks: BlockSpec, name: str, names: list[str], shape: tuple[int, ...]) -> Blocks:
    axes = blocks
    if isinstance(blocks, Mapping):
        base = name[1:] if name.startswith("d") and name[1:] in names else name
        axes = blocks.get(name, blocks.get(base))
    return make_blocks(shape, axes, name)


def _run(torch: Any, f: Callable[..., Any], values: list[Any], cast: Any, low: Any, *,
         seed: int, jvp: bool, who: str) -> dict[str, Any]:
    """One evaluation in ``cast``, at the inputs rounded to ``low``: outputs, VJPs with the
    seeded cotangents, and optionally JVPs (or the exception forward AD raised)."""
    f = copy.deepcopy(f).to(cast) if isinstance(f, torch.nn.Module) else f
    leaves = [_cast(x, cast, low) for x in values]
    generator = torch.Generator().manual_seed(seed + 1)
    with _rng_kept(torch, leaves), torch.enable_grad():
        outs = _as_tuple(_call(f, leaves, cast, who))
        cotangents = [_draw(torch, o, low, generator) for o in outs]
        wrt = [x for x in leaves if x.requires_grad]
        pairs = [(o, c) for o, c in zip(outs, cotangents, strict=True) if o.requires_grad]
        grads = _call(lambda: torch.autograd.grad(
            [o for o, _ in pairs], wrt, [c for _, c in pairs], allow_unused=True
        ), [], cast, f"{who}'s backward") if pairs and wrt else [None] * len(wrt)
    run = {"outs": [o.detach() for o in outs], "grads": list(grads),
           "wrt": [i for i, x in enumerate(leaves) if x.requires_grad],
           "shapes": [tuple(x.shape) for x in leaves]}
    if jvp:
        run["jvp"] = _forward(torch, f, leaves, low, seed + 2, who)
    return run


def _call(f: Callable[..., Any], leaves: list[Any], cast: Any, who: str) -> Any:
    try:
        return f(*leaves)
    except Exception as error:
        raise LossRaisedError(
            f"check_against: {who} raised in {cast}: {type(error).__name__}: {error}. The "
            "kernel runs in dtype, the reference in float64 and in dtype (the yardstick): "
            "each must run there (float8 arithmetic, for one, is missing from most CPU ops)."
        ) from error


# What torch says when a function has no forward-mode derivative (no jvp, an op without one).
NO_FORWARD_MODE = ("jvp", "forward AD", "forward-mode", "not implemented", "Not implemented")


def _forward(torch: Any, f: Callable[..., Any], leaves: list[Any], low: Any, seed: int,
             who: str) -> Any:
    """The JVPs of f with seeded tangents, or the exception forward AD raised."""
    import torch.autograd.forward_ad as fwad

    generator = torch.Generator().manual_seed(seed)
    try:
        # torch's first dual_level loads its JVP decompositions through the deprecated
        # torch.jit.script: a warning about torch's internals, nothing the user can act on
        with warnings.catch_warnings(), _rng_kept(torch, leaves), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)
            fwad.enter_dual_level()
            try:
                duals = [fwad.make_dual(x.detach(), _draw(torch, x, low, generator))
                         if x.requires_grad else x for x in leaves]
                return [fwad.unpack_dual(o).tangent for o in _as_tuple(f(*duals))]
            finally:
                fwad.exit_dual_level()
    except Exception as error:
        if isinstance(error, RuntimeError | NotImplementedError) and any(
                word in str(error) for word in NO_FORWARD_MODE):
            return error  # no forward mode: said in a note, the rest is checked
        raise LossRaisedError(f"check_against(jvp=True): {who} raised in forward mode: "
                              f"{type(error).__name__}: {error}") from error


def _rng_kept(torch: Any, leaves: list[Any]) -> Any:
    """The global RNG (CPU, and the CUDA devices of the inputs) restored after the call."""
    devices = sorted({x.device.index or 0 for x in leaves if x.device.type == "cuda"})
    return torch.random.fork_rng(devices=devices)


def _cast(x: Any, cast: Any, low: Any) -> Any:
    """A fresh leaf: the value rounded to ``low``, held in ``cast``; non-floating as it is."""
    if not x.is_floating_point():
        return x.clone()
    return x.detach().to(low).to(cast).clone().requires_grad_(True)


def _draw(torch: Any, like: Any, low: Any, generator: Any) -> Any:
    """A standard normal tensor like ``like``, rounded to ``low`` (every run sees the same)."""
    draw = torch.randn(tuple(like.shape), generator=generator, dtype=torch.float64)
    return draw.to(low).to(like.dtype).to(like.device)


def _as_tuple(out: Any) -> tuple[Any, ...]:
    return tuple(out) if isinstance(out, tuple | list) else (out,)


# --- from the three runs to the report ------------------------------------------------------


def _tensors(runs: dict[str, dict[str, Any]], names: list[str]) -> dict[str, tuple[np.ndarray, ...]]:
    """Kernel, truth and yardstick (float64 arrays) of each output, gradient and JVP."""
    kernel = runs["kernel"]
    count = len(kernel["outs"])
    for key in ("truth", "yard"):
        if len(runs[key]["outs"]) != count:
            raise ShapeMismatchError(f"check_against: fn returns {count} outputs but the "
                                     f"reference returns {len(runs[key]['outs'])}; return the "
                                     "same tuple from both.")
    out_names = ["out"] if count == 1 else [f"out[{i}]" for i in range(count)]
    table: dict[str, tuple[np.ndarray, ...]] = {}
    for i, label in enumerate(out_names):
        if kernel["outs"][i].is_floating_point():
            table[label] = _triple(runs, label, lambda r, i=i: r["outs"][i])
    for k, i in enumerate(kernel["wrt"]):
        table[f"d{names[i]}"] = _triple(runs, f"d{names[i]}", lambda r, k=k: r["grads"][k],
                                        shape=tuple(runs["kernel"]["shapes"][i]))
    if all(isinstance(runs[key].get("jvp"), list) for key in runs):
        for i, label in enumerate(out_names):
            if kernel["jvp"][i] is not None and kernel["outs"][i].is_floating_point():
                table[f"jvp {label}"] = _triple(runs, f"jvp {label}", lambda r, i=i: r["jvp"][i])
    return table


def _triple(runs: dict[str, dict[str, Any]], label: str, pick: Callable[[dict[str, Any]], Any],
            shape: tuple[int, ...] = ()) -> tuple[np.ndarray, ...]:
    """The three runs' arrays of one tensor; a gradient autograd left out (None) is zero."""
    arrays = [pick(runs[key]) for key in ("kernel", "truth", "yard")]
    shapes = [tuple(a.shape) for a in arrays if a is not None]
    if len(set(shapes)) > 1:
        raise ShapeMismatchError(f"check_against: {label} has shape {shapes[0]} from fn but "
                                 f"{shapes[1]} from the reference; they must agree.")
    full = shapes[0] if shapes else shape
    return tuple(np.zeros(full) if a is None else _numpy(a) for a in arrays)


def _numpy(t: Any) -> np.ndarray:
    import torch

    return t.detach().to(torch.float64).cpu().numpy()


def _input_notes(torch: Any, inputs: tuple[Any, ...], values: list[Any], low: Any) -> list[Note]:
    drawn = tuple(i for i, x in enumerate(inputs) if not isinstance(x, torch.Tensor))
    rounded = tuple(i for i, x in enumerate(values)
                    if x.is_floating_point() and x.dtype != low and i not in drawn)
    notes = [Note(NoteCode.AGAINST_RUNS, None, {"dtype": str(low)})]
    if rounded:
        notes.append(Note(NoteCode.AGAINST_ROUNDED, None, {"inputs": rounded, "dtype": str(low)}))
    if drawn:
        notes.append(Note(NoteCode.AGAINST_DRAWN, None, {"inputs": drawn, "dtype": str(low)}))
    return notes


def _module_notes(torch: Any, *functions: Any) -> list[Note]:
    held = [f for f in functions if isinstance(f, torch.nn.Module) and any(
        p.is_floating_point() for p in f.parameters())]
    return [Note(NoteCode.AGAINST_HELD)] if held else []


def _jvp_notes(runs: dict[str, dict[str, Any]], jvp: bool) -> list[Note]:
    if not jvp:
        return []
    errors = {key: r["jvp"] for key, r in runs.items() if not isinstance(r["jvp"], list)}
    if not errors:
        return [Note(NoteCode.AGAINST_JVP)]
    who = "fn" if "kernel" in errors else "the reference"
    first = str(next(iter(errors.values()))).splitlines()[0]
    return [Note(NoteCode.AGAINST_JVP, None, {"who": who, "error": first})]


def _component(name: str, kernel: np.ndarray, truth: np.ndarray, yard: np.ndarray,
               part: Blocks, verdict: Judgement, dtype: str) -> Component:
    """Per-entry view of a block verdict: an entry of a failed block is a mismatch where its
    error exceeds the statistic that failed (mean or quantile) times its allowance."""
    ids = part.ids
    by_mean = verdict.ratio_mean > verdict.allowed_mean
    bound = np.where(by_mean, verdict.allowed_mean * verdict.yard_mean,
                     verdict.allowed_q * verdict.yard_q)[ids]
    error = np.abs(kernel - truth)
    error = np.where(np.isnan(error) & np.isfinite(truth), np.inf, error)
    flags = np.where(verdict.failed[ids] & (error > bound), MISMATCH, AGREES).astype(np.int8)
    judged = np.isfinite(truth) & np.isfinite(yard)  # where the yardstick has an error to give
    flags = np.where(judged, flags, UNCHECKED).astype(np.int8)
    _flag_worst(flags, ids, np.where(judged, error, -1.0), verdict.failed)
    noise = float(np.mean(np.abs(yard - truth))) if yard.size else 0.0
    base = Component(name=name, shape=tuple(kernel.shape), relative_error=None,
                     max_abs_error=0.0, worst_index=(), numeric=0.0, analytic=0.0,
                     tolerance=0.0, checked=0, skipped=0, passed=None, noise=noise,
                     dtype=dtype.removeprefix("torch."),  # the kernel's, and where it ran
                     evaluated_dtype=dtype.removeprefix("torch."), value_array=yard,
                     analytic_array=kernel,
                     bound_array=np.asarray(bound, dtype=np.float64))
    counted = _shared.recount(base, flags, truth)  # entries without a yardstick are skipped
    return dataclasses.replace(counted, passed=decide([counted.passed], judged=bool(judged.any())))


def _unjudged_note(name: str, truth: np.ndarray, yard: np.ndarray, low: Any) -> list[Note]:
    bad = int(np.sum(~np.isfinite(truth) | ~np.isfinite(yard)))
    if not bad:
        return []
    return [Note(NoteCode.AGAINST_UNJUDGED, name, {"count": bad, "dtype": str(low)})]


def _flag_worst(flags: np.ndarray, ids: np.ndarray, error: np.ndarray, failed: np.ndarray) -> None:
    """A failed block with no entry over the bound shows its worst entry as the mismatch."""
    shown = np.bincount(ids.ravel(), weights=(flags.ravel() == MISMATCH), minlength=failed.size)
    order = np.lexsort((-error.ravel(), ids.ravel()))  # by block, the worst first in each
    blocks, first = np.unique(ids.ravel()[order], return_index=True)
    lacking = failed[blocks] & (shown[blocks] == 0)
    flags.flat[order[first[lacking]]] = MISMATCH


def _stat_note(name: str, part: Blocks, verdict: Judgement, level: float) -> Note:
    """The tolerance's statistics for one tensor, as one note."""
    def span(a: np.ndarray) -> tuple[float, float]:
        return float(np.nanmin(a)), float(np.nanmax(a))

    return Note(NoteCode.AGAINST_STATS, name, {
        "blocks": part.count, "describe": part.describe,
        "yard": (float(verdict.yard_mean.min()), float(verdict.yard_mean.max())),
        "ratio": span(verdict.ratio_mean), "median": verdict.level, "level": level,
        "z": verdict.z, "spread": verdict.spread if verdict.outlier_test else None,
        "allowed_mean": (float(verdict.allowed_mean.min()), float(verdict.allowed_mean.max())),
        "allowed_q": (float(verdict.allowed_q.min()), float(verdict.allowed_q.max())),
        "failed": int(verdict.failed.sum()),
    })


def _report(components: dict[str, Component], found: list[Any], notes: list[Note], low: Any,
            evaluations: int, started: float) -> Report:
    suspects = tuple(n for n, c in components.items() if c.passed is False)
    checked = [c.flags != UNCHECKED for c in components.values()]
    numeric = [c.numeric_array[m] for c, m in zip(components.values(), checked, strict=True)]
    analytic = [c.analytic_array[m] for c, m in zip(components.values(), checked, strict=True)]
    error = relative_error(np.concatenate(numeric), np.concatenate(analytic)) if numeric else None
    return Report(
        passed=decide(c.passed for c in components.values()),
        relative_error=error,
        evaluations=evaluations,
        eps={n: float("nan") for n in components},
        scheme="reference",
        components=components,
        suspects=suspects,
        notes=tuple(notes),
        findings=tuple(found),
        seconds=time.perf_counter() - started,
    )
