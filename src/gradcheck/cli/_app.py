"""The ``gradcheck`` command line (thin: parsing and printing; the work is library calls)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from gradcheck._errors import GradCheckError
from gradcheck.cli._guard import Usage, pool_for, user_code

app = typer.Typer(
    add_completion=False,  # ours, in _root: the shell is named or found deterministically
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: `--scheme [central|…]`, flags without a type
    help="Gradient checking that tells you where and why.",
)

SCHEMES = ("central", "forward", "backward", "richardson", "complex")


_BUGS = ("[act-deriv-of-a|missing-l2|missing-1-over-m|sign-db2|transposed-dW1|"
         "stale-activations]")  # gradcheck.nn.Bug; tests/cli/test_cli.py checks that they agree


@app.command()
def demo(
    data: str = typer.Option(None, metavar="FILE",
                             help="Local MNIST .npz or IDX images file (default: sklearn digits)."),
    epochs: int = typer.Option(40, min=0, metavar="N", help="Training epochs."),
    hidden: int = typer.Option(64, min=1, metavar="N", help="Hidden units."),
    seed: int = typer.Option(0, metavar="INT",
                             help="Seed for the split, the weights, dropout and minibatches."),
    bug: str = typer.Option("act-deriv-of-a", metavar=_BUGS, help="Bug to plant in step 5."),
    out: str = typer.Option("gradcheck-demo.png", metavar="FILE", help="Where to save the figure."),
    no_plot: bool = typer.Option(False, "--no-plot", metavar="", help="Skip the figure."),
    as_json: bool = typer.Option(False, "--json", metavar="",
                                 help="Print one JSON object instead of tables."),
) -> None:
    """The notes' recipe on real data: θ³, check, train (≥ 97%), check, plant a bug, figure."""
    import json

    from gradcheck._errors import GradCheckError
    from gradcheck.cli._demo import DemoSettings, run_demo
    from gradcheck.nn import Bug

    if bug not in {b.value for b in Bug}:
        raise typer.BadParameter(f"choose one of: {', '.join(b.value for b in Bug)}.", param_hint="--bug")
    settings = DemoSettings(data, epochs, hidden, seed, bug, not no_plot, out)
    try:
        summary = run_demo(settings, quiet=as_json)
    except (GradCheckError, ImportError) as error:
        raise _fail(error, False) from None
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=float))


# ---- check, approx, sweep: parsing and printing only; each calls a tested library function ----

_SCHEME_HELP = "The finite-difference scheme."


def _fail(error: BaseException, debug: bool) -> typer.Exit:
    """Prints ``error`` as one line on stderr (a traceback too with --debug); exit code 2."""
    if debug:
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    from gradcheck.report._format import clean

    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, Usage | GradCheckError):
        text = f"{type(error).__name__}: {text}"
    typer.echo(f"gradcheck: error: {clean(text)}", err=True)
    return typer.Exit(2)


def _coords(text: str | None) -> Any:
    """"auto", "all", "directional", an int k or a fraction, as ``check`` takes them."""
    if text is None or text in ("auto", "all", "directional"):
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    raise Usage(f"--coords {text!r} must be auto, all, directional, a count or a fraction.")


def _check_options(eps: float | None, scheme: str, seed: int, coords: str | None,
                   budget: int | None, workers: int | None) -> dict[str, Any]:
    """Validates the options before any user code runs; keeps those ``check`` supports."""
    import inspect

    from gradcheck.checks._check import check
    from gradcheck.core._options import validate

    try:
        validate(eps=eps, scheme=scheme, seed=seed)
    except GradCheckError as error:
        raise Usage(f"--{str(error).split('=')[0].split('[')[0]}: {error}") from None
    options: dict[str, Any] = {"eps": eps, "scheme": scheme, "seed": seed}
    accepted = inspect.signature(check).parameters
    wanted = {"coords": _coords(coords), "budget": budget, "executor": workers}
    flag = {"coords": "--coords", "budget": "--budget", "executor": "--workers"}
    for name, value in wanted.items():
        if value is None:
            continue
        if name not in accepted:
            raise Usage(f"{flag[name]} is not supported yet by this version of gradcheck.check.")
        options[name] = value
    if workers is not None and workers < 1:
        raise Usage(f"--workers {workers} must be at least 1.")
    if "on_interrupt" in accepted:
        options["on_interrupt"] = "report"
    return options


