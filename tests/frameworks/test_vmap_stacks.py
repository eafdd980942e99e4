"""One-tensor stacks (``by_tensor``): the batched path holds the other tensors fixed.

The evaluator hands the adapters stacks that move one tensor; torch and JAX batch that tensor
only (``in_dims=None`` / ``in_axes=None`` for the others) where it gives the numbers of the full
path at the given θ bit for bit, and fall back to full rows where it does not.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import gradcheck
from gradcheck.frameworks._batching import Batched, accepts_batched
from gradcheck.report._sentences import NoteCode

needs_hook = pytest.mark.skipif(not accepts_batched(), reason="no batched_loss hook")


def _stack(fn, t, n=9, seed=0):
    """Rows moving tensor t of a ``Batched``, and the same rows written out in full."""
    a, b = fn.starts[t], fn.starts[t + 1]
    rows = fn.theta[a:b] + 1e-3 * np.random.default_rng(seed).standard_normal((n, b - a))
    whole = np.repeat(fn.theta[None, :], n, axis=0)
    whole[:, a:b] = rows
    return rows, whole


# --- the shared wrapper ------------------------------------------------------------------------


def test_batched_trusts_a_moving_path_only_when_it_gives_the_full_value_at_theta() -> None:
    def full(thetas):
        return thetas.sum(axis=1)

    calls = []

    def moving(t, rows):
        calls.append(t)
        if t == 0:
            return rows.sum(axis=1) + 0.0  # the others' sum (0 + 0 + 0): right
        if t == 1:
            return rows.sum(axis=1) + 3.0  # the others sum to 1, not 3: must not be trusted
        if t == 2:
            raise RuntimeError("no batching rule")
        return None  # no own path for this tensor

    b = Batched(full, moving, np.array([1.0, 0.0, 0.0, 0.0]), [1, 1, 1, 1])
    rows = np.array([[2.0], [5.0]])
    for t in range(4):
        whole = np.repeat(b.theta[None, :], 2, axis=0)
        whole[:, t] = rows[:, 0]
        np.testing.assert_array_equal(b.by_tensor(t, rows), full(whole))
    assert b.trusted == {0: True, 1: False, 2: False, 3: False}
    calls.clear()
    b.by_tensor(1, rows)  # an untrusted tensor is not tried again
    assert calls == []


# --- torch -------------------------------------------------------------------------------------


def _torch_batched(module, *inputs):
    torch = pytest.importorskip("torch")
    import gradcheck.frameworks.torch as gt

    problem = gt._ModuleProblem(module, inputs)
    objective = gt._objective(None, 0)
    params = {n: p.detach().numpy().copy() for n, p in module.named_parameters()}
    dtypes = dict.fromkeys(params, torch.float64)
    fn = gt._vmapped(problem, objective, params, dtypes, inputs[0].device, gt._cast64)

    def loop(whole):
        out = []
        for w in whole:
            p = {
                n: torch.tensor(w[fn.starts[k] : fn.starts[k + 1]].reshape(params[n].shape))
                for k, n in enumerate(params)
            }
            with torch.no_grad():
                out.append(float(objective(problem.call(p, gt._cast64))))
        return np.array(out)

    return fn, loop


class _Twice:
    """A parameter used twice in one forward (and a weight tied between two layers)."""

    def __new__(cls):
        torch = pytest.importorskip("torch")

        class Twice(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.a = torch.nn.Linear(4, 4)
                self.b = torch.nn.Linear(4, 4, bias=False)
                self.b.weight = self.a.weight  # tied

            def forward(self, x):
                return self.b(torch.tanh(self.a(torch.tanh(self.a(x)))))

        return Twice().double()


def _torch_modules():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    norm = torch.nn.Sequential(
        torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), torch.nn.Tanh(), torch.nn.Linear(5, 2)
    )
    norm[1].running_mean.uniform_(-1, 1)
    norm[1].running_var.uniform_(0.5, 2)
    return {"mlp": mlp.double(), "batchnorm-eval": norm.double().eval(), "twice": _Twice()}


@pytest.mark.parametrize("name", ["mlp", "batchnorm-eval", "twice"])
def test_torch_one_tensor_stacks_give_the_loop_values(name: str) -> None:
    torch = pytest.importorskip("torch")
    module = _torch_modules()[name]
    x = torch.randn(4, module[0].in_features if name != "twice" else 4, dtype=torch.float64)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    fn, loop = _torch_batched(module, x)
    for t in range(len(fn.starts) - 1):
        rows, whole = _stack(fn, t, seed=t)
        got = fn.by_tensor(t, rows)
        # Whether tensor t's own path is trusted (its J at θ bit for bit the full path's)
        # depends on the CPU's kernels (an addmm against a batched add rounds differently on
        # some): trusted, its values equal the loop's to rounding (the full path itself differs
        # from the loop by rounding: batched vs plain products); refused, they are the full
        # path's, bit for bit.
        np.testing.assert_allclose(got, loop(whole), rtol=1e-14, atol=1e-15)
        if fn.trusted[t]:
            np.testing.assert_allclose(got, fn(whole), rtol=1e-14, atol=1e-15)
        else:
            np.testing.assert_array_equal(got, fn(whole))
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


@needs_hook
@pytest.mark.parametrize("name", ["mlp", "batchnorm-eval", "twice"])
def test_torch_verdicts_agree_between_vmap_and_the_loop(name: str) -> None:
    torch = pytest.importorskip("torch")
    import gradcheck.torch as gt

    module = _torch_modules()[name]
    x = torch.randn(5, 4 if name == "twice" else 6, dtype=torch.float64)
    vmapped = gt.check_module(module, x, coords="all", vectorize="vmap")
    looped = gt.check_module(module, x, coords="all", vectorize="loop")
    assert vmapped.passed and looped.passed
    assert vmapped.evaluations == looped.evaluations
    for k, c in vmapped.components.items():
        np.testing.assert_allclose(c.numeric_array, looped.components[k].numeric_array,
                                   rtol=1e-7, atol=1e-10)


@needs_hook
def test_torch_wrong_backward_is_found_the_same_way_batched() -> None:
    torch = pytest.importorskip("torch")
    import gradcheck.torch as gt

    class WrongTanh(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return torch.tanh(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(output)

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * (1 - y)  # should be 1 - y**2

        generate_vmap_rule = True

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(6, 5), torch.nn.Linear(5, 2)

        def forward(self, x):
            return self.b(WrongTanh.apply(self.a(x)))

    torch.manual_seed(1)
    net, x = Net().double(), torch.randn(4, 6, dtype=torch.float64)
    vmapped = gt.check_module(net, x, coords="all", vectorize="vmap")
    looped = gt.check_module(net, x, coords="all", vectorize="loop")
    assert not any(n.code is NoteCode.EVALUATION and n.numbers["path"] == "fallback" for n in vmapped.notes)
    assert vmapped.suspects == looped.suspects and set(vmapped.suspects) == {"a.weight", "a.bias"}
    for k in vmapped.suspects:
        assert vmapped.components[k].worst_index == looped.components[k].worst_index


# --- the core hands the adapters one-tensor stacks ---------------------------------------------


@needs_hook
def test_the_evaluator_sends_one_tensor_stacks_to_by_tensor() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 3))
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}

    def loss(p):
        return float(np.sum(np.tanh(x @ p["W"] + p["b"]) ** 2))

    def batched(thetas):
        w, b = thetas[:, :12].reshape(-1, 3, 4), thetas[:, 12:]
        return np.sum(np.tanh(x @ w + b[:, None, :]) ** 2, axis=(1, 2))

    h = 1 - np.tanh(x @ params["W"] + params["b"]) ** 2
    d = 2 * np.tanh(x @ params["W"] + params["b"]) * h
    grads = {"W": x.T @ d, "b": d.sum(0)}
    seen = []

    class WithStacks:
        def __call__(self, thetas):
            seen.append(("full", thetas.shape))
            return batched(thetas)

        def by_tensor(self, t, rows):
            seen.append((t, rows.shape))
            whole = np.repeat(np.concatenate([params["W"].ravel(), params["b"]])[None], len(rows), 0)
            whole[:, [slice(0, 12), slice(12, 16)][t]] = rows
            return batched(whole)

    plain = gradcheck.check(loss, params, grads, coords="all", batched_loss=batched)
    stacks = gradcheck.check(loss, params, grads, coords="all", batched_loss=WithStacks())
    assert plain.passed and stacks.passed and plain.evaluations == stacks.evaluations
    for k, c in plain.components.items():
        np.testing.assert_array_equal(c.numeric_array, stacks.components[k].numeric_array)
    widths = {t: shape[1] for t, shape in seen if t != "full"}
    assert widths == {0: 12, 1: 4}  # one tensor's entries only, never the full row
    assert sum(shape[0] for _, shape in seen) == stacks.evaluations  # every row counted


# --- JAX: compiled functions kept per function, never shared between functions ----------------


def _jax():
    jax = pytest.importorskip("jax")  # (float64 comes from the checks' own x64 scope)
    import gradcheck.frameworks.jax as gfj
    import gradcheck.jax as gj

    return jax, jax.numpy, gj, gfj


@needs_hook
def test_jax_cache_reuses_per_function_and_never_across_functions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jax, jnp, gj, gfj = _jax()

    def f(p, x):
        return jnp.sum(jnp.sin(x @ p["W"]))

    def g(p, x):  # same shapes, another function: must not get f's compiled code
        return jnp.sum(jnp.cos(x @ p["W"]))

    from gradcheck.frameworks import _jit

    # An empty cache of its own: after the suite's other JAX checks the shared one is full, and
    # its oldest programs would leave it while this test counts (MAX_PROGRAMS).
    monkeypatch.setattr(_jit, "_PROGRAMS", {})
    rng = np.random.default_rng(0)
    p, x1, x2 = {"W": rng.standard_normal((3, 2))}, rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    before = dict(_jit._PROGRAMS)
    assert gj.check(f, p, x1, coords="all").passed
    compiled = {k: v for k, v in _jit._PROGRAMS.items() if k not in before}
    assert len(compiled) == 1  # one program: the stacks' J and the gradient
    # Other data, same shapes: the same compiled program (the data are its inputs), and
    # the numbers are x2's: J and its gradient at x2, by NumPy.
    again = gj.check(f, p, x2, coords="all")
    assert again.passed and all(_jit._PROGRAMS[k] is v for k, v in compiled.items())
    assert set(_jit._PROGRAMS) == set(before) | set(compiled)
    h = x2 @ p["W"]
    np.testing.assert_allclose(again.components["W"].analytic_array, x2.T @ np.cos(h), rtol=1e-12)
    other = gj.check(g, p, x1, coords="all")
    new = {k: v for k, v in _jit._PROGRAMS.items() if k not in before and k not in compiled}
    assert other.passed and len(new) == 1
    assert not set(map(id, new.values())) & set(map(id, compiled.values()))
    # The cache does not keep a function alive.
    ref = weakref.ref(g)
    del g, other
    gc.collect()
    assert ref() is None


SCALE = [1.0]


@needs_hook
def test_jax_cache_sees_what_the_function_reads_besides_its_arguments() -> None:
    jax, jnp, gj, gfj = _jax()

    def f(p):  # reads a global: a cached trace would still hold the old value
        return jnp.sum(jnp.sin(p) * SCALE[0])

    p = np.linspace(-1, 1, 7)
    assert gj.check(f, p, coords="all").passed
    SCALE[0] = 3.0  # jax.grad sees the new value; the numeric side must too
    try:
        report = gj.check(f, p, coords="all")
    finally:
        SCALE[0] = 1.0
    assert report.passed, report.notes

    class Model:  # an object with its own arrays, changed in place between checks
        def __init__(self):
            self.w = np.ones(7)

    def g(p, model):
        return jnp.sum(jnp.sin(p) * model.w)

    model = Model()
    assert gj.check(g, p, model, coords="all").passed
    model.w[:] = 2.0
    assert gj.check(g, p, model, coords="all").passed


@needs_hook
def test_jax_control_flow_on_a_data_argument_still_batches() -> None:
    jax, jnp, gj, gfj = _jax()

    def f(p, x):
        if float(np.asarray(x).sum()) > 0:  # needs the concrete data: cannot be an input
            return jnp.sum(jnp.tanh(x @ p))
        return jnp.sum(x @ p)

    rng = np.random.default_rng(1)
    x = np.abs(rng.standard_normal((5, 3)))
    report = gj.check(f, rng.standard_normal(3), x, coords="all")
    assert report.passed
    assert not any(n.code is NoteCode.EVALUATION and n.numbers["path"] == "fallback" for n in report.notes)


@needs_hook
def test_jax_one_tensor_stacks_give_the_full_values_where_used(monkeypatch) -> None:
    jax, jnp, gj, gfj = _jax()
    # As if rows were dear: every tensor gets its own compiled function.
    monkeypatch.setattr(gfj._Stacks, "_pays", lambda self, own, rows: True)
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((8, 5)))
    p = {"W1": rng.standard_normal((5, 4)), "b1": rng.standard_normal(4),
         "W2": rng.standard_normal((4, 3))}

    def f(q):
        return jnp.sum(jnp.tanh(jnp.tanh(x @ q["W1"] + q["b1"]) @ q["W2"]))

    with gfj._x64(True):
        problem = gfj._Problem.build(f, (p,), 0, 0)
        dtypes = [np.float64] * 3
        traced = gfj._Traced(problem, gfj._cast64, dtypes, True, False, gfj._objective(problem))
        params = dict(zip(problem.names, problem.originals(), strict=True))
        j_of = lambda values: traced.j(values, traced.dynamic)  # noqa: E731
        fn, _ = gfj._batched(traced, params, lambda: float(f(p)), "vmap", j_of)
        for t in range(3):
            rows, whole = _stack(fn, t, n=70, seed=t)  # more than one chunk
            got = fn.by_tensor(t, rows)
            assert fn.trusted[t]
            np.testing.assert_allclose(got, fn(whole), rtol=1e-14, atol=1e-14)

            def at(w):
                cuts = np.cumsum([a.size for a in params.values()])[:-1]
                parts = np.split(w, cuts)
                return float(f({n: q.reshape(params[n].shape)
                                for n, q in zip(params, parts, strict=True)}))

            np.testing.assert_allclose(got, [at(w) for w in whole], rtol=1e-13)


@needs_hook
def test_jax_stacks_without_their_own_function_give_the_full_rows_values() -> None:
    jax, jnp, gj, gfj = _jax()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5))
    p = {"W": rng.standard_normal((5, 4)), "b": rng.standard_normal(4)}

    def f(q, x):
        return jnp.sum(jnp.tanh(x @ q["W"] + q["b"]))

    with gfj._x64(True):
        problem = gfj._Problem.build(f, (p, x), 0, 0)
        traced = gfj._Traced(problem, gfj._cast64, [np.float64] * 2, True, False,
                             gfj._objective(problem))
        params = dict(zip(problem.names, problem.originals(), strict=True))
        j_of = lambda values: traced.j(values, traced.dynamic)  # noqa: E731
        fn, _ = gfj._batched(traced, params, lambda: float(f(p, x)), "vmap", j_of)
        for t in range(2):  # rows too few to pay for a compilation: built chunk by chunk
            rows, whole = _stack(fn, t, n=100, seed=t)
            np.testing.assert_array_equal(fn.by_tensor(t, rows), fn(whole))
            assert fn.trusted[t] is False


@needs_hook
def test_torch_note_says_which_evaluation_path_ran() -> None:
    torch = pytest.importorskip("torch")
    import gradcheck.torch as gtorch

    x = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    report = gtorch.check_function(torch.sin, x)
    assert report.passed
    paths = [n for n in report.notes if n.startswith("Perturbed losses were evaluated")]
    assert len(paths) == 1
    assert "torch.func.vmap" in paths[0]
    assert gtorch.check_function(torch.sin, x, vectorize="loop").passed


@needs_hook
def test_jax_leaf_programs_of_the_one_program_path_give_the_same_report(monkeypatch) -> None:
    jax, jnp, gj, gfj = _jax()
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((8, 5)))
    p = {"W1": rng.standard_normal((5, 4)), "b1": rng.standard_normal(4),
         "W2": rng.standard_normal((4, 3))}

    def f(q):
        return jnp.sum(jnp.tanh(jnp.tanh(x @ q["W1"] + q["b1"]) @ q["W2"]))

    plain = gj.check(f, p, coords="all")
    traced: list[int] = []
    build = gfj._Stacks._traced_afresh

    def counted(self, pattern):
        traced.append(pattern)
        return build(self, pattern)

    monkeypatch.setattr(gfj._Stacks, "_traced_afresh", counted)
    monkeypatch.setattr(gfj._Stacks, "_pays", lambda self, own, rows: True)  # as if rows were dear
    each = gj.check(f, p, coords="all")
    assert set(traced) >= {"full", 0, 1, 2}  # every leaf got its own program
    assert plain.passed and each.passed
    for name in p:
        a, b = plain.components[name], each.components[name]
        np.testing.assert_array_equal(a.analytic_array, b.analytic_array)
        np.testing.assert_allclose(a.numeric_array, b.numeric_array, rtol=1e-9, atol=1e-12)
