# ruff: noqa: B905, SIM300 - the courses' own style (zip without strict=, 1 - Y)
"""Third-party course code, written the way the courses write it (not in gradcheck's style).

Each builder returns a ``Course`` case: how a student of that course would call gradcheck on
their code (``check`` with the course's own parameter and gradient structures, or
``check_layer`` for cs231n's forward/backward pairs), and the truth: the tensors whose gradient
is wrong (empty for a correct implementation, computed against the correct backprop, not typed
in) and the kind a diagnosis should ideally name. Sources, from memory, faithful in conventions:

* ng: deeplearning.ai course 2, "Gradient Checking" (3-layer ReLU/ReLU/sigmoid net, X of shape
  (features, m), column-vector biases, ``forward_propagation_n`` / ``backward_propagation_n``
  returning a dict with dZ3, dW3, db3, dA2, ... and the assignment's two deliberate bugs), the
  "Regularization" assignment (L2 with λ/(2m)·ΣW², dropout with ``np.random.seed(1)`` inside
  the forward pass) and course 1's L-layer model (``L_model_backward`` returning dA0, dW1, ...).
* cs231n: layers.py (affine, relu, batchnorm train mode, dropout with a seeded mask,
  conv_forward_naive, max_pool_forward_naive, softmax_loss, svm_loss), rnn_layers.py (rnn_step,
  lstm_step, word_embedding) and TwoLayerNet.loss returning (loss, grads).
* nielsen: neuralnetworksanddeeplearning.com network.py (lists of (n, 1) biases and (n_out,
  n_in) weights, sigmoid, quadratic cost, ``backprop`` returning (nabla_b, nabla_w)).
* micrograd: a scalar autograd Value class and an MLP of Neurons.
* d2l: softmax regression from scratch (W of (784, 10) shrunk, b, cross_entropy by indexing).
* seed: a NumPy 784-300-10 sigmoid net whose backprop applies sigmoid' to the activation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# --- the case record ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Course:
    """One call of gradcheck on course code, and its truth."""

    name: str
    api: str  # "check" or "layer"
    args: tuple  # check: (loss, params, grads); layer: (forward, backward, *inputs)
    faulty: frozenset[str] = field(default=frozenset())
    kinds: tuple[str, ...] = ()  # the kinds a diagnosis should name (any of them), if known
    options: dict[str, Any] = field(default_factory=dict)
    fast: bool = False  # part of the quick subset run by the tests

    def run(self) -> Any:
        import gradcheck

        if self.api == "layer":
            return gradcheck.check_layer(*self.args, **self.options)
        return gradcheck.check(*self.args, **self.options)


def _differ(a: Any, b: Any) -> bool:
    """Whether a planted bug changed a gradient (beyond the rounding of a summation order:
    micrograd sums in the order of a set of nodes)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return bool(np.max(np.abs(a - b), initial=0) > 1e-9 * max(1.0, np.max(np.abs(b), initial=0)))


# --- deeplearning.ai: gradient checking (course 2, week 1) --------------------------------------


def relu(x):
    s = np.maximum(0, x)
    return s


def sigmoid(x):
    s = 1 / (1 + np.exp(-x))
    return s


def gradient_check_n_test_case():
    np.random.seed(1)
    x = np.random.randn(4, 3)
    y = np.array([1, 1, 0])
    W1 = np.random.randn(5, 4)
    b1 = np.random.randn(5, 1)
    W2 = np.random.randn(3, 5)
    b2 = np.random.randn(3, 1)
    W3 = np.random.randn(1, 3)
    b3 = np.random.randn(1, 1)
    parameters = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}
    return x, y, parameters


def forward_propagation_n(X, Y, parameters):
    m = X.shape[1]
    W1 = parameters["W1"]
    b1 = parameters["b1"]
    W2 = parameters["W2"]
    b2 = parameters["b2"]
    W3 = parameters["W3"]
    b3 = parameters["b3"]

    # LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID
    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)

    # Cost
    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cost = 1. / m * np.sum(logprobs)

    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return cost, cache


def backward_propagation_n(X, Y, cache, bugs=True):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T) * (2 if bugs else 1)  # the assignment's first bug
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T)
    db1 = (4. if bugs else 1.) / m * np.sum(dZ1, axis=1, keepdims=True)  # the second bug

    gradients = {"dZ3": dZ3, "dW3": dW3, "db3": db3,
                 "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
                 "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}
    return gradients


def ng_gradient_check(bugs: bool, only_parameters: bool = False) -> Course:
    X, Y, parameters = gradient_check_n_test_case()
    cost, cache = forward_propagation_n(X, Y, parameters)
    gradients = backward_propagation_n(X, Y, cache, bugs=bugs)
    if only_parameters:  # what gradients_to_vector keeps
        gradients = {k: gradients[k] for k in ("dW1", "db1", "dW2", "db2", "dW3", "db3")}
    name = "ng/gradient_check_n " + ("assignment bugs" if bugs else "fixed")
    name += " (dW/db keys only)" if only_parameters else " (dZ3, dA2, ... kept)"
    return Course(
        name, "check",
        (lambda p: forward_propagation_n(X, Y, p)[0], parameters, gradients),
        faulty=frozenset({"W2", "b1"}) if bugs else frozenset(),
        kinds=("scale",) if bugs else (), options={"batch_size": X.shape[1]},
        fast=not only_parameters,
    )


# --- deeplearning.ai: regularization (L2 and dropout) --------------------------------------------


def _reg_case():
    np.random.seed(1)
    X = np.random.randn(3, 5)
    Y = np.array([[1, 1, 0, 1, 0]])
    W1 = np.random.randn(2, 3)
    b1 = np.random.randn(2, 1)
    W2 = np.random.randn(3, 2)
    b2 = np.random.randn(3, 1)
    W3 = np.random.randn(1, 3)
    b3 = np.random.randn(1, 1)
    return X, Y, {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}


def forward_propagation(X, parameters):
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)
    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache


