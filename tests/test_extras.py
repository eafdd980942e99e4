"""Optional dependencies: without an extra, the import that needs it names the pip line.

Each case runs in a fresh interpreter in which the dependency is made absent (``sys.modules``
entry set to None, so ``import`` and ``importlib.util.find_spec`` both see no module).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_without(modules: list[str], code: str) -> subprocess.CompletedProcess:
    hide = "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    src = str(ROOT / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", "import sys\n" + hide + textwrap.dedent(code)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("missing", "statement", "extra"), [
    (["torch"], "import gradcheck.torch", "torch"),
    (["jax"], "import gradcheck.jax", "jax"),
    (["matplotlib", "matplotlib.backends", "matplotlib.backends.backend_agg"],
     "from gradcheck.report._sweep import figure; figure(None)", "plot"),
    (["sklearn", "sklearn.datasets"], "gradcheck.nn.load_digits()", "demo"),
])
def test_a_missing_extra_is_named(missing, statement, extra):
    out = _run_without(missing, f"""
        import gradcheck  # the core imports without any extra
        try:
            {statement}
        except ImportError as error:
            print("MESSAGE", error)
    """)
    assert out.returncode == 0, out.stderr
    message = out.stdout.split("MESSAGE ", 1)[1]
    assert f'pip install "gradcheck[{extra}]"' in message and missing[0] in message


def test_the_core_imports_without_any_extra():
    heavy = ["torch", "jax", "matplotlib", "sklearn", "dask", "scipy"]
    out = _run_without(heavy, """
        import numpy as np, gradcheck
        w = np.array([1.0, 2.0])
        print(gradcheck.check(lambda p: float((p ** 2).sum()), w, 2 * w).passed)
        print(gradcheck.check_layer(lambda x: x ** 2, lambda d: 2 * w * d, w).passed)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]


def test_the_cli_names_the_extra_for_sweep(tmp_path):
    out = _run_without(["matplotlib", "matplotlib.backends", "matplotlib.backends.backend_agg"],
                       f"""
        sys.argv = ["gradcheck", "sweep", "examples/targets.py:mlp", "--points", "3",
                    "--out", {str(tmp_path / "s")!r}]
        from gradcheck.cli._app import main
        main()
    """)
    assert out.returncode == 2
    assert out.stderr.startswith("gradcheck: error: ") and 'pip install "gradcheck[plot]"' in out.stderr
