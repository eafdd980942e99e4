"""README.md runs as written: every ```python block in a fresh interpreter from the repository
root, every ```pycon block as a doctest, and the command-line examples in a shell.

Blocks are found by their fence, so blocks added later are run too. A block that cannot run
here (it needs torch, jax or dask and they are not installed) is skipped, saying which.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
OPTIONAL = ("torch", "jax", "dask", "matplotlib", "sklearn")


def blocks(language: str) -> list[tuple[int, str]]:
    """(line number, code) of every fenced block in ``language``."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(2))
            for m in FENCE.finditer(text) if m.group(1) == language]


def _needs(code: str) -> list[str]:
    imported = set(re.findall(r"^\s*(?:import|from)\s+([a-zA-Z_]\w*)", code, re.M))
    imported |= set(re.findall(r"^\s*import\s+.*?,\s*([a-zA-Z_]\w*)", code, re.M))
    imported |= {"sklearn"} if "load_digits" in code else set()
    return [m for m in OPTIONAL if m in imported and importlib.util.find_spec(m) is None]


def _env() -> dict[str, str]:
    src = str(ROOT / "src")  # this checkout's code first, as the tests see it
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
            "COLUMNS": "120", "MPLBACKEND": "Agg"}


PYTHON = blocks("python")


def test_the_readme_has_blocks_to_run():
    assert len(PYTHON) >= 10 and blocks("pycon")


def _run_block(line: int, code: str, folder: Path) -> subprocess.CompletedProcess:
    script = folder / f"readme_line{line}.py"  # a file: process pools can import __main__
    script.write_text(code, encoding="utf-8")
    return subprocess.run([sys.executable, str(script)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every runnable block started up front, two at a time (each test waits for its own)."""
    from concurrent.futures import ThreadPoolExecutor

    folder = tmp_path_factory.mktemp("readme")
    before = _tracked_state()
    with ThreadPoolExecutor(2) as pool:
        futures = {line: pool.submit(_run_block, line, code, folder)
                   for line, code in PYTHON if not _needs(code)}
        yield futures
    assert _tracked_state() == before, "a README block changed tracked files"


@pytest.mark.parametrize(("line", "code"), PYTHON, ids=[f"line{n}" for n, _ in PYTHON])
def test_python_block_runs_in_a_fresh_interpreter(line, code, runs):
    missing = _needs(code)
    if missing:
        pytest.skip(f"README.md:{line} needs {', '.join(missing)} (not installed)")
    out = runs[line].result()
    assert out.returncode == 0, f"README.md:{line} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"


@pytest.mark.parametrize(("line", "code"), blocks("pycon"),
                         ids=[f"line{n}" for n, _ in blocks("pycon")])
def test_pycon_block_is_a_passing_doctest(line, code, monkeypatch):
    monkeypatch.chdir(ROOT)
    test = doctest.DocTestParser().get_doctest(code, {}, f"README.md:{line}", str(README), line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda text: pytest.fail(f"README.md:{line}:\n{text}"))
    assert runner.failures == 0 and runner.tries > 0


def _cli_lines() -> list[str]:
    """The lines of the command-line examples that call ``gradcheck``."""
    lines = []
    for _, code in blocks("bash"):
        if "gradcheck check" not in code:
            continue
        lines += [line for line in code.splitlines() if line.strip()]
    return lines


def _tracked_state() -> str:
    """``git status`` of tracked files (empty outside a git checkout, e.g. in an sdist)."""
    if not (ROOT / ".git").exists():
        return ""
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                          capture_output=True, text=True, check=False).stdout


def test_cli_examples_run_in_a_shell_and_write_no_tracked_file():
    lines = _cli_lines()
    assert any(line.startswith("gradcheck sweep") for line in lines)
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("gradcheck sweep needs matplotlib (not installed)")
    # `gradcheck` as the README's reader has it on PATH: this interpreter's module
    shim = f"gradcheck() {{ {shlex.quote(sys.executable)} -m gradcheck \"$@\"; }}\n"
    before = _tracked_state()
    for line in lines:
        want = 1 if "buggy" in line else 0
        script = shim + "\n".join(x for x in lines if x.startswith("out=")) + "\n" + line
        if line.startswith("out="):
            continue
        out = subprocess.run(["bash", "-c", script], cwd=ROOT, env=_env(), capture_output=True,
                             text=True, timeout=240)
        assert out.returncode == want, f"{line}\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}"
    assert _tracked_state() == before, "a README command changed a tracked file"
