"""Bad input gets a GradCheckError that names the parameter, the index and the fix."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck


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
        if isinstance(obj, type) and issubclass(obj, Exception):
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
        {"dW1": np.ones(2)},  # one name short: still an error, naming both
        {"dW1": np.ones(2), "db1": np.ones(1), "dc": np.ones(1)},  # one too many
        {"dW1": np.ones(2), "b1": np.ones(1), "db1": np.ones(1)},  # ambiguous
    ],
)
def test_course_names_that_do_not_map_one_to_one_are_refused(grads) -> None:
    p = {"W1": np.ones(2), "b1": np.ones(1)}
    with pytest.raises(gradcheck.StructureError, match="same keys"):
        gradcheck.check(lambda q: float(np.sum(q["W1"] ** 2)), p, grads)
