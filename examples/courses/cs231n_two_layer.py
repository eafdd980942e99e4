# ruff: noqa: N803, N806 - the course's names (X, N, D)
"""cs231n, assignment 1/2: the layers (``check_layer``) and ``TwoLayerNet.loss`` (``(J, grad)``).

The notebook checks each layer with ``eval_numerical_gradient_array`` and prints one
``rel_error`` per gradient, then the net with ``loss, grads = model.loss(X, y)``. Here:

1. ``affine_backward`` whose ``db`` keeps its dims (``np.sum(dout, axis=0, keepdims=True)``,
   shape (1, M) for a b of shape (M,)): right values, judged with a note on the update.
2. ``relu_backward`` that forgets the mask: named, dx, with the entries where x < 0.
3. ``TwoLayerNet.loss`` returning ``(loss, grads)``, checked as it is (``grads="returned"``),
   with ``W2``'s regularisation counted twice: named, with the kind "regularization".

Run:  python examples/courses/cs231n_two_layer.py
"""

from __future__ import annotations

import numpy as np

import gradcheck

# ---- layers.py, as the assignment writes it -----------------------------------------------------


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0, keepdims=True)  # (1, M): the values are right, the shape is not
    return dx, dw, db


def relu_forward(x):
    out = np.maximum(0, x)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    dx = dout  # the bug: the mask is forgotten (dx = dout * (cache > 0))
    return dx


def softmax_loss(x, y):
    shifted_logits = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted_logits), axis=1, keepdims=True)
    log_probs = shifted_logits - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


class TwoLayerNet:
    def __init__(self, input_dim, hidden_dim, num_classes, weight_scale=1e-3, reg=0.0):
        self.params = {}
        self.reg = reg
        self.params["W1"] = weight_scale * np.random.randn(input_dim, hidden_dim)
        self.params["b1"] = np.zeros(hidden_dim)
        self.params["W2"] = weight_scale * np.random.randn(hidden_dim, num_classes)
        self.params["b2"] = np.zeros(num_classes)

    def loss(self, X, y=None):
        W1, b1, W2, b2 = self.params["W1"], self.params["b1"], self.params["W2"], self.params["b2"]
        h = np.maximum(0, X.reshape(X.shape[0], -1).dot(W1) + b1)
        scores = h.dot(W2) + b2
        if y is None:
            return scores
        loss, grads = 0, {}
        data_loss, dscores = softmax_loss(scores, y)
        loss = data_loss + 0.5 * self.reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        grads["W2"] = h.T.dot(dscores) + 2 * self.reg * W2  # the bug: reg counted twice
        grads["b2"] = np.sum(dscores, axis=0)
        dh = dscores.dot(W2.T) * (h > 0)
        grads["W1"] = X.T.dot(dh) + self.reg * W1
        grads["b1"] = np.sum(dh, axis=0)
        return loss, grads


# ---- the walk-through ---------------------------------------------------------------------------


def main(show: bool = True) -> dict[str, gradcheck.Report]:
    np.random.seed(231)
    x, w, b = np.random.randn(10, 2, 3), np.random.randn(6, 5), np.random.randn(5)
    affine = gradcheck.check_layer(affine_forward, affine_backward, x, w, b)
    relu = gradcheck.check_layer(relu_forward, relu_backward, np.random.randn(10, 10))

    N, D, H, C = 3, 5, 50, 7
    X, y = np.random.randn(N, D), np.random.randint(C, size=N)
    model = TwoLayerNet(D, H, C, weight_scale=1e-1, reg=0.7)

    def loss_and_grads(params):  # model.loss reads model.params: give it the point to evaluate
        saved, model.params = model.params, params
        try:
            return model.loss(X, y)
        finally:
            model.params = saved

    net = gradcheck.check(loss_and_grads, model.params, "returned")
    if show:
        for title, report in (("affine", affine), ("relu", relu), ("TwoLayerNet", net)):
            print(f"\n== {title}")
            print(report)
    return {"affine": affine, "relu": relu, "net": net}


if __name__ == "__main__":
    main()
