"""The textbook table for one expression: one-sided and two-sided differences against the exact slope.

The expression is parsed with ``ast`` and only a whitelist of node types is accepted (numbers, one
variable, + − × ÷ **, and the math functions in ``FUNCTIONS``); it is then evaluated and
differentiated by walking that tree. Nothing is ever passed to ``eval``, so
``__import__('os').system(...)``, attribute access, lambdas and comprehensions are rejected before
anything runs.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass

from gradcheck._errors import GradCheckError

MAX_LENGTH = 500  # characters: the parser's work stays trivial

# An expression tree: ("num", value) | ("var",) | (op, left, right) | ("neg", a) | ("call", f, a)
Expr = tuple


class ExpressionError(GradCheckError):
    """An expression for ``approx`` is not allowed, or cannot be evaluated at the point."""


def _d_pow_const(u: Expr, c: float) -> Expr:
    return _mul(_num(c), _pow(u, _num(c - 1)))


# name -> (function, derivative of f at u as an expression in u). Rules as data.
FUNCTIONS: dict[str, tuple[Callable[[float], float], Callable[[Expr], Expr]]] = {
    "sin": (math.sin, lambda u: ("call", "cos", u)),
    "cos": (math.cos, lambda u: ("neg", ("call", "sin", u))),
    "tan": (math.tan, lambda u: _div(_num(1), _pow(("call", "cos", u), _num(2)))),
    "exp": (math.exp, lambda u: ("call", "exp", u)),
    "log": (math.log, lambda u: _div(_num(1), u)),
    "sqrt": (math.sqrt, lambda u: _div(_num(0.5), ("call", "sqrt", u))),
    "tanh": (math.tanh, lambda u: _sub(_num(1), _pow(("call", "tanh", u), _num(2)))),
    "sinh": (math.sinh, lambda u: ("call", "cosh", u)),
    "cosh": (math.cosh, lambda u: ("call", "sinh", u)),
    "atan": (math.atan, lambda u: _div(_num(1), _add(_num(1), _pow(u, _num(2))))),
    "sigmoid": (
        lambda v: 1.0 / (1.0 + math.exp(-v)),
        lambda u: _mul(("call", "sigmoid", u), _sub(_num(1), ("call", "sigmoid", u))),
    ),
    "abs": (abs, lambda u: ("call", "sign", u)),
    "sign": (lambda v: float((v > 0) - (v < 0)), lambda u: _num(0)),
}
CONSTANTS = {"pi": math.pi, "e": math.e}
_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
_OPS: dict[str, Callable[[float, float], float]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: _real_pow(a, b),
}


def _real_pow(a: float, b: float) -> float:
    result = a**b
    if isinstance(result, complex):  # (-8.0) ** (1/3) in Python is complex
        raise ValueError(f"{a:g}**{b:g} is not a real number")
    return result
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}


@dataclass(frozen=True)
class ApproxRow:
    """One line of the table: a method, its estimate of f'(x), and its error against the exact."""

    method: str
    formula: str
    estimate: float
    error: float


@dataclass(frozen=True)
class ApproxTable:
    """``approx``'s result: the expression, its derivative, the point, the step and the rows.

    Attributes:
      expression: the expression as written back from its parsed tree.
      derivative: the exact derivative, symbolic.
      at: the point.
      eps: the step.
      exact: the exact derivative's value at ``at``.
      rows: one ``ApproxRow`` per method (one-sided, two-sided): formula, estimate and error.

    >>> table = approx("x**2", at=3.0, eps=0.1)
    >>> table.derivative, table.exact, [round(r.error, 6) for r in table.rows]
    ('2*x', 6.0, [0.1, 0.0])
    """

    expression: str
    derivative: str
    at: float
    eps: float
    exact: float
    rows: tuple[ApproxRow, ...]


