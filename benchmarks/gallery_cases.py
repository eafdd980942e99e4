"""Case by case: the gallery's and the held-out set's verdicts, suspects, kinds, loss calls, times.

Run (from the repository root; ``PYTHONPATH=src`` or an installed gradcheck):
  python benchmarks/gallery_cases.py record before.json [--seeds 2]   # on one version
  python benchmarks/gallery_cases.py record after.json                # on another
  python benchmarks/gallery_cases.py compare before.json after.json   # what changed, calls, times

``bug_gallery.py`` gives the rates; this gives the cases behind them, so two versions of the
engine can be compared case by case: every changed verdict, suspect set or kind is listed, the
loss calls are summed per group (counted by the report, ``report.evaluations``), and the median
time per case is compared. Record each version several times, alternating (``before1``,
``after1``, ``before2``, ...), and pass them all: each case's time is its fastest run, so that a
machine under load weighs on both versions alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bugs import Case, bugs, heldout, traps  # noqa: E402

import gradcheck  # noqa: E402


def _row(group: str, seed: int, case: Case) -> dict[str, Any]:
    start = time.perf_counter()
    r = gradcheck.check(case.loss, case.params, case.grads, batch_size=case.batch_size)
    verdict = "passed" if r.passed else ("failed" if r.suspects else "incomplete")
    return {"group": group, "seed": seed, "name": case.name, "verdict": verdict,
            "suspects": sorted(r.suspects), "kinds": {f.param: str(f.kind) for f in r.findings},
            "calls": r.evaluations, "seconds": time.perf_counter() - start}


def record(path: str, seeds: int) -> None:
    rows = []
    for s in range(seeds):
        held_bugs, held_traps = heldout(s)
        groups = (("gallery bugs", bugs(s)), ("gallery traps", traps(s)),
                  ("held-out bugs", held_bugs), ("held-out traps", held_traps))
        rows += [_row(group, s, case) for group, cases in groups for case in cases]
    Path(path).write_text(json.dumps(rows, indent=0), encoding="utf-8")
    print(f"{len(rows)} cases -> {path}")


def _fastest(runs: list[list[dict[str, Any]]]) -> list[float]:
    return [min(run[k]["seconds"] for run in runs) for k in range(len(runs[0]))]


def compare(before: list[str], after: list[str]) -> None:
    a = [json.loads(Path(p).read_text(encoding="utf-8")) for p in before]
    b = [json.loads(Path(p).read_text(encoding="utf-8")) for p in after]
    ta, tb = _fastest(a), _fastest(b)
    print("| group | cases | changed | loss calls before | after | ratio "
          "| median ms before | after |\n|---|---|---|---|---|---|---|---|")
    for group in dict.fromkeys(row["group"] for row in a[0]):
        ks = [k for k, row in enumerate(a[0]) if row["group"] == group]
        changed = [k for k in ks if _judged(a[0][k]) != _judged(b[0][k])]
        ca, cb = sum(a[0][k]["calls"] for k in ks), sum(b[0][k]["calls"] for k in ks)
        ma = statistics.median(ta[k] for k in ks) * 1e3
        mb = statistics.median(tb[k] for k in ks) * 1e3
        print(f"| {group} | {len(ks)} | {len(changed)} | {ca:,} | {cb:,} | {cb / ca:.3f} "
              f"| {ma:.1f} | {mb:.1f} |")
    for k, row in enumerate(a[0]):
        if _judged(row) != _judged(b[0][k]):
            print(f"- {row['group']}, seed {row['seed']}, {row['name']}: "
                  f"{_judged(row)} -> {_judged(b[0][k])}")


def _judged(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["verdict"], tuple(row["suspects"]), tuple(sorted(row["kinds"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out")
    rec.add_argument("--seeds", type=int, default=2)
    cmp = sub.add_parser("compare")
    cmp.add_argument("before", help="comma-separated runs of the first version")
    cmp.add_argument("after", help="comma-separated runs of the second version")
    args = parser.parse_args()
    if args.command == "record":
        record(args.out, args.seeds)
    else:
        compare(args.before.split(","), args.after.split(","))


if __name__ == "__main__":
    main()
