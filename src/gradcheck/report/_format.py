"""Formatting shared by every renderer: numbers, indices, and the layer a name belongs to."""

from __future__ import annotations

import re

# C0/C1 control characters (ESC, CR, BEL, ...), DEL, line/paragraph separators, bidi overrides
# and lone surrogates: none may reach a terminal, a Markdown table or an HTML page raw.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def clean(text: str, *, newlines: bool = False) -> str:
    r"""``text`` with control characters, bidi overrides and lone surrogates written as escapes.

    ``print(report)`` must not clear a terminal (``\x1b[2J``) or overwrite a line (``\r``)
    because a parameter is named so; newlines are kept only where ``newlines`` says so.

    >>> print(clean("W\x1b[2J\r1"))
    W\x1b[2J\r1
    >>> clean("a\nb", newlines=True) == "a\nb"
    True
    """

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if newlines and char == "\n":
            return char
        code = ord(char)
        named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
        return named.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")

    return _UNSAFE.sub(escape, str(text))


def fmt(x: float | None) -> str:
    """Compact number: 3 significant digits, scientific when far from 1."""
    if x is None or x != x:  # nothing to show, or NaN
        return "-"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.4g}"
    return f"{x:.2e}"


def index_text(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(str(i) for i in index)}]" if index else name


def layer_key(name: str) -> tuple[int, ...] | None:
    """Numbers in a name (W12 -> (12,), layers.3.W -> (3,)), for ordering layers."""
    numbers = re.findall(r"\d+", name)
    return tuple(int(n) for n in numbers) if numbers else None


def version() -> str:
    """gradcheck's installed version, or "unknown" when run from a source tree not installed.

    >>> isinstance(version(), str)
    True
    """
    from importlib import metadata

    try:
        return metadata.version("gradcheck")
    except metadata.PackageNotFoundError:
        return "unknown"
