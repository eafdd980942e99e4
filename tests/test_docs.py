"""The documentation runs as written: README.md and every docs/*.md page.

Every ```python block runs in a fresh interpreter from the repository root, every ```pycon block
is a doctest, and the ``gradcheck check`` lines of the ```bash blocks run in a shell. Blocks are
found by their fence, so blocks added later (new pages included) are run too. A block that needs
an optional dependency that is not installed (torch, jax, tensorflow, dask, ...) is skipped,
saying which. A block lives in one place: a docs page shows a README block through a snippet
include (``--8<-- "README.md:name"``) instead of a copy, so nothing runs twice.

README.md is the first screen: at most 300 lines, ``make demo`` and ``make test`` near the top,
and its ``make demo`` transcript is compared with a real run of ``gradcheck demo``.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
OPTIONAL = ("torch", "jax", "tensorflow", "keras", "dask", "matplotlib", "sklearn")


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def blocks(language: str, pages: list[Path] = PAGES) -> list[tuple[str, int, str]]:
    """(page, line number, code) of every fenced block in ``language``."""
    found = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        found += [(_name(page), text.count("\n", 0, m.start()) + 1, m.group(2))
                  for m in FENCE.finditer(text) if m.group(1) == language]
    return found


def _ids(found: list[tuple[str, int, str]]) -> list[str]:
    return [f"{page}:{line}" for page, line, _ in found]


def _needs(code: str) -> list[str]:
    imported = set(re.findall(r"^\s*(?:import|from)\s+([a-zA-Z_]\w*)", code, re.M))
    imported |= set(re.findall(r"^\s*import\s+.*?,\s*([a-zA-Z_]\w*)", code, re.M))
    imported |= {"sklearn"} if "load_digits" in code else set()
    missing = [m for m in OPTIONAL if m in imported and importlib.util.find_spec(m) is None]
    if "gradcheck.octave" in code and (importlib.util.find_spec("oct2py") is None
                                       or not (shutil.which("octave-cli") or shutil.which("octave"))):
        missing.append("GNU Octave and oct2py")
    return missing


def _env() -> dict[str, str]:
    src = str(ROOT / "src")  # this checkout's code first, as the tests see it
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
            "COLUMNS": "120", "MPLBACKEND": "Agg"}


PYTHON = blocks("python")
DEMO = "demo"  # the key of the real `gradcheck demo` run among the background runs


def test_the_docs_have_blocks_to_run():
    assert len(PYTHON) >= 10 and blocks("pycon")
    assert len(blocks("python", [README])) <= 6  # README keeps few blocks; the pages hold the rest


def _run_block(code: str, script: Path) -> subprocess.CompletedProcess:
    script.write_text(code, encoding="utf-8")  # a file: process pools can import __main__
    return subprocess.run([sys.executable, str(script)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=300)


def _run_demo(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradcheck", "demo", "--no-plot"], cwd=folder,
                          env=_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every runnable block (and the demo) started up front, two at a time; each test waits for
    its own."""
    from concurrent.futures import ThreadPoolExecutor

    folder = tmp_path_factory.mktemp("docs")
    before = _tracked_state()
    with ThreadPoolExecutor(2) as pool:
        futures = {DEMO: pool.submit(_run_demo, folder)} if not _needs("import sklearn") else {}
        for page, line, code in PYTHON:
            if not _needs(code):
                script = folder / f"{page.replace('/', '_').replace('.', '_')}_line{line}.py"
                futures[f"{page}:{line}"] = pool.submit(_run_block, code, script)
        yield futures
    assert _tracked_state() == before, "a docs block changed tracked files"


@pytest.mark.parametrize(("page", "line", "code"), PYTHON, ids=_ids(PYTHON))
def test_python_block_runs_in_a_fresh_interpreter(page, line, code, runs):
    missing = _needs(code)
    if missing:
        pytest.skip(f"{page}:{line} needs {', '.join(missing)} (not installed)")
    out = runs[f"{page}:{line}"].result()
    assert out.returncode == 0, f"{page}:{line} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"


@pytest.mark.parametrize(("page", "line", "code"), blocks("pycon"), ids=_ids(blocks("pycon")))
def test_pycon_block_is_a_passing_doctest(page, line, code, monkeypatch):
    missing = _needs(code.replace(">>> ", ""))
    if missing:
        pytest.skip(f"{page}:{line} needs {', '.join(missing)} (not installed)")
    monkeypatch.chdir(ROOT)
    test = doctest.DocTestParser().get_doctest(code, {}, f"{page}:{line}", page, line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda text: pytest.fail(f"{page}:{line}:\n{text}"))
    assert runner.failures == 0 and runner.tries > 0


def _cli_lines() -> list[str]:
    """The lines of the command-line examples that call ``gradcheck``."""
    lines = []
    for _, _, code in blocks("bash"):
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
    # `gradcheck` as the reader has it on PATH: this interpreter's module
    shim = f"gradcheck() {{ {shlex.quote(sys.executable)} -m gradcheck \"$@\"; }}\n"
    before = _tracked_state()
    setup = "\n".join(x for x in lines if x.startswith("out="))
    for line in lines:
        if line.startswith("out="):
            continue
        want = 1 if "buggy" in line else 0
        out = subprocess.run(["bash", "-c", f"{shim}{setup}\n{line}"], cwd=ROOT, env=_env(),
                             capture_output=True, text=True, timeout=240)
        assert out.returncode == want, f"{line}\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}"
    assert _tracked_state() == before, "a docs command changed a tracked file"


# ---- README.md: the first screen ----


def test_readme_is_one_screen_with_make_demo_and_make_test_near_the_top():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300
    top = "\n".join(lines[:20])
    assert "make demo" in top and "make test" in top
    for placeholder in ("<!-- flat-theta -->", "<!-- more-doors -->"):
        assert placeholder in lines, placeholder


def test_snippet_includes_name_sections_that_exist():
    text = README.read_text(encoding="utf-8")
    for page in PAGES[1:]:
        for name in re.findall(r'^--8<-- "README\.md:(\w[\w-]*)"', page.read_text("utf-8"), re.M):
            assert f"--8<-- [start:{name}]" in text and f"--8<-- [end:{name}]" in text, (page, name)


def _transcript() -> list[str]:
    """The README's ``make demo`` transcript: the text block after its marker."""
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- demo-transcript")
    block = FENCE.search(text, start)
    assert block is not None and block.group(1) == "text"
    return block.group(2).splitlines()


def test_readme_demo_transcript_matches_a_real_run(runs):
    if DEMO not in runs:
        pytest.skip("gradcheck demo needs scikit-learn (not installed)")
    out = runs[DEMO].result()
    assert out.returncode == 0, out.stderr[-3000:]
    printed = [line.rstrip() for line in out.stdout.splitlines()]
    at = 0
    for want in _transcript():
        if want.strip() == "[…]":
            continue
        pattern = re.compile(".*?".join(re.escape(part) for part in want.rstrip().split("…")) + "$")
        while at < len(printed) and not pattern.match(printed[at]):
            at += 1
        assert at < len(printed), f"README's demo transcript line not printed (in order): {want!r}"
        at += 1
