"""Two OpInfo runs of ``opinfo_side_by_side.sh`` compared: the per-pair ratio to
``torch.autograd.gradcheck`` (median, 75th, 90th percentile) before and after, by the number of
entries checked, and every pair whose outcome, suspects, detail, notes, entry states or
findings differ.

    python benchmarks/opinfo_compare.py OUTDIR [REFERENCE.json]

``REFERENCE.json``: an earlier ``opinfo.py --json`` of the whole list, compared with "after" on
the fields it holds.
"""

from __future__ import annotations

import glob
import json
import statistics
import sys
from typing import Any

FIELDS = ("ours", "suspects", "detail", "notes", "states", "findings", "cause", "torch")
FINISHED = ("pass", "fail", "nothing")


def load(folder: str, who: str) -> dict[tuple[str, int], dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(glob.glob(f"{folder}/{who}-*.json")):
        with open(path) as f:
            rows += json.load(f)
    return {(r["op"], r["sample"]): r for r in rows}


def differences(a: dict, b: dict, fields: tuple[str, ...]) -> list[tuple]:
    out: list[tuple] = []
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            out.append((key, "missing"))
            continue
        out += [(key, f, a[key].get(f), b[key].get(f)) for f in fields
                if a[key].get(f) != b[key].get(f)]
    return out


def quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def size(row: dict[str, Any]) -> str:
    n = sum(sum(c.values()) for c in row.get("states", {}).values())
    return "<=16" if n <= 16 else "17-64" if n <= 64 else "65-256" if n <= 256 else ">256"


def main() -> None:
    before, after = load(sys.argv[1], "base"), load(sys.argv[1], "after")
    for row in differences(before, after, FIELDS):
        print("before/after differ:", row)
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            reference = {(r["op"], r["sample"]): r for r in json.load(f)}
        for row in differences(reference, after, FIELDS[:4] + ("cause",)):
            print("reference/after differ:", row)
    keys = [k for k in before if k in after and all(
        x[k].get("ours") in FINISHED and x[k].get("torch") in ("pass", "fail")
        for x in (before, after))]
    for name, rows in (("before", before), ("after", after)):
        ratios = [rows[k]["ours_s"] / max(rows[k]["torch_s"], 1e-9) for k in keys]
        print(f"{name}: {len(keys)} pairs, median ratio {statistics.median(ratios):.2f}x, "
              f"p75 {quantile(ratios, 0.75):.2f}x, p90 {quantile(ratios, 0.9):.2f}x")
    for group in ("<=16", "17-64", "65-256", ">256"):
        ks = [k for k in keys if size(after[k]) == group]
        if ks:
            b = statistics.median(before[k]["ours_s"] / before[k]["torch_s"] for k in ks)
            a = statistics.median(after[k]["ours_s"] / after[k]["torch_s"] for k in ks)
            print(f"N {group}: {len(ks)} pairs, median ratio {b:.2f}x -> {a:.2f}x")


if __name__ == "__main__":
    main()
