"""Beyond first-order reverse mode: the same planted bugs through gradcheck and its peers.

Cases (each correct, and with a planted bug that only one kind of check can see):
  double backward   torch custom Function whose backward detaches x (right value, zero second
                    derivative), or whose own derivative is 1e-4 off (right value);
                    peers: torch.autograd.gradcheck (order 1) and gradgradcheck.
  jvp               torch custom Function whose jvp is 2x² (or 3x²·(1+1e-4)) with a right
                    backward; peer: torch.autograd.gradcheck(check_forward_ad=True).
  JAX bwd           custom_vjp whose bwd stop_gradients x (or is 1e-4 off under differentiation);
                    peer: check_grads(order=2, modes=("rev",)).
  JAX custom_jvp    custom_jvp rule off by a factor; peer: check_grads(order=1, modes=("fwd",)).
  HVP               NumPy logistic regression, H·v with one entry off by 2% (or 1e-4); peer: a
                    central difference of grads along v with np.allclose (rtol=1e-5, atol=1e-8).
  TF custom grad    tf.custom_gradient off by a factor; peer: tf.test.compute_gradient then
                    np.allclose (rtol=1e-6, atol=1e-6, TensorFlow's assertAllClose default).

Run from the repository root:  PYTHONPATH=src python benchmarks/higher.py [--repeat 3]
Prints a Markdown table: verdict (PASS/FAIL) and seconds per tool (median of --repeat runs after
one warm-up), side by side in one run, and the calls of the user's function (a counting
wrapper, last run) where they can be counted: under jax.jit or tf.function a Python-level
counter sees traces, not evaluations, so JAX rows say "—" and TF rows count eager calls+traces.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

ROWS: list[tuple[str, str, str, str, str]] = []


class Counter:
    def __init__(self, fn: Callable) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)


REPEAT = 3


def once(fn: Callable[[], bool]) -> tuple[str, float]:
    start = time.perf_counter()
    try:
        ok = fn()
        verdict = "PASS" if ok else "FAIL"
    except Exception as error:  # a peer that raises on a mismatch
        verdict = f"FAIL ({type(error).__name__})"
    return verdict, time.perf_counter() - start


def row(case: str, tool: str, fn: Callable[[], bool], counter: Counter | None = None) -> None:
    """One warm-up run, then the median of REPEAT runs; calls counted on the last run."""
    once(fn)
    times = []
    for _ in range(REPEAT):
        if counter is not None:
            counter.calls = 0
        verdict, seconds = once(fn)
        times.append(seconds)
    seconds = float(np.median(times))
    calls = str(counter.calls) if counter is not None else "—"
    ROWS.append((case, tool, verdict, f"{seconds:.3f}", calls))
    print(f"{case:38s} {tool:52s} {verdict:22s} {seconds:8.3f}s {calls}", flush=True)


# --- torch ------------------------------------------------------------------------------------


def torch_cases() -> None:
    import torch

    import gradcheck.torch

    torch.set_num_threads(1)

    def make(backward_detach: bool, jvp_factor: float, second: float = 0.0):
        class Cube(torch.autograd.Function):
            @staticmethod
            def forward(x):
                return x**3

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.save_for_backward(inputs[0])
                ctx.save_for_forward(inputs[0])

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                value = g * 3 * (x.detach() if backward_detach else x) ** 2
                # + 0 in value; under create_graph its derivative is second·6xg (a subtle bug)
                return value + second * g * 3 * (x**2 - x.detach() ** 2)

            @staticmethod
            def jvp(ctx, t):
                (x,) = ctx.saved_tensors
                return t * jvp_factor * x**2

        return Cube.apply

    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    cases = {
        "torch: correct Function": make(False, 3.0),
        "torch: backward detaches x (order 2)": make(True, 3.0),
        "torch: d(backward)/dx ×(1+1e-4) (order 2)": make(False, 3.0, 1e-4),
        "torch: jvp 2x² (forward)": make(False, 2.0),
        "torch: jvp 3x²·(1+1e-4) (forward)": make(False, 3.0 * (1 + 1e-4)),
    }
    for case, fn in cases.items():
        f = Counter(fn)
        row(case, "torch.autograd.gradcheck", lambda f=f: torch.autograd.gradcheck(f, (x,)), f)
        row(case, "torch.autograd.gradgradcheck", lambda f=f: torch.autograd.gradgradcheck(f, (x,)), f)
        row(
            case, "torch.autograd.gradcheck(check_forward_ad=True)",
            lambda f=f: torch.autograd.gradcheck(f, (x,), check_forward_ad=True, check_backward_ad=False),
            f,
        )
        row(case, "gradcheck.torch order=2", lambda f=f: gradcheck.torch.check_function(f, x, order=2).passed, f)
        row(case, "gradcheck.torch mode='both'", lambda f=f: gradcheck.torch.check_function(f, x, mode="both").passed, f)


# --- JAX --------------------------------------------------------------------------------------


def jax_cases() -> None:
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    import gradcheck.jax

    jax.config.update("jax_enable_x64", True)

    def vjp_cube(stop: bool, second: float = 0.0):
        @jax.custom_vjp
        def cube(x):
            return x**3

        def bwd(x, g):
            value = g * 3 * (jax.lax.stop_gradient(x) if stop else x) ** 2
            return (value + second * g * 3 * (x**2 - jax.lax.stop_gradient(x) ** 2),)

        cube.defvjp(lambda x: (x**3, x), bwd)
        return cube

    def jvp_sin(factor: float):
        @jax.custom_jvp
        def f(x):
            return jnp.sin(x)

        f.defjvp(lambda p, t: (jnp.sin(p[0]), factor * jnp.cos(p[0]) * t[0]))
        return f

    x = np.random.default_rng(0).standard_normal((4, 5))
    for case, fn in {
        "JAX: correct custom_vjp": vjp_cube(False),
        "JAX: bwd stop_gradient (order 2)": vjp_cube(True),
        "JAX: d(bwd)/dx ×(1+1e-4) (order 2)": vjp_cube(False, 1e-4),
    }.items():
        row(case, "check_grads(order=2, modes=('rev',))",
            lambda fn=fn: check_grads(fn, (x,), order=2, modes=("rev",)) is None)
        row(case, "gradcheck.jax order=2", lambda fn=fn: gradcheck.jax.check(fn, x, order=2).passed)
    for case, fn in {
        "JAX: correct custom_jvp": jvp_sin(1.0),
        "JAX: custom_jvp ×1.01 (forward)": jvp_sin(1.01),
        "JAX: custom_jvp ×(1+1e-4) (forward)": jvp_sin(1 + 1e-4),
    }.items():
        row(case, "check_grads(order=1, modes=('fwd',))",
            lambda fn=fn: check_grads(fn, (x,), order=1, modes=("fwd",)) is None)
        row(case, "gradcheck.jax mode='forward'", lambda fn=fn: gradcheck.jax.check(fn, x, mode="forward").passed)
    jax.config.update("jax_enable_x64", False)


# --- NumPy HVP --------------------------------------------------------------------------------


def hvp_cases() -> None:
    import gradcheck

    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((200, 10)), (rng.random(200) > 0.5).astype(float)

    def grads(p):
        s = 1 / (1 + np.exp(-(X @ p["w"])))
        return {"w": X.T @ (s - y) / len(y)}

    def hvp(rel: float):
        def f(p, v):
            s = 1 / (1 + np.exp(-(X @ p["w"])))
            out = X.T @ (s * (1 - s) * (X @ v["w"])) / len(y)
            out[3] *= 1 + rel
            return {"w": out}

        return f

    p = {"w": rng.standard_normal(10) * 0.3}
    v = {"w": rng.standard_normal(10)}

    def naive(hvp_fn, g):
        h = 1e-5
        plus = g({"w": p["w"] + h * v["w"]})["w"]
        minus = g({"w": p["w"] - h * v["w"]})["w"]
        return np.allclose(hvp_fn(p, v)["w"], (plus - minus) / (2 * h), rtol=1e-5, atol=1e-8)

    for case, rel in {"HVP: correct": 0.0, "HVP: one entry +2%": 0.02, "HVP: one entry +1e-4": 1e-4}.items():
        g = Counter(grads)
        row(case, "central difference + np.allclose", lambda rel=rel, g=g: naive(hvp(rel), g), g)
        row(case, "gradcheck.check_hvp", lambda rel=rel, g=g: gradcheck.check_hvp(g, p, hvp(rel), v=v).passed, g)


# --- TensorFlow -------------------------------------------------------------------------------


def tf_cases() -> None:
    import tensorflow as tf

    import gradcheck.tensorflow

    def cube(factor: float):
        @tf.custom_gradient
        def f(x):
            return x**3, lambda g: g * factor * x**2

        return f

    x = tf.constant(np.random.default_rng(0).standard_normal((4, 5)))
    for case, factor in {
        "TF: correct custom_gradient": 3.0,
        "TF: custom_gradient ×1.01": 3.03,
        "TF: custom_gradient ×(1+1e-4)": 3.0 * (1 + 1e-4),
    }.items():
        f = Counter(cube(factor))

        def peer(f=f):
            theoretical, numerical = tf.test.compute_gradient(f, [x])
            return all(
                np.allclose(a, b, rtol=1e-6, atol=1e-6)
                for a, b in zip(theoretical, numerical, strict=True)
            )

        row(case, "tf.test.compute_gradient + allclose", peer, f)
        row(case, "gradcheck.tensorflow.check_function",
            lambda f=f: gradcheck.tensorflow.check_function(f, x).passed, f)


def main() -> None:
    global REPEAT
    if "--repeat" in sys.argv:
        REPEAT = int(sys.argv[sys.argv.index("--repeat") + 1])
    torch_cases()
    jax_cases()
    hvp_cases()
    tf_cases()
    print()
    print("| case | tool | verdict | seconds | calls of fn |")
    print("|---|---|---|---:|---:|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
