"""Hostile input: each scenario asserts its outcome AND that every input is bit-for-bit intact.

A scenario registers the objects it hands to gradcheck with ``keep(obj)``; after it ran, the
harness compares each with its snapshot (bytes, dtype, shape, strides, flags, mask, type; for
torch tensors also requires_grad and .grad). The outcomes: a right verdict, or a
``GradCheckError`` subclass whose message names the option or parameter and the fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import CancelledError, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import gradcheck
from gradcheck import (
    CheckInterrupted,
    DTypeError,
    GradCheckError,
    LossOutputError,
    LossRaisedError,
    NonFiniteError,
    OptionError,
    StructureError,
)
from gradcheck.cli._app import app
from gradcheck.cli._approx import ExpressionError, approx
from gradcheck.report._sentences import NoteCode

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "report-schema.json").read_text("utf-8")
)
RNG = np.random.default_rng(16)


# --- the harness ------------------------------------------------------------------------------


def snapshot(x: Any) -> Any:
    """Everything observable about an input, recursively."""
    if isinstance(x, np.ma.MaskedArray):
        return ("masked", snapshot(np.asarray(x.data)), np.ma.getmaskarray(x).tobytes())
    if isinstance(x, np.ndarray):
        f = x.flags
        return (type(x), x.dtype.str, x.shape, x.strides, f.c_contiguous, f.f_contiguous,
                f.writeable, x.tobytes(order="A"))
    if isinstance(x, dict):
        return ("dict", tuple((repr(k), snapshot(v)) for k, v in x.items()))
    if isinstance(x, list | tuple):
        return (type(x).__name__, tuple(snapshot(v) for v in x))
    if type(x).__module__.startswith("torch"):
        import torch

        if isinstance(x, torch.Tensor):
            t = x.detach()
            return ("tensor", str(t.dtype), tuple(t.shape), t.stride(), x.requires_grad,
                    t.cpu().numpy().tobytes(), x.grad is None)
        if isinstance(x, torch.nn.Module):
            state = {k: v.detach().clone() for k, v in x.state_dict().items()}
            return ("module", x.training, tuple((k, snapshot(v)) for k, v in state.items()),
                    tuple(p.grad is None for p in x.parameters()))
    return ("value", repr(x))


class Keep:
    def __init__(self) -> None:
        self.kept: list[tuple[Any, Any]] = []

    def __call__(self, *objs: Any) -> Any:
        for obj in objs:
            self.kept.append((obj, snapshot(obj)))
        return objs[0] if len(objs) == 1 else objs


SCENARIOS: dict[str, Callable[[Keep], None]] = {}


def scenario(fn: Callable[[Keep], None]) -> Callable[[Keep], None]:
    SCENARIOS[fn.__name__] = fn
    return fn


def sin_loss(p: Any) -> float:
    return float(np.sum(np.sin(p["W"])))


def cube(p: Any) -> float:
    return float(np.sum(p**3))


def same_numbers(params: dict[str, np.ndarray], **kw: Any) -> gradcheck.Report:
    """The report on ``params`` equals the report on C-contiguous copies, entry for entry."""
    grads = {k: np.cos(v) for k, v in params.items()}
    report = gradcheck.check(sin_loss, params, grads, **kw)
    copies = {k: np.ascontiguousarray(v) for k, v in params.items()}
    twin = gradcheck.check(sin_loss, copies, {k: np.cos(v) for k, v in copies.items()}, **kw)
    for name, c in report.components.items():
        assert c.numeric_array.tobytes() == twin.components[name].numeric_array.tobytes()
    return report


def _schema_validator() -> Callable[[Any, Any], list[str]]:
    """The JSON Schema subset checker of tests/report/test_schema.py."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "report" / "test_schema.py"
    spec = importlib.util.spec_from_file_location("_schema_for_hostile", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.validate


def interrupt_at(loss: Callable[[Any], Any], when: Callable[[int, Any], bool]) -> Callable:
    calls = [0]

    def wrapped(p: Any) -> Any:
        calls[0] += 1
        if when(calls[0], p):
            raise KeyboardInterrupt
        return loss(p)

    return wrapped


# --- silent wrong answers: layouts ------------------------------------------------------------


@scenario
def transposed_weights_pass(keep: Keep) -> None:
    W = keep(np.ones((3, 2)).T)
    assert gradcheck.check(sin_loss, {"W": W}, {"W": np.cos(W)}).passed is True


@scenario
def transposed_weights_same_numbers(keep: Keep) -> None:
    W = keep(RNG.standard_normal((4, 3)).T)
    assert same_numbers({"W": W}).passed is True


@scenario
def fortran_order_same_numbers(keep: Keep) -> None:
    W = keep(np.asfortranarray(RNG.standard_normal((3, 5))))
    assert same_numbers({"W": W}).passed is True


@scenario
def strided_view_same_numbers(keep: Keep) -> None:
    base = keep(RNG.standard_normal((6, 8)))
    assert same_numbers({"W": base[::2, ::-3]}).passed is True


@scenario
def reversed_1d_view(keep: Keep) -> None:
    base = keep(RNG.standard_normal(9))
    assert same_numbers({"W": base[::-1]}).passed is True


@scenario
def broadcast_read_only_view(keep: Keep) -> None:
    row = keep(RNG.standard_normal(4))
    W = np.broadcast_to(row, (3, 4))
    assert same_numbers({"W": W}).passed is True


@scenario
def read_only_array(keep: Keep) -> None:
    W = RNG.standard_normal((2, 3))
    W.flags.writeable = False
    keep(W)
    assert same_numbers({"W": W}, coords="directional").passed is True


@scenario
def numerical_gradient_of_a_transpose(keep: Keep) -> None:
    W = keep(np.ones((3, 2)).T * 0.5)
    got = gradcheck.numerical_gradient(lambda p: float(np.sum(np.sin(p))), W)
    np.testing.assert_allclose(got, np.cos(W), rtol=1e-8)


@scenario
def wrong_gradient_on_a_transpose_is_blamed_where_it_is(keep: Keep) -> None:
    W = keep(RNG.standard_normal((4, 3)).T)
    g = np.cos(W).copy()
    g[1, 2] += 0.1
    keep(g)
    report = gradcheck.check(sin_loss, {"W": W}, {"W": g})
    assert report.passed is False
    assert report.components["W"].worst_entries(1)[0][0] == (1, 2)


@scenario
def fortran_ordered_gradient(keep: Keep) -> None:
    W = keep(RNG.standard_normal((3, 4)))
    g = keep(np.asfortranarray(np.cos(W)))
    assert gradcheck.check(sin_loss, {"W": W}, {"W": g}).passed is True


@scenario
def zero_d_parameter(keep: Keep) -> None:
    w = keep(np.array(0.7))
    assert gradcheck.check(lambda p: float(np.sin(p)), w, np.cos(w)).passed is True


@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    data=st.data(),
)
def test_any_layout_gives_the_numbers_of_a_c_contiguous_copy(shape: list[int], data: Any) -> None:
    base = np.random.default_rng(len(shape)).standard_normal([2 * n for n in shape])
    axes = data.draw(st.permutations(range(len(shape))))
    steps = [data.draw(st.sampled_from([1, 2, -1, -2])) for _ in shape]
    view = base[tuple(slice(None, None, k) for k in steps)].transpose(axes)
    if data.draw(st.booleans()):
        view = np.asfortranarray(view)
    before = snapshot(base), snapshot(view)
    same_numbers({"W": view}, coords="all")
    assert (snapshot(base), snapshot(view)) == before


