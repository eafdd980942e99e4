"""The torch adapter's cheaper paths give what the plain ones gave: the tensors handed to ``fn``
on every loss call (``torch.from_numpy`` + a copy, as ``torch.tensor`` makes it), grad mode set
by hand around a loss call, a 0-d J taken as it is, components copied only where they change."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")

import gradcheck.frameworks.torch as gt  # noqa: E402
from gradcheck.frameworks import _shared as _adapters  # noqa: E402
from gradcheck.frameworks._torch_problem import _FunctionProblem  # noqa: E402
from gradcheck.frameworks._torch_run import _placer  # noqa: E402
from gradcheck.frameworks._torch_views import TORCH  # noqa: E402
from gradcheck.frameworks._torch_vmap import _unchecked_vmap  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

DTYPES = {torch.float64: np.float64, torch.float32: np.float32, torch.float16: np.float16}


def _tensors_for(dtype: torch.dtype, shape: tuple[int, ...]):
    x = torch.zeros(shape, dtype=dtype, requires_grad=True)
    problem = _FunctionProblem(lambda t: t, (x,), None)
    return _placer(problem, {"input0": dtype})[1]


def _same(got: torch.Tensor, want: torch.Tensor) -> None:
    """Bit for bit, and laid out alike: dtype, device, shape, strides, a storage of its own."""
    assert (got.dtype, got.device, got.shape) == (want.dtype, want.device, want.shape)
    assert got.stride() == want.stride() and got.storage_offset() == want.storage_offset()
    assert got.untyped_storage().nbytes() == want.untyped_storage().nbytes()
    assert not got.requires_grad and got.grad_fn is None and got._base is None
    assert got.untyped_storage().tolist() == want.untyped_storage().tolist()


@settings(max_examples=60, deadline=None)
@given(
    dtype=st.sampled_from(list(DTYPES)),
    wide=st.booleans(),  # the engine's float64 arrays cast to a float32/float16 tensor
    a=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
                 elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
)
def test_loss_call_tensors_are_those_torch_tensor_makes(dtype, wide, a) -> None:
    with np.errstate(over="ignore", invalid="ignore"):
        a = a if wide else a.astype(DTYPES[dtype])
    want = torch.tensor(a, dtype=dtype, device=torch.device("cpu"))
    got = _tensors_for(dtype, a.shape)({"input0": a})["input0"]
    _same(got, want)
    before = a.copy()
    got.add_(1)  # a copy: the engine's array, written into next, is never the tensor's memory
    np.testing.assert_array_equal(a, before)


@pytest.mark.parametrize("kind", ["read-only", "fortran", "strided", "big-endian", "size-1 axis"])
def test_unusual_arrays_still_give_what_torch_tensor_gives(kind: str) -> None:
    base = np.arange(12.0).reshape(3, 4)
    a = {
        "read-only": base.copy(),
        "fortran": np.asfortranarray(base),
        "strided": base[:, ::2],
        "big-endian": base.astype(">f8"),
        "size-1 axis": np.lib.stride_tricks.as_strided(base, shape=(1, 4), strides=(800, 8)),
    }[kind]
    if kind == "read-only":
        a.flags.writeable = False
    tensors = _tensors_for(torch.float64, a.shape)
    if kind == "big-endian":  # torch.tensor refuses it, and so does the loss call
        with pytest.raises(ValueError, match="byte order"):
            torch.tensor(a, dtype=torch.float64)
        with pytest.raises(ValueError, match="byte order"):
            tensors({"input0": a})
        return
    want = torch.tensor(a, dtype=torch.float64, device=torch.device("cpu"))
    _same(tensors({"input0": a})["input0"], want)


def test_loss_calls_run_without_grad_and_leave_grad_mode_as_found() -> None:
    modes: list[bool] = []

    def fn(x):
        modes.append(torch.is_grad_enabled())
        return x.sin()

    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    for enabled in (True, False):
        modes.clear()
        with torch.set_grad_enabled(enabled):
            report = gt.check_function(fn, x)
            assert torch.is_grad_enabled() is enabled
        assert report.passed
        # every loss call without grad; the in-place probe too; the output probe and autograd's
        # gradient with it
        assert modes.count(True) == 2 and modes.count(False) == report.evaluations + 1

    def raises_later(x):
        if not torch.is_grad_enabled() and len(modes) > 4:
            raise ValueError("boom")
        modes.append(False)
        return x.sin()

    modes.clear()
    with pytest.raises(Exception, match="boom"):
        gt.check_function(raises_later, x)
    assert torch.is_grad_enabled()


def test_a_zero_dim_j_is_taken_as_it_is_and_a_one_element_one_reshaped() -> None:
    j = torch.tensor(2.0, dtype=torch.float64)
    assert TORCH.scalar(j) is j
    one = torch.tensor([2.0], dtype=torch.float64)
    assert TORCH.scalar(one).shape == () and float(TORCH.scalar(one)) == 2.0


def test_with_dtypes_copies_only_the_components_that_change() -> None:
    from gradcheck.checks._check import check

    r = check(lambda p: float((p["x"] ** 2).sum() + p["y"].sum()),
              {"x": np.ones(2), "y": np.ones(3)}, {"x": 2 * np.ones(2), "y": np.ones(3)})
    out = _adapters.with_dtypes(r, {"x": "float64", "y": "float32"})
    assert out.components["x"] is r.components["x"]
    assert (out.components["y"].dtype, out.components["y"].evaluated_dtype) == ("float32", "float64")


def test_the_unchecked_vmap_entry_is_made_once_per_arity() -> None:
    assert _unchecked_vmap(2) is _unchecked_vmap(2)


def test_an_option_named_as_fns_keyword_is_still_refused() -> None:
    def fn(x, scale=1.0):
        return x * scale

    x = torch.randn(2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(Exception, match="functools.partial"):
        gt.check_function(fn, x, scale=2.0)
    assert gt.check_function(fn, x).passed