def _writable(path: Path | None, flag: str) -> None:
    if path is not None and not path.parent.is_dir():
        raise Usage(f"{flag} {str(path)!r}: folder {str(path.parent)!r} does not exist.")


def _run_check(target: str, options: dict[str, Any], octave: dict[str, Any]) -> Any:
    """Loads the target and runs ``gradcheck.check``; the user's prints go to stderr."""
    from gradcheck.checks._check import check
    from gradcheck.cli._target import call_target, load_target

    if target.endswith(".m"):
        from gradcheck.cli._flat import run_octave

        with user_code():
            return run_octave(target, options, **octave)
    if any(v is not None for v in octave.values()):
        given = ", ".join(f"--{k}" for k, v in octave.items() if v is not None)
        raise Usage(f"{given}: for an Octave/MATLAB .m target only (this target is Python).")
    with user_code():
        loss, params, grads = call_target(load_target(target), target)
        workers = options.pop("executor", None)
        if workers is None or workers == 1:
            return check(loss, params, grads, **options)
        with pool_for(workers, loss) as pool:
            return check(loss, params, grads, executor=pool, **options)


def _command(name: str, target: str, **options: Any) -> str:
    """The command line that reproduces a report, for its HTML footer."""
    import shlex

    words = ["gradcheck", name, target]
    for key, value in options.items():
        if value is not None:
            words += [f"--{key}", str(value)]
    return shlex.join(words)


def _console() -> Any:
    from gradcheck.cli._console import console

    return console()


def _print_report(report: Any, verbose: bool = False) -> None:
    # The report's renderable fits itself to the width (COLUMNS): it drops whole columns rather
    # than fold a number. Short by default; --verbose adds every finding in full and every note.
    from gradcheck.report._view import renderable

    _console().print(renderable(report, verbose=verbose))


@app.command("check")
def check_command(
    target: str = typer.Argument(..., metavar="TARGET",
                                 help="path/to/file.py:function or module.path:function; the "
                                 "function takes no arguments and returns (loss, params, grads). "
                                 "Or an Octave/MATLAB cost.m returning [J grad] (with --data, "
                                 "--params, --args)."),
    eps: float = typer.Option(None, "--eps", metavar="FLOAT",
                              help="Step (default: chosen per parameter)."),
    scheme: str = typer.Option("central", "--scheme", metavar=f"[{'|'.join(SCHEMES)}]",
                               help=_SCHEME_HELP),
    coords: str = typer.Option(None, "--coords", metavar="[auto|all|directional|N|FRACTION]",
                               help="Which coordinates to check (default: auto)."),
    budget: int = typer.Option(None, "--budget", metavar="N",
                               help="Loss calls that coords=auto may spend."),
    seed: int = typer.Option(0, "--seed", metavar="INT", help="Seed of gradcheck's own generator."),
    workers: int = typer.Option(None, "--workers", metavar="N", help="Evaluate the loss in N "
                                "processes (threads if the loss cannot be pickled)."),
    as_json: bool = typer.Option(False, "--json", metavar="",
                                 help="Print only the JSON report on stdout."),
    html: str = typer.Option(None, "--html", metavar="FILE",
                             help="Write a self-contained HTML report here."),
    markdown: str = typer.Option(None, "--markdown", metavar="FILE",
                                 help="Write a Markdown report here ('-': stdout)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="",
                               help="Print nothing; the exit code tells."),
    verbose: bool = typer.Option(False, "--verbose", "-v", metavar="",
                                 help="Print every finding in full and every note (steps, "
                                 "budgets, kinks), not just the short report."),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks of errors."),
    data: str = typer.Option(None, "--data", metavar="FILE.mat",
                             help=".m target: the .mat file holding its data."),
    params: str = typer.Option(None, "--params", metavar="NAMES",
                               help=".m target: the parameter matrices in --data, in nn_params "
                               "order (unrolled column-major), e.g. Theta1,Theta2."),
    args: str = typer.Option(None, "--args", metavar="NAMES",
                             help=".m target: its other arguments in order: variables of --data "
                             "or numbers, e.g. input_layer_size,X,y,3."),
    layout: str = typer.Option(None, "--layout", metavar="NAME=SHAPE,...",
                               help="Read a flat θ as named tensors, in θ's order, e.g. "
                               "W1=784x300,b1=300 (see --order)."),
    order: str = typer.Option(None, "--order", metavar="[C|F]",
                              help="C: θ unrolled row-major (NumPy, the default for .py targets); "
                              "F: column-major (Octave's Theta(:), the default for .m targets)."),
) -> None:
    """Checks a target's gradients. Exit code 0 passed, 1 wrong gradient, 2 usage or input error."""
    html_path = None if html is None else Path(html)
    md_path = None if markdown in (None, "-") else Path(markdown)
    try:
        options = _check_options(eps, scheme, seed, coords, budget, workers)
        from gradcheck.cli._flat import layout_option

        options.update(layout_option(layout, order, target))
        _writable(html_path, "--html")
        _writable(md_path, "--markdown")
        report = _run_check(target, options, {"data": data, "params": params, "args": args})
        if html_path is not None:
            html_path.write_text(report.to_html(title=f"gradcheck {target}", seed=seed,
                                                command=_command("check", target, eps=eps,
                                                                 scheme=scheme, seed=seed,
                                                                 coords=coords)),
                                 encoding="utf-8")
        if md_path is not None:
            md_path.write_text(report.to_markdown() + "\n", encoding="utf-8")
    except Exception as error:
        raise _fail(error, debug) from None
    if as_json:
        typer.echo(report.to_json())
    elif markdown == "-":
        typer.echo(report.to_markdown())
    elif not quiet:
        _print_report(report, verbose)
    if report.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(0 if report.passed else 1)


