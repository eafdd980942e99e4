"""``check_layer``: cs231n-style layers (forward -> out, cache; backward(dout, cache))."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck import ShapeMismatchError, StructureError
from gradcheck.report._sentences import NoteCode

RNG = np.random.default_rng(0)


# ---- layers as students write them, with switches that plant the usual mistakes ----

def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache, bug=None):
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    if bug == "db_mean":
        db = dout.mean(axis=0)
    if bug == "dx_no_reshape_sign":
        dx = -dx
    if bug == "dw_scaled":
        dw = 2 * dw
    return dx, dw, db


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache, bug=None):
    x = cache
    if bug == "leaky":
        return np.where(x > 0, dout, 0.1 * dout)
    dx = dout  # in place, as in the course notes' skeleton: the check must not care
    dx[x <= 0] = 0
    return dx


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    mu, var = x.mean(axis=0), x.var(axis=0)
    xhat = (x - mu) / np.sqrt(var + eps)
    # the notes' running averages, written into bn_param (the check must not change yours)
    momentum = bn_param.get("momentum", 0.9)
    bn_param["running_mean"] = momentum * bn_param.get("running_mean", 0) + (1 - momentum) * mu
    return gamma * xhat + beta, (xhat, gamma, var, eps)


def batchnorm_backward(dout, cache, bug=None):
    xhat, gamma, var, eps = cache
    m = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    mean_term = dxhat.sum(axis=0)
    var_term = xhat * (dxhat * xhat).sum(axis=0)
    if bug == "no_var_term":
        var_term = 0.0
    dx = (m * dxhat - mean_term - var_term) / (m * np.sqrt(var + eps))
    if bug == "dgamma_sign":
        dgamma = -dgamma
    if bug == "dbeta_keepdims":
        dbeta = dout.sum(axis=0, keepdims=True)
    return dx, dgamma, dbeta


def lstm_like_forward(x, wh, wc):
    """Two outputs and a cache (cs231n's lstm_step_forward returns next_h, next_c, cache)."""
    h, c = np.tanh(x @ wh), x @ wc
    return h, c, (x, wh, wc, h)


def lstm_like_backward(dh, dc, cache):
    x, wh, wc, h = cache
    da = dh * (1 - h**2)
    return da @ wh.T + dc @ wc.T, x.T @ da, x.T @ dc


def _affine_inputs():
    return RNG.standard_normal((5, 2, 3)), RNG.standard_normal((6, 4)), RNG.standard_normal(4)


def _bn_inputs():
    return (RNG.standard_normal((8, 5)) * 2 + 1, 1 + 0.2 * RNG.standard_normal(5),
            0.1 * RNG.standard_normal(5), {"mode": "train", "eps": 1e-5})


# ---- correct layers pass ----

def test_affine_relu_batchnorm_pass_with_components_named_after_arguments():
    r = gradcheck.check_layer(affine_forward, affine_backward, *_affine_inputs())
    assert r.passed and tuple(r.components) == ("x", "w", "b")
    x = RNG.standard_normal((4, 6))
    r = gradcheck.check_layer(relu_forward, relu_backward, x)
    assert r.passed and tuple(r.components) == ("x",)
    r = gradcheck.check_layer(batchnorm_forward, batchnorm_backward, *_bn_inputs())
    assert r.passed and tuple(r.components) == ("x", "gamma", "beta")
    assert r.notes[-1].code is NoteCode.LAYER_CHECK
    assert r.notes[-1].numbers["passed_through"] == ["bn_param (dict)"]


def test_pass_through_inputs_and_arrays_are_never_modified():
    x, gamma, beta, bn_param = _bn_inputs()
    before = [a.copy() for a in (x, gamma, beta)]
    saved = dict(bn_param)
    gradcheck.check_layer(batchnorm_forward, batchnorm_backward, x, gamma, beta, bn_param)
    assert bn_param == saved  # running_mean was written into copies only
    for a, b in zip((x, gamma, beta), before, strict=True):
        assert np.array_equal(a, b)


def test_several_outputs_each_get_a_cotangent():
    x, wh, wc = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 2)), RNG.standard_normal((4, 5))
    r = gradcheck.check_layer(lstm_like_forward, lstm_like_backward, x, wh, wc)
    assert r.passed and tuple(r.components) == ("x", "wh", "wc")
    assert r.notes[-1].code is NoteCode.LAYER_CHECK and r.notes[-1].numbers["outputs"] == 2

    def wrong(dh, dc, cache):  # ignores the second output's cotangent in dx
        x, wh, wc, h = cache
        da = dh * (1 - h**2)
        return da @ wh.T, x.T @ da, x.T @ dc

    assert gradcheck.check_layer(lstm_like_forward, wrong, x, wh, wc).suspects == ("x",)