# --- silent wrong answers: forced steps -------------------------------------------------------


W3 = np.array([0.1, 0.2, -0.3])


@scenario
def tiny_eps_sign_flipped_fails(keep: Keep) -> None:
    w = keep(W3.copy())
    report = gradcheck.check(cube, w, -3 * w**2, eps=1e-20)
    assert report.passed is False
    assert any(n.code is NoteCode.EPS_WIDENED and n.numbers["eps"] == 1e-20 for n in report.notes)


@scenario
def tiny_eps_times_100_fails(keep: Keep) -> None:
    w = keep(W3.copy())
    assert gradcheck.check(cube, w, 300 * w**2, eps=1e-16).passed is False


@scenario
def tiny_eps_correct_gradient_passes_with_a_note(keep: Keep) -> None:
    w = keep(W3.copy())
    report = gradcheck.check(cube, w, 3 * w**2, eps=1e-20)
    assert report.passed is True and np.isfinite(report.components["theta"].tolerance)
    assert report.eps["theta"] > 1e-12


@scenario
def tiny_eps_for_one_parameter_only(keep: Keep) -> None:
    p = keep({"a": W3.copy(), "b": W3[::-1].copy()})
    grads = {"a": 3 * p["a"] ** 2, "b": -3 * p["b"] ** 2}
    report = gradcheck.check(
        lambda q: float(np.sum(q["a"] ** 3) + np.sum(q["b"] ** 3)), p, grads,
        eps={"a": 1e-20, "b": 1e-6},
    )
    assert report.suspects == ("b",) and report.eps["b"] == 1e-6


