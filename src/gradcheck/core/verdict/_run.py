"""``run``: the path of one check, one stage per line (see docs/verdict.md)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.core._coords import BudgetSpent, Capped
from gradcheck.core._options import CheckConfig
from gradcheck.core._tree import Params, Tree
from gradcheck.core._validate import inputs
from gradcheck.core.verdict._assemble import assemble
from gradcheck.core.verdict._base import (
    far_look,
    judge_still,
    require_dependence,
    require_unchanged,
    same_again,
    still,
)
from gradcheck.core.verdict._kinks import Recheck, recheck_kinks
from gradcheck.core.verdict._notes import engine_records
from gradcheck.core.verdict._plan import Plan, make_job, open_check
from gradcheck.core.verdict._probe import base_and_noise
from gradcheck.core.verdict._records import Facts, Setup, TensorResult, unchecked
from gradcheck.core.verdict._tensor import judge_tensor
from gradcheck.core.verdict._ties import NO_TIES
from gradcheck.core.verdict._ties import screen as screen_ties
from gradcheck.core.verdict._ties import settle as settle_ties
from gradcheck.report._report import Report


def run(loss: Callable[[Params], Any], params: Params, grads: Any, config: CheckConfig) -> Report:
    """The verdict of ``check`` under a validated ``config``: a ``Report`` without findings.

    A Ctrl-C during the evaluations returns the partial report (``report.interrupted``).
    """
    start = time.perf_counter()
    tree, analytic = inputs(params, grads)  # the gradients, checked against the parameters
    plan, evaluator, setup = open_check(loss, tree, analytic, config)  # 1. plan and budget
    facts = [Facts() for _ in tree.leaves]  # what the stages find about each tensor
    sweep = measure(evaluator, setup, plan, tree, analytic, facts)  # 2.-7. every loss call
    require_unchanged(evaluator.ws)  # the loss wrote into its params: no verdict
    if sweep.finished:  # 2. a loss no perturbation moved does not read its params
        dtypes = [leaf.dtype for leaf in tree.leaves]
        require_dependence(sweep.setup, sweep.results, analytic, sweep.j0, dtypes, sweep.far)
        if sweep.far is not None:  # where J did not move: judged against J's rounding
            sweep = dataclasses.replace(
                sweep, results=judge_still(sweep.results, analytic, tree.leaves, sweep.far[0]))
    rechecked, ties = Recheck(0, 0, 0), NO_TIES
    if sweep.finished and not setup.complex and config.refine:  # 6. ties of mixed sign
        results, ties = screen_ties(loss, tree, sweep.results, sweep.setup, facts, sweep.spare,
                                    callable(grads))
        if results is not sweep.results or ties.calls:  # (nothing screened: as it was)
            sweep = dataclasses.replace(sweep, results=results, spare=sweep.spare - ties.calls)
    if callable(grads) and sweep.finished and not setup.complex:  # 6. off the kinks and ties
        rechecked = recheck_kinks(loss, tree, grads, sweep.results, sweep.setup, sweep.spare,
                                  ties.where, tuple(facts))
        settled = settle_ties(sweep.results, ties, rechecked.blurred)
        if settled is not sweep.results:  # (nothing settled: the same results)
            sweep = dataclasses.replace(sweep, results=settled)
    notes = engine_records(tree, analytic, config, plan, facts, sweep.results, sweep.interrupted,
                           sweep.spent, rechecked, callable(grads), ties)
    return assemble(  # 8. the components, the verdict, the report (its notes, then the engine's)
        tree, sweep.results, config.scheme, any(f.located is not None for f in facts),
        sweep.calls + ties.calls + rechecked.calls, sweep.j0, time.perf_counter() - start,
        plan.planned(), sweep.interrupted, more_notes=notes, options=config.options(),
    )


@dataclass(frozen=True)
class Sweep:
    """What the evaluations gave: J(θ), every tensor's result, and how they ended."""

    j0: float
    setup: Setup  # with the noise measured
    results: list[TensorResult]  # one per tensor (unchecked where none was judged)
    stopped: bool  # Ctrl-C before or after the tensors
    spent: bool  # the budget's hard stop was hit
    interrupted: bool  # a Ctrl-C left entries unjudged
    calls: int  # loss calls made
    spare: float  # calls the budget still allows
    far: tuple[float, bool] | None = None  # J's scale and whether J moved, from a far look

    @property
    def finished(self) -> bool:
        return not self.interrupted and not self.spent


def measure(
    evaluator: Capped, setup: Setup, plan: Plan, tree: Tree, analytic: list[np.ndarray],
    facts: list[Facts],
) -> Sweep:
    """J(θ) twice, the noise probe, then each tensor in turn, and J(θ) once more."""
    results: list[TensorResult] = []
    j0, stopped, spent, far = np.nan, False, False, None
    try:
        try:  # Ctrl-C before any entry is judged (J(θ), the noise probe): nothing judged
            j0, setup = base_and_noise(evaluator, setup, tree)  # 2. base value, 3. noise probe
        except KeyboardInterrupt:
            stopped = True
        for t in range(0 if stopped else len(tree.names)):  # 4.-7. each tensor
            evaluator.reserved = plan.reserved_after(t)
            results.append(judge_tensor(evaluator, setup, plan, make_job(plan, t, j0, analytic, tree),
                                        facts[t], tree.leaves[t]))
            if results[-1].stopped:  # keep what is done; the rest stays unjudged
                break
        else:  # a random loss can repeat itself twice by chance; a third J(θ) at the end too?
            if not stopped:
                evaluator.reserved = 0
                setup.progress.set_phase("J(θ) again")
                try:
                    same_again(j0, float(evaluator.base().real), "at the start and")
                    if still(results):  # J's scale where J is flat at θ: a far look
                        far = far_look(evaluator, j0, setup.config.seed)
                except KeyboardInterrupt:
                    stopped = True
    except BudgetSpent:  # planning leaves room for every phase; this is the hard stop behind it
        spent = True
    finally:
        setup.progress.close()
        evaluator.close()
    interrupted = not spent and (
        stopped or len(results) < len(plan.sizes) or any(r.partial for r in results)
    )
    results += [unchecked(analytic[t]) for t in range(len(results), len(plan.sizes))]
    return Sweep(j0, setup, results, stopped, spent, interrupted, evaluator.calls,
                 evaluator.spare(), far)
