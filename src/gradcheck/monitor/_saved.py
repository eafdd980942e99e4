"""The state of a failing step, on disk: what ``reproduce`` needs to run the same check again.

A directory holds ``state.npz`` (the parameters, the gradients and the batch, each array under
``params/<name>``, ``grads/<name>``, ``batch/<key>``), ``meta.json`` (the step, the seed, the
tensors checked, the structure of the parameters) and the report as ``report.json`` and
``report.txt``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.core._tree import Params, flatten


@dataclass(frozen=True)
class Saved:
    """A saved failing step: the state, and the check that failed on it."""

    path: Path
    step: int
    seed: int
    checked: tuple[str, ...]  # the tensors the failing check judged
    params: Params
    grads: Params
    batch: dict[str, np.ndarray]
    report: dict[str, Any]  # the failing report's JSON form

    def check(self, loss: Callable[[Params], Any]) -> Any:
        """``gradcheck.check`` of the same tensors, with the same seed: the failing report again.

        ``loss(params)`` must be the loss of the saved step's batch (``self.batch``).
        """
        return restricted_check(loss, self.params, self.grads, self.checked, self.seed)


def restricted_check(
    loss: Callable[[Params], Any], params: Params, grads: Params, names: tuple[str, ...],
    seed: int,
) -> Any:
    """``check`` of the tensors ``names`` only; the others stay fixed at their values."""
    from gradcheck.checks._check import check

    tree, gtree = flatten(params), flatten(grads, what="grads")
    index = {n: i for i, n in enumerate(tree.names)}
    gby = dict(zip(gtree.names, gtree.leaves, strict=True))
    fixed = [leaf.copy() for leaf in tree.leaves]

    def sub_loss(sub: dict[str, np.ndarray]) -> Any:
        leaves = list(fixed)
        for name, value in sub.items():
            leaves[index[name]] = value
        return loss(tree.rebuild(leaves))

    sub = {n: tree.leaves[index[n]].copy() for n in names}
    return check(sub_loss, sub, {n: np.asarray(gby[n]).copy() for n in names}, seed=seed,
                 layers=list(names))


def save(
    path: Path, *, step: int, seed: int, checked: tuple[str, ...], params: Params,
    grads: Params, batch: Mapping[str, Any] | None, report: Any,
) -> Path:
    """Writes the state of a failing step and its report under ``path`` (created)."""
    path.mkdir(parents=True, exist_ok=True)
    tree, gtree = flatten(params), flatten(grads, what="grads")
    arrays = {f"params/{n}": np.asarray(x) for n, x in zip(tree.names, tree.leaves, strict=True)}
    arrays |= {f"grads/{n}": np.asarray(x) for n, x in zip(gtree.names, gtree.leaves, strict=True)}
    arrays |= {f"batch/{k}": np.asarray(v) for k, v in (batch or {}).items()}
    np.savez(path / "state.npz", **arrays)
    meta = {"step": step, "seed": seed, "checked": list(checked),
            "structure": _skeleton(params), "grads_structure": _skeleton(grads)}
    (path / "meta.json").write_text(json.dumps(meta, indent=2))
    (path / "report.json").write_text(report.to_json())
    (path / "report.txt").write_text(report.to_text(verbose=True))  # everything
    return path


def load(path: str | Path) -> Saved:
    """Reads a directory written by the monitor on a failure.

    Returns:
      A ``Saved``: ``.params``, ``.grads``, ``.batch``, ``.step``, ``.seed``, and
      ``.check(loss)`` to run the failing check again.
    """
    path = Path(path)
    if not (path / "state.npz").is_file() or not (path / "meta.json").is_file():
        raise OptionError(
            f"path={str(path)!r} is not a directory saved by gradcheck.Monitor (it needs "
            "state.npz and meta.json); the monitor names the directory in its message."
        )
    meta = json.loads((path / "meta.json").read_text())
    with np.load(path / "state.npz") as data:
        arrays = {k: data[k] for k in data.files}

    def part(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}

    report = json.loads((path / "report.json").read_text())
    return Saved(path, int(meta["step"]), int(meta["seed"]), tuple(meta["checked"]),
                 _build(meta["structure"], part("params")),
                 _build(meta["grads_structure"], part("grads")), part("batch"), report)


def reproduce(path: str | Path, loss: Callable[[Params], Any]) -> Any:
    """The failing check of a saved step, run again: the same ``Report`` (but its timing).

    Args:
      path: the directory named in the monitor's message (``monitor.saved``).
      loss: ``loss(params)`` on the saved batch (``gradcheck.monitor.load(path).batch``).

    Returns:
      The ``Report``.
    """
    return load(path).check(loss)


def _skeleton(params: Params, prefix: str = "") -> Any:
    """The structure of ``params`` as JSON, leaves by name (None: not representable)."""
    names = flatten(params).names
    it = iter(names)

    def walk(node: Any) -> Any:
        if isinstance(node, dict) and all(isinstance(k, str) for k in node):
            return {"dict": [[k, walk(v)] for k, v in node.items()]}
        if type(node) in (list, tuple):
            return {type(node).__name__: [walk(v) for v in node]}
        if isinstance(node, np.ndarray):
            return {"leaf": next(it)}
        raise TypeError

    try:
        return walk(params)
    except (TypeError, StopIteration):
        return None


def _build(skeleton: Any, leaves: dict[str, np.ndarray]) -> Params:
    if skeleton is None:  # a structure JSON cannot hold: the arrays by name
        return dict(leaves)
    kind, body = next(iter(skeleton.items()))
    if kind == "leaf":
        return leaves[body]
    if kind == "dict":
        return {k: _build(v, leaves) for k, v in body}
    items = [_build(v, leaves) for v in body]
    return items if kind == "list" else tuple(items)
