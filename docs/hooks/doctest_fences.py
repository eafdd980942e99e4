"""A griffe extension for the API reference: doctest examples in docstrings become ```pycon blocks.

The docstrings carry runnable ``>>>`` examples without an ``Examples:`` header (pytest runs them
with ``--doctest-modules``); without a fence, Markdown would read ``>>>`` as nested block quotes.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    r"""Wraps each run of ``>>>`` lines and their output (up to a blank line) in a pycon fence.

    >>> fence_doctests("Adds.\n\n>>> 1 + 1\n2\n\nDone.").split("\n")
    ['Adds.', '', '```pycon', '>>> 1 + 1', '2', '```', '', 'Done.']
    """
    out: list[str] = []
    inside = False
    for line in text.split("\n"):
        starts = line.lstrip().startswith(">>>")
        if starts and not inside:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            inside = True
        elif inside and not line.strip():
            out.append(f"{indent}```")
            inside = False
        out.append(line)
    if inside:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fences the doctests of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