def compute_cost(a3, Y):
    m = Y.shape[1]
    logprobs = np.multiply(-np.log(a3), Y) + np.multiply(-np.log(1 - a3), 1 - Y)
    cost = 1. / m * np.nansum(logprobs)
    return cost


def compute_cost_with_regularization(A3, Y, parameters, lambd):
    m = Y.shape[1]
    W1 = parameters["W1"]
    W2 = parameters["W2"]
    W3 = parameters["W3"]
    cross_entropy_cost = compute_cost(A3, Y)
    L2_regularization_cost = (1 / m) * (lambd / 2) * (
        np.sum(np.square(W1)) + np.sum(np.square(W2)) + np.sum(np.square(W3)))
    cost = cross_entropy_cost + L2_regularization_cost
    return cost


def backward_propagation_with_regularization(X, Y, cache, lambd, bug=None):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T) + (0 if bug == "no_reg_dW3" else lambd / m * W3)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T) + lambd / m * W2
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    if bug == "reg_on_db2":
        db2 = db2 + lambd / m * b2
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T) + lambd / m * W1
    if bug == "no_1_over_m_dW1":
        dW1 = np.dot(dZ1, X.T) + lambd / m * W1
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    gradients = {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2,
                 "dZ2": dZ2, "dW2": dW2, "db2": db2, "dA1": dA1,
                 "dZ1": dZ1, "dW1": dW1, "db1": db1}
    return gradients


def ng_l2(bug: str | None) -> Course:
    X, Y, parameters = _reg_case()
    lambd = 0.7

    def loss(p):
        a3, _ = forward_propagation(X, p)
        return compute_cost_with_regularization(a3, Y, p, lambd)

    _, cache = forward_propagation(X, parameters)
    grads = backward_propagation_with_regularization(X, Y, cache, lambd, bug=bug)
    truth = {None: (frozenset(), ()), "no_reg_dW3": (frozenset({"W3"}), ("regularization",)),
             "reg_on_db2": (frozenset({"b2"}), ("regularization",)),
             "no_1_over_m_dW1": (frozenset({"W1"}), ("scale",))}[bug]
    return Course(f"ng/L2 regularization {bug or 'correct'}", "check", (loss, parameters, grads),
                  faulty=truth[0], kinds=truth[1], options={"batch_size": X.shape[1]},
                  fast=bug in (None, "no_reg_dW3"))


def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):
    np.random.seed(1)
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    D1 = np.random.rand(A1.shape[0], A1.shape[1])
    D1 = (D1 < keep_prob).astype(int)
    A1 = A1 * D1
    A1 = A1 / keep_prob
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    D2 = np.random.rand(A2.shape[0], A2.shape[1])
    D2 = (D2 < keep_prob).astype(int)
    A2 = A2 * D2
    A2 = A2 / keep_prob
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)
    cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache


def backward_propagation_with_dropout(X, Y, cache, keep_prob, bug=None):
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    if bug != "mask_omitted_harmless":  # A2 > 0 below masks dZ2 by D2 anyway
        dA2 = dA2 * D2
    if bug != "no_keep_prob":
        dA2 = dA2 / keep_prob
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T)
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dA1 = dA1 * D1
    dA1 = dA1 / keep_prob
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T)
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    gradients = {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2,
                 "dZ2": dZ2, "dW2": dW2, "db2": db2, "dA1": dA1,
                 "dZ1": dZ1, "dW1": dW1, "db1": db1}
    return gradients


def ng_dropout(bug: str | None) -> Course:
    X, Y, parameters = _reg_case()
    keep_prob = 0.86
    _, cache = forward_propagation_with_dropout(X, parameters, keep_prob)
    grads = backward_propagation_with_dropout(X, Y, cache, keep_prob, bug=bug)
    good = backward_propagation_with_dropout(X, Y, cache, keep_prob)
    faulty = frozenset(k for k in parameters if _differ(grads["d" + k], good["d" + k]))
    state = np.random.get_state()

    def loss(p):  # the assignment's forward seeds the global RNG: give it back afterwards
        try:
            a3, _ = forward_propagation_with_dropout(X, p, keep_prob)
            return compute_cost(a3, Y)
        finally:
            np.random.set_state(state)

    np.random.set_state(state)
    kinds = {"no_keep_prob": ("scale", "delta")}.get(bug or "", ())
    return Course(f"ng/dropout {bug or 'correct'}", "check", (loss, parameters, grads),
                  faulty=faulty, kinds=kinds, options={"batch_size": X.shape[1]},
                  fast=bug == "mask_omitted_harmless")


# --- deeplearning.ai: course 1, the L-layer model ------------------------------------------------


def initialize_parameters_deep(layer_dims, seed=3):
    np.random.seed(seed)
    parameters = {}
    L = len(layer_dims)
    for l in range(1, L):  # noqa: E741 - the course's name
        parameters["W" + str(l)] = np.random.randn(layer_dims[l], layer_dims[l - 1]) * 0.5
        parameters["b" + str(l)] = np.random.randn(layer_dims[l], 1) * 0.1
    return parameters


def linear_activation_forward(A_prev, W, b, activation):
    Z = np.dot(W, A_prev) + b
    A = sigmoid(Z) if activation == "sigmoid" else relu(Z)
    return A, ((A_prev, W, b), Z)


def L_model_forward(X, parameters):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):  # noqa: E741
        A_prev = A
        A, cache = linear_activation_forward(A_prev, parameters["W" + str(l)],
                                             parameters["b" + str(l)], activation="relu")
        caches.append(cache)
    AL, cache = linear_activation_forward(A, parameters["W" + str(L)],
                                          parameters["b" + str(L)], activation="sigmoid")
    caches.append(cache)
    return AL, caches