@app.command("approx")
def approx_command(
    expression: str = typer.Argument(..., metavar="EXPRESSION",
                                     help="f(x), e.g. \"x**3\" or \"sin(x) * exp(-x)\"."),
    at: float = typer.Option(1.0, "--at", metavar="FLOAT", help="The point x."),
    eps: float = typer.Option(0.01, "--eps", metavar="FLOAT", help="The step ε."),
    var: str = typer.Option("x", "--var", metavar="NAME", help="The variable of f."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the table as JSON."),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks of errors."),
) -> None:
    """The textbook table: one-sided and two-sided differences against the exact derivative."""
    from gradcheck.cli._approx import approx, require_variable

    try:
        require_variable(expression, var)
        table = approx(expression, at=at, eps=eps)
    except Exception as error:
        raise _fail(error, debug) from None
    if as_json:
        import dataclasses
        import json

        typer.echo(json.dumps(dataclasses.asdict(table), indent=2))
        return
    from rich.table import Table

    out = Table(title=f"f({var}) = {table.expression},  f'({var}) = {table.derivative},  "
                f"{var} = {table.at:g},  ε = {table.eps:g}", title_justify="left")
    for header in ("method", "formula", "estimate", "error"):
        out.add_column(header, justify="left" if header in ("method", "formula") else "right",
                       overflow="fold")
    for row in table.rows:
        out.add_row(row.method, row.formula, f"{row.estimate:.6g}", f"{row.error:.3g}")
    out.add_row("exact", f"f'({var}), symbolic", f"{table.exact:.6g}", "0")
    _console().print(out)


