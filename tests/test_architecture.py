"""The layers of src/gradcheck: imports only go down, and no module imports itself back.

The graph is read from the source with ``ast``: every import counts, including those inside
functions and under ``if TYPE_CHECKING:``, since each is a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gradcheck

SRC = Path(gradcheck.__file__).parent

# Layer of each top-level part of the package, from the bottom. A module may import its own
# part or a part of a lower layer; parts on the same layer do not import each other.
LAYERS: dict[str, int] = {
    "_errors": 0,
    "report": 1,
    "core": 2,
    "diagnose": 3,
    "checks": 4,
    "nn": 5,
    "frameworks": 5,
    "monitor": 5,
    "testing": 6,
    "cli": 7,
    # the public doors: the package itself and the adapters' modules
    "__init__": 8,
    "torch": 8,
    "jax": 8,
    "tensorflow": 8,
    "octave": 8,
    "__main__": 8,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def imports(path: Path) -> set[str]:
    """gradcheck modules that ``path`` imports, anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gradcheck"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "gradcheck":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {m for m in found if m in MODULES}


GRAPH = {name: imports(path) for name, path in MODULES.items()}


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_every_part_has_a_layer():
    assert {part(m) for m in MODULES} <= set(LAYERS), set(map(part, MODULES)) - set(LAYERS)


def test_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, " -> ".join(cycle or [])


def test_imports_only_go_down():
    upward = [
        f"{a} imports {b}"
        for a, targets in GRAPH.items()
        for b in targets
        if part(a) != part(b) and LAYERS[part(a)] <= LAYERS[part(b)]
    ]
    assert not upward, upward


def test_every_subpackage_says_what_it_owns():
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name != "gradcheck":
            doc = ast.get_docstring(ast.parse(path.read_text()))
            assert doc and "import" in doc.lower(), f"{name} needs a docstring with its import rule"


def test_cycle_finder_finds_a_lazy_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from gradcheck.core._tree import flatten\n")
    assert imports(source) == {"gradcheck.core._tree"}


# The public names before the layers were introduced: none may be lost.
PUBLIC = ["SCHEMA", "ApproxTable", "CheckInterrupted", "Component", "DTypeError", "Finding", "FindingKind", "GradCheckError", "GradientMismatchError", "Layout", "LossOutputError", "LossRaisedError", "Monitor", "MonitorWarning", "NonFiniteError", "OptionError", "Report", "ShapeMismatchError", "StochasticLossError", "StructureError", "SweepResult", "TaylorResult", "approx", "check", "nn", "numerical_gradient", "relative_error", "sweep", "taylor_test", "textbook_verdict"]


def test_public_names_are_kept():
    import importlib

    assert set(PUBLIC) <= set(gradcheck.__all__)
    for name in gradcheck.__all__:
        assert hasattr(gradcheck, name), name
    doors = {m: importlib.import_module(f"gradcheck.{m}") for m in ("torch", "jax", "testing")}
    assert callable(doors["torch"].check_module) and callable(doors["torch"].check_function)
    assert callable(doors["torch"].check_against)
    assert callable(doors["jax"].check) and callable(doors["testing"].assert_gradients)
    assert callable(doors["torch"].monitor_step) and callable(doors["jax"].monitored)


def test_core_modules_and_functions_stay_small():
    """No module of core/ over 450 lines, no function there over 70 (issue 22); the notes'
    wording tables under report/ stay under 450 lines each too."""
    paths = [*(SRC / "core").rglob("*.py"), *(SRC / "report").glob("_sentences*.py")]
    long_modules = {p.name: n for p in paths if (n := p.read_text().count("\n")) > 450}
    long_functions = {
        f"{p.name}:{node.name}": node.end_lineno - node.lineno + 1
        for p in (SRC / "core").rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 70
    }
    assert not long_modules and not long_functions, (long_modules, long_functions)
