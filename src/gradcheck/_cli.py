"""The ``gradcheck`` command line (thin: parsing and printing; the work is library calls)."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Gradient checking that tells you where and why.")


@app.command()
def demo(
    data: str = typer.Option(None, help="Local MNIST .npz or IDX images file (default: sklearn digits)."),
    epochs: int = typer.Option(40, min=0, help="Training epochs."),
    hidden: int = typer.Option(64, min=1, help="Hidden units."),
    seed: int = typer.Option(0, help="Seed for the split, the weights, dropout and minibatches."),
    bug: str = typer.Option("act-deriv-of-a", help="Bug to plant in step 5 (gradcheck.nn.Bug)."),
    out: str = typer.Option("gradcheck-demo.png", help="Where to save the figure."),
    no_plot: bool = typer.Option(False, "--no-plot", help="Skip the figure."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """The notes' recipe on real data: θ³, check, train (≥ 97%), check, plant a bug, figure."""
    import json

    from gradcheck._demo import DemoSettings, run_demo
    from gradcheck._errors import GradCheckError
    from gradcheck.nn import Bug

    if bug not in {b.value for b in Bug}:
        raise typer.BadParameter(f"choose one of: {', '.join(b.value for b in Bug)}.", param_hint="--bug")
    settings = DemoSettings(data, epochs, hidden, seed, bug, not no_plot, out)
    try:
        summary = run_demo(settings, quiet=as_json)
    except GradCheckError as error:
        typer.echo(f"gradcheck demo: {error}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=float))


@app.callback()
def _root() -> None:
    """Gradient checking that tells you where and why."""


def main() -> None:
    app()