def test_forward_without_cache_and_backward_of_dout_only():
    w = RNG.standard_normal((3, 3))
    r = gradcheck.check_layer(np.sin, np.cos, w)  # opaque signatures: named input0
    assert not r.passed  # backward(dout) must return dout * cos(x); cos alone is wrong
    x = RNG.standard_normal(6)

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    def sigmoid_backward(dout):  # a closure over x: no cache
        s = sigmoid(x)
        return dout * s * (1 - s)

    r = gradcheck.check_layer(sigmoid, sigmoid_backward, x)
    assert r.passed and tuple(r.components) == ("x",)


def test_non_float_inputs_pass_through_and_options_apply():
    def embed_forward(idx, table, scale):
        return scale * table[idx], (idx, table.shape, scale)

    def embed_backward(dout, cache):
        idx, shape, scale = cache
        dtable = np.zeros(shape)
        np.add.at(dtable, idx, scale * dout)
        return dtable

    idx, table = np.array([0, 2, 2, 1]), RNG.standard_normal((3, 4))
    r = gradcheck.check_layer(embed_forward, embed_backward, idx, table, 3, scheme="forward",
                              coords=8, seed=3)
    assert r.passed and tuple(r.components) == ("table",) and r.scheme == "forward"
    assert r.components["table"].checked == 8
    layer = r.notes[-1]
    assert layer.code is NoteCode.LAYER_CHECK and layer.numbers["seed"] == 3
    assert layer.numbers["passed_through"] == ["idx (ndarray)", "scale (int)"]


def test_float32_inputs_are_judged_with_their_precision():
    x, w, b = (a.astype(np.float32) for a in _affine_inputs())
    r = gradcheck.check_layer(affine_forward, affine_backward, x, w, b)
    assert r.passed and r.components["w"].dtype == "float32"


# ---- planted bugs are named ----

@pytest.mark.parametrize(
    ("forward", "backward", "inputs", "bug", "suspects"),
    [
        (affine_forward, affine_backward, _affine_inputs, "db_mean", ("b",)),
        (affine_forward, affine_backward, _affine_inputs, "dx_no_reshape_sign", ("x",)),
        (affine_forward, affine_backward, _affine_inputs, "dw_scaled", ("w",)),
        (relu_forward, relu_backward, lambda: (RNG.standard_normal((4, 6)),), "leaky", ("x",)),
        (batchnorm_forward, batchnorm_backward, _bn_inputs, "no_var_term", ("x",)),
        (batchnorm_forward, batchnorm_backward, _bn_inputs, "dgamma_sign", ("gamma",)),
    ],
)
def test_planted_bugs_are_named(forward, backward, inputs, bug, suspects):
    r = gradcheck.check_layer(forward, lambda dout, cache: backward(dout, cache, bug=bug),
                              *inputs())
    assert not r.passed and r.suspects == suspects


def test_a_gradient_off_by_size1_axes_is_judged_on_its_values_with_a_note():
    r = gradcheck.check_layer(batchnorm_forward,
                              lambda d, c: batchnorm_backward(d, c, bug="dbeta_keepdims"),
                              *_bn_inputs())
    assert r.passed is True
    assert any(n.code is NoteCode.SIZE_ONE_AXES and n.numbers["found"] == [("beta", (1, 5), (5,))]
               for n in r.notes)


def test_a_gradient_of_another_size_is_still_refused():
    with pytest.raises(ShapeMismatchError, match=r"dbeta has shape \(1, 4\) but beta has shape "):
        gradcheck.check_layer(batchnorm_forward,
                              lambda d, c: (*batchnorm_backward(d, c)[:2],
                                            batchnorm_backward(d, c)[2][None, :4]),
                              *_bn_inputs())


def test_wrong_number_of_gradients_names_the_inputs():
    with pytest.raises(StructureError, match=r"backward returned 2 gradients but the layer has 3 "
                       r"differentiable inputs \(x, w, b"):
        gradcheck.check_layer(affine_forward, lambda d, c: affine_backward(d, c)[:2],
                              *_affine_inputs())
    with pytest.raises(StructureError, match="none of the 1 inputs is a float array"):
        gradcheck.check_layer(relu_forward, relu_backward, np.arange(4))


def test_the_cotangent_comes_from_the_seed():
    inputs = _affine_inputs()
    a = gradcheck.check_layer(affine_forward, affine_backward, *inputs, seed=1)
    b = gradcheck.check_layer(affine_forward, affine_backward, *inputs, seed=1)
    c = gradcheck.check_layer(affine_forward, affine_backward, *inputs, seed=2)
    assert a.components["w"].numeric == b.components["w"].numeric
    assert a.components["w"].numeric != c.components["w"].numeric
    assert a.passed and c.passed
