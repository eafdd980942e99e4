"""Equality harness for refactoring the verdict engine: same reports, same loss calls.

Run (from the repository root):
  python benchmarks/engine_equality.py record /tmp/engine_base.json   # on the untouched code
  python benchmarks/engine_equality.py compare /tmp/engine_base.json  # after a change
  python benchmarks/engine_equality.py unstable /tmp/engine_base.json /tmp/again.json
  python benchmarks/engine_equality.py diff /tmp/engine_base.json  # the last compare, again

It runs the whole test suite (``pytest -p no:randomly``, hypothesis's derandomized "ci" profile,
``PYTHONHASHSEED=0``: micrograd-style code iterates over sets)
with this file loaded as a pytest plugin, then ``benchmarks/bug_gallery.py --seeds 2 --tools
gradcheck`` in-process with the same hooks, and records two streams, keyed by the test's node id
(or "bug_gallery") and the order within it:

- ``run``: every report the engine's ``run()`` returns, as ``to_json()``, with the number of
  calls of the ``loss`` (and ``batched_loss``) handed to it, counted by a wrapper (not counted
  when an executor is given: the calls happen in other processes);
- ``report``: every ``Report`` constructed anywhere (``check``, the adapters' merges and
  re-counts, ``dataclasses.replace``), as ``to_json()``.

Dropped from ``to_json()``: ``seconds`` (wall-clock time), ``note_codes`` (added after the
first baselines were recorded; the sentences in ``notes`` carry the same information) and each
component's ``evaluated_dtype`` (added later still), nothing else. (Since ``evaluated_dtype``
came in, an adapter's ``dtype`` is the user's tensor's: a float32 tensor checked on float64
copies reads "float32" where older baselines read "float64".) Keys whose records
differ between two recordings of the untouched code are nondeterministic (process pools,
timing): ``record`` can be run twice and ``unstable A B`` names them; ``compare`` ignores the
keys listed in ``<baseline>.unstable`` if that file exists.

The hooks only exist when pytest is run with ``-p engine_equality`` (this script does that):
nothing in the package or the suite's conftest changes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("gradcheck.core.verdict", "gradcheck.core._verdict")  # where run() lives: new, old
OUT_ENV = "ENGINE_EQUALITY_OUT"

_records: list[dict[str, Any]] = []
_counters: dict[tuple[str, str], int] = defaultdict(int)
_current = ["<collect>"]


# --- the hooks -------------------------------------------------------------------------------


class _Counted:
    """A loss wrapper that counts its calls (picklable when the loss is)."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # a batched loss's by_tensor, counted too
        if name.startswith("__") or name in ("fn", "calls"):
            raise AttributeError(name)
        attr = getattr(self.fn, name)
        if name != "by_tensor":
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return attr(*args, **kwargs)

        return counted


def _json(report: Any) -> Any:
    try:
        data = report.to_dict()
    except Exception as error:  # noqa: BLE001 - a report that cannot serialise is recorded as such
        return f"<to_dict failed: {type(error).__name__}>"
    data.pop("seconds", None)
    data.pop("note_codes", None)
    for component in data.get("components", {}).values():
        component.pop("evaluated_dtype", None)
    return json.loads(json.dumps(data, allow_nan=True, default=str))


def _add(stream: str, report: Any, calls: Any = None) -> None:
    key = _current[0]
    k = _counters[(stream, key)]
    _counters[(stream, key)] += 1
    _records.append({"stream": stream, "key": f"{key}#{k}", "json": _json(report), "calls": calls})


def _engine() -> Any:
    import importlib

    for name in ENGINES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "run"):
            return module
    raise ImportError(f"no engine run() in {ENGINES}")


def install() -> None:
    """Wrap the engine's run() wherever it is bound, and Report construction."""
    import gradcheck  # noqa: F401 - imports checks/_check and core/_numerical, run's importers
    from gradcheck.report._report import Report

    engine = _engine()
    original = engine.run
    if getattr(original, "_engine_equality", False):
        return

    def run(loss: Any, params: Any, grads: Any, *args: Any, **kwargs: Any) -> Any:
        # the options: keywords of run() before issue 22, one CheckConfig (args[0]) after
        config = args[0] if args else None
        new = hasattr(config, "batched_loss")
        executor = config.executor if new else kwargs.get("executor")
        batched = config.batched_loss if new else kwargs.get("batched_loss")
        counted = executor is None
        if counted:
            loss = _Counted(loss)
            if batched is not None:
                batched = _Counted(batched)
                if new:
                    args = (dataclasses.replace(config, batched_loss=batched), *args[1:])
                else:
                    kwargs["batched_loss"] = batched
        report = original(loss, params, grads, *args, **kwargs)
        calls = None
        if counted:
            calls = [loss.calls, batched.calls if batched is not None else None]
        _add("run", report, calls)
        return report

    run._engine_equality = True  # type: ignore[attr-defined]
    run.__wrapped_original__ = original  # type: ignore[attr-defined]
    _rebind(original, run)
    init = Report.__init__

    def report_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _add("report", self)

    Report.__init__ = report_init  # type: ignore[method-assign]


