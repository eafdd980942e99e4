"""Bad input gets a GradCheckError that names the parameter, the index and the fix."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck.report._sentences import NoteCode


def square(p) -> float:
    return float(sum(np.sum(v**2) for v in p.values()))


def test_transposed_gradient_is_suggested() -> None:
    params = {"W2": np.ones((300, 10))}
    with pytest.raises(gradcheck.ShapeMismatchError, match=r"grads\['W2'\] has shape \(10, 300\).*transposed"):
        gradcheck.check(square, params, {"W2": np.ones((10, 300))})


def test_wrong_shape_names_both_shapes() -> None:
    with pytest.raises(gradcheck.ShapeMismatchError, match=r"\(3,\).*\(4,\)"):
        gradcheck.check(square, {"b": np.ones(4)}, {"b": np.ones(3)})


def test_missing_and_extra_keys() -> None:
    params = {"W1": np.ones(2), "b1": np.ones(2)}
    with pytest.raises(gradcheck.StructureError, match="lacks 'b1'.*extra 'db1'"):
        gradcheck.check(square, params, {"W1": np.ones(2), "db1": np.ones(2)})


def test_non_scalar_loss() -> None:
    with pytest.raises(gradcheck.LossOutputError, match=r"shape \(3,\).*mean"):
        gradcheck.check(lambda p: p["w"] ** 2, {"w": np.ones(3)}, {"w": np.ones(3)})


def test_string_loss() -> None:
    with pytest.raises(gradcheck.LossOutputError):
        gradcheck.check(lambda p: "1.0", {"w": np.ones(3)}, {"w": np.ones(3)})


@pytest.mark.parametrize("where", ["params", "grads"])
def test_nan_names_parameter_and_index(where: str) -> None:
    params, grads = {"W1": np.ones((2, 3))}, {"W1": np.ones((2, 3))}
    {"params": params, "grads": grads}[where]["W1"][1, 2] = np.nan
    with pytest.raises(gradcheck.NonFiniteError, match=rf"{where}\['W1'\].*\(1, 2\)"):
        gradcheck.check(square, params, grads)


def test_nan_loss() -> None:
    def loss(p):
        with np.errstate(all="ignore"):
            return float(np.log(p["w"][0] - 1))

    with pytest.raises(gradcheck.NonFiniteError, match="log"):
        gradcheck.check(loss, {"w": np.ones(1)}, {"w": np.ones(1)})


@pytest.mark.parametrize("dtype", [np.int64, object, np.bool_])
def test_integer_and_object_arrays(dtype) -> None:
    with pytest.raises(gradcheck.DTypeError, match=r"params\['w'\] has dtype"):
        gradcheck.check(square, {"w": np.ones(3, dtype=dtype)}, {"w": np.ones(3)})


def test_empty_params() -> None:
    with pytest.raises(gradcheck.StructureError, match="no arrays"):
        gradcheck.check(square, {}, {})
    with pytest.raises(gradcheck.StructureError, match="empty"):
        gradcheck.check(square, {"w": np.ones(0)}, {"w": np.ones(0)})


def test_list_leaf_is_explained() -> None:
    with pytest.raises(gradcheck.DTypeError, match="np.asarray"):
        gradcheck.check(square, {"w": ["a"]}, {"w": ["a"]})


@pytest.mark.parametrize(
    ("option", "match"),
    [
        (dict(scheme="sideways"), "'central', 'forward', 'backward', 'richardson', 'complex'"),
        (dict(eps=0.0), "positive"),
        (dict(eps=-1e-6), "positive"),
        (dict(eps=float("nan")), "positive"),
        (dict(seed=1.5), "seed"),
        (dict(rtol={"int32": 1e-3}), "floating dtype"),
    ],
)
def test_options_are_validated_with_valid_values(option, match: str) -> None:
    with pytest.raises(gradcheck.OptionError, match=match):
        gradcheck.check(square, {"w": np.ones(2)}, {"w": 2 * np.ones(2)}, **option)


def test_errors_are_value_errors() -> None:
    assert issubclass(gradcheck.GradCheckError, ValueError)
    for name in gradcheck.__all__:
        obj = getattr(gradcheck, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, gradcheck.GradCheckError)


def test_complex_scheme_on_a_real_only_loss() -> None:
    with pytest.raises(gradcheck.GradCheckError, match="complex"):
        gradcheck.check(lambda p: float(np.sum(np.abs(p["w"]))), {"w": np.ones(2)}, {"w": np.ones(2)}, scheme="complex")


def test_rtol_override_widens_the_allowance() -> None:
    w = np.array([1.0, 2.0])
    off = {"w": 2 * w * (1 + 1e-6)}
    assert not gradcheck.check(square, {"w": w}, off).passed
    assert gradcheck.check(square, {"w": w}, off, rtol={np.float64: 1e-5}).passed


def test_course_gradient_names_are_read_as_the_parameters() -> None:
    # The deep-learning course's convention: grads["dW1"] is the gradient of params["W1"].
    rng = np.random.default_rng(0)
    p = {"W1": rng.standard_normal((3, 2)), "b1": rng.standard_normal((3, 1))}
    right = {"dW1": 2 * p["W1"], "db1": 2 * p["b1"]}

    def loss(q):
        return float(np.sum(q["W1"] ** 2) + np.sum(q["b1"] ** 2))

    report = gradcheck.check(loss, p, right)
    assert report.passed and set(report.components) == {"W1", "b1"}
    wrong = {"dW1": 2 * p["W1"], "db1": 4 * p["b1"]}
    report = gradcheck.check(loss, p, wrong)
    assert not report.passed and report.suspects == ("b1",)


@pytest.mark.parametrize(
    "grads",
    [
        {"dW1": np.ones(2)},  # one name short: still an error, naming the missing one
        {"dW1": np.ones(2), "b1": np.ones(1), "db1": np.ones(1)},  # ambiguous
        {"dW1": np.ones(2), "db1": np.ones(1), "c": np.ones(1)},  # an extra outside the naming
    ],
)
def test_course_names_that_do_not_map_one_to_one_are_refused(grads) -> None:
    p = {"W1": np.ones(2), "b1": np.ones(1)}
    with pytest.raises(gradcheck.StructureError, match="same keys"):
        gradcheck.check(lambda q: float(np.sum(q["W1"] ** 2)), p, grads)


def test_course_names_missing_one_name_it_in_the_course_naming() -> None:
    p = {"W1": np.ones(2), "b1": np.ones(1)}
    with pytest.raises(gradcheck.StructureError, match=r"lacks 'db1' \(the gradient of params\['b1'\]"):
        gradcheck.check(lambda q: float(np.sum(q["W1"] ** 2)), p, {"dW1": 2 * np.ones(2)})


def test_course_intermediates_in_the_grads_dict_are_left_out_with_a_note() -> None:
    # backward_propagation_n returns dZ3, dA2, ... in the same dict as dW1, db1, ...
    rng = np.random.default_rng(0)
    p = {"W1": rng.standard_normal((3, 2)), "b1": rng.standard_normal((3, 1))}
    grads = {"dZ1": np.ones((3, 5)), "dW1": 2 * p["W1"], "dA0": np.ones((2, 5)),
             "db1": 2 * p["b1"]}

    def loss(q):
        return float(np.sum(q["W1"] ** 2) + np.sum(q["b1"] ** 2))

    report = gradcheck.check(loss, p, grads)
    assert report.passed and list(report.components) == ["W1", "b1"]
    assert [n.numbers["extras"] for n in report.notes if n.code is NoteCode.EXTRA_GRADS] == [
        ["dZ1", "dA0"]]
    grads["db1"] = 3 * p["b1"]
    assert gradcheck.check(loss, p, grads).suspects == ("b1",)


def test_a_loss_and_grads_pair_passed_as_grads_is_named() -> None:
    w = np.ones(3)
    with pytest.raises(gradcheck.StructureError, match=r"\(loss, grads\) pair.*grads\[1\]"):
        gradcheck.check(square, {"w": w}, (1.0, {"w": 2 * w}))
    with pytest.raises(gradcheck.StructureError, match=r"\(loss, grads\) pair"):
        gradcheck.check(square, {"w": w}, lambda q: (1.0, {"w": 2 * q["w"]}))


def test_grads_in_another_structure_with_the_same_arrays_is_named() -> None:
    w, b = np.ones(3), np.ones(2)
    with pytest.raises(gradcheck.StructureError, match=r"dict\(zip\(params, grads\)\)"):
        gradcheck.check(square, {"w": w, "b": b}, [2 * w, 2 * b])


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "return"),
        ([1.0], "one number"),
        ((1.0, {"w": np.ones(3)}), r"\(loss, grads\) or \(cost, cache\).*f\(p\)\[0\]"),
    ],
)
def test_a_loss_returning_a_container_gets_the_fix(value, match: str) -> None:
    with pytest.raises(gradcheck.LossOutputError, match=match):
        gradcheck.check(lambda q: value, {"w": np.ones(3)}, {"w": np.ones(3)})


@pytest.mark.parametrize(("leaf", "match"), [(3, "the int 3.*3.0"), (True, "the bool True"),
                                             (None, "is None")])
def test_python_scalars_and_none_as_leaves_are_explained(leaf, match: str) -> None:
    with pytest.raises(gradcheck.DTypeError, match=match):
        gradcheck.check(square, {"w": np.ones(2), "k": leaf}, {"w": np.ones(2), "k": 1.0})
    with pytest.raises(gradcheck.GradCheckError, match="None"):
        gradcheck.check(square, {"w": np.ones(2)}, None)


def test_a_loss_raising_at_one_entry_names_it_by_its_index() -> None:
    w = np.zeros((2, 3))

    def loss(q):
        if q["w"][1, 2] > 0 and np.count_nonzero(q["w"]) == 1:
            raise ZeroDivisionError("boom")
        return float(np.sum(q["w"] ** 2))

    with pytest.raises(gradcheck.LossRaisedError, match=r"w\[1, 2\] set to"):
        gradcheck.check(loss, {"w": w}, {"w": 2 * w})


def test_aliased_parameters_get_a_note_and_are_checked_as_partials() -> None:
    w = np.linspace(0.1, 1.0, 4)
    params = {"a": w, "b": w[1:]}

    def loss(q):
        return float(np.sum(np.sin(q["a"])) + np.sum(q["b"] ** 2))

    report = gradcheck.check(loss, params, {"a": np.cos(w), "b": 2 * w[1:]})
    assert report.passed
    assert [n.numbers["pairs"] for n in report.notes
            if n.code is NoteCode.SHARED_MEMORY] == ["a and b"]
    plain = gradcheck.check(loss, {"a": w.copy(), "b": w[1:].copy()},
                            {"a": np.cos(w), "b": 2 * w[1:]})
    assert NoteCode.SHARED_MEMORY not in plain.note_codes


def test_grads_in_another_order_than_params_is_named() -> None:
    # Nielsen's backprop returns (nabla_b, nabla_w); params given as (weights, biases)
    weights, biases = [np.ones((5, 4)), np.ones((3, 5))], [np.ones((5, 1)), np.ones((3, 1))]
    with pytest.raises(gradcheck.ShapeMismatchError, match=r"another order.*grads\['1.0'\]"):
        gradcheck.check(lambda p: 0.0, (weights, biases), (biases, weights))
    with pytest.raises(gradcheck.ShapeMismatchError, match="transposed"):
        gradcheck.check(lambda p: 0.0, {"W": np.ones((2, 3)), "V": np.ones((3, 2))},
                        {"W": np.ones((3, 2)), "V": np.ones((2, 3))})


def test_micrograd_values_and_their_int_grads() -> None:
    class Value:  # micrograd's: the number in .data, .grad starts as the int 0
        def __init__(self, data: float) -> None:
            self.data, self.grad = data, 0

    ps = [Value(1.0), Value(2.0)]
    with pytest.raises(gradcheck.DTypeError, match=r"\.data holds the value \(1.0\)"):
        gradcheck.check(lambda p: 0.0, ps, [0.0, 0.0])
    # a parameter the loss never reads keeps the int 0 as its gradient: that is its gradient
    report = gradcheck.check(lambda p: float(p[0] ** 2), [p.data for p in ps], [2.0, 0])
    assert report.passed
    assert not gradcheck.check(lambda p: float(p[0] ** 2), [1.0, 2.0], [2.0, 1]).passed


def test_course_names_in_per_layer_dicts() -> None:
    # params[l] = {"W": ..., "b": ...}, grads[l] = {"dW": ..., "db": ..., "dZ": ...}
    rng = np.random.default_rng(1)
    p = [{"W": rng.standard_normal((2, 3)), "b": rng.standard_normal(3)}]

    def loss(q):
        return float(np.sum(q[0]["W"] ** 2) + np.sum(q[0]["b"] ** 2))

    grads = [{"dW": 2 * p[0]["W"], "db": 2 * p[0]["b"], "dZ": np.ones(4)}]
    report = gradcheck.check(loss, p, grads)
    assert report.passed and list(report.components) == ["0.W", "0.b"]
    assert [n.numbers["extras"] for n in report.notes
            if n.code is NoteCode.EXTRA_GRADS] == [["0.dZ"]]
    grads[0]["dW"] = -grads[0]["dW"]
    assert gradcheck.check(loss, p, grads).suspects == ("0.W",)