def compute_cost_deep(AL, Y):
    m = Y.shape[1]
    cost = (-1 / m) * np.sum(np.multiply(Y, np.log(AL)) + np.multiply(1 - Y, np.log(1 - AL)))
    return np.squeeze(cost)


def relu_backward(dA, cache):
    Z = cache
    dZ = np.array(dA, copy=True)
    dZ[Z <= 0] = 0
    return dZ


def sigmoid_backward(dA, cache, bug=None):
    Z = cache
    s = 1 / (1 + np.exp(-Z))
    if bug == "sigmoid_prime_of_a":  # s*(1-s) applied to A = s: sigmoid'(a)
        a = s
        s = 1 / (1 + np.exp(-a))
    dZ = dA * s * (1 - s)
    return dZ


def linear_backward(dZ, cache, bug=None):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    if bug == "transposed_dW":  # square layer: the shape matches, the values do not
        dW = 1 / m * np.dot(dZ, A_prev.T).T
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def L_model_backward(AL, Y, caches, bug=None):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = - (np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    if bug == "wrong_sign_dAL":
        dAL = -dAL
    linear_cache, activation_cache = caches[L - 1]
    dZ = sigmoid_backward(dAL, activation_cache, bug=bug)
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        linear_backward(dZ, linear_cache)
    for l in reversed(range(L - 1)):  # noqa: E741
        linear_cache, activation_cache = caches[l]
        dZ = relu_backward(grads["dA" + str(l + 1)], activation_cache)
        dA_prev_temp, dW_temp, db_temp = linear_backward(
            dZ, linear_cache, bug=bug if l == 1 else None)
        grads["dA" + str(l)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp
    return grads


def ng_deep(bug: str | None) -> Course:
    np.random.seed(1)
    layer_dims = [5, 4, 4, 1]  # W2 is square (4, 4)
    X = np.random.randn(5, 8)
    Y = (np.random.rand(1, 8) > 0.5).astype(float)
    parameters = initialize_parameters_deep(layer_dims)
    AL, caches = L_model_forward(X, parameters)
    grads = L_model_backward(AL, Y, caches, bug=bug)
    good = L_model_backward(AL, Y, caches)
    faulty = frozenset(k for k in parameters if _differ(grads["d" + k], good["d" + k]))
    kinds = {"wrong_sign_dAL": ("sign",), "transposed_dW": ("transposed",),
             "sigmoid_prime_of_a": ("delta", "scale")}.get(bug or "", ())
    return Course(f"ng/L_model_backward {bug or 'correct'}", "check",
                  (lambda p: compute_cost_deep(L_model_forward(X, p)[0], Y), parameters, grads),
                  faulty=faulty, kinds=kinds, options={"batch_size": 8},
                  fast=bug in (None, "transposed_dW"))


# --- cs231n: layers.py ---------------------------------------------------------------------------


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache, bug=None):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    if bug == "dw_transposed":  # a square w: x.T @ dout computed as dout.T @ x
        dw = dout.T.dot(x.reshape(x.shape[0], -1))
    db = np.sum(dout, axis=0)
    if bug == "db_mean":
        db = np.mean(dout, axis=0)
    return dx, dw, db


def relu_forward_231(x):
    out = np.maximum(0, x)
    cache = x
    return out, cache


def relu_backward_231(dout, cache, bug=None):
    x = cache
    dx = dout * (x > 0)
    if bug == "no_mask":
        dx = dout
    return dx


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    out, cache = None, None
    if mode == "train":
        sample_mean = np.mean(x, axis=0)
        sample_var = np.var(x, axis=0)
        x_hat = (x - sample_mean) / np.sqrt(sample_var + eps)
        out = gamma * x_hat + beta
        cache = (x, x_hat, sample_mean, sample_var, gamma, eps)
        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var
    else:
        x_hat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * x_hat + beta
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache, bug=None):
    x, x_hat, mu, var, gamma, eps = cache
    N = x.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    dvar = np.sum(dx_hat * (x - mu) * -0.5 * (var + eps) ** (-1.5), axis=0)
    dmu = np.sum(dx_hat * -1 / np.sqrt(var + eps), axis=0) + dvar * np.mean(-2 * (x - mu), axis=0)
    if bug == "no_dmu":
        dmu = 0
    if bug == "no_dvar":
        dvar = 0
    dx = dx_hat / np.sqrt(var + eps) + dvar * 2 * (x - mu) / N + dmu / N
    return dx, dgamma, dbeta


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = None
    out = None
    if mode == "train":
        mask = (np.random.rand(*x.shape) < p) / p
        out = x * mask
    elif mode == "test":
        out = x
    cache = (dropout_param, mask)
    out = out.astype(x.dtype, copy=False)
    return out, cache


def dropout_backward(dout, cache, bug=None):
    dropout_param, mask = cache
    mode = dropout_param["mode"]
    dx = None
    if mode == "train":
        dx = dout * mask
        if bug == "mask_not_applied":
            dx = dout
    elif mode == "test":
        dx = dout
    return dx


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    out[n, f, i, j] = np.sum(x_pad[n, :, hs:hs + HH, ws:ws + WW] * w[f]) + b[f]
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache, bug=None):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    if bug == "stride_off_by_one":
        stride = stride - 1
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.sum(dout, axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    dw[f] += x_pad[n, :, hs:hs + HH, ws:ws + WW] * dout[n, f, i, j]
                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    H_out = 1 + (H - ph) // stride
    W_out = 1 + (W - pw) // stride
    out = np.zeros((N, C, H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]
            out[:, :, i, j] = np.max(window, axis=(2, 3))
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache, bug=None):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw]
                    if bug == "spread":  # the gradient spread over the window, not routed
                        dx[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw] += \
                            dout[n, c, i, j] / (ph * pw)
                        continue
                    mask = window == np.max(window)
                    dx[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw] += \
                        mask * dout[n, c, i, j]
    return dx


