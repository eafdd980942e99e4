"""The verdict's invariants (issue 22, part 3) at many random seeds, beyond the test suite's
derandomized examples.

Run: PYTHONPATH=src python benchmarks/invariants_sweep.py [--losses 300] [--seed 0]
     [--only SUBSTRING] [--dump failures.txt]

It draws losses from the property suite's own generators (``tests/core/verdict/
test_invariants.py``: smooth terms at mixed scales, hinge margins met exactly, max-pool ties of
one or mixed signs, round() staircases at several widths, float32/float16 reads, budgets from
the minimum to 40 N), with hypothesis seeded by ``--seed`` (reproducible, not derandomized; no
shrinking), and counts, per property and case, the losses that break it:

* correct gradient FAILED (one row per case of ``CASES``);
* a smooth entry wrong by x(1 + 1e-3) PASSED;
* a verdict that weakens as the budget grows.

A failure is also counted per kind of piece: for a correct gradient judged wrong, the kinds of
the pieces whose entries were judged wrong; for the other properties, every kind in the loss.
``--dump`` writes each failing loss (its pieces, θ, budget) for a test to reproduce it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core" / "verdict"))

import test_invariants as inv  # noqa: E402

from gradcheck.core._coords import minimum_budget  # noqa: E402
from gradcheck.report._model import MISMATCH  # noqa: E402

KINDS = (inv.SMOOTH, inv.HINGE, inv.MAX_ONE_SIGN, inv.MAX_MIXED, inv.STAIRS, inv.FINE_STAIRS,
         inv.QUANTIZED)
Outcome = tuple[bool, set[str], str]  # (broken, the kinds to count it under, what to dump)


def blamed(loss: inv.Loss, report: Any) -> set[str]:
    """The kinds of the pieces with an entry judged wrong."""
    flags = report.components["x"].flags
    if flags is None:
        return set()
    bad = np.flatnonzero(np.asarray(flags).reshape(-1) == MISMATCH)
    return {p.kind for p in loss.pieces if np.any((bad >= p.start) & (bad < p.stop))}


def dump(loss: inv.Loss, **extra: Any) -> str:
    return repr({"pieces": loss.pieces, "theta": loss.theta.tolist(), "ties": loss.ties,
                 **extra})


def correct(kind: str, others: tuple[str, ...], budget: Any) -> Callable[[Any], Outcome]:
    def body(data: Any) -> Outcome:
        loss = data.draw(inv.losses(others, first=kind))
        chosen = data.draw(budget(loss.theta.size))
        report = loss.check(budget=chosen)
        broken = report.verdict == "failed"
        return broken, blamed(loss, report) if broken else set(), dump(loss, budget=chosen)
    return body


def wrong(others: tuple[str, ...], budget: Any) -> Callable[[Any], Outcome]:
    def body(data: Any) -> Outcome:
        loss = data.draw(inv.losses(others, first=inv.SMOOTH, least=2))
        grads, entry = inv._wrong_by_a_thousandth(loss)
        chosen = data.draw(budget(loss.theta.size))
        broken = loss.check(grads, budget=chosen).verdict == "passed"
        return broken, {p.kind for p in loss.pieces}, dump(loss, budget=chosen, entry=entry)
    return body


def monotone(data: Any) -> Outcome:
    loss = data.draw(inv.losses(inv.SMOOTH_AND_KINKS, first=inv.SMOOTH))
    is_wrong = data.draw(st.booleans())
    n = loss.theta.size
    grads = inv._wrong_by_a_thousandth(loss)[0] if is_wrong else loss.grads()
    least = minimum_budget([n], 2 + 2)
    fractions = data.draw(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=2))
    spread = sorted({int(least + f * (40 * n - least)) for f in fractions} | {least, 40 * n})
    strengths = [inv.STRENGTH[loss.check(grads, budget=b).verdict] for b in spread]
    broken = strengths != sorted(strengths, reverse=not is_wrong)
    return broken, {p.kind for p in loss.pieces}, dump(loss, wrong=is_wrong,
                                                        seen=list(zip(spread, strengths, strict=True)))


def properties() -> list[tuple[str, Callable[[Any], Outcome]]]:
    rows = [(f"correct never FAILED: {case.id}", correct(*case.values))
            for case in inv.CASES]
    rows += [("x(1+1e-3) never PASSED: ample budget", wrong(inv.SMOOTH_AND_KINKS, inv.ample)),
             ("x(1+1e-3) never PASSED: stairs elsewhere", wrong((inv.STAIRS,), inv.ample)),
             ("monotone in the budget", monotone)]
    return rows


def sweep(body: Callable[[Any], Outcome], losses: int, at: int) -> tuple[int, list[Outcome]]:
    """Run ``body`` on ``losses`` drawn examples (hypothesis seeded by ``at``)."""
    seen: list[Outcome] = []

    @settings(max_examples=losses, database=None, derandomize=False, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @seed(at)
    @given(data=st.data())
    def run(data: Any) -> None:
        seen.append(body(data))

    run()
    return len(seen), [s for s in seen if s[0]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--losses", type=int, default=300, help="losses per property and case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="rows whose name contains this")
    parser.add_argument("--dump", type=Path, help="write the failing losses here")
    args = parser.parse_args()
    header = ["property: case", "losses", "broken", *KINDS, "s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    dumped = []
    for k, (name, body) in enumerate(properties()):
        if args.only not in name:
            continue
        start = time.perf_counter()
        ran, broken = sweep(body, args.losses, args.seed * 1000 + k)
        by_kind = Counter(kind for _, kinds, _ in broken for kind in kinds)
        cells = [name, str(ran), str(len(broken)), *(str(by_kind[kd] or "") for kd in KINDS),
                 f"{time.perf_counter() - start:.0f}"]
        print("| " + " | ".join(cells) + " |", flush=True)
        dumped += [f"# {name}\n{text}\n" for _, _, text in broken]
    if args.dump is not None:
        args.dump.write_text("".join(dumped))


if __name__ == "__main__":
    main()
