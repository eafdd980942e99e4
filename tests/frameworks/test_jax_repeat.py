"""A repeated JAX check's overhead cuts give what the work they skip would have given."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import gradcheck.frameworks.jax as gj  # noqa: E402
from gradcheck.frameworks import _jit  # noqa: E402
from gradcheck.frameworks._jax_problem import _Problem  # noqa: E402
from gradcheck.frameworks._jax_stacks import CHUNK, _AtTheta, merged_program  # noqa: E402

FUNCTIONS = {
    "sin": lambda x: jnp.sum(jnp.sin(x)),
    "softmax": lambda x: jnp.sum(jax.nn.softmax(x) * jnp.arange(4.0)),
    "matmul": lambda x: jnp.sum((x @ x.T) ** 2),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_probe_answer_is_what_a_second_call_of_the_program_gives(name: str) -> None:
    """The batched probe's J of θ, taken from the gradient's call at θ, equals bit for bit a
    call of the same program on the same rows (which the probe no longer makes)."""
    f = FUNCTIONS[name]
    x = np.random.default_rng(1).uniform(-1, 1, (3, 4))
    with jax.enable_x64(True):
        merged = merged_program(lambda v: f(v[0]), [x], [np.float64], "auto")
        assert merged is not None
        rows = np.repeat(x.reshape(1, -1), CHUNK, axis=0)
        at = _AtTheta(merged)
        value, _ = at.gradient(rows)
        answered = at.probe(lambda thetas: pytest.fail("the program ran again"))(rows[:1])
        again = np.asarray(merged(rows)[0])[:1]
    assert answered.dtype == np.float64
    np.testing.assert_array_equal(answered, again)
    assert answered[0] == float(value)


def test_a_checked_leaf_is_not_cast_before_it_is_replaced() -> None:
    """``_Problem.call`` casts the leaves it keeps (the unchecked ones), never a checked leaf
    or a checked argument, whose values replace them."""
    x, y = np.ones((2, 3)), np.full(3, 2.0)
    problem = _Problem.build(lambda p, q: jnp.sum(p["w"] * q) + p["n"], ({"w": x, "n": 1}, y),
                             0, 0)
    seen: list[object] = []

    def cast(leaf: object) -> object:
        seen.append(leaf)
        return leaf

    out = problem.call([jnp.full((2, 3), 3.0)], cast)
    assert float(out) == 3.0 * 2.0 * 6 + 1
    assert not any(s is x for s in seen)  # the checked leaf
    assert any(s is y for s in seen)  # the other argument
    assert [s for s in seen if type(s) is int] == [1]  # the checked argument's int leaf


def test_repeated_checks_give_the_same_report_and_compile_once() -> None:
    """Checking the same function three times: one program compiled, the same report."""
    x = np.random.default_rng(2).uniform(-2, 2, (3, 4))
    _jit._PROGRAMS.clear()
    texts = [str(gj.check(jnp.tanh, x)) for _ in range(3)]
    assert texts[0] == texts[1] == texts[2]
    assert len(_jit._PROGRAMS) == 1