def softmax_loss(x, y, bug=None):
    shifted_logits = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted_logits), axis=1, keepdims=True)
    log_probs = shifted_logits - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    if bug != "no_1_over_N":
        dx /= N
    return loss, dx


def svm_loss(x, y, bug=None):
    N = x.shape[0]
    correct_class_scores = x[np.arange(N), y]
    margins = np.maximum(0, x - correct_class_scores[:, np.newaxis] + 1.0)
    margins[np.arange(N), y] = 0
    loss = np.sum(margins) / N
    num_pos = np.sum(margins > 0, axis=1)
    dx = np.zeros_like(x)
    dx[margins > 0] = 1
    if bug != "no_correct_class_term":
        dx[np.arange(N), y] -= num_pos
    dx /= N
    return loss, dx


def cs231n_layer(layer: str, bug: str | None) -> Course:
    np.random.seed(231)
    x = np.random.randn(10, 2, 3)
    w = np.random.randn(6, 5)
    b = np.random.randn(5)
    name = f"cs231n/{layer} {bug or 'correct'}"
    kinds: tuple[str, ...] = ()
    fast = False
    if layer == "affine":
        if bug == "dw_transposed":
            w = np.random.randn(6, 6)
            b = np.random.randn(6)
            kinds = ("transposed",)
        if bug == "db_mean":
            kinds = ("scale",)
        fast = bug in (None, "db_mean")
        args = (affine_forward, lambda d, c: affine_backward(d, c, bug), x, w, b)
        faulty = {"dw_transposed": {"w"}, "db_mean": {"b"}}.get(bug or "", set())
    elif layer == "relu":
        args = (relu_forward_231, lambda d, c: relu_backward_231(d, c, bug),
                np.random.randn(10, 10))
        faulty = {"x"} if bug else set()
    elif layer == "batchnorm":
        N, D = 4, 5
        xb = 5 * np.random.randn(N, D) + 12
        gamma = np.random.randn(D)
        beta = np.random.randn(D)
        bn_param = {"mode": "train"}
        args = (batchnorm_forward, lambda d, c: batchnorm_backward(d, c, bug), xb, gamma, beta,
                bn_param)
        faulty = {"x"} if bug else set()
        fast = bug == "no_dmu"
    elif layer == "dropout":
        xd = np.random.randn(10, 10) + 10
        dropout_param = {"mode": "train", "p": 0.2, "seed": 123}
        args = (dropout_forward, lambda d, c: dropout_backward(d, c, bug), xd, dropout_param)
        faulty = {"x"} if bug else set()
        fast = True
    elif layer == "conv":
        xc = np.random.randn(2, 3, 7, 7)
        wc = np.random.randn(2, 3, 3, 3)
        bc = np.random.randn(2)
        conv_param = {"stride": 2, "pad": 1}
        args = (conv_forward_naive, lambda d, c: conv_backward_naive(d, c, bug), xc, wc, bc,
                conv_param)
        faulty = {"x", "w"} if bug else set()
        fast = bug is not None
    elif layer == "maxpool":
        xm = np.random.randn(3, 2, 8, 8)
        pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        args = (max_pool_forward_naive, lambda d, c: max_pool_backward_naive(d, c, bug), xm,
                pool_param)
        faulty = {"x"} if bug else set()
    else:
        raise ValueError(layer)
    return Course(name, "layer", args, faulty=frozenset(faulty), kinds=kinds, fast=fast)


def cs231n_loss_layer(which: str, bug: str | None) -> Course:
    np.random.seed(231)
    num_classes, num_inputs = 10, 50
    x = 0.001 * np.random.randn(num_inputs, num_classes)
    y = np.random.randint(num_classes, size=num_inputs)
    fn = softmax_loss if which == "softmax" else svm_loss
    kinds = ("scale",) if bug == "no_1_over_N" else ()
    return Course(f"cs231n/{which}_loss {bug or 'correct'}", "check",
                  (lambda p: fn(p, y)[0], x, fn(x, y, bug)[1]),
                  faulty=frozenset({"theta"} if bug else ()), kinds=kinds,
                  options={"batch_size": num_inputs} if which == "softmax" else {},
                  fast=which == "svm")


# --- cs231n: TwoLayerNet.loss returning (loss, grads) ------------------------------------------


class TwoLayerNet:
    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10, weight_scale=1e-3,
                 reg=0.0, bug=None):
        self.params = {}
        self.reg = reg
        self.bug = bug
        self.params["W1"] = weight_scale * np.random.randn(input_dim, hidden_dim)
        self.params["b1"] = np.zeros(hidden_dim)
        self.params["W2"] = weight_scale * np.random.randn(hidden_dim, num_classes)
        self.params["b2"] = np.zeros(num_classes)

    def loss(self, X, y=None):
        W1, b1, W2, b2 = self.params["W1"], self.params["b1"], self.params["W2"], self.params["b2"]
        h, cache1 = affine_forward(X, W1, b1)
        a, cache_r = relu_forward_231(h)
        scores, cache2 = affine_forward(a, W2, b2)
        if y is None:
            return scores
        loss, grads = 0, {}
        data_loss, dscores = softmax_loss(scores, y)
        loss = data_loss + 0.5 * self.reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        da, dW2, db2 = affine_backward(dscores, cache2)
        dh = relu_backward_231(da, cache_r)
        dx, dW1, db1 = affine_backward(dh, cache1)
        grads["W1"] = dW1 + (0 if self.bug == "no_reg" else self.reg * W1)
        grads["W2"] = dW2 + self.reg * W2 * (2 if self.bug == "reg_times_2" else 1)
        grads["b1"] = db1
        grads["b2"] = -db2 if self.bug == "sign_db2" else db2
        return loss, grads


