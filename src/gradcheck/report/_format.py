"""Formatting shared by every renderer: numbers, indices, and the layer a name belongs to."""

from __future__ import annotations

import re
from collections.abc import Mapping

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


def layer_keys(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...] | None]:
    """``layer_key`` of every parameter, reading a kind-major layout by its shapes.

    Nielsen's ``(biases, weights)`` gives names ``0.0, 0.1`` (the biases) and ``1.0, 1.1`` (the
    weights): there the *second* number is the layer. It is read that way when every name has
    two numbers, each first number holds the same second numbers, and each first number's
    tensors have one rank (size-1 axes aside: an (n, 1) bias is a vector) that differs between
    them; a per-layer layout ``[[W1, b1], [W2, b2]]`` mixes ranks inside each group.

    >>> layer_keys({"0.0": (3, 1), "0.1": (2, 1), "1.0": (3, 4), "1.1": (2, 3)})
    {'0.0': (0,), '0.1': (1,), '1.0': (0,), '1.1': (1,)}
    >>> layer_keys({"0.0": (3, 4), "0.1": (3,), "1.0": (2, 3), "1.1": (2,)})["1.1"]
    (1, 1)
    """
    keys = {n: layer_key(n) for n in shapes}
    if not shapes or any(k is None or len(k) != 2 for k in keys.values()):
        return keys
    groups: dict[int, list[str]] = {}
    for n, k in keys.items():
        groups.setdefault(k[0], []).append(n)  # type: ignore[index]
    layers = [sorted(keys[n][1] for n in g) for g in groups.values()]  # type: ignore[index]
    ranks = [{sum(1 for d in shapes[n] if d != 1) for n in g} for g in groups.values()]
    if (len(groups) < 2 or len(layers[0]) < 2 or any(x != layers[0] for x in layers)
            or any(len(r) != 1 for r in ranks) or len(set.union(*ranks)) != len(ranks)):
        return keys
    return {n: (k[1],) for n, k in keys.items()}  # type: ignore[index]


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