def _rebind(original: Any, wrapper: Any) -> None:
    for name, module in list(sys.modules.items()):
        if (name == "gradcheck" or name.startswith("gradcheck.")) and module is not None:
            for attr, value in list(vars(module).items()):
                if value is original:
                    setattr(module, attr, wrapper)


def pytest_configure(config: Any) -> None:
    install()


def pytest_runtest_setup(item: Any) -> None:
    _current[0] = item.nodeid
    engine = _engine()
    # modules imported since (lazily): bind them to the wrapper too
    original = getattr(engine.run, "__wrapped_original__", None)
    if original is not None:
        _rebind(original, engine.run)


def pytest_runtest_teardown(item: Any) -> None:
    _current[0] = "<between tests>"


def pytest_sessionfinish(session: Any) -> None:
    out = os.environ.get(OUT_ENV)
    if out:
        Path(out).write_text(json.dumps(_records))


# --- the script --------------------------------------------------------------------------------


def _gallery(seeds: int) -> list[dict[str, Any]]:
    import runpy

    _records.clear()
    _counters.clear()
    install()
    _current[0] = "bug_gallery"
    argv = sys.argv
    sys.argv = ["bug_gallery.py", "--seeds", str(seeds), "--tools", "gradcheck"]
    try:
        runpy.run_path(str(ROOT / "benchmarks" / "bug_gallery.py"), run_name="__main__")
    finally:
        sys.argv = argv
    return list(_records)


def collect(path: Path, pytest_args: list[str]) -> None:
    env = {**os.environ, OUT_ENV: str(path) + ".tests", "CI": "1", "PYTHONHASHSEED": "0",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "benchmarks"),
                                          os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "engine_equality",
           *pytest_args]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    tests = json.loads(Path(str(path) + ".tests").read_text())
    env_gallery = [sys.executable, __file__, "_gallery", str(path) + ".gallery"]
    subprocess.run(env_gallery, cwd=ROOT, env=env, check=True)
    gallery = json.loads(Path(str(path) + ".gallery").read_text())
    path.write_text(json.dumps(tests + gallery))
    print(f"recorded {len(tests)} test records and {len(gallery)} gallery records in {path}")


def _index(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["stream"], r["key"]): r for r in records}


def diff(base: list[dict[str, Any]], new: list[dict[str, Any]], skip: set[str]) -> list[str]:
    a, b = _index(base), _index(new)
    out = []
    for k in sorted(set(a) | set(b)):
        if k[1] in skip or k[1].split("#")[0] in skip:
            continue
        if k not in a:
            out.append(f"new only: {k}")
        elif k not in b:
            out.append(f"baseline only: {k}")
        elif a[k]["json"] != b[k]["json"] or a[k]["calls"] != b[k]["calls"]:
            fields = [f for f in set(a[k]["json"]) | set(b[k]["json"])
                      if isinstance(a[k]["json"], dict) and isinstance(b[k]["json"], dict)
                      and a[k]["json"].get(f) != b[k]["json"].get(f)]
            calls = "" if a[k]["calls"] == b[k]["calls"] else f" calls {a[k]['calls']} -> {b[k]['calls']}"
            out.append(f"differs: {k} fields {sorted(fields)}{calls}")
    return out


def main() -> None:
    mode, path = sys.argv[1], Path(sys.argv[2])
    extra = sys.argv[3:]
    if mode == "_gallery":
        sys.path.insert(0, str(ROOT / "src"))
        path.write_text(json.dumps(_gallery(2)))
    elif mode == "record":
        collect(path, extra)
    elif mode == "unstable":
        base = json.loads(path.read_text())
        again = json.loads(Path(extra[0]).read_text())
        keys = sorted({line.split("'")[3].split("#")[0] for line in diff(base, again, set())})
        Path(str(path) + ".unstable").write_text("\n".join(keys) + ("\n" if keys else ""))
        print(f"{len(keys)} nondeterministic test(s): written to {path}.unstable")
        print("\n".join(keys))
    elif mode in ("compare", "diff"):  # diff: compare <baseline>.new, recorded before
        new = Path(str(path) + ".new")
        if mode == "compare":
            collect(new, extra)
        skipfile = Path(str(path) + ".unstable")
        skip = set(skipfile.read_text().splitlines()) if skipfile.exists() else set()
        base, now = json.loads(path.read_text()), json.loads(new.read_text())
        lines = diff(base, now, skip)
        n = sum(1 for r in base if r["key"].split("#")[0] not in skip)
        print("\n".join(lines))
        print(f"compared {n} baseline records ({sum(r['stream'] == 'run' for r in base)} run, "
              f"{sum(r['stream'] == 'report' for r in base)} report; {len(skip)} unstable tests "
              f"skipped): {len(lines)} difference(s)")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