def cs231n_two_layer(bug: str | None) -> Course:
    np.random.seed(0)
    N, D, H, C = 3, 5, 50, 7
    X = np.random.randn(N, D)
    y = np.random.randint(C, size=N)
    model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=1e-1, reg=0.7,
                        bug=bug)
    _, grads = model.loss(X, y)

    def f(p):  # the notebook's f = lambda _: model.loss(X, y)[0], made to read its argument
        saved = model.params
        model.params = p
        try:
            return model.loss(X, y)[0]
        finally:
            model.params = saved

    truth = {None: (set(), ()), "no_reg": ({"W1"}, ("regularization",)),
             "reg_times_2": ({"W2"}, ("regularization",)), "sign_db2": ({"b2"}, ("sign",))}[bug]
    return Course(f"cs231n/TwoLayerNet.loss {bug or 'correct'}", "check", (f, model.params, grads),
                  faulty=frozenset(truth[0]), kinds=truth[1], fast=bug == "no_reg")


# --- cs231n: assignment 1 (linear classifiers with loops) and FullyConnectedNet -------------------


def svm_loss_naive(W, X, y, reg, bug=None):
    dW = np.zeros(W.shape)
    num_classes = W.shape[1]
    num_train = X.shape[0]
    loss = 0.0
    for i in range(num_train):
        scores = X[i].dot(W)
        correct_class_score = scores[y[i]]
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - correct_class_score + 1  # note delta = 1
            if margin > 0:
                loss += margin
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    loss /= num_train
    dW /= num_train
    loss += reg * np.sum(W * W)
    dW += (1 if bug == "reg_without_2" else 2) * reg * W
    return loss, dW


def softmax_loss_naive(W, X, y, reg, bug=None):
    loss = 0.0
    dW = np.zeros_like(W)
    num_train = X.shape[0]
    for i in range(num_train):
        scores = X[i].dot(W)
        scores -= np.max(scores)
        p = np.exp(scores) / np.sum(np.exp(scores))
        loss += -np.log(p[y[i]])
        p[y[i]] -= 1
        dW += np.outer(X[i], p)
    loss /= num_train
    if bug != "dW_not_averaged":
        dW /= num_train
    loss += reg * np.sum(W * W)
    dW += 2 * reg * W
    return loss, dW


def cs231n_linear(which: str, bug: str | None) -> Course:
    np.random.seed(1)
    N, D, C = 20, 31, 10  # a bias column folded into X, as the assignment does
    X = np.hstack([np.random.randn(N, D - 1), np.ones((N, 1))])
    y = np.random.randint(C, size=N)
    W = np.random.randn(D, C) * 0.0001
    fn = svm_loss_naive if which == "svm" else softmax_loss_naive
    reg = 5e1 if which == "svm" else 5e0
    kinds = {"reg_without_2": ("regularization",), "dW_not_averaged": ("scale",)}.get(bug or "", ())
    return Course(f"cs231n/{which}_loss_naive {bug or 'correct'}", "check",
                  (lambda w: fn(w, X, y, reg)[0], W, fn(W, X, y, reg, bug)[1]),
                  faulty=frozenset({"theta"} if bug else ()), kinds=kinds,
                  options={"batch_size": N} if bug == "dW_not_averaged" else {},
                  fast=bug == "reg_without_2")


class FullyConnectedNet:
    """cs231n's {affine - [batchnorm] - relu - [dropout]} x (L - 1) - affine - softmax."""

    def __init__(self, hidden_dims, input_dim, num_classes, dropout_keep_ratio=1, reg=0.0,
                 weight_scale=1e-2, seed=None, bug=None):
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.params = {}
        self.bug = bug
        dims = [input_dim] + hidden_dims + [num_classes]
        for i in range(self.num_layers):
            self.params[f"W{i + 1}"] = weight_scale * np.random.randn(dims[i], dims[i + 1])
            self.params[f"b{i + 1}"] = np.zeros(dims[i + 1])
            if i < self.num_layers - 1:
                self.params[f"gamma{i + 1}"] = np.ones(dims[i + 1])
                self.params[f"beta{i + 1}"] = np.zeros(dims[i + 1])
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.bn_params = [{"mode": "train"} for i in range(self.num_layers - 1)]

    def loss(self, X, y=None):
        caches = []
        out = X
        for i in range(1, self.num_layers):
            out, c1 = affine_forward(out, self.params[f"W{i}"], self.params[f"b{i}"])
            out, c2 = batchnorm_forward(out, self.params[f"gamma{i}"], self.params[f"beta{i}"],
                                        self.bn_params[i - 1])
            out, c3 = relu_forward_231(out)
            c4 = None
            if self.use_dropout:
                out, c4 = dropout_forward(out, self.dropout_param)
            caches.append((c1, c2, c3, c4))
        L = self.num_layers
        scores, cL = affine_forward(out, self.params[f"W{L}"], self.params[f"b{L}"])
        loss, dscores = softmax_loss(scores, y)
        grads = {}
        for i in range(1, L + 1):
            loss += 0.5 * self.reg * np.sum(self.params[f"W{i}"] ** 2)
        dout, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, cL)
        grads[f"W{L}"] += self.reg * self.params[f"W{L}"]
        for i in range(L - 1, 0, -1):
            c1, c2, c3, c4 = caches[i - 1]
            if self.use_dropout and self.bug != "dropout_not_in_backward":
                dout = dropout_backward(dout, c4)
            dout = relu_backward_231(dout, c3)
            bug = "no_dvar" if self.bug == "bn_no_dvar" else None
            dout, grads[f"gamma{i}"], grads[f"beta{i}"] = batchnorm_backward(dout, c2, bug)
            dout, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dout, c1)
            grads[f"W{i}"] += self.reg * self.params[f"W{i}"]
        return loss, grads


