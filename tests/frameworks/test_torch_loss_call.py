"""The torch loss call's short paths give the long paths' bits: J of a lone real output leaf
without the objective's walk, the workspace array's ``torch.from_numpy`` view kept between
calls, and ``fn(*tensors)`` called directly when every input is a checked tensor."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")

from gradcheck.frameworks._torch_problem import _FunctionProblem  # noqa: E402
from gradcheck.frameworks._torch_run import _lone_leaf, _placer  # noqa: E402
from gradcheck.frameworks._torch_views import TORCH, _Objective  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

OUTPUTS = hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                     elements=st.floats(-1e6, 1e6, width=64))


@settings(max_examples=80, deadline=None)
@given(out=OUTPUTS, seed=st.integers(0, 3), picks=st.sampled_from([None, (0,)]),
       dtype=st.sampled_from([torch.float64, torch.float32]))
def test_a_lone_real_leaf_gets_the_objectives_own_bits(out, seed, picks, dtype) -> None:
    t = torch.from_numpy(out).to(dtype)
    walked = float(_Objective(TORCH, seed, picks=picks)(t))
    lone = _lone_leaf(_Objective(TORCH, seed, picks=picks))
    assert lone is not None
    got = lone(t)
    assert got is not None and np.float64(got).tobytes() == np.float64(walked).tobytes()


@pytest.mark.parametrize("out", [
    (torch.ones(3, dtype=torch.float64), torch.ones(2, dtype=torch.float64)),  # a tuple
    torch.ones(3, dtype=torch.complex128),  # complex: its real view
    torch.ones(3, dtype=torch.float64).to_sparse(),  # sparse: densified
    torch.nn.Parameter(torch.ones(3, dtype=torch.float64)),  # a subclass
], ids=["tuple", "complex", "sparse", "subclass"])
def test_any_other_output_is_left_to_the_objective(out) -> None:
    lone = _lone_leaf(_Objective(TORCH, 0))
    assert lone is not None and lone(out) is None


@pytest.mark.parametrize("objective", [
    _Objective(TORCH, 0, loss_fn=lambda o: o.sum()),
    _Objective(TORCH, 0, picks=(1,)),
    _Objective(TORCH, 0, picks=(0,), entry=2),
], ids=["loss_fn", "other picks", "entry"])
def test_objectives_of_another_form_have_no_short_path(objective) -> None:
    assert _lone_leaf(objective) is None


def test_the_kept_view_reads_the_arrays_values_of_each_call() -> None:
    x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    params, tensors = _placer(_FunctionProblem(lambda t: t, (x,), None), {"input0": torch.float64})
    a = params["input0"]
    for values in ([1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, np.inf, np.nan]):
        a[:] = values  # the evaluator writes its points into the same array
        got = tensors({"input0": a})["input0"]
        torch.testing.assert_close(got, torch.tensor(a), equal_nan=True, rtol=0, atol=0)
        got.add_(1)  # a copy: the array is not the tensor's memory
        np.testing.assert_array_equal(a, values)
    other = np.arange(4.0)  # another array: its own values, not the kept view's
    assert tensors({"input0": other})["input0"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert tensors({"input0": a})["input0"].tolist()[:2] == [-1.0, 0.5]


def test_fn_gets_the_tensors_directly_or_fresh_copies_of_the_rest() -> None:
    seen = []

    def fn(*args):
        seen.append(args)
        return args[0]

    a = torch.ones(2, dtype=torch.float64, requires_grad=True)
    b = torch.full((2,), 3.0, dtype=torch.float64)  # not checked: a fresh copy per call
    direct = _FunctionProblem(fn, (a,), None)
    given_tensor = torch.zeros(2, dtype=torch.float64)
    assert direct.call({"input0": given_tensor}, lambda t: t) is given_tensor
    mixed = _FunctionProblem(fn, (a, b), None)
    mixed.call({"input0": given_tensor}, lambda t: t)
    assert seen[-1][0] is given_tensor and seen[-1][1] is not b
    torch.testing.assert_close(seen[-1][1], b)
