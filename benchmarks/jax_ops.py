"""gradcheck.jax.check vs jax.test_util.check_grads on jax.numpy / lax / jax.nn functions.

Smooth and kinked functions, and complex ones, each on one random input (drawn inside the
function's domain, seed 0) in float32 and float64 (complex64 and complex128 for the complex
ones). Both checkers see the same function and input; ``check_grads`` runs reverse mode, order 1,
with its default tolerances. Outcomes: pass, fail, error (raised); time is the wall time of one
call (compilation included, as a user meets it): JAX's caches are cleared (``jax.clear_caches``)
before each checker's first call, so that neither runs on what the other compiled; each is then
called twice more on the same function right after (the second and third calls: what it
compiled stays). The summary gives the
median and 90th percentile of the per-function time ratios (gradcheck / check_grads), cold and
warm, and the XLA compilations of gradcheck's cold call (``jax.monitoring`` events).

    PYTHONPATH=src .venv/bin/python benchmarks/jax_ops.py
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections import Counter
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import gradcheck.jax as gj

jax.config.update("jax_enable_x64", True)

# name: (fn, kind, input maker(rng) -> float64 array)
U = lambda lo, hi, *s: lambda r: r.uniform(lo, hi, s or (3, 4))  # noqa: E731
CASES: dict[str, tuple[Callable, str, Callable]] = {
    "jnp.sin": (jnp.sin, "smooth", U(-3, 3)),
    "jnp.exp": (jnp.exp, "smooth", U(-2, 2)),
    "jnp.log": (jnp.log, "smooth", U(0.2, 3)),
    "jnp.tanh": (jnp.tanh, "smooth", U(-2, 2)),
    "jnp.arcsin": (jnp.arcsin, "smooth", U(-0.9, 0.9)),
    "jnp.sqrt": (jnp.sqrt, "smooth", U(0.2, 3)),
    "jnp.power(x, 2.5)": (lambda x: jnp.power(x, 2.5), "smooth", U(0.2, 2)),
    "jnp.matmul(x, x.T)": (lambda x: x @ x.T, "smooth", U(-1, 1)),
    "jnp.linalg.inv": (jnp.linalg.inv, "smooth", lambda r: r.normal(size=(3, 3)) + 3 * np.eye(3)),
    "jnp.linalg.det": (jnp.linalg.det, "smooth", lambda r: r.normal(size=(3, 3)) + 2 * np.eye(3)),
    "jnp.cumsum": (jnp.cumsum, "smooth", U(-1, 1, 6)),
    "jnp.var": (jnp.var, "smooth", U(-1, 1)),
    "jax.nn.softmax": (jax.nn.softmax, "smooth", U(-2, 2)),
    "jax.nn.log_softmax": (jax.nn.log_softmax, "smooth", U(-2, 2)),
    "jax.nn.gelu": (jax.nn.gelu, "smooth", U(-2, 2)),
    "jax.nn.sigmoid": (jax.nn.sigmoid, "smooth", U(-3, 3)),
    "jax.nn.softplus": (jax.nn.softplus, "smooth", U(-3, 3)),
    "jax.scipy.special.logsumexp": (jax.scipy.special.logsumexp, "smooth", U(-2, 2)),
    "lax.erf": (lax.erf, "smooth", U(-2, 2)),
    "lax.rsqrt": (lax.rsqrt, "smooth", U(0.3, 3)),
    "lax.cumprod": (lambda x: lax.cumprod(x, axis=0), "smooth", U(0.5, 1.5, 5)),
    "jax.nn.relu": (jax.nn.relu, "kinked", U(-2, 2)),
    "jnp.abs": (jnp.abs, "kinked", U(-2, 2)),
    "jnp.maximum(x, 0.1)": (lambda x: jnp.maximum(x, 0.1), "kinked", U(-1, 1)),
    "jnp.clip(x, -0.5, 0.5)": (lambda x: jnp.clip(x, -0.5, 0.5), "kinked", U(-1, 1)),
    "jnp.max(axis=0)": (lambda x: jnp.max(x, axis=0), "kinked", U(-1, 1)),
    "jnp.sort": (jnp.sort, "kinked", U(-1, 1, 6)),
    "jnp.linalg.norm": (jnp.linalg.norm, "kinked", U(-1, 1)),
    "jax.nn.hard_tanh": (jax.nn.hard_tanh, "kinked", U(-2, 2)),
    "jax.nn.leaky_relu": (jax.nn.leaky_relu, "kinked", U(-2, 2)),
    "lax.reduce_window max-pool": (
        lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (2, 2), (1, 1), "VALID"),
        "kinked",
        U(-1, 1, 4, 4),
    ),
    "jnp.where(x>0, x², -x)": (lambda x: jnp.where(x > 0, x * x, -x), "kinked", U(-1, 1)),
    "complex: jnp.exp": (jnp.exp, "complex", None),
    "complex: z·z̄ (abs²)": (lambda z: jnp.real(z * jnp.conj(z)), "complex", None),
    "complex: jnp.fft.fft": (jnp.fft.fft, "complex", None),
    "complex: abs(fft(z))": (lambda z: jnp.abs(jnp.fft.fft(z)), "complex", None),
    "complex: z²·sin(z)": (lambda z: z * z * jnp.sin(z), "complex", None),
    "real→complex: jnp.fft.rfft": (jnp.fft.rfft, "smooth", U(-1, 1, 8)),
}


def _input(kind: str, make: Callable | None, dtype: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "complex":
        z = rng.normal(size=6) + 1j * rng.normal(size=6)
        return z.astype(np.complex64 if dtype == "float32" else np.complex128)
    return make(rng).astype(dtype)


def _timed(call: Callable) -> tuple[str, float, str]:
    start = time.perf_counter()
    try:
        ok = call()
        status = "pass" if ok else "fail"
        why = ""
    except AssertionError as error:  # check_grads' verdict
        status, why = "fail", str(error).split("\n")[0][:80]
    except Exception as error:  # recorded
        status, why = "error", f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"
    return status, time.perf_counter() - start, why


COMPILES = [0]  # XLA backend compilations so far


def _count(event: str, _duration: float, **_: object) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        COMPILES[0] += 1


def _p90(values: list[float]) -> float:
    return float(np.percentile(values, 90))


def main() -> None:
    from jax.test_util import check_grads

    warnings.simplefilter("ignore")
    jax.monitoring.register_event_duration_secs_listener(_count)
    rows, warm, compiles = [], [], []
    for dtype in ("float64", "float32"):
        for name, (fn, kind, make) in CASES.items():
            x = _input(kind, make, dtype, np.random.default_rng(0))
            precision = "auto" if dtype == "float64" else "native"
            mine = lambda fn=fn, x=x, p=precision: gj.check(fn, x, precision=p).passed  # noqa: E731
            peer = lambda fn=fn, x=x: check_grads(fn, (x,), order=1, modes=("rev",)) or True  # noqa: E731
            jax.clear_caches()
            before = COMPILES[0]
            ours = _timed(mine)
            compiles.append((dtype, COMPILES[0] - before))
            again = [_timed(mine)[1], _timed(mine)[1]]
            jax.clear_caches()
            theirs = _timed(peer)
            peer_again = [_timed(peer)[1], _timed(peer)[1]]
            warm.append((dtype, [a / max(b, 1e-9) for a, b in zip(again, peer_again, strict=True)]))
            rows.append((dtype, name, kind, ours, theirs))
    print("| dtype | function | kind | gradcheck | check_grads | gradcheck s | check_grads s |")
    print("|---|---|---|---|---|---|---|")
    for dtype, name, kind, ours, theirs in rows:
        o = ours[0] + (f" ({ours[2]})" if ours[2] else "")
        t = theirs[0] + (f" ({theirs[2]})" if theirs[2] else "")
        print(f"| {dtype} | {name} | {kind} | {o} | {t} | {ours[1]:.2f} | {theirs[1]:.2f} |")
    for dtype in ("float64", "float32"):
        sub = [r for r in rows if r[0] == dtype]
        ours = Counter(r[3][0] for r in sub)
        theirs = Counter(r[4][0] for r in sub)
        ratios = [r[3][1] / max(r[4][1], 1e-9) for r in sub]
        second = [w[0] for d, w in warm if d == dtype]
        third = [w[1] for d, w in warm if d == dtype]
        xla = [c for d, c in compiles if d == dtype]
        print(
            f"\n{dtype}: {len(sub)} functions; gradcheck {dict(ours)}, check_grads {dict(theirs)}; "
            f"median time gradcheck {statistics.median(r[3][1] for r in sub):.2f} s, check_grads "
            f"{statistics.median(r[4][1] for r in sub):.2f} s (median ratio "
            f"{statistics.median(ratios):.1f}x, p90 {_p90(ratios):.1f}x; second call: median "
            f"{statistics.median(second):.1f}x, p90 {_p90(second):.1f}x; third call: median "
            f"{statistics.median(third):.1f}x, p90 {_p90(third):.1f}x; XLA compiles per "
            f"gradcheck cold call: median {statistics.median(xla):g}, total {sum(xla)})."
        )


if __name__ == "__main__":
    main()