def cs231n_fc(bug: str | None) -> Course:
    np.random.seed(231)
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X = np.random.randn(N, D)
    y = np.random.randint(C, size=(N,))
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, reg=3.14, weight_scale=5e-2,
                              dropout_keep_ratio=0.5, seed=123, bug=bug)
    model_params = {k: v.copy() for k, v in model.params.items()}
    state = np.random.get_state()
    _, grads = model.loss(X, y)
    np.random.set_state(state)

    def f(p):
        saved = model.params
        model.params = p
        try:
            return model.loss(X, y)[0]
        finally:
            model.params = saved
            np.random.set_state(state)

    good = FullyConnectedNet.loss(_twin(model, None), X, y)[1]
    np.random.set_state(state)
    faulty = frozenset(k for k in grads if _differ(grads[k], good[k]))
    return Course(f"cs231n/FullyConnectedNet bn+dropout {bug or 'correct'}", "check",
                  (f, model_params, grads), faulty=faulty, fast=bug is None)


def _twin(obj: Any, bug: str | None) -> Any:
    twin = type(obj).__new__(type(obj))
    twin.__dict__.update(obj.__dict__, bug=bug)
    return twin


# --- cs231n: rnn_layers.py -----------------------------------------------------------------------


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x.dot(Wx) + prev_h.dot(Wh) + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache


def rnn_step_backward(dnext_h, cache, bug=None):
    x, prev_h, Wx, Wh, next_h = cache
    dtanh = dnext_h * (1 - next_h ** 2)
    if bug == "dtanh_no_square":
        dtanh = dnext_h * (1 - next_h)
    dx = dtanh.dot(Wx.T)
    dprev_h = dtanh.dot(Wh.T)
    dWx = x.T.dot(dtanh)
    dWh = prev_h.T.dot(dtanh)
    db = np.sum(dtanh, axis=0)
    return dx, dprev_h, dWx, dWh, db


def _sigmoid_231(x):
    pos_mask = x >= 0
    neg_mask = x < 0
    z = np.zeros_like(x)
    z[pos_mask] = np.exp(-x[pos_mask])
    z[neg_mask] = np.exp(x[neg_mask])
    top = np.ones_like(x)
    top[neg_mask] = z[neg_mask]
    return top / (1 + z)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x.dot(Wx) + prev_h.dot(Wh) + b
    i = _sigmoid_231(a[:, :H])
    f = _sigmoid_231(a[:, H:2 * H])
    o = _sigmoid_231(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache, bug=None):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tc = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tc ** 2)
    if bug == "no_dh_into_c":
        dc = dnext_c
    do = dnext_h * tc
    di = dc * g
    df = dc * prev_c
    dg = dc * i
    dprev_c = dc * f
    da = np.hstack((di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)))
    dx = da.dot(Wx.T)
    dprev_h = da.dot(Wh.T)
    dWx = x.T.dot(da)
    dWh = prev_h.T.dot(da)
    db = np.sum(da, axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


def word_embedding_forward(x, W):
    out = W[x, :]
    cache = (x, W)
    return out, cache


def word_embedding_backward(dout, cache, bug=None):
    x, W = cache
    dW = np.zeros_like(W)
    if bug == "assign_not_accumulate":
        dW[x] = dout
    else:
        np.add.at(dW, x, dout)
    return dW


def cs231n_rnn(layer: str, bug: str | None) -> Course:
    np.random.seed(231)
    N, D, H = 4, 5, 6
    x = np.random.randn(N, D)
    h = np.random.randn(N, H)
    name = f"cs231n/{layer} {bug or 'correct'}"
    if layer == "rnn_step":
        Wx = np.random.randn(D, H)
        Wh = np.random.randn(H, H)
        b = np.random.randn(H)
        args = (rnn_step_forward, lambda d, c: rnn_step_backward(d, c, bug), x, h, Wx, Wh, b)
        faulty = {"x", "prev_h", "Wx", "Wh", "b"} if bug else set()
        return Course(name, "layer", args, faulty=frozenset(faulty), fast=bug is not None)
    if layer == "lstm_step":
        prev_c = np.random.randn(N, H)
        Wx = np.random.randn(D, 4 * H)
        Wh = np.random.randn(H, 4 * H)
        b = np.random.randn(4 * H)
        args = (lstm_step_forward, lambda dh, dc, c: lstm_step_backward(dh, dc, c, bug), x, h,
                prev_c, Wx, Wh, b)
        faulty = {"x", "prev_h", "prev_c", "Wx", "Wh", "b"} if bug else set()
        return Course(name, "layer", args, faulty=frozenset(faulty))
    V, T = 5, 3
    xi = np.random.randint(V, size=(N, T))
    W = np.random.randn(V, D)
    args = (word_embedding_forward, lambda d, c: word_embedding_backward(d, c, bug), xi, W)
    return Course(name, "layer", args, faulty=frozenset({"W"} if bug else ()),
                  fast=bug is not None)


# --- Nielsen: network.py -------------------------------------------------------------------------


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


class Network:
    def __init__(self, sizes, bug=None):
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [np.random.randn(y, 1) for y in sizes[1:]]
        self.weights = [np.random.randn(y, x) for x, y in zip(sizes[:-1], sizes[1:])]
        self.bug = bug

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        if self.bug == "sigmoid_prime_of_a":
            delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(activations[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):  # noqa: E741
            z = zs[-l]
            sp = sigmoid_prime(z)
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp
            if self.bug == "no_transpose_in_delta":  # only square layers run
                delta = np.dot(self.weights[-l + 1], delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        if self.bug == "sign_nabla_w0":
            nabla_w[0] = -nabla_w[0]
        return (nabla_b, nabla_w)

    def cost_derivative(self, output_activations, y):
        return (output_activations - y)


def nielsen(bug: str | None) -> Course:
    np.random.seed(12)
    sizes = [3, 4, 4, 4] if bug == "no_transpose_in_delta" else [4, 5, 3]
    net = Network(sizes, bug=bug)
    x = np.random.rand(sizes[0], 1)
    y = np.zeros((sizes[-1], 1))
    y[1] = 1.0

    def cost(p):  # the quadratic cost of network.py, 0.5 ||a - y||^2, for one example
        biases, weights = p
        a = x
        for b, w in zip(biases, weights, strict=True):
            a = sigmoid(np.dot(w, a) + b)
        return 0.5 * float(np.sum((a - y) ** 2))

    grads = net.backprop(x, y)
    good = Network.backprop(_with_bug(net, None), x, y)
    faulty = frozenset(
        f"{i}.{j}" for i in range(2) for j in range(len(grads[i]))
        if _differ(grads[i][j], good[i][j])
    )
    kinds = {"sign_nabla_w0": ("sign",), "sigmoid_prime_of_a": ("delta",)}.get(bug or "", ())
    return Course(f"nielsen/network.py {bug or 'correct'}", "check",
                  (cost, (net.biases, net.weights), grads), faulty=faulty, kinds=kinds,
                  fast=bug in (None, "sign_nabla_w0"))


def _with_bug(net: Network, bug: str | None) -> Network:
    twin = Network.__new__(Network)
    twin.__dict__.update(net.__dict__, bug=bug)
    return twin


# --- micrograd -----------------------------------------------------------------------------------


class Value:
    def __init__(self, data, _children=(), _op="", bug=None):
        self.data = data
        self.grad = 0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op
        self.bug = bug

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other, bug=self.bug)
        out = Value(self.data + other.data, (self, other), "+", bug=self.bug)

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other, bug=self.bug)
        out = Value(self.data * other.data, (self, other), "*", bug=self.bug)

        def _backward():
            if self.bug == "assign_not_accumulate":  # the lecture's bug: = instead of +=
                self.grad = other.data * out.grad
                other.grad = self.data * out.grad
            else:
                self.grad += other.data * out.grad
                other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, other):
        out = Value(self.data ** other, (self,), f"**{other}", bug=self.bug)

        def _backward():
            self.grad += (other * self.data ** (other - 1)) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        t = np.tanh(self.data)
        out = Value(t, (self,), "tanh", bug=self.bug)

        def _backward():
            self.grad += ((1 - t) if self.bug == "tanh_no_square" else (1 - t ** 2)) * out.grad
        out._backward = _backward
        return out

    def backward(self):
        topo = []
        visited = set()

        def build_topo(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)
        build_topo(self)
        self.grad = 1
        for v in reversed(topo):
            v._backward()

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __sub__(self, other):
        return self + (-other)

    def __neg__(self):
        return self * -1


