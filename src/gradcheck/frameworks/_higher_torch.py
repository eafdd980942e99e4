"""order=2 and forward mode for PyTorch: JVPs by forward AD with dual numbers, and G(x, u)'s
gradient by double backward (the shared parts are ``_higher``'s)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradcheck._errors import GradCheckError, short
from gradcheck.frameworks import _shared as _adapters
from gradcheck.frameworks._higher import Second
from gradcheck.report._report import Report
from gradcheck.report._sentences import Note, NoteCode


def torch_jvps(
    problem: Any, objective: Callable, leaves: Mapping[str, Any], cast: Callable, api: str
) -> Callable[[str, np.ndarray], np.ndarray]:
    """``jvps(name, rows)``: J's derivative along each tangent row, by forward AD with dual
    numbers (which runs a custom Function's ``jvp``), one evaluation per row."""
    import torch
    import torch.autograd.forward_ad as fwAD

    primal = {n: t.detach() for n, t in leaves.items()}

    def jvps(name: str, rows: np.ndarray) -> np.ndarray:
        t = primal[name]
        out = np.zeros(len(rows))
        with torch.no_grad(), warnings.catch_warnings():
            # forward AD loads its decompositions with torch.jit.script the first time
            warnings.filterwarnings("ignore", ".*torch.jit.script", DeprecationWarning)
            for k, row in enumerate(rows):
                tangent = torch.as_tensor(row, dtype=t.dtype, device=t.device).reshape(t.shape)
                with fwAD.dual_level():
                    duals = dict(primal)
                    duals[name] = fwAD.make_dual(t, tangent)
                    try:
                        j = objective(problem.call(duals, cast))
                    except (NotImplementedError, RuntimeError) as error:
                        raise GradCheckError(
                            f"{api}(mode='forward'): forward-mode AD failed on {name} "
                            f"({short(error)}). A custom autograd.Function needs a "
                            "jvp staticmethod for forward mode; use mode='reverse' otherwise."
                        ) from error
                    d = fwAD.unpack_dual(j).tangent
                out[k] = 0.0 if d is None else float(d)
        return out

    return jvps


def torch_second(
    problem: Any,
    objective: Any,
    dtypes: Mapping[str, Any],
    cast: Callable,
    options: Mapping[str, Any],
    notes: Sequence[str],
    leaves: Callable[[Any], list[Any]],
) -> Report:
    """The order-2 check of a torch problem (see the module docstring)."""
    import torch

    device = next(iter(problem.tensors.values())).device
    names = list(problem.names)
    seed = options.get("seed", 0)

    def outputs(tensors: dict[str, Any]) -> list[Any]:
        out = problem.call(tensors, cast)
        if objective.loss_fn is not None:
            j = objective.loss_fn(out)
            return [j.reshape(())] if isinstance(j, torch.Tensor) else leaves(j)
        return leaves(out)

    x0 = {n: problem.tensors[n].detach().to(device="cpu", dtype=dtypes[n]).numpy().copy()
          for n in names}
    with torch.no_grad():
        probe = outputs({n: torch.tensor(x0[n], dtype=dtypes[n], device=device) for n in names})
    out_dtypes = [o.dtype for o in probe]
    setup = Second.of(
        names, [x0[n] for n in names],
        [(tuple(o.shape), np.dtype(str(o.dtype).replace("torch.", ""))) for o in probe], seed,
    )
    in_names, cot_names, params = setup.in_names, setup.cot_names, setup.params
    weights = [
        torch.tensor(w, dtype=dtypes[n], device=device)
        for n, w in zip(names, setup.weights, strict=True)
    ]

    def g_of(p: dict[str, np.ndarray], create: bool) -> tuple[Any, list[Any]]:
        xs = [torch.tensor(p[a], dtype=dtypes[n], device=device, requires_grad=True)
              for a, n in zip(in_names, names, strict=True)]
        us = [torch.tensor(p[c], dtype=d, device=device, requires_grad=create)
              for c, d in zip(cot_names, out_dtypes, strict=True)]
        with torch.enable_grad():
            outs = outputs(dict(zip(names, xs, strict=True)))
            pairs = [(o, u) for o, u in zip(outs, us, strict=True) if o.requires_grad]
            if not pairs:
                return torch.zeros((), dtype=torch.float64), xs + us
            vjp = torch.autograd.grad(
                [o for o, _ in pairs], xs, grad_outputs=[u for _, u in pairs],
                allow_unused=True, create_graph=create,
            )
            g = sum((v * w).sum() for v, w in zip(vjp, weights, strict=True) if v is not None)
        return g, xs + us

    def loss(p: dict[str, np.ndarray]) -> float:
        return float(g_of(p, False)[0])

    try:
        g, wrt = g_of(params, True)
        with torch.enable_grad():
            if isinstance(g, torch.Tensor) and g.requires_grad:
                second = torch.autograd.grad(g, wrt, allow_unused=True)
            else:
                second = [None] * len(wrt)
    except RuntimeError as error:  # @once_differentiable, a backward that breaks create_graph
        raise GradCheckError(
            f"order=2: the backward could not be differentiated ({short(error)}). "
            "A custom Function's backward must be built from differentiable torch operations "
            "(no @once_differentiable, no .numpy() round trip) for double backward; check it "
            "with order=1 otherwise."
        ) from error
    report = setup.report(
        loss, [None if d is None else d.detach().cpu().double().numpy() for d in second],
        options, notes,
    )
    cut = [a for a, d in zip([*in_names, *cot_names], second, strict=True) if d is None]
    if not report.passed and set(cut) & set(report.suspects):
        cut_note = Note(NoteCode.ORDER2_CUT, None, {"names": tuple(cut)})
        report = _adapters.with_notes(report, [cut_note])
    return report


