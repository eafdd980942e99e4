"""gradcheck.tensorflow: tf.custom_gradient functions and Keras 3 models, checked on copies.

TensorFlow is slow to import: the tests here are few, and the module is skipped without it.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gradcheck.report._sentences import NoteCode

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import gradcheck  # noqa: E402
import gradcheck.tensorflow as gtf  # noqa: E402

X = np.random.default_rng(0).standard_normal((3, 4))


def _cube(factor):
    @tf.custom_gradient
    def cube(x):
        return x**3, lambda g: g * factor * x**2

    return cube


def test_custom_gradient_right_passes_and_wrong_fails_named():
    x = tf.constant(X)
    assert gtf.check_function(_cube(3.0), x).passed
    report = gtf.check_function(lambda a, c: _cube(2.9)(a) * c, x, 2.0, names=["x", "c"])
    assert report.suspects == ("x",)
    assert list(report.components) == ["x"]  # a checked input only: constants are not


def test_float32_tensors_and_variables_are_checked_on_float64_copies_and_left_untouched():
    v = tf.Variable(X.astype(np.float32))
    t = tf.constant(np.ones(4, np.float32))
    before = v.numpy().copy()
    report = gtf.check_function(lambda a, b, c: tf.tanh(a * b) * c, v, t, np.float32(2.0))
    assert report.passed, report
    assert set(report.components) == {"input0", "input1"}
    assert any(n.code is NoteCode.PRECISION and n.numbers["evaluated"] == "float64" for n in report.notes)
    assert np.array_equal(v.numpy(), before)


def test_several_outputs_are_checked_together_and_a_python_loop_falls_back_to_one_by_one():
    def fn(x):
        if float(tf.reduce_sum(x)) > 1e9:  # needs a concrete value: vectorized_map cannot
            return x
        return tf.sin(x), tf.exp(x)

    report = gtf.check_function(fn, tf.constant(X[0]))
    assert report.passed, report
    # The protocol's convention: J = Σ_k ⟨output k, R_k⟩, one component per input while it
    # passes (tests/frameworks/test_consistency.py: the pair is named where it fails).
    assert set(report.components) == {"input0"}
    assert any(n.code is NoteCode.EVALUATION and n.numbers["path"] == "fallback" for n in report.notes)


def test_a_keras_model_passes_and_a_wrong_custom_gradient_layer_is_named_untouched():
    class Cube(keras.layers.Layer):
        def __init__(self, factor, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def build(self, shape):
            self.scale = self.add_weight(shape=(shape[-1],), initializer="ones", name="scale")

        def call(self, x):
            return _cube(self.factor)(x * self.scale)

    def model(factor):
        keras.utils.set_random_seed(0)
        return keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(4, activation="tanh", name="dense"),
                Cube(factor, name="cube"),
            ],
            name="net",
        )

    right = model(3.0)
    inputs = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    saved = [w.numpy().copy() for w in right.weights]
    report = gtf.check_model(right, inputs, loss_fn=lambda out: tf.reduce_mean(out**2))
    assert report.passed, report
    assert list(report.components) == ["dense/kernel", "dense/bias", "cube/scale"]
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(saved, right.weights, strict=True))
    wrong = gtf.check_model(model(2.0), inputs)
    assert not wrong.passed and "cube/scale" in wrong.suspects
    assert wrong.origin == "cube/scale"  # where the bug starts, layers in model order


def test_bad_input_is_an_option_error_naming_the_fix():
    with pytest.raises(gradcheck.OptionError, match="nothing to check"):
        gtf.check_function(tf.sin, X)  # a NumPy array is a constant
    with pytest.raises(gradcheck.OptionError, match="Keras 3 model"):
        gtf.check_model(lambda x: x, tf.constant(X))
    with pytest.raises(gradcheck.OptionError, match=r"order=2.*first-order"):
        gtf.check_function(tf.sin, tf.constant(X), order=2)
    with pytest.raises(gradcheck.OptionError, match="unexpected option 'ordr'"):
        gtf.check_function(tf.sin, tf.constant(X), ordr=2)
    with pytest.raises(gradcheck.OptionError, match="keyword argument of fn"):
        gtf.check_function(lambda x, k=1.0: tf.sin(k * x), tf.constant(X), k=2.0)


def test_importing_the_door_does_not_import_tensorflow():
    code = "import sys, gradcheck.tensorflow; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_nested_inputs_are_checked_by_path_and_a_bug_is_localized_variables_untouched():
    """A list of tf.Variables (``W, b = params``, the course pattern) or a dict: each floating
    leaf is checked and named by its path; they were constants before (nothing to check)."""
    W = tf.Variable(X[:, :2].astype(np.float32))
    b = tf.Variable(np.zeros(2, np.float32))
    saved = W.numpy().copy()

    @tf.custom_gradient
    def affine(x, W, b):
        def grad(g):
            return g @ tf.transpose(W), tf.transpose(x) @ g, 0.5 * tf.reduce_sum(g, 0)  # b: ½

        return x @ W + b, grad

    def loss(params, x):
        W, b = params
        return tf.reduce_mean(tf.tanh(affine(x, W, b)) ** 2)

    x = tf.constant(np.ones((5, 3), np.float32))
    report = gtf.check_function(loss, [W, b], x, names=["params", "x"])
    assert list(report.components) == ["params.0", "params.1", "x"]
    assert report.suspects == ("params.1",)
    assert np.array_equal(W.numpy(), saved) and isinstance(W, tf.Variable)
    report = gtf.check_function(lambda p: tf.reduce_sum(p["w"] ** 2), {"w": tf.constant(X)})
    assert report.passed and list(report.components) == ["input0.w"]


def test_none_gradients_are_explained_whether_j_depends_on_the_input_or_not():
    x = tf.constant(X)
    unused = gtf.check_function(lambda a, b: tf.reduce_sum(a**2), x, x + 1)
    assert unused.passed
    assert any(n.code is NoteCode.UNCONNECTED and n.tensor == "input1"
               and not n.numbers["depends"] for n in unused.notes)
    cut = gtf.check_function(lambda a: tf.reduce_sum(tf.constant(a.numpy()) ** 2), x)
    assert not cut.passed and cut.suspects == ("input0",)
    assert any(n.code is NoteCode.UNCONNECTED and n.numbers["depends"] for n in cut.notes)


def test_empty_complex_and_bfloat16_inputs():
    x = tf.constant(X)
    report = gtf.check_function(lambda a, e: tf.reduce_sum(a**2) + tf.reduce_sum(e), x,
                                tf.zeros((0, 3), tf.float64))
    assert report.passed and list(report.components) == ["input0"]
    assert any(n.code is NoteCode.EMPTY and n.tensor == "input1" and n.numbers["shape"] == (0, 3) for n in report.notes)
    nothing = gtf.check_function(tf.reduce_sum, tf.zeros((0,)))
    assert nothing.components == {} and "NOTHING CHECKED" in str(nothing)
    assert nothing.passed is None
    with pytest.raises(gradcheck.OptionError, match=r"input1 is complex128.*tf\.complex\(re, im\)"):
        gtf.check_function(lambda a, z: tf.reduce_sum(a) * tf.abs(z[0]), x, tf.constant([1 + 2j]))
    half = tf.cast(x, tf.bfloat16)
    assert gtf.check_function(lambda a: tf.reduce_sum(a**3), half).passed  # float64 copies
    with pytest.raises(gradcheck.GradCheckError, match="bfloat16.*precision='auto'"):
        gtf.check_function(lambda a: tf.reduce_sum(a**2), half, precision="native")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(gradcheck.GradCheckError, match=r"scalar J.*shape \(3, 2\)"):
        gtf.check_model(model, X.astype(np.float32), loss_fn=lambda out: out)


def test_a_nan_gradient_from_the_where_trap_gets_the_fix():
    x = tf.constant([-1.0, 0.5], tf.float64)
    with pytest.raises(gradcheck.NonFiniteError, match=r"grads\['input0'\]") as info:
        gtf.check_function(lambda a: tf.reduce_sum(tf.where(a > 0, a**0.5, 0.0)), x)
    assert any("tf.where" in n and "double-where" in n for n in info.value.__notes__)


def test_keras_variables_are_checked_in_their_own_dtype_a_bare_layer_is_no_false_alarm():
    """stateless_call casts each value to its variable's dtype: float64 copies of a float32
    kernel were rounded to float32 while a bare layer's output (float64 inputs, no autocast)
    read float64, so a right Dense layer failed with 0.2% 'errors'."""
    layer = keras.layers.Dense(2)
    layer.build((None, 4))
    report = gtf.check_model(layer, X.astype(np.float32))
    assert report.passed, report
    assert any("Keras casts every value" in n for n in report.notes)
    with pytest.raises(gradcheck.GradCheckError, match=r"set_floatx\('float64'\)"):
        gtf.check_model(layer, X.astype(np.float32), precision="float64")