class Neuron:
    def __init__(self, nin, rng, bug=None):
        self.w = [Value(rng.uniform(-1, 1), bug=bug) for _ in range(nin)]
        self.b = Value(rng.uniform(-1, 1), bug=bug)

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.tanh()

    def parameters(self):
        return self.w + [self.b]


class MLP:
    def __init__(self, nin, nouts, rng, bug=None):
        sz = [nin] + nouts
        self.layers = [[Neuron(sz[i], rng, bug) for _ in range(sz[i + 1])] for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = [n(x) for n in layer]
        return x[0] if len(x) == 1 else x

    def parameters(self):
        return [p for layer in self.layers for n in layer for p in n.parameters()]


def micrograd(bug: str | None) -> Course:
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]

    def model_loss(values):
        model = MLP(3, [4, 4, 1], np.random.default_rng(0), bug)
        for p, v in zip(model.parameters(), values, strict=True):
            p.data = v
        ypred = [model(x) for x in xs]
        return model, sum(((yout - ygt) ** 2 for ygt, yout in zip(ys, ypred)), Value(0.0))

    model0 = MLP(3, [4, 4, 1], np.random.default_rng(0), bug)
    params = [p.data for p in model0.parameters()]  # a list of Python floats
    model, loss = model_loss(params)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    good_model, good = MLP(3, [4, 4, 1], np.random.default_rng(0)), None
    for p, v in zip(good_model.parameters(), params, strict=True):
        p.data = v
    good = sum(((good_model(x) - ygt) ** 2 for ygt, x in zip(ys, xs)), Value(0.0))
    good.backward()
    faulty = frozenset(str(i) for i, (p, g) in enumerate(zip(good_model.parameters(), grads))
                       if _differ(p.grad, g))
    return Course(f"micrograd/MLP(3, [4, 4, 1]) {bug or 'correct'}", "check",
                  (lambda p: model_loss(p)[1].data, params, grads), faulty=faulty,
                  fast=bug is None)


# --- d2l: softmax regression from scratch --------------------------------------------------------


def d2l_softmax(X):
    X_exp = np.exp(X)
    partition = X_exp.sum(1, keepdims=True)
    return X_exp / partition


def d2l_net(X, W, b):
    return d2l_softmax(np.dot(X.reshape((-1, W.shape[0])), W) + b)


def d2l_cross_entropy(y_hat, y):
    return -np.log(y_hat[range(len(y_hat)), y])


