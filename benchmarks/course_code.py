"""Course code sweep: gradcheck on third-party textbook / course code, written their way.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/course_code.py [--only SUBSTRING] [--fast]

The cases are in ``tests/bugs/course.py`` (deeplearning.ai's gradient-checking, regularization
and L-layer assignments, cs231n's layers, TwoLayerNet and RNN steps, Nielsen's network.py,
micrograd, d2l's softmax regression from scratch, the seed's 784-300-10 net): each correct
implementation must PASS, each planted bug must FAIL with exactly the faulty tensors as suspects
(and ideally the expected kind). Prints one row per case: verdict, suspects, kinds, loss calls,
seconds, and whether it is right; then the totals. An error raised by gradcheck is a row too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bugs.course import courses  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name holds this")
    parser.add_argument("--fast", action="store_true", help="only the tests' quick subset")
    args = parser.parse_args()
    rows, wrong, kind_miss = [], 0, 0
    for build in courses():
        case = build()
        if args.only not in case.name or (args.fast and not case.fast):
            continue
        state = np.random.get_state()
        start = time.perf_counter()
        try:
            report = case.run()
        except Exception as error:  # noqa: BLE001 - a refusal is a result of the sweep
            seconds = time.perf_counter() - start
            rows.append((case.name, "ERROR", type(error).__name__, str(error)[:60], "-",
                         f"{seconds:.2f}", "NO"))
            wrong += 1
            continue
        seconds = time.perf_counter() - start
        if not (np.random.get_state()[1] == state[1]).all():
            print(f"note: {case.name} moved the global RNG (the course's code seeds it)")
        kinds = sorted({f.kind for f in report.findings})
        right = (report.passed is True) if not case.faulty else (
            report.passed is False and set(report.suspects) == set(case.faulty))
        kind_ok = not case.kinds or (bool(kinds) and set(kinds) <= set(case.kinds))
        wrong += not right
        kind_miss += right and bool(case.faulty) and not kind_ok
        rows.append((
            case.name, "PASS" if report.passed else "FAIL",
            ",".join(report.suspects) or "-", ",".join(kinds) or "-", f"{report.evaluations:,}",
            f"{seconds:.2f}", ("ok" if kind_ok else "ok (kind?)") if right else "NO",
        ))
    head = ("case", "verdict", "suspects", "kinds", "calls", "s", "right")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)))
    print(f"\n{len(rows)} cases, {wrong} wrong verdicts or suspects, {kind_miss} right but with "
          "another kind than expected")


if __name__ == "__main__":
    main()
