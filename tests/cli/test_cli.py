"""The command line: exit codes, one-line errors, --json purity, output files, width and colour."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gradcheck
from gradcheck.cli._app import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "targets.py"
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradcheck: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]
    assert result.stdout == ""


def test_correct_target_passes_with_exit_code_0():
    result = run("check", f"{EXAMPLES}:mlp")
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.stdout and "W1" in result.stdout


def test_buggy_target_fails_with_exit_code_1_and_names_the_parameter():
    result = run("check", f"{EXAMPLES}:buggy_mlp")
    assert result.exit_code == 1
    assert "FAILED" in result.stdout and "WRONG" in result.stdout and "W1" in result.stdout


def test_json_prints_only_the_report(tmp_path):
    target = tmp_path / "chatty.py"
    target.write_text(
        "import numpy as np\nprint('hello from import')\n"
        "def t():\n    print('hello from target')\n"
        "    return (lambda w: (print('in loss'), float((w**2).sum()))[1]), np.ones(2), 2*np.ones(2)\n"
    )
    result = run("check", f"{target}:t", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["schema"] == "gradcheck.report/1" and data["passed"] is True
    assert "hello from target" in result.stderr  # the user's prints go to stderr


def test_quiet_prints_nothing_and_keeps_the_exit_code():
    assert run("check", f"{EXAMPLES}:buggy_mlp", "--quiet").stdout == ""
    assert run("check", f"{EXAMPLES}:buggy_mlp", "-q").exit_code == 1


def test_module_path_targets_work(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES.parent))
    assert run("check", "targets:cubic", "-q").exit_code == 0


def test_html_and_markdown_files_are_written_and_nothing_else(tmp_path):
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    before = EXAMPLES.read_bytes()
    result = run("check", f"{EXAMPLES}:buggy_mlp", "--html", str(html), "--markdown", str(md), "-q")
    assert result.exit_code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.md"]
    page = html.read_text(encoding="utf-8")
    assert "<svg" in page
    footer = page[page.index("<footer>"):]  # how to reproduce it: version, seed, command
    assert "seed 0" in footer and "gradcheck check" in footer and "buggy_mlp --scheme central" in footer
    assert "**WRONG**" in md.read_text(encoding="utf-8")
    assert EXAMPLES.read_bytes() == before


def test_markdown_to_stdout():
    result = run("check", f"{EXAMPLES}:buggy_mlp", "--markdown", "-")
    assert result.exit_code == 1 and result.stdout.startswith("**❌ FAILED**")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--eps", "0"], ["--eps", "positive"]),
        (["--eps", "-1e-3"], ["--eps"]),
        (["--eps", "nan"], ["--eps"]),
        (["--scheme", "sideways"], ["--scheme", "'central'"]),
        (["--coords", "some"], ["--coords"]),
        (["--workers", "0"], ["--workers"]),
        (["--html", "/no/such/dir/r.html"], ["--html", "does not exist"]),
    ],
)
def test_bad_options_exit_2_before_running_the_target(tmp_path, args, words):
    marker = tmp_path / "ran"
    target = tmp_path / "t.py"
    target.write_text(f"open({str(marker)!r}, 'w').close()\ndef t():\n    return None\n")
    _one_line_error(run("check", f"{target}:t", *args), *words)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("source", "spec", "words"),
    [
        ("def t(:\n", "t", ["syntax error", "line 1"]),
        ("import numpy as np\ndef t():\n    return 1, 2\n", "t", ["2 items", "(loss, params, grads)"]),
        ("def t():\n    raise RuntimeError('no data file')\n", "t", ["RuntimeError", "no data file"]),
        ("raise ImportError('torch missing')\n", "t", ["ImportError", "torch missing"]),
        ("def t():\n    pass\n", "other", ["no function 'other'", "t"]),
        ("x = 3\n", "x", ["int, not a function"]),
        ("import sys\nsys.exit(0)\n", "t", ["sys.exit(0)"]),
        ("import sys\ndef t():\n    sys.exit(0)\n", "t", ["sys.exit(0)"]),
        (
            "import numpy as np\ndef t():\n"
            "    def loss(w):\n        raise ValueError('shapes (3,) and (2,)')\n"
            "    return loss, np.ones(2), np.ones(2)\n",
            "t",
            ["ValueError", "shapes"],
        ),
        (
            "import numpy as np\ndef t():\n    return (lambda w: float(w.sum())), np.ones(2), np.ones(3)\n",
            "t",
            ["shape"],
        ),
    ],
)
def test_bad_targets_exit_2_with_one_line(tmp_path, source, spec, words):
    target = tmp_path / "t.py"
    target.write_text(source)
    before = sorted(p.name for p in tmp_path.iterdir())
    _one_line_error(run("check", f"{target}:{spec}"), *words)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == before
    assert target.read_text() == source


def test_missing_file_and_missing_module_and_bad_spec():
    _one_line_error(run("check", "/no/such/file.py:t"), "does not exist")
    _one_line_error(run("check", "no_such_module_xyz:t"), "no module named")
    _one_line_error(run("check", "just-a-name"), "path/to/file.py:function")


def test_stochastic_loss_exits_2():
    _one_line_error(run("check", f"{EXAMPLES}:dropout_mlp"), "stochastic")


def test_debug_shows_the_traceback(tmp_path):
    target = tmp_path / "t.py"
    target.write_text("def t():\n    raise RuntimeError('boom')\n")
    result = run("check", f"{target}:t", "--debug")
    assert result.exit_code == 2 and "Traceback" in result.stderr and "boom" in result.stderr


def test_workers_coords_and_budget_pass_through():
    assert run("check", f"{EXAMPLES}:buggy_mlp", "--workers", "2", "-q").exit_code == 1
    assert run("check", f"{EXAMPLES}:mlp", "--workers", "2", "-q").exit_code == 0
    result = run("check", f"{EXAMPLES}:mlp", "--coords", "10", "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and sum(c["checked"] for c in data["components"].values()) < 37


def test_options_check_does_not_take_are_refused(monkeypatch):
    import gradcheck.checks._check

    def old_check(loss, params, grads, *, eps=None, scheme="central", seed=0):
        raise AssertionError("must not be called")

    monkeypatch.setattr(gradcheck.checks._check, "check", old_check)
    _one_line_error(run("check", f"{EXAMPLES}:mlp", "--workers", "2"), "--workers",
                    "not supported yet")
    _one_line_error(run("check", f"{EXAMPLES}:mlp", "--coords", "all"), "--coords")


@pytest.mark.parametrize("columns", ["80", "100"])
def test_output_fits_narrow_terminals_without_cutting_columns(columns):
    result = run("check", f"{EXAMPLES}:buggy_mlp", env={"COLUMNS": columns})
    lines = result.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= int(columns)
    assert "…" not in result.stdout
    header = next(line for line in lines if line.startswith("┃"))
    for word in ("parameter", "shape", "checked", "rel. error", "max |n-g|", "worst at"):
        assert word in header
    assert any("1.998" in line for line in lines)  # numbers are not folded across lines


def test_wide_terminals_get_the_full_table():
    result = run("check", f"{EXAMPLES}:buggy_mlp", env={"COLUMNS": "150"})
    assert "tolerance" in result.stdout and "analytic" in result.stdout


def test_no_colour_outside_a_terminal_or_with_no_color(tmp_path):
    plain = run("check", f"{EXAMPLES}:buggy_mlp", env={"NO_COLOR": "1", "FORCE_COLOR": None})
    assert "\x1b[" not in plain.stdout
    piped = subprocess.run(
        [sys.executable, "-m", "gradcheck", "check", f"{EXAMPLES}:buggy_mlp"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"}, check=False,
    )
    assert piped.returncode == 1 and "\x1b[" not in piped.stdout and "WRONG" in piped.stdout


_COLOUR = re.compile(r"\x1b\[[0-9;]*?(?:3[0-8]|9[0-7])[;m]")  # SGR foreground colours


def test_colour_on_a_terminal_unless_no_color():
    env = {"FORCE_COLOR": "1", "NO_COLOR": None, "TTY_COMPATIBLE": None}
    assert _COLOUR.search(run("check", f"{EXAMPLES}:buggy_mlp", env=env).stdout)
    env["NO_COLOR"] = "1"
    assert not _COLOUR.search(run("check", f"{EXAMPLES}:buggy_mlp", env=env).stdout)


def test_approx_prints_the_textbook_table():
    result = run("approx", "x**3", "--at", "1", "--eps", "0.01")
    assert result.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "3.0301" in rows["one-sided"] and "0.0301" in rows["one-sided"]
    assert "3.0001" in rows["two-sided"] and "0.0001" in rows["two-sided"]
    assert rows["exact"].split("│")[3].strip() == "3"
    assert "3*x**2" in result.stdout


def test_approx_json():
    data = json.loads(run("approx", "sin(x)", "--at", "0", "--json").stdout)
    assert data["exact"] == 1.0 and [r["method"] for r in data["rows"]] == ["one-sided", "two-sided"]


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('touch {p}')", "open('{p}', 'w').close()", "(lambda: 1)()",
     "x.real", "[1 for _ in ()]"],
)
def test_approx_rejects_code_with_exit_2_and_runs_nothing(tmp_path, expression):
    marker = tmp_path / "pwned"
    _one_line_error(run("approx", expression.format(p=marker)))
    assert not marker.exists()


def test_approx_bad_eps():
    _one_line_error(run("approx", "x**3", "--eps", "0"), "eps")


def test_sweep_writes_png_and_svg_and_prints_the_best_steps(tmp_path):
    prefix = tmp_path / "sweep"
    result = run("sweep", f"{EXAMPLES}:cubic", "--out", str(prefix), "--points", "12")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.png", "sweep.svg"]
    for scheme in ("central", "forward", "richardson"):
        assert scheme in result.stdout


def test_sweep_json_best_steps_are_ordered(tmp_path):
    result = run("sweep", f"{EXAMPLES}:mlp", "--out", str(tmp_path / "s"), "--json",
                 "--points", "23")
    best = json.loads(result.stdout)["best"]
    assert best["forward"]["eps"] < best["central"]["eps"] < best["richardson"]["eps"]


def test_sweep_bad_input_exits_2(tmp_path):
    _one_line_error(run("sweep", f"{EXAMPLES}:cubic", "--schemes", "central,upwind",
                        "--out", str(tmp_path / "s")), "upwind")
    _one_line_error(run("sweep", f"{EXAMPLES}:cubic", "--min", "0", "--out", str(tmp_path / "s")),
                    "--min")
    _one_line_error(run("sweep", f"{EXAMPLES}:cubic", "--out", str(tmp_path / "no" / "s")),
                    "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_from_the_parser_exit_2():
    assert run("check").exit_code == 2
    assert run("check", f"{EXAMPLES}:mlp", "--no-such-flag").exit_code == 2


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "gradcheck", "approx", "x**3"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "3.0301" in out.stdout


def test_sweep_of_a_wrong_gradient_says_no_step_fixes_it(tmp_path):
    result = run("sweep", f"{EXAMPLES}:buggy_mlp", "--out", str(tmp_path / "s"), "--points", "8",
                 "--html", str(tmp_path / "r.html"))
    assert result.exit_code == 0
    assert "analytic gradient is wrong" in " ".join(result.stdout.split())
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Relative error against the step" in page and "WRONG" in page


def test_readme_example_with_a_localised_bug():
    data = json.loads(run("check", f"{EXAMPLES}:buggy_unit_mlp", "--json").stdout)
    assert data["suspects"] == ["W1", "b1"]
    assert data["components"]["W1"]["worst_index"][1] == 3  # the hidden unit with the bug


def test_ctrl_c_prints_the_partial_report_and_exits_130(tmp_path):
    target = tmp_path / "t.py"
    target.write_text(
        "import numpy as np\ndef t():\n    calls = [0]\n    def loss(p):\n"
        "        calls[0] += 1\n        if calls[0] > 30:\n            raise KeyboardInterrupt\n"
        "        return float(np.sum(p ** 2))\n    return loss, np.ones(40), 2 * np.ones(40)\n"
    )
    result = run("check", f"{target}:t", "--json")
    assert result.exit_code == 130
    assert json.loads(result.stdout)["interrupted"] is True


def _main(*args: str) -> subprocess.CompletedProcess:
    """The real entry point (``main``, as the ``gradcheck`` script runs it), in this process."""
    import contextlib
    import io

    from gradcheck.cli._app import main

    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as stop:
            code = stop.code
    return subprocess.CompletedProcess(args, code or 0, out.getvalue(), err.getvalue())


def test_version_help_and_completion():
    out = _main("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"gradcheck {gradcheck.__version__}"
    for flag in ("-h", "--help"):
        helped = _main("check", flag)
        assert helped.returncode == 0 and "--eps" in helped.stdout
    top = _main("-h").stdout
    assert "--install-completion" in top and "--show-completion" in top
    for shell, says in (("bash", "_GRADCHECK_COMPLETE=complete_bash"),
                        ("zsh", "compdef"), ("fish", "complete_fish")):
        completion = _main("--show-completion", shell)  # the shell named is the one used
        assert completion.returncode == 0 and says in completion.stdout, (shell, completion)


def test_completion_without_a_shell_named_does_not_depend_on_the_parent_process(monkeypatch):
    """Under make or CI no shell is among the parents: $SHELL decides, else a one-line error
    (it was "Shell  not supported." from typer's detection, and only in a full run)."""
    from gradcheck.cli import _completion

    monkeypatch.setattr(_completion, "_running_shell", lambda: None)
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    assert "compdef" in _main("--show-completion").stdout
    monkeypatch.setenv("SHELL", "/bin/sh")  # not a shell completion supports
    out = _main("--show-completion")
    assert out.returncode == 2 and "--show-completion bash" in out.stderr
    assert "Shell  not supported" not in out.stderr + out.stdout
    monkeypatch.delenv("SHELL")
    out = _main("--show-completion", "tcsh")
    assert out.returncode == 2 and "'--show-completion'" in out.stderr and "bash, zsh" in out.stderr


def test_help_shows_choices_and_no_type_metavars():
    pages = {name: _main(*name.split(), "-h").stdout for name in ("check", "approx", "sweep", "demo")}
    assert "--scheme [central|forward|backward|richardson|complex]" in pages["check"]
    assert "Usage: gradcheck check [OPTIONS] TARGET" in pages["check"]
    assert "--bug [act-deriv-of-a|" in pages["demo"]
    for page in pages.values():
        assert not re.search(r"<(bool|str|int|float)>", page), page
    from gradcheck.cli._app import _BUGS
    from gradcheck.nn import Bug

    assert _BUGS.strip("[]").split("|") == [b.value for b in Bug]


def test_an_unknown_option_is_named_as_typed_with_the_closest_one():
    out = _main("check", f"{EXAMPLES}:mlp", "--schemes", "central")
    assert out.returncode == 2
    assert "No such option --schemes; did you mean --scheme?" in out.stderr


@pytest.mark.parametrize(("expression", "says"), [("y**2", "--var y"), ("3", "no variable"),
                                                   ("2 * pi", "no variable")])
def test_approx_refuses_an_expression_without_its_variable(expression, says):
    out = _main("approx", expression)
    assert out.returncode == 2 and says in out.stderr and out.stdout == ""
    assert _main("approx", "y**2", "--var", "y").stdout.startswith("f(y) = y**2")


def test_piped_output_is_120_columns_unless_columns_says_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    piped = subprocess.run([sys.executable, "-m", "gradcheck", "check", f"{EXAMPLES}:buggy_mlp"],
                           capture_output=True, text=True, env=env, check=False)
    lines = piped.stdout.splitlines()
    assert 100 < max(len(line.rstrip()) for line in lines) <= 120
    assert "tolerance" in piped.stdout  # 80 columns would have dropped it


def test_usage_errors_have_the_one_error_style():
    for args, says in ((("check",), "Missing argument"), (("nosuch",), "No such command"),
                       (("demo", "--bug", "nope"), "--bug"),
                       (("check", "x.py:f", "--scheme", "bogus"), "--scheme")):
        out = _main(*args)
        assert out.returncode == 2, args
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gradcheck: error: ") and says in lines[0]
        assert "Traceback" not in out.stderr and "╭" not in out.stderr


def test_a_flat_target_is_read_with_layout_and_order(tmp_path):
    target = tmp_path / "flat.py"
    target.write_text(
        "import numpy as np\n"
        "W = np.arange(1.0, 7.0) / 10\n"
        "def target():\n"
        "    g = 2 * W\n"
        "    g[np.ravel_multi_index((1, 0), (2, 3), order='F')] += 1  # W[1, 0], unrolled as F\n"
        "    return (lambda t: float(t @ t)), W, g\n")
    result = run("check", f"{target}:target", "--layout", "W=2x3", "--order", "F", "--verbose",
                 env={"COLUMNS": "120"})
    assert result.exit_code == 1, result.output
    assert "[1, 0]" in result.stdout and "order='F'" in result.stdout
    _one_line_error(run("check", f"{target}:target", "--layout", "W=2by3"), "NAME=SHAPE")
    _one_line_error(run("check", f"{target}:target", "--order", "F"), "--layout")
    _one_line_error(run("check", f"{target}:target", "--layout", "W=2x3", "--order", "K"),
                    "--order")