def d2l(bug: str | None) -> Course:
    rng = np.random.default_rng(0)
    num_inputs, num_outputs, n = 49, 10, 32  # 7x7 "images" instead of 28x28
    W = rng.normal(0, 0.01, size=(num_inputs, num_outputs))
    b = np.zeros(num_outputs)
    X = rng.random((n, 1, 7, 7))
    y = rng.integers(0, num_outputs, n)

    def loss(p):
        return d2l_cross_entropy(d2l_net(X, p["W"], p["b"]), y).mean()

    P = d2l_net(X, W, b)
    P[range(n), y] -= 1
    dW = X.reshape(n, -1).T @ P / n
    db = P.sum(0) / n
    if bug == "no_1_over_n":
        dW = X.reshape(n, -1).T @ P
    if bug == "sign":
        db = -db
    truth = {None: (set(), ()), "no_1_over_n": ({"W"}, ("scale",)), "sign": ({"b"}, ("sign",))}
    return Course(f"d2l/softmax regression {bug or 'correct'}", "check",
                  (loss, {"W": W, "b": b}, {"W": dW, "b": db}), faulty=frozenset(truth[bug][0]),
                  kinds=truth[bug][1], options={"batch_size": n}, fast=bug == "no_1_over_n")


# --- the seed's net: NumPy 784-300-10 ------------------------------------------------------------


def seed_net(bug: bool, m: int = 20) -> Course:
    rng = np.random.default_rng(3)
    X = (rng.random((m, 784)) < 0.19) * rng.random((m, 784))  # MNIST-like pixels in [0, 1]
    Y = np.eye(10)[rng.integers(0, 10, m)]
    params = {"W1": rng.standard_normal((784, 300)) * 0.05, "b1": np.zeros(300),
              "W2": rng.standard_normal((300, 10)) * 0.1, "b2": np.zeros(10)}

    def sig(z):
        return 1.0 / (1.0 + np.exp(-z))

    def sig_prime(z):
        return sig(z) * (1 - sig(z))

    def forward(p):
        a1 = sig(X @ p["W1"] + p["b1"])
        a2 = sig(a1 @ p["W2"] + p["b2"])
        return a1, a2

    def loss(p):
        return float(0.5 * np.sum((forward(p)[1] - Y) ** 2) / m)

    a1, a2 = forward(params)
    z1, z2 = X @ params["W1"] + params["b1"], a1 @ params["W2"] + params["b2"]
    d2 = (a2 - Y) * (sig_prime(a2) if bug else sig_prime(z2)) / m
    d1 = (d2 @ params["W2"].T) * (sig_prime(a1) if bug else sig_prime(z1))
    grads = {"W1": X.T @ d1, "b1": d1.sum(0), "W2": a1.T @ d2, "b2": d2.sum(0)}
    return Course(f"seed/784-300-10 sigmoid {'sigmoid_prime(a)' if bug else 'correct'}", "check",
                  (loss, params, grads),
                  faulty=frozenset({"W1", "b1", "W2", "b2"} if bug else ()),
                  kinds=("delta",) if bug else ())


# --- the collection ------------------------------------------------------------------------------


def courses() -> list[Callable[[], Course]]:
    """Every case, as a builder (building is cheap; running is what costs)."""
    out: list[Callable[[], Course]] = []
    for bugs in (False, True):
        for only in (False, True):
            out.append(lambda b=bugs, o=only: ng_gradient_check(b, o))
    for bug in (None, "no_reg_dW3", "reg_on_db2", "no_1_over_m_dW1"):
        out.append(lambda b=bug: ng_l2(b))
    for bug in (None, "mask_omitted_harmless", "no_keep_prob"):
        out.append(lambda b=bug: ng_dropout(b))
    for bug in (None, "wrong_sign_dAL", "transposed_dW", "sigmoid_prime_of_a"):
        out.append(lambda b=bug: ng_deep(b))
    layer_bugs = {"affine": ("dw_transposed", "db_mean"), "relu": ("no_mask",),
                  "batchnorm": ("no_dmu", "no_dvar"), "dropout": ("mask_not_applied",),
                  "conv": ("stride_off_by_one",), "maxpool": ("spread",)}
    for layer, bugs_ in layer_bugs.items():
        for bug in (None, *bugs_):
            out.append(lambda la=layer, b=bug: cs231n_layer(la, b))
    for which, bug in (("softmax", "no_1_over_N"), ("svm", "no_correct_class_term")):
        for b in (None, bug):
            out.append(lambda w=which, b=b: cs231n_loss_layer(w, b))
    for bug in (None, "no_reg", "reg_times_2", "sign_db2"):
        out.append(lambda b=bug: cs231n_two_layer(b))
    for which, bug in (("svm", "reg_without_2"), ("softmax", "dW_not_averaged")):
        for b in (None, bug):
            out.append(lambda w=which, b=b: cs231n_linear(w, b))
    for bug in (None, "dropout_not_in_backward", "bn_no_dvar"):
        out.append(lambda b=bug: cs231n_fc(b))
    for layer, bug in (("rnn_step", "dtanh_no_square"), ("lstm_step", "no_dh_into_c"),
                       ("word_embedding", "assign_not_accumulate")):
        for b in (None, bug):
            out.append(lambda la=layer, b=b: cs231n_rnn(la, b))
    for bug in (None, "sigmoid_prime_of_a", "no_transpose_in_delta", "sign_nabla_w0"):
        out.append(lambda b=bug: nielsen(b))
    for bug in (None, "assign_not_accumulate", "tanh_no_square"):
        out.append(lambda b=bug: micrograd(b))
    for bug in (None, "no_1_over_n", "sign"):
        out.append(lambda b=bug: d2l(b))
    for bug in (False, True):
        out.append(lambda b=bug: seed_net(b))
    return out
