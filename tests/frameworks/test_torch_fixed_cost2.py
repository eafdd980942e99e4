"""The torch adapter's second round of cheaper paths give what the plain ones gave: vmap's
batched run without its pytree round trips (the same values, the vmap level left on every path,
torch's own error for an output that is not a tensor), each in_dims pattern checked by the
public vmap once per process, and the report built once where it was copied twice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import gradcheck.frameworks.torch as gt  # noqa: E402
from gradcheck.frameworks import _shared as _adapters  # noqa: E402
from gradcheck.frameworks import _torch_vmap  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _fast(arity: int):
    fast = _torch_vmap._unchecked_vmap(arity)
    if fast is None:
        pytest.skip("this torch has no _flat_vmap with the steps the fast path runs")
    return fast


def _level() -> object:
    return torch._C._functorch.maybe_current_level()


def test_the_batched_run_gives_public_vmaps_bits_for_vector_outputs_too() -> None:
    fast = _fast(3)
    gen = torch.Generator().manual_seed(1)
    a, b = (torch.randn(4, 6, generator=gen, dtype=torch.float64) for _ in range(2))
    c = torch.randn(6, generator=gen, dtype=torch.float64)

    def one(x, y, z):
        return torch.sigmoid(x) * y.cos() + z  # one value per entry, not a scalar

    for dims, args in (((0, 0, None), [a, b, c]), ((None, 0, 0), [a[0], b, a])):
        want = torch.func.vmap(one, in_dims=dims)(*args)
        got = fast(one, 4, list(dims), args)
        assert got.shape == want.shape and torch.equal(got, want)
    assert _level() is None


def test_the_vmap_level_is_left_when_the_function_raises() -> None:
    fast = _fast(1)
    before = _level()

    def one(x):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fast(one, 3, [0], [torch.zeros(3, 2, dtype=torch.float64)])
    assert _level() == before
    x = torch.randn(3, 2, dtype=torch.float64)  # vmap still works, at the outer level
    assert torch.equal(torch.func.vmap(torch.sin)(x), torch.sin(x))


def test_an_output_that_is_not_a_tensor_gets_torchs_own_error() -> None:
    fast = _fast(1)
    x = torch.zeros(3, 2, dtype=torch.float64)

    def one(t):
        return 1.0

    with pytest.raises(ValueError) as public:
        torch.func.vmap(one)(x)
    with pytest.raises(ValueError) as ours:
        fast(one, 3, [0], [x])
    assert str(ours.value) == str(public.value)
    assert _level() is None


def test_a_pattern_checked_once_per_process_gives_the_same_report(monkeypatch) -> None:
    """A second check of the same pattern goes through the fast path from its first batched
    call: the same report (loss calls, verdicts, every figure) as a check through public vmap."""
    _fast(2)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)

    def fn(a, b):
        return torch.tanh(a @ b)

    public = []
    real = torch.func.vmap

    def counted(*args, **kwargs):
        public.append(kwargs.get("in_dims"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.func, "vmap", counted)
    monkeypatch.setattr(_torch_vmap, "_CHECKED", set())  # as in a fresh process
    first = gt.check_function(fn, x, w)
    assert public  # the first check's first call of each pattern: the public vmap
    public.clear()
    again = gt.check_function(fn, x, w)
    assert public == []  # every pattern seen: no public vmap call at all
    monkeypatch.setattr(_torch_vmap, "_CHECKED", set())
    fresh = gt.check_function(fn, x, w)

    def same(r):
        d = r.to_dict()
        d.pop("seconds", None)
        return d

    assert first.evaluations == again.evaluations == fresh.evaluations
    assert same(first) == same(again) == same(fresh)
    for name in ("input0", "input1"):
        np.testing.assert_array_equal(again.components[name].numeric_array,
                                      fresh.components[name].numeric_array)


def test_no_note_to_add_leaves_the_report_as_it_is() -> None:
    from gradcheck.checks._check import check

    r = check(lambda p: float((p["x"] ** 2).sum()), {"x": np.ones(2)}, {"x": 2 * np.ones(2)})
    assert _adapters.with_notes(r, []) is r
    assert _adapters.complex_findings(r, [], _adapters.TORCH) is r


def test_run_check_builds_what_with_notes_then_with_dtypes_built() -> None:
    from gradcheck.checks._check import check
    from gradcheck.report._sentences import Note, NoteCode

    def loss(p):
        return float((p["x"] ** 2).sum() + p["y"].sum())

    params = {"x": np.ones(2), "y": np.ones(3)}
    grads = {"x": 2 * np.ones(2), "y": np.ones(3)}
    notes = [Note(NoteCode.SPARSE_LOOP), lambda: Note(NoteCode.GRAD_INSIDE)]
    native = {"y": "float32"}
    got = _adapters.run_check(loss, params, grads, {}, None, notes, native)
    want = _adapters.with_dtypes(_adapters.with_notes(check(loss, params, grads), notes), native)
    strip = lambda r: {k: v for k, v in r.to_dict().items() if k != "seconds"}  # noqa: E731
    assert strip(got) == strip(want) and got.note_codes == want.note_codes
    assert got.components["y"].dtype == "float32" and got.components["x"].dtype == "float64"


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(0, 5),
       shape=st.lists(st.integers(0, 3), max_size=3).map(tuple), real=st.booleans())
def test_cotangents_drawn_once_are_the_generators_bits_and_each_callers_own(
        seed, k, shape, real) -> None:
    from gradcheck.frameworks._protocol import cotangent

    shape = (*shape, 2) if real else shape
    want = np.random.default_rng([seed, k]).standard_normal(shape)
    if real:
        want[..., 1] = 0.0
    first = cotangent(seed, k, shape, real)
    assert first.tobytes() == want.tobytes() and first.shape == want.shape
    first[...] = 7.0  # a caller writing into its copy reaches no later caller
    again = cotangent(seed, k, shape, real)
    assert again.tobytes() == want.tobytes() and again.flags.writeable