@app.command("sweep")
def sweep_command(
    target: str = typer.Argument(..., metavar="TARGET", help="path/to/file.py:function "
                                 "returning (loss, params, grads)."),
    out: str = typer.Option("sweep", "--out", metavar="PREFIX",
                            help="Output prefix: writes PREFIX.png and PREFIX.svg."),
    schemes: str = typer.Option("central,forward,richardson", "--schemes",
                                metavar=f"[{'|'.join(SCHEMES)}],...",
                                help="Schemes to compare, comma-separated."),
    eps_min: float = typer.Option(1e-12, "--min", metavar="FLOAT", help="Smallest step."),
    eps_max: float = typer.Option(1e-1, "--max", metavar="FLOAT", help="Largest step."),
    points: int = typer.Option(45, "--points", metavar="N", help="Steps, log-spaced."),
    seed: int = typer.Option(0, "--seed", metavar="INT", help="Seed of gradcheck's own generator."),
    as_json: bool = typer.Option(False, "--json", metavar="",
                                 help="Print only JSON (best ε and the curves)."),
    html: str = typer.Option(None, "--html", metavar="FILE", help="Also check the target and "
                             "write the HTML report with this plot inlined."),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks of errors."),
) -> None:
    """Relative error vs ε for several schemes, on a log-log plot (PNG and SVG); best ε per scheme."""
    import numpy as np

    from gradcheck.checks._sweep import sweep
    from gradcheck.cli._target import call_target, load_target
    from gradcheck.report._sweep import save

    try:
        names = [s.strip() for s in schemes.split(",") if s.strip()]
        for name in names:
            _check_options(None, name, seed, None, None, None)
        if not (0 < eps_min < eps_max and np.isfinite(eps_max)) or points < 2:
            raise Usage(f"--min {eps_min:g} / --max {eps_max:g} / --points {points} must satisfy "
                         "0 < min < max (finite) and points ≥ 2.")
        _writable(Path(out + ".png"), "--out")
        _writable(None if html is None else Path(html), "--html")
        with user_code():
            loss, params, grads = call_target(load_target(target), target)
            grid = np.logspace(np.log10(eps_min), np.log10(eps_max), points)
            result = sweep(loss, params, grads, eps=grid, schemes=names, seed=seed)
            paths = save(result, out, title=f"gradcheck sweep {target}")
            if html is not None:
                from gradcheck.checks._check import check

                report = check(loss, params, grads, seed=seed)
                command = _command("sweep", target, schemes=schemes, seed=seed)
                Path(html).write_text(report.to_html(sweep=result, title=f"gradcheck {target}",
                                                     seed=seed, command=command),
                                      encoding="utf-8")
                paths.append(Path(html))
    except Exception as error:
        raise _fail(error, debug) from None
    best = result.best()
    if as_json:
        import json

        typer.echo(json.dumps({
            "best": {k: {"eps": h, "relative_error": e} for k, (h, e) in best.items()},
            "floor": result.floor(),
            "eps": result.eps.tolist(),
            "errors": {k: [None if not np.isfinite(v) else float(v) for v in errs]
                       for k, errs in result.errors.items()},
            "files": [str(p) for p in paths],
        }, indent=2))
        return
    from rich.table import Table

    table = Table(title="best step per scheme", title_justify="left")
    for header in ("scheme", "best ε", "relative error"):
        table.add_column(header, justify="left" if header == "scheme" else "right")
    for name, (h, e) in best.items():
        table.add_row(name, f"{h:.2e}", f"{e:.2e}")
    console = _console()
    console.print(table)
    if result.floor() is not None:
        console.print(f"No step gets the relative error below {result.floor():.2e}: the analytic "
                      "gradient is wrong, not the step. Run gradcheck check on this target.")
    console.print(f"wrote {', '.join(str(p) for p in paths)}")


def _version(value: bool) -> None:
    if value:
        from gradcheck.report._format import version

        typer.echo(f"gradcheck {version()}")
        raise typer.Exit(0)


_SHELLS = "[bash|zsh|fish|powershell|pwsh]"


def _completion_callback(ctx: Any, param: Any, value: str | None) -> None:
    from gradcheck.cli._completion import callback

    callback(ctx, param, value)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 metavar="", help="Print the version and exit."),
    install_completion: str = typer.Option(
        None, "--install-completion", metavar=_SHELLS,
        callback=_completion_callback, is_eager=True, expose_value=False,
        help="Install completion for this shell (default: the shell you run)."),
    show_completion: str = typer.Option(
        None, "--show-completion", metavar=_SHELLS,
        callback=_completion_callback, is_eager=True, expose_value=False,
        help="Print the completion script for this shell (default: the shell you run)."),
) -> None:
    """Gradient checking that tells you where and why."""


def main(argv: list[str] | None = None) -> None:
    """The ``gradcheck`` entry point: every error, usage errors included, is one line
    ``gradcheck: error: ...`` on stderr with exit code 2."""
    import os

    from gradcheck.cli._click import click_command, shell_omitted, usage_text
    from gradcheck.cli._completion import COMPLETE_VAR

    if COMPLETE_VAR in os.environ:  # the shell asks for completions: typer's protocol
        from typer._completion_classes import completion_init

        completion_init()
    try:
        args = shell_omitted(sys.argv[1:] if argv is None else list(argv))
        code = click_command(app).main(args=args, prog_name="gradcheck", standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except typer.Exit as stop:  # an eager option (--version, completion) or a command's exit
        sys.exit(stop.exit_code)
    except typer.TyperException as error:  # click's usage errors (typer vendors click)
        text = usage_text(error)
        if not text:  # no arguments at all: the help was printed
            sys.exit(0)
        ctx = getattr(error, "ctx", None)
        if ctx is not None:
            text += f" (see '{ctx.command_path} -h')"
        typer.echo(f"gradcheck: error: {text}", err=True)
        sys.exit(int(getattr(error, "exit_code", 2)))
    sys.exit(code if isinstance(code, int) else 0)
