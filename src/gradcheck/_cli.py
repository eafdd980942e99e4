"""The ``gradcheck`` command line (thin: parsing and printing; the work is library calls)."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Gradient checking that tells you where and why.")


@app.command()
def demo() -> None:
    """θ³ from the notes, then a check of a small MLP."""
    from gradcheck._demo import run_demo

    run_demo()


@app.callback()
def _root() -> None:
    """Gradient checking that tells you where and why."""


def main() -> None:
    app()
