"""docs/flat.md runs as written: every ```python block in a fresh interpreter from the repository
root, every ```pycon block as a doctest. A block that needs Octave is skipped without it."""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gradcheck.frameworks.octave import octave_executable

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "flat.md"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
BLOCKS = [(PAGE.read_text(encoding="utf-8").count("\n", 0, m.start()) + 1, m.group(1), m.group(2))
          for m in FENCE.finditer(PAGE.read_text(encoding="utf-8"))]
PYTHON = [(line, code) for line, lang, code in BLOCKS if lang == "python"]


def test_the_page_has_blocks_to_run():
    assert len(PYTHON) >= 5 and any(lang == "pycon" for _, lang, _ in BLOCKS)


@pytest.mark.parametrize(("line", "code"), PYTHON, ids=[f"line{line}" for line, _ in PYTHON])
def test_python_block_runs(line, code, tmp_path):
    if "gradcheck.octave" in code and (octave_executable() is None
                                       or importlib.util.find_spec("oct2py") is None):
        pytest.skip("needs GNU Octave (sudo apt-get install octave) and oct2py")
    script = tmp_path / f"flat_line{line}.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "120"}
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, f"docs/flat.md line {line}:\n{out.stderr}"


def test_pycon_blocks_are_doctests():
    text = "\n".join(code for _, lang, code in BLOCKS if lang == "pycon")
    test = doctest.DocTestParser().get_doctest(text, {}, "docs/flat.md", str(PAGE), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
