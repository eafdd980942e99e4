"""Stage 1, plan and budget: which coordinates are judged, and the loss calls each phase may use.

A forced eps is checked against the parameters first (it must name real ones and not dwarf
them); then ``core._coords.select`` chooses the coordinates within the budget, and the plan
keeps, for every tensor, the calls of its first pass, of its directional search and of the
second opinions of its first mismatches (``confirm_calls``), so that an early tensor cannot
spend what a later one needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.core._coords import Capped, Selection, overhead, select
from gradcheck.core._directional import TOP_CALLS
from gradcheck.core._evaluate import Workspace
from gradcheck.core._executor import make_evaluator
from gradcheck.core._options import CheckConfig, check_eps_names
from gradcheck.core._progress import Progress
from gradcheck.core._schemes import SCHEMES, Scheme
from gradcheck.core._tree import Params, Tree
from gradcheck.core.verdict._records import Setup, TensorJob

# A forced eps above this many times max(1, rms θ) dwarfs the parameter: refused.
DWARFS = 1e3
CONFIRM = 8  # first-pass mismatches per later tensor whose second opinions a budget keeps
RUN = 3  # smooth levels with one estimate that settle a disagreement (the second opinion)


@dataclass(frozen=True)
class Plan:
    """The coordinates to judge and the calls promised to each tensor's phases."""

    scheme: Scheme
    selection: Selection
    sizes: list[int]
    nodes: int  # loss calls per coordinate of the first pass
    first: Sequence[int]  # first-pass calls per tensor
    search: Sequence[int]  # directional-search calls per tensor
    confirm: Sequence[int]  # calls kept for each tensor's second opinions

    def reserved_after(self, t: int) -> int:
        """Calls promised to the tensors after t (and the last J(θ)): t may not use them."""
        return 1 + sum(self.first[u] + self.search[u] + self.confirm[u]
                       for u in range(t + 1, len(self.sizes)))

    def calls(self) -> int:
        """Loss calls the plan foresees in all (what the progress display counts against)."""
        return (overhead(self.sizes) + sum(self.first) + sum(self.search)
                + sum(self.confirm))

    def planned(self) -> list[int]:
        """Entries selected per tensor."""
        return [s if i is None else len(i)
                for i, s in zip(self.selection.indices, self.sizes, strict=True)]


def make_plan(config: CheckConfig, tree: Tree) -> Plan:
    """The plan of a check of ``tree`` under ``config`` (a forced eps checked first)."""
    check_forced_eps(config, tree, refuse_huge=config.refine)
    scheme = SCHEMES[config.scheme]
    sizes = [leaf.size for leaf in tree.leaves]
    nodes = sum(1 for c in scheme.nodes if c != 0)
    selection = select(
        config.coords, sizes, nodes, config.budget,
        lambda: np.random.default_rng([config.seed, 1]), second_calls(scheme.nodes),
    )
    first = selection.first_pass(sizes, nodes)
    search = selection.locate_calls or [TOP_CALLS if selection.directional else 0] * len(sizes)
    confirm = confirm_calls(selection, sizes, first, search, scheme.nodes)
    return Plan(scheme, selection, sizes, nodes, first, search, confirm)


def open_evaluator(
    loss: Callable[[Params], Any], tree: Tree, plan: Plan, config: CheckConfig
) -> Capped:
    """The evaluator of J on copies of θ; every loss call counts, and "auto" never makes
    more than its budget."""
    complex_step = plan.scheme.name == "complex"
    workspace = Workspace(tree, np.complex128 if complex_step else np.float64)
    return Capped(
        make_evaluator(
            loss, workspace, complex_step=complex_step, batched_loss=config.batched_loss,
            executor=config.executor,
        ),
        plan.selection.limit,
    )


def check_forced_eps(config: CheckConfig, tree: Tree, refuse_huge: bool = True) -> None:
    """A forced eps names real parameters, and does not dwarf the parameter it moves."""
    check_eps_names(config.eps, tree.names)
    if config.eps is None or config.scheme == "complex" or not refuse_huge:
        return
    for name, leaf in zip(tree.names, tree.leaves, strict=True):
        h = config.eps_value(name)
        if h is None:
            continue
        scale = max(1.0, float(np.sqrt(np.mean(np.abs(leaf.astype(np.float64)) ** 2))))
        if h > DWARFS * scale:
            what = "eps" if not isinstance(config.eps, dict) else f"eps[{name!r}]"
            raise OptionError(
                f"{what}={h:g} dwarfs the scale of {name} (entries of rms "
                f"{float(np.sqrt(np.mean(leaf.astype(np.float64) ** 2))):.3g}): a difference "
                f"over a step {h / scale:.3g} times max(1, rms) measures the loss far from θ, "
                f"not its slope at θ. Use a step below {DWARFS * scale:g} (about 1e-6 times "
                "the parameter's scale is typical), or eps=None to let gradcheck choose."
            )


def confirm_calls(
    selection: Selection, sizes: Sequence[int], first: Sequence[int], search: Sequence[int],
    scheme_nodes: Sequence[float],
) -> list[int]:
    """Calls kept, under a budget, for the second opinions of each tensor's first mismatches.

    Tensors are checked in turn and second opinions are paid from what the budget leaves: a
    first tensor wrong everywhere would otherwise spend it all, leaving every later tensor's
    mismatches unconfirmed (unjudged). Each tensor keeps up to ``CONFIRM`` entries' worth of
    the first level and the confirmations after it, within half of what the plan leaves over.
    """
    if selection.limit is None:
        return [0] * len(sizes)
    per_entry = second_calls(scheme_nodes) * RUN
    want = [min(s, CONFIRM) * per_entry for s in sizes]
    free = selection.limit - sum(first) - sum(search) - overhead(sizes)
    if sum(want) > free // 2:
        want = [w * max(free // 2, 0) // max(sum(want), 1) for w in want]
    return want


def second_calls(nodes: Sequence[float]) -> int:
    """Calls per entry of the first level of the second opinion (``_refine``).

    >>> second_calls((-1.0, 1.0))  # central: ±1/2 are new
    2
    """
    wanted = {*(c / 2 for c in nodes), 1.0, -1.0, 0.5, -0.5}
    return len(wanted - set(nodes) - {0.0})


def open_check(
    loss: Callable[[Params], Any], tree: Tree, analytic: list[np.ndarray], config: CheckConfig
) -> tuple[Plan, Capped, Setup]:
    """The plan, the evaluator of J (every loss call counted, with its phase) and the setup
    every later stage reads (its noise filled in by the probe)."""
    plan = make_plan(config, tree)
    evaluator = open_evaluator(loss, tree, plan, config)
    setup = Setup(plan.scheme, config, max(float(np.abs(g).max(initial=0.0)) for g in analytic),
                  Progress(plan.calls(), enabled=config.progress))
    evaluator.progress = setup.progress
    return plan, evaluator, setup


def make_job(plan: Plan, t: int, j0: float, analytic: list[np.ndarray], tree: Tree) -> TensorJob:
    """What the plan asks of tensor ``t``."""
    selection = plan.selection
    return TensorJob(
        t, j0, analytic[t], tree.leaves[t].dtype, selection.indices[t], selection.directional,
        selection.max_tests, selection.locate_calls[t] if selection.locate_calls else None,
        plan.first[t],
    )
