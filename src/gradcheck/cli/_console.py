"""The console every command prints to: its width and colour, as ``print(report)`` has them."""

from __future__ import annotations

import os
import sys
from typing import Any


def width() -> int | None:
    """COLUMNS if set; else the terminal's width (None: rich asks the terminal); piped, 120
    columns, as ``print(report)`` (rich's own default, 80, is too narrow for the table).

    >>> os.environ.pop("COLUMNS", None) and None
    >>> width() if not sys.stdout.isatty() else 120
    120
    """
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if sys.stdout.isatty() else 120


def console() -> Any:
    """A rich console on stdout: that width; colour only on a terminal and never with NO_COLOR."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=width())