@scenario
def huge_eps_is_refused(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(OptionError, match="dwarfs the scale"):
        gradcheck.check(lambda p: float(np.sum(np.sin(p))), w, np.cos(w), eps=1e6)


@scenario
def huge_eps_in_a_dict_names_the_parameter(keep: Keep) -> None:
    p = keep({"W": W3.copy()})
    with pytest.raises(OptionError, match=r"eps\['W'\]"):
        gradcheck.check(sin_loss, p, {"W": np.cos(p["W"])}, eps={"W": 1e6})


@scenario
def eps_key_that_is_no_parameter(keep: Keep) -> None:
    p = keep({"a": W3.copy()})
    with pytest.raises(OptionError, match=r"eps\['b'\] names no parameter.*'a'"):
        gradcheck.check(lambda q: float(np.sum(q["a"] ** 2)), p, {"a": 2 * p["a"]},
                        eps={"b": 1e-6})


@scenario
def eps_keys_colliding(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(OptionError, match="collide"):
        gradcheck.check(cube, w, 3 * w**2, eps={1: 1e-6, "1": 1e-5})


@scenario
def numerical_gradient_and_sweep_use_the_literal_step(keep: Keep) -> None:
    w = keep(np.linspace(0.2, 0.9, 8))
    rough = gradcheck.numerical_gradient(lambda p: float(np.sum(np.sin(p))), w, eps=1e-14)
    assert 1e-6 < np.max(np.abs(rough - np.cos(w))) < 1.0  # the rounding of that very step
    far = gradcheck.numerical_gradient(lambda p: float(np.sum(np.sin(p))), w, eps=10.0)
    np.testing.assert_allclose(far, np.cos(w) * np.sin(10.0) / 10.0, atol=1e-12)


@scenario
def tiny_complex_step_is_fine(keep: Keep) -> None:
    w = keep(W3.copy())
    report = gradcheck.check(lambda p: np.sum(p**3), w, 3 * w**2, eps=1e-20, scheme="complex")
    assert report.passed is True and report.eps["theta"] == 1e-20


# --- silent wrong answers: interrupts ---------------------------------------------------------


@scenario
def ctrl_c_at_the_base_value_raises_check_interrupted(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(CheckInterrupted) as info:
        gradcheck.check(interrupt_at(cube, lambda n, p: n == 1), w, 3 * w**2)
    assert info.value.report.passed is None and info.value.report.interrupted


@scenario
def ctrl_c_at_the_base_value_reports_incomplete(keep: Keep) -> None:
    w = keep(W3.copy())
    report = gradcheck.check(interrupt_at(cube, lambda n, p: n == 2), w, -w,
                             on_interrupt="report")
    assert report.passed is None and report.verdict == "incomplete" and not report.suspects
    assert report.components["theta"].unjudged == 3 and "INCOMPLETE" in str(report)
    assert "PASSED" not in str(report) and "FAILED" not in str(report)


@scenario
def ctrl_c_in_the_noise_probe(keep: Keep) -> None:
    p = keep({"a": W3.copy(), "b": W3.copy()})
    loss = interrupt_at(lambda q: float(np.sum(q["a"] ** 3 + q["b"] ** 3)), lambda n, q: n == 5)
    report = gradcheck.check(loss, p, {"a": 3 * p["a"] ** 2, "b": 0 * p["b"]},
                             on_interrupt="report")
    assert report.passed is None and all(c.passed is None for c in report.components.values())


@scenario
def ctrl_c_in_the_second_opinion_blames_nothing(keep: Keep) -> None:
    w = keep(RNG.standard_normal(6))
    g = keep(3 * w**2 + 0.5)  # every entry wrong at the first pass
    h = gradcheck.check(cube, w, g).eps["theta"]

    def half_step(_n: int, p: np.ndarray) -> bool:  # one coordinate moved by about h/2
        d = np.abs(p - w)
        return bool(np.count_nonzero(d) == 1 and 0.3 * h < d.max() < 0.7 * h)

    report = gradcheck.check(interrupt_at(cube, half_step), w, g, on_interrupt="report")
    assert report.interrupted and report.passed is None and report.suspects == ()
    assert report.components["theta"].mismatches == 0
    assert report.components["theta"].unjudged == 6


@scenario
def ctrl_c_in_the_first_pass_of_a_later_tensor(keep: Keep) -> None:
    p = keep({"a": RNG.standard_normal(3), "b": RNG.standard_normal(2000)})
    loss = lambda q: float(np.sum(q["a"] ** 3) + np.sum(np.sin(q["b"])))  # noqa: E731
    grads = {"a": 3 * p["a"] ** 2, "b": np.cos(p["b"])}
    stop_late = interrupt_at(loss, lambda n, q: n > 1200)  # in b's first pass
    report = gradcheck.check(stop_late, p, grads, coords="all", on_interrupt="report")
    assert report.passed is None and report.components["a"].passed is True
    assert report.components["b"].passed is None and report.components["b"].unjudged > 0


@scenario
def ctrl_c_after_a_tensor_was_judged_wrong(keep: Keep) -> None:
    p = keep({"a": RNG.standard_normal(3), "b": RNG.standard_normal(2000)})
    loss = lambda q: float(np.sum(q["a"] ** 3) + np.sum(np.sin(q["b"])))  # noqa: E731
    grads = {"a": 2 * p["a"] ** 2, "b": np.cos(p["b"])}
    report = gradcheck.check(interrupt_at(loss, lambda n, q: n > 1200), p, grads, coords="all",
                             on_interrupt="report")
    assert report.passed is False and report.suspects == ("a",) and report.verdict == "failed"
    assert "INTERRUPTED" in str(report)


@scenario
def ctrl_c_at_the_last_base_value(keep: Keep) -> None:
    w = keep(W3.copy())
    n_calls = gradcheck.check(cube, w, 3 * w**2).evaluations
    report = gradcheck.check(interrupt_at(cube, lambda n, p: n == n_calls), w, 3 * w**2,
                             on_interrupt="report")
    assert report.interrupted and report.passed is None


@scenario
def ctrl_c_in_the_diagnosis_keeps_the_verdict(keep: Keep) -> None:
    from gradcheck.core._options import validate
    from gradcheck.core.verdict import run

    w = keep(np.linspace(0.1, 1.0, 12))
    g = 3 * w**2
    g[5] += 1.5 * gradcheck.check(cube, w, g).components["theta"].bound_array[5]
    keep(g)  # borderline: the diagnosis runs a Taylor test, which calls the loss again
    verdict_calls = run(cube, w, g, validate(eps=None, scheme="central", seed=0)).evaluations
    in_diagnosis = interrupt_at(cube, lambda k, p: k > verdict_calls)
    report = gradcheck.check(in_diagnosis, w, g, on_interrupt="report")
    assert report.passed is True and not report.interrupted
    assert report.note_codes[-1] is NoteCode.DIAGNOSIS_INTERRUPTED
    with pytest.raises(CheckInterrupted) as info:
        gradcheck.check(interrupt_at(cube, lambda k, p: k > verdict_calls), w, g)
    assert info.value.report.passed is True


@scenario
def incomplete_report_renders_and_validates(keep: Keep) -> None:
    validate = _schema_validator()
    w = keep(W3.copy())
    report = gradcheck.check(interrupt_at(cube, lambda n, p: n == 1), w, 3 * w**2,
                             on_interrupt="report")
    data = json.loads(report.to_json())
    assert data["passed"] is None and data["verdict"] == "incomplete"
    assert validate(data, SCHEMA) == []
    assert "INCOMPLETE" in report.to_markdown() and "PASSED" not in report.to_markdown()
    assert "INCOMPLETE" in report.to_html() and "PASSED" not in report.to_html()


@scenario
def incomplete_report_does_not_pass_the_assertion_helper(keep: Keep) -> None:
    w = keep(W3.copy())
    report = gradcheck.check(interrupt_at(cube, lambda n, p: n == 1), w, 3 * w**2,
                             on_interrupt="report")
    with pytest.raises(GradCheckError):
        report.raise_for_failure()


# --- silent wrong answers: masked arrays, dtypes, rebinding, batched outputs ------------------


@scenario
def masked_params_refused(keep: Keep) -> None:
    m = keep(np.ma.array([1.0, np.nan, 2.0], mask=[0, 1, 0]))
    with pytest.raises(DTypeError, match=r"masked array.*filled"):
        gradcheck.check(lambda p: float(np.sum(p**2)), m, np.array([2.0, 0.0, 4.0]))


@scenario
def masked_grads_refused(keep: Keep) -> None:
    w = keep(np.array([1.0, 2.0]))
    g = keep(np.ma.array([2.0, 4.0], mask=[0, 1]))
    with pytest.raises(DTypeError, match=r"grads\['theta'\] is a masked array"):
        gradcheck.check(lambda p: float(np.sum(p**2)), w, g)


@scenario
def masked_inside_a_dict_refused(keep: Keep) -> None:
    p = keep({"W": np.ma.array(np.ones(3), mask=[0, 0, 1])})
    with pytest.raises(DTypeError, match=r"params\['W'\]"):
        gradcheck.check(sin_loss, p, {"W": np.cos(np.ones(3))})


@scenario
def np_matrix_refused(keep: Keep) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        m = keep(np.matrix([[1.0, 2.0, 3.0]]))
    with pytest.raises(DTypeError, match=r"np.matrix.*np.asarray"):
        gradcheck.check(lambda p: float(np.sum(p)), m, np.ones((1, 3)))


@scenario
def float32_gradient_of_a_float64_parameter(keep: Keep) -> None:
    w = keep(np.array([0.3, 0.7, 1.1]))
    g = keep(np.cos(w).astype(np.float32))
    report = gradcheck.check(lambda p: float(np.sum(np.sin(p))), w, g)
    assert report.passed is True and any(n.code is NoteCode.GRAD_DTYPE
                                         and n.numbers["dtype"] == "float32" for n in report.notes)


@scenario
def float32_gradient_with_a_real_bug(keep: Keep) -> None:
    w = keep(np.array([0.3, 0.7, 1.1]))
    g = keep((2 * np.cos(w)).astype(np.float32))
    assert gradcheck.check(lambda p: float(np.sum(np.sin(p))), w, g).passed is False


@scenario
def loss_rebinding_an_entry(keep: Keep) -> None:
    p = keep({"W": RNG.standard_normal(4), "b": RNG.standard_normal(2)})

    def rebinding(q: dict) -> float:
        q["W"] = q["W"].copy()
        return float(np.sum(q["W"] ** 2) + np.sum(q["b"] ** 3))

    grads = {"W": 2 * p["W"], "b": 3 * p["b"] ** 2}
    assert gradcheck.check(rebinding, p, grads).passed is True
    grads["b"] = grads["b"] * 2
    assert gradcheck.check(rebinding, p, grads).suspects == ("b",)


@scenario
def loss_popping_an_entry(keep: Keep) -> None:
    p = keep({"W": RNG.standard_normal(3)})

    def popping(q: dict) -> float:
        return float(np.sum(q.pop("W") ** 2))

    assert gradcheck.check(popping, p, {"W": 2 * p["W"]}).passed is True


@scenario
def loss_appending_to_a_list(keep: Keep) -> None:
    p = keep([RNG.standard_normal(3), RNG.standard_normal(2)])

    def appending(q: list) -> float:
        q.append(np.zeros(1))
        return float(np.sum(q[0] ** 2) + np.sum(q[1]))

    assert gradcheck.check(appending, p, [2 * p[0], np.ones(2)]).passed is True


@scenario
def loss_writing_into_its_params(keep: Keep) -> None:
    p = keep({"W": RNG.standard_normal(3)})

    def writing(q: dict) -> float:
        q["W"] *= 2
        return float(np.sum(q["W"]))

    with pytest.raises(GradCheckError, match="in place"):
        gradcheck.check(writing, p, {"W": 2 * np.ones(3)})


@scenario
def batched_loss_returning_complex(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(LossOutputError, match="complex"):
        gradcheck.check(cube, w, 3 * w**2, batched_loss=lambda th: (th**3).sum(1) + 1j)


@scenario
def batched_loss_returning_strings(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(LossOutputError, match="dtype"):
        gradcheck.check(cube, w, 3 * w**2, batched_loss=lambda th: np.array(["a"] * len(th)))


@scenario
def batched_loss_returning_nan(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(NonFiniteError):
        gradcheck.check(cube, w, 3 * w**2, batched_loss=lambda th: np.full(len(th), np.nan))


@scenario
def batched_loss_returning_a_torch_tensor(keep: Keep) -> None:
    torch = pytest.importorskip("torch")
    w = keep(W3.copy())
    report = gradcheck.check(cube, w, 3 * w**2,
                             batched_loss=lambda th: torch.as_tensor((th**3).sum(1)))
    assert report.passed is True


# --- raw tracebacks: options and structures -----------------------------------------------------


def _square(p: Any) -> float:
    return float(np.sum(p**2))


def _refused(keep: Keep, error: type, match: str, **options: Any) -> None:
    w = keep(W3.copy())
    with pytest.raises(error, match=match):
        gradcheck.check(_square, w, 2 * w, **options)


@scenario
def seed_negative(keep: Keep) -> None:
    _refused(keep, OptionError, r"seed=-1 must be a non-negative", seed=-1)


@scenario
def seed_float(keep: Keep) -> None:
    _refused(keep, OptionError, r"seed=1.5", seed=1.5)


@scenario
def rtol_array(keep: Keep) -> None:
    _refused(keep, OptionError, r"rtol=array\(\[1, 2\]\) must be one number", rtol=np.array([1, 2]))


@scenario
def rtol_dict_of_arrays(keep: Keep) -> None:
    _refused(keep, OptionError, r"rtol\[", rtol={np.float64: np.array([1e-9, 1e-8])})


@scenario
def atol_string(keep: Keep) -> None:
    _refused(keep, OptionError, r"atol='abc'", atol="abc")


@scenario
def rtol_negative(keep: Keep) -> None:
    _refused(keep, OptionError, r"rtol=-1", rtol=-1.0)


@scenario
def order_three(keep: Keep) -> None:
    _refused(keep, OptionError, r"order=3", order=3)


@scenario
def layers_not_a_sequence(keep: Keep) -> None:
    _refused(keep, OptionError, r"layers=5 must be a sequence", layers=5)


@scenario
def unknown_scheme(keep: Keep) -> None:
    _refused(keep, OptionError, r"scheme='bogus'.*Valid values", scheme="bogus")


@scenario
def eps_nan(keep: Keep) -> None:
    _refused(keep, OptionError, r"eps=nan", eps=float("nan"))


@scenario
def eps_array(keep: Keep) -> None:
    _refused(keep, OptionError, r"eps=", eps=np.array([1e-6, 1e-6]))


@scenario
def keys_colliding_after_str(keep: Keep) -> None:
    a, b = keep(W3.copy(), W3.copy() * 2)
    with pytest.raises(StructureError, match="both named '1'"):
        gradcheck.check(lambda p: float(np.sum(p[1] ** 2)), {1: a, "1": b}, {1: 2 * a, "1": 0 * b})


@scenario
def dotted_key_colliding_with_a_nested_path(keep: Keep) -> None:
    p = keep({"a.b": W3.copy(), "a": {"b": W3.copy()}})
    with pytest.raises(StructureError, match="'a.b'"):
        gradcheck.check(lambda q: 0.0, p, {"a.b": W3, "a": {"b": W3}})


@scenario
def integer_params(keep: Keep) -> None:
    w = keep(np.arange(3))
    with pytest.raises(DTypeError, match="astype"):
        gradcheck.check(_square, w, 2 * w)


@scenario
def empty_params(keep: Keep) -> None:
    w = keep(np.zeros(0))
    with pytest.raises(StructureError, match="empty"):
        gradcheck.check(_square, w, w)


@scenario
def nan_in_params(keep: Keep) -> None:
    w = keep(np.array([1.0, np.nan]))
    with pytest.raises(NonFiniteError, match="index"):
        gradcheck.check(_square, w, 2 * w)


# --- raw tracebacks: the loss ---------------------------------------------------------------------


@scenario
def loss_returning_a_huge_int(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(NonFiniteError, match="401 digits.*rescale"):
        gradcheck.check(lambda p: 10**400, w, 2 * w)


@scenario
def loss_returning_a_huge_numpy_object(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(GradCheckError):
        gradcheck.check(lambda p: np.array(10**400, dtype=object), w, 2 * w)


@scenario
def loss_returning_a_string(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(LossOutputError, match="must return a number"):
        gradcheck.check(lambda p: "1.0", w, 2 * w)


@scenario
def loss_returning_complex(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(LossOutputError, match="complex"):
        gradcheck.check(lambda p: complex(np.sum(p)), w, np.ones(3))


@scenario
def loss_returning_a_vector(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(LossOutputError, match="shape"):
        gradcheck.check(lambda p: p**2, w, 2 * w)


@scenario
def loss_returning_inf(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(NonFiniteError):
        gradcheck.check(lambda p: float("inf"), w, 2 * w)


@scenario
def loss_raising(keep: Keep) -> None:
    w = keep(W3.copy())

    def broken(p: np.ndarray) -> float:
        raise ZeroDivisionError("boom")

    with pytest.raises(LossRaisedError, match="ZeroDivisionError: boom") as info:
        gradcheck.check(broken, w, 2 * w)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


@scenario
def grads_function_raising(keep: Keep) -> None:
    w = keep(W3.copy())
    with pytest.raises(LossRaisedError, match="grads"):
        gradcheck.check(_square, w, lambda p: 1 / 0)


@scenario
def stochastic_loss(keep: Keep) -> None:
    w = keep(W3.copy())
    rng = np.random.default_rng(0)
    with pytest.raises(gradcheck.StochasticLossError):
        gradcheck.check(lambda p: float(np.sum(p**2) + rng.random()), w, 2 * w)


# --- the NumPy path: memory layouts, dtypes and containers the courses hand over -----------------


@scenario
def memmap_params_read_write_and_read_only(keep: Keep) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "w.dat")
        W = np.memmap(path, dtype=np.float64, mode="w+", shape=(3, 4))
        W[:] = RNG.standard_normal((3, 4))
        W.flush()
        keep(W)
        assert gradcheck.check(sin_loss, {"W": W}, {"W": np.cos(np.asarray(W))}).passed is True
        R = keep(np.memmap(path, dtype=np.float64, mode="r", shape=(3, 4)))
        wrong = np.cos(np.asarray(R)).copy()
        wrong[2, 1] *= 1.01
        report = gradcheck.check(sin_loss, {"W": R}, {"W": wrong})
        assert report.suspects == ("W",) and report.components["W"].worst_entries(1)[0][0] == (2, 1)
        del W, R


@scenario
def longdouble_params(keep: Keep) -> None:
    W = keep(RNG.standard_normal((3, 3)).astype(np.longdouble))
    assert gradcheck.check(sin_loss, {"W": W}, {"W": np.cos(W)}).passed is True
    assert gradcheck.check(sin_loss, {"W": W}, {"W": 1.001 * np.cos(W)}).suspects == ("W",)


@scenario
def one_array_twice_and_a_view_get_a_note(keep: Keep) -> None:
    W = keep(RNG.standard_normal(5))
    params = {"a": W, "b": W, "c": W[::2]}

    def loss(p: Any) -> float:
        return float(np.sum(np.sin(p["a"])) + np.sum(p["b"] ** 2) + np.sum(p["c"] ** 3))

    grads = {"a": np.cos(W), "b": 2 * W, "c": 3 * W[::2] ** 2}
    report = gradcheck.check(loss, params, grads)
    assert report.passed is True
    assert [n.numbers["pairs"] for n in report.notes if n.code is NoteCode.SHARED_MEMORY] == [
        "a and b, a and c, b and c"]
    tied = {"a": np.cos(W) + 2 * W, "b": np.cos(W) + 2 * W, "c": grads["c"]}  # the sum, twice
    assert set(gradcheck.check(loss, params, tied).suspects) == {"a", "b"}


@scenario
def python_floats_as_the_parameters(keep: Keep) -> None:
    values = keep([0.3, -1.2, 2.0])  # micrograd's p.data, one Python float per parameter

    def loss(p: Any) -> float:
        return float(sum(np.sin(v) for v in p))

    assert gradcheck.check(loss, values, [float(np.cos(v)) for v in values]).passed is True
    report = gradcheck.check(loss, values, [float(np.cos(v)) for v in values[:2]] + [0.0])
    assert report.suspects == ("2",)


@scenario
def course_gradients_dict_with_intermediates(keep: Keep) -> None:
    W = keep(RNG.standard_normal((2, 3)))
    grads = keep({"dZ1": np.ones((2, 4)), "dW1": np.cos(W), "dA0": np.ones((3, 4))})
    report = gradcheck.check(lambda p: float(np.sum(np.sin(p["W1"]))), {"W1": W}, grads)
    assert report.passed is True and list(report.components) == ["W1"]


@scenario
def loss_returning_cost_and_cache(keep: Keep) -> None:
    W = keep(RNG.standard_normal(3))
    with pytest.raises(LossOutputError, match=r"\(cost, cache\) pair.*f\(p\)\[0\]"):
        gradcheck.check(lambda p: (float(np.sum(p["W"] ** 2)), (p["W"],)), {"W": W}, {"W": 2 * W})


@scenario
def backward_that_returns_nothing(keep: Keep) -> None:
    W = keep(RNG.standard_normal(3))
    with pytest.raises(StructureError, match="returned None"):
        gradcheck.check(lambda p: float(np.sum(p["W"] ** 2)), {"W": W}, lambda p: None)


# --- raw tracebacks: executors ------------------------------------------------------------------


BIG = np.linspace(-1.0, 1.0, 200)


@scenario
def shut_down_thread_pool(keep: Keep) -> None:
    w = keep(BIG.copy())
    pool = ThreadPoolExecutor(2)
    pool.shutdown()
    with pytest.raises(OptionError, match="shut down"):
        gradcheck.check(_square, w, 2 * w, executor=pool)


@scenario
def shut_down_process_pool(keep: Keep) -> None:
    w = keep(BIG.copy())
    pool = ProcessPoolExecutor(1)
    pool.shutdown()
    with pytest.raises(OptionError, match="shut down"):
        gradcheck.check(_square, w, 2 * w, executor=pool)


class _FakeDask:
    """A Dask-like client whose workers lose the scattered data ``lose`` times."""

    class Future:
        def __init__(self, value: Any) -> None:
            self.value = value

        def done(self) -> bool:
            return True

        def release(self) -> None:
            pass

    def __init__(self, lose: int) -> None:
        self.lose, self.scattered = lose, 0

    def scheduler_info(self) -> dict:
        return {"workers": {"w": {"nthreads": 2}}}

    def scatter(self, values: list, **_: Any) -> list:
        self.scattered += 1
        return [self.Future(v) for v in values]

    def submit(self, fn: Callable, *args: Any, **_: Any) -> Any:
        return self.Future((fn, [a.value if isinstance(a, self.Future) else a for a in args]))

    def gather(self, futures: list) -> list:
        if self.lose:
            self.lose -= 1
            raise CancelledError("the only worker holding the data died")
        return [fn(*args) for fn, args in (f.value for f in futures)]

    def cancel(self, futures: list) -> None:
        pass


@scenario
def dask_worker_with_the_data_dies_once(keep: Keep) -> None:
    w = keep(BIG.copy())
    client = _FakeDask(lose=1)
    assert gradcheck.check(_square, w, 2 * w, executor=client, coords="all").passed is True
    assert client.scattered >= 4  # the loss and the parameters shipped again


@scenario
def dask_workers_keep_dying(keep: Keep) -> None:
    w = keep(BIG.copy())
    with pytest.raises(GradCheckError, match="Dask workers died"):
        gradcheck.check(_square, w, 2 * w, executor=_FakeDask(lose=99), coords="all")


def _dies_once(marker: str, parent: int, w: np.ndarray) -> float:
    """A loss whose first call on a worker process kills that worker (and its scattered data)."""
    if os.getpid() != parent and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return float(np.sum(w**2))


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # sockets of the worker that died
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_dask_only_worker_with_the_data_dies(tmp_path: Path) -> None:
    """A real cluster: its one worker dies with the scattered data (FutureCancelledError)."""
    import functools

    distributed = pytest.importorskip("distributed")
    keep = Keep()
    w = keep(BIG.copy())
    with (
        distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                 dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        marker = str(tmp_path / "died")
        loss = functools.partial(_dies_once, marker, os.getpid())
        report = gradcheck.check(loss, w, 2 * w, executor=client, coords="all")
        assert os.path.exists(marker)  # the worker did die, and the check recovered
    assert report.passed is True
    assert all(snapshot(obj) == before for obj, before in keep.kept)


# --- harmed inputs: torch -------------------------------------------------------------------------


def _torch() -> Any:
    torch = pytest.importorskip("torch")
    import gradcheck.torch  # noqa: F401

    return torch


@scenario
def torch_in_place_mul(keep: Keep) -> None:
    torch = _torch()
    a = keep(torch.randn(4, dtype=torch.float64, requires_grad=True))
    with pytest.raises(GradCheckError, match="writes into input0 in place"):
        gradcheck.torch.check_function(lambda t: t.mul_(2), a)


@scenario
def torch_relu_inplace(keep: Keep) -> None:
    torch = _torch()
    x = keep(torch.tensor([-1.0, 0.5, -2.0, 3.0], dtype=torch.float64, requires_grad=True))
    with pytest.raises(GradCheckError, match="in place"):
        gradcheck.torch.check_function(torch.nn.ReLU(inplace=True), x)


@scenario
def torch_in_place_on_an_input_not_checked(keep: Keep) -> None:
    # Like F.batch_norm's running statistics: every call gets fresh copies, so it is checked.
    torch = _torch()
    a = keep(torch.randn(4, dtype=torch.float64, requires_grad=True))
    b = keep(torch.randn(4, dtype=torch.float64))
    assert gradcheck.torch.check_function(lambda u, v: u * v.mul_(3), a, b).passed


@scenario
def torch_in_place_on_a_second_checked_input(keep: Keep) -> None:
    torch = _torch()
    a = keep(torch.randn(4, dtype=torch.float64, requires_grad=True))
    b = keep(torch.randn(4, dtype=torch.float64, requires_grad=True))
    with pytest.raises(GradCheckError, match="input1 in place"):
        gradcheck.torch.check_function(lambda u, v: u * v.mul_(3), a, b)


@scenario
def torch_batch_norm_with_running_statistics_as_arguments(keep: Keep) -> None:
    torch = _torch()
    x, w, b = (keep(torch.randn(*s, dtype=torch.float64, requires_grad=True))
               for s in ((6, 3), (3,), (3,)))
    mean, var = keep(torch.zeros(3, dtype=torch.float64)), keep(torch.ones(3, dtype=torch.float64))
    report = gradcheck.torch.check_function(torch.nn.functional.batch_norm, x, mean, var, w, b, True)
    assert report.passed and list(report.components) == ["input0", "input3", "input4"]


@scenario
def torch_shape_mismatch(keep: Keep) -> None:
    torch = _torch()
    a = keep(torch.randn(4, dtype=torch.float64, requires_grad=True))
    with pytest.raises(LossRaisedError, match="RuntimeError") as info:
        gradcheck.torch.check_function(lambda u: u @ torch.ones(3, dtype=torch.float64), a)
    assert isinstance(info.value.__cause__, RuntimeError)


@scenario
def torch_cuda_without_cuda(keep: Keep) -> None:
    torch = _torch()
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    a = keep(torch.randn(3, dtype=torch.float64, requires_grad=True))
    with pytest.raises(LossRaisedError) as info:
        gradcheck.torch.check_function(lambda u: u.cuda() * 2, a)
    assert info.value.__cause__ is not None


@scenario
def torch_module_wrong_input_shape(keep: Keep) -> None:
    torch = _torch()
    lin = keep(torch.nn.Linear(3, 2).double())
    x = keep(torch.randn(4, 5, dtype=torch.float64))
    with pytest.raises(LossRaisedError, match="mat1 and mat2") as info:
        gradcheck.torch.check_module(lin, x)
    assert isinstance(info.value.__cause__, RuntimeError)


@scenario
def torch_module_in_place_relu_on_its_input(keep: Keep) -> None:
    torch = _torch()
    torch.manual_seed(0)
    net = keep(torch.nn.Sequential(torch.nn.ReLU(inplace=True), torch.nn.Linear(3, 2)).double())
    x = keep(torch.randn(4, 3, dtype=torch.float64))
    assert gradcheck.torch.check_module(net, x).passed is True


@scenario
def torch_out_of_place_function_passes(keep: Keep) -> None:
    torch = _torch()
    a = keep(torch.randn(5, dtype=torch.float64, requires_grad=True))
    assert gradcheck.torch.check_function(lambda t: torch.relu(t) * 2, a).passed is True


# --- approx ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("expression", ["9**9**9**9", "x**(0**-1)", "x**log(-1)"])
def test_approx_constant_parts_that_cannot_be_computed(expression: str) -> None:
    with pytest.raises(ExpressionError, match="constant part"):
        approx(expression)


@scenario
def approx_overflowing_value(keep: Keep) -> None:
    expression = keep("exp(x)*1e308")
    with pytest.raises(ExpressionError, match="not finite"):
        approx(expression)


@scenario
def approx_cli_exit_code_2(keep: Keep) -> None:
    expression = keep("9**9**9**9")
    result = CliRunner().invoke(app, ["approx", expression])
    assert result.exit_code == 2 and "Traceback" not in result.output


# --- output that can be subverted -----------------------------------------------------------------

HOSTILE = {"W\x1b[2J": np.array([0.5, 1.0]), "b\r# injected": np.array([0.25])}


def _hostile_report() -> gradcheck.Report:
    grads = {"W\x1b[2J": 2 * np.array([0.5, 1.0]), "b\r# injected": 3 * np.array([0.25])}
    return gradcheck.check(
        lambda p: float(np.sum(p["W\x1b[2J"] ** 2) + np.sum(p["b\r# injected"] ** 2)),
        HOSTILE, grads,
    )


@scenario
def control_characters_in_the_terminal_table(keep: Keep) -> None:
    keep(HOSTILE)
    text = str(_hostile_report())
    assert "\x1b" not in text and "\r" not in text and "\\x1b[2J" in text


@scenario
def control_characters_in_markdown(keep: Keep) -> None:
    keep(HOSTILE)
    md = _hostile_report().to_markdown()
    assert "\r" not in md and "\x1b" not in md
    assert not any(line.startswith("#") for line in md.splitlines())
    assert sum(line.startswith("| ") for line in md.splitlines()) == 3  # header + 2 rows


@scenario
def control_characters_in_html_and_exact_json(keep: Keep) -> None:
    keep(HOSTILE)
    report = _hostile_report()
    assert "\x1b" not in report.to_html() and "\r" not in report.to_html()
    assert set(json.loads(report.to_json())["components"]) == set(HOSTILE)


@scenario
def lone_surrogate_in_a_name(keep: Keep) -> None:
    p = keep({"x\ud800": np.array([1.0, 2.0])})
    report = gradcheck.check(lambda q: float(np.sum(q["x\ud800"] ** 2)), p,
                             {"x\ud800": np.array([2.0, 4.0])})
    report.to_html().encode("utf-8")
    report.to_markdown().encode("utf-8")
    str(report).encode("utf-8")
    assert report.passed is True


@scenario
def control_characters_in_an_error_message(keep: Keep) -> None:
    from gradcheck.cli._app import _fail

    keep(HOSTILE)
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with redirect_stderr(err):
        _fail(DTypeError("params['\x1b[2J'] is bad"), debug=False)
    assert "\x1b" not in err.getvalue() and "\\x1b" in err.getvalue()


@scenario
def cli_table_with_a_hostile_name(keep: Keep) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "hostile.py"
        target.write_text(
            "import numpy as np\n"
            "def t():\n"
            "    w = {'W\\x1b[2J': np.ones(2)}\n"
            "    return (lambda p: float((p['W\\x1b[2J'] ** 2).sum())), w, "
            "{'W\\x1b[2J': 2 * np.ones(2)}\n"
        )
        keep(target.read_text())
        result = CliRunner().invoke(app, ["check", f"{target}:t"], env={"COLUMNS": "80"})
    assert result.exit_code == 0 and "\x1b[2J" not in result.stdout


@scenario
def cli_json_survives_writes_to_fd_1(keep: Keep) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "noisy.py"
        target.write_text(
            "import os, sys\nimport numpy as np\n"
            "def t():\n"
            "    os.write(1, b'raw fd write\\n')\n"
            "    sys.__stdout__.write('dunder stdout\\n')\n"
            "    def loss(w):\n"
            "        os.write(1, b'x')\n"
            "        return float((w ** 2).sum())\n"
            "    return loss, np.ones(2), 2 * np.ones(2)\n"
        )
        keep(target.read_text())
        out = subprocess.run(
            [sys.executable, "-m", "gradcheck", "check", f"{target}:t", "--json"],
            capture_output=True, text=True, check=False, timeout=120,
            env={**os.environ, "PYTHONPATH": str(Path(gradcheck.__file__).parents[1])},
        )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["passed"] is True
    assert "raw fd write" in out.stderr and "dunder stdout" in out.stderr


@scenario
def cli_json_on_ctrl_c_in_the_base_value(keep: Keep) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "stop.py"
        target.write_text(
            "import numpy as np\n"
            "def t():\n"
            "    def loss(w):\n"
            "        raise KeyboardInterrupt\n"
            "    return loss, np.ones(2), 2 * np.ones(2)\n"
        )
        keep(target.read_text())
        result = CliRunner().invoke(app, ["check", f"{target}:t", "--json"])
    assert result.exit_code == 130
    data = json.loads(result.stdout)
    assert data["passed"] is None and data["verdict"] == "incomplete" and data["interrupted"]


@scenario
def cli_tiny_eps_never_exits_0_on_a_wrong_gradient(keep: Keep) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "wrong.py"
        target.write_text(
            "import numpy as np\n"
            "def t():\n"
            "    w = np.array([0.1, 0.2, -0.3])\n"
            "    return (lambda p: float((p ** 3).sum())), w, -300 * w ** 2\n"
        )
        keep(target.read_text())
        result = CliRunner().invoke(app, ["check", f"{target}:t", "--eps", "1e-20"])
    assert result.exit_code == 1 and "FAILED" in result.stdout


# --- the runner -----------------------------------------------------------------------------------


def test_there_are_at_least_sixty_scenarios() -> None:
    assert len(SCENARIOS) >= 60


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # a hostile loss may overflow on purpose
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_hostile(name: str) -> None:
    keep = Keep()
    SCENARIOS[name](keep)
    assert keep.kept, f"scenario {name} registered no input to compare"
    for obj, before in keep.kept:
        assert snapshot(obj) == before, f"{name} modified an input"