def parse(text: str) -> tuple[Expr, str]:
    """Parses ``text`` into an expression tree and the name of its variable (``x`` if none).

    Args:
      text: arithmetic in one variable, e.g. ``"x**3"`` or ``"sin(t) * exp(-t)"``.

    Returns:
      ``(tree, variable)``; raises ``ExpressionError`` on anything outside the whitelist.

    >>> parse("x**3")
    (('pow', ('var',), ('num', 3.0)), 'x')
    >>> parse("__import__('os').system('echo hi')")
    Traceback (most recent call last):
    ...
    gradcheck.cli._approx.ExpressionError: "__import__('os').system" is not allowed: call functions by their bare name, e.g. sin(x).
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression has {len(text)} characters; at most {MAX_LENGTH}.")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"{text!r} is not a valid expression: {error.msg}.") from None
    names: set[str] = set()
    expr = _convert(tree.body, names)
    if len(names) > 1:
        raise ExpressionError(
            f"the expression has several variables ({', '.join(sorted(names))}); use one."
        )
    return expr, (names.pop() if names else "x")


def variables(text: str) -> set[str]:
    """The variable names in ``text`` (functions and the constants ``pi``, ``e`` are not).

    Args:
      text: an expression that ``parse`` accepts.

    Returns:
      The set of names (empty for a constant); raises ``ExpressionError`` as ``parse`` does.

    >>> variables("sin(t) * exp(-t)"), variables("2 * pi")
    ({'t'}, set())
    """
    parse(text)  # the errors (syntax, length, what is not allowed), worded once
    names: set[str] = set()
    _convert(ast.parse(text.strip(), mode="eval").body, names)
    return names


def require_variable(text: str, variable: str = "x") -> None:
    """Refuses an expression that is not a function of ``variable``: one in another variable,
    or a constant (the table would be that of a function other than f(x)).

    Args:
      text: the expression.
      variable: the name its variable must have.

    Returns:
      None; raises ``ExpressionError`` that says what to write instead.

    >>> require_variable("x**2")
    >>> require_variable("y**2")
    Traceback (most recent call last):
    ...
    gradcheck.cli._approx.ExpressionError: 'y**2' is a function of y, not x: write it in x (e.g. 'x**2') or name its variable with --var y.
    """
    found = variables(text)
    if not found:
        raise ExpressionError(f"{text!r} has no variable: write f as a function of {variable}, "
                              f"e.g. '{variable}**3'.")
    if found != {variable}:
        (other,) = found  # parse refuses several variables
        raise ExpressionError(f"{text!r} is a function of {other}, not {variable}: write it in "
                              f"{variable} (e.g. '{variable}**2') or name its variable with "
                              f"--var {other}.")


def evaluate(expr: Expr, x: float) -> float:
    """The value of the tree at ``x`` (floats only).

    >>> evaluate(parse("x**3 + 1")[0], 2.0)
    9.0
    """
    kind = expr[0]
    if kind == "num":
        return expr[1]
    if kind == "var":
        return x
    if kind == "neg":
        return -evaluate(expr[1], x)
    if kind == "call":
        return FUNCTIONS[expr[1]][0](evaluate(expr[2], x))
    return _OPS[kind](evaluate(expr[1], x), evaluate(expr[2], x))


def derivative(expr: Expr) -> Expr:
    """The exact derivative d/dx of the tree (sum, product, quotient, power and chain rules).

    >>> show(derivative(parse("x**3")[0]))
    '3*x**2'
    """
    kind = expr[0]
    if kind == "num":
        return _num(0)
    if kind == "var":
        return _num(1)
    if kind == "neg":
        return _neg(derivative(expr[1]))
    if kind == "call":
        return _mul(FUNCTIONS[expr[1]][1](expr[2]), derivative(expr[2]))
    u, v = expr[1], expr[2]
    du, dv = derivative(u), derivative(v)
    if kind in ("add", "sub"):
        return (_add if kind == "add" else _sub)(du, dv)
    if kind == "mul":
        return _add(_mul(du, v), _mul(u, dv))
    if kind == "div":
        return _div(_sub(_mul(du, v), _mul(u, dv)), _pow(v, _num(2)))
    if _constant(v):  # d u^c = c u^(c-1) du
        return _mul(_d_pow_const(u, evaluate(v, 0.0)), du)
    # d u^v = u^v (dv log u + v du / u)
    return _mul(expr, _add(_mul(dv, ("call", "log", u)), _div(_mul(v, du), u)))


def show(expr: Expr, variable: str = "x") -> str:
    """The tree as Python-style text.

    >>> show(parse("2 * -(x + 1) / x**2")[0])
    '2*(-(x + 1))/x**2'
    """
    kind = expr[0]
    if kind == "num":
        return f"{expr[1]:g}"
    if kind == "var":
        return variable
    if kind == "neg":
        return "-" + _wrap(expr[1], variable, 2)
    if kind == "call":
        return f"{expr[1]}({show(expr[2], variable)})"
    level = _LEVEL[kind]
    left = _wrap(expr[1], variable, level + (kind == "pow"))
    right = _wrap(expr[2], variable, level + (kind != "pow" and kind != "add"))
    sep = _SYMBOLS[kind] if kind in ("mul", "div", "pow") else f" {_SYMBOLS[kind]} "
    return f"{left}{sep}{right}"


def approx(text: str, at: float = 1.0, eps: float = 0.01) -> ApproxTable:
    """The textbook table: one-sided and two-sided differences of ``text`` at ``at`` vs the exact.

    Args:
      text: the expression, e.g. ``"x**3"`` (see ``parse`` for what is allowed).
      at: the point θ.
      eps: the step ε (positive, finite).

    Returns:
      An ``ApproxTable`` with a row per method (estimate and absolute error vs the exact slope).

    >>> table = approx("x**3", at=1.0, eps=0.01)
    >>> [(r.method, round(r.estimate, 6), round(r.error, 6)) for r in table.rows]
    [('one-sided', 3.0301, 0.0301), ('two-sided', 3.0001, 0.0001)]
    >>> table.exact, table.derivative
    (3.0, '3*x**2')
    """
    if not (math.isfinite(eps) and eps > 0):
        raise ExpressionError(f"eps={eps!r} must be a positive, finite step such as 0.01.")
    if not math.isfinite(at):
        raise ExpressionError(f"at={at!r} must be a finite number.")
    expr, variable = parse(text)
    try:  # constants fold while differentiating: 9**9**9**9 overflows, 0**-1 divides by zero
        d_expr = derivative(expr)
    except (ValueError, ZeroDivisionError, OverflowError) as error:
        raise ExpressionError(
            f"{text} has a constant part that cannot be computed ({_why(error)}); simplify it "
            "or write the constant as a number."
        ) from None
    try:
        f = lambda v: evaluate(expr, v)  # noqa: E731
        exact = evaluate(d_expr, at)
        one = (f(at + eps) - f(at)) / eps
        two = (f(at + eps) - f(at - eps)) / (2 * eps)
    except (ValueError, ZeroDivisionError, OverflowError) as error:
        raise ExpressionError(
            f"{text} cannot be evaluated near {variable} = {at:g} with eps = {eps:g} "
            f"({_why(error)}). Choose another point or a smaller eps."
        ) from None
    if not all(math.isfinite(v) for v in (exact, one, two)):
        raise ExpressionError(
            f"{text} is not finite near {variable} = {at:g} with eps = {eps:g} (f'(x) = {exact}, "
            f"differences {one}, {two}): overflow or a singularity. Choose another point or a "
            "smaller eps."
        )
    rows = (
        ApproxRow("one-sided", "(f(θ+ε) − f(θ)) / ε", one, abs(one - exact)),
        ApproxRow("two-sided", "(f(θ+ε) − f(θ−ε)) / 2ε", two, abs(two - exact)),
    )
    return ApproxTable(text, show(d_expr, variable), at, eps, exact, rows)


def _why(error: BaseException) -> str:
    """A short reason: "math domain error", "overflow", "division by zero"."""
    if isinstance(error, OverflowError):
        return "overflow: the result exceeds 1.8e308"
    if isinstance(error, ZeroDivisionError):
        return f"division by zero: {error}"
    return str(error)


_LEVEL = {"add": 1, "sub": 1, "mul": 2, "div": 2, "pow": 4}


def _wrap(expr: Expr, variable: str, level: int) -> str:
    text = show(expr, variable)
    inner = _LEVEL.get(expr[0], 5) if expr[0] != "neg" else 1.5
    if expr[0] == "num" and expr[1] < 0:
        inner = 3
    return f"({text})" if inner < level else text


def _convert(node: ast.AST, names: set[str]) -> Expr:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _num(float(node.value))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return _num(CONSTANTS[node.id])
        if node.id in FUNCTIONS:
            raise ExpressionError(f"{node.id} is a function; call it, e.g. {node.id}(x).")
        names.add(node.id)
        return ("var",)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _convert(node.operand, names)
        return _neg(inner) if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _convert(node.left, names), _convert(node.right, names)
        return (_BINARY[type(node.op)], left, right)
    if isinstance(node, ast.Call):
        return _convert_call(node, names)
    raise ExpressionError(
        f"{ast.unparse(node)!r} is not allowed: only numbers, one variable, + - * / ** and the "
        f"functions {', '.join(sorted(FUNCTIONS))} ({type(node).__name__} rejected)."
    )


def _convert_call(node: ast.Call, names: set[str]) -> Expr:
    func = node.func
    if not isinstance(func, ast.Name):
        raise ExpressionError(
            f"{ast.unparse(func)!r} is not allowed: call functions by their bare name, e.g. sin(x)."
        )
    if func.id not in FUNCTIONS:
        raise ExpressionError(
            f"{func.id} is not an allowed function. Allowed: {', '.join(sorted(FUNCTIONS))}."
        )
    if len(node.args) != 1 or node.keywords:
        raise ExpressionError(f"{func.id}() takes exactly one argument.")
    return ("call", func.id, _convert(node.args[0], names))


# Constructors that fold constants and drop 0 and 1, so that derivatives read like textbook ones.
def _num(v: float) -> Expr:
    return ("num", float(v))


def _constant(e: Expr) -> bool:
    return e[0] == "num" or (e[0] != "var" and all(_constant(a) for a in e[1:] if isinstance(a, tuple)))


def _is(e: Expr, v: float) -> bool:
    return e[0] == "num" and e[1] == v


def _neg(a: Expr) -> Expr:
    if a[0] == "num":
        return _num(-a[1])
    if a[0] == "mul" and a[1][0] == "num":
        return _mul(_num(-a[1][1]), a[2])
    return a[1] if a[0] == "neg" else ("neg", a)


def _add(a: Expr, b: Expr) -> Expr:
    if a[0] == "num" and b[0] == "num":
        return _num(a[1] + b[1])
    return b if _is(a, 0) else a if _is(b, 0) else ("add", a, b)


def _sub(a: Expr, b: Expr) -> Expr:
    if a[0] == "num" and b[0] == "num":
        return _num(a[1] - b[1])
    return _neg(b) if _is(a, 0) else a if _is(b, 0) else ("sub", a, b)


def _mul(a: Expr, b: Expr) -> Expr:
    if a[0] == "num" and b[0] == "num":
        return _num(a[1] * b[1])
    if _is(a, 0) or _is(b, 0):
        return _num(0)
    if b[0] == "num" and a[0] != "num":
        a, b = b, a  # constants first: 3*x**2
    if _is(a, 1):
        return b
    if a[0] == "num" and b[0] == "mul" and b[1][0] == "num":
        return _mul(_num(a[1] * b[1][1]), b[2])
    return _neg(b) if _is(a, -1) else ("mul", a, b)


def _div(a: Expr, b: Expr) -> Expr:
    if _is(a, 0):
        return _num(0)
    return a if _is(b, 1) else ("div", a, b)


def _pow(a: Expr, b: Expr) -> Expr:
    if _is(b, 0):
        return _num(1)
    return a if _is(b, 1) else ("pow", a, b)
