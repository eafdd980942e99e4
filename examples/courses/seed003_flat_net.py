# ruff: noqa: N803, N806 - the question's names (X, W, Wl1)
"""Seed 003: a NumPy 784-300-10 sigmoid net whose weights live in one flat vector W.

The question's code keeps W = [Wl1, bl1, Wl2, bl2] flat and slices it with
``_extract_weights``; its backprop accumulates into views of one flat ``big_delta`` and takes
the sigmoid's derivative at the layer's output a (``fprime(layers_outputs[...])``) where it
belongs at the input z. Checked flat, without a layout, the report could only say "theta is
wrong"; with ``layout=`` (the shapes ``_extract_weights`` uses) it names W1, b1, W2, b2, the
layer the bug starts in and the output delta, exactly as the same net written with a dict.

Run:  python examples/courses/seed003_flat_net.py
"""

from __future__ import annotations

import numpy as np

import gradcheck


def sigmoid(z):
    return np.true_divide(1, 1 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


class NeuralNetwork:
    def __init__(self, n_in=784, n_hidden=300, n_out=10):
        self.n_in, self.n_hidden, self.n_out = n_in, n_hidden, n_out

    def _extract_weights(self, W):
        """Views of the flat W: Wl1 (n_in, n_hidden), bl1, Wl2 (n_hidden, n_out), bl2."""
        a = self.n_in * self.n_hidden
        b = a + self.n_hidden
        c = b + self.n_hidden * self.n_out
        return (W[:a].reshape(self.n_in, self.n_hidden), W[a:b],
                W[b:c].reshape(self.n_hidden, self.n_out), W[c:])

    def layout(self):
        """The same slicing, as gradcheck reads it."""
        return {"W1": (self.n_in, self.n_hidden), "b1": self.n_hidden,
                "W2": (self.n_hidden, self.n_out), "b2": self.n_out}

    def make_1_of_c_encoding(self, labels):
        return np.eye(self.n_out)[labels]

    def _forward_prop(self, W, X, f=sigmoid):
        Wl1, bl1, Wl2, bl2 = self._extract_weights(W)
        hidden = f(X.dot(Wl1) + bl1)
        return [hidden, f(hidden.dot(Wl2) + bl2)]

    def cost(self, W, X, labels):
        y = self.make_1_of_c_encoding(labels)
        return 0.5 * np.sum((self._forward_prop(W, X)[-1] - y) ** 2) / X.shape[0]

    def _back_prop(self, W, X, labels, f=sigmoid, fprime=sigmoid_prime):
        Wl1, bl1, Wl2, bl2 = self._extract_weights(W)
        layers_outputs = self._forward_prop(W, X, f)
        y = self.make_1_of_c_encoding(labels)
        num_samples = X.shape[0]
        big_delta = np.zeros(Wl1.size + bl1.size + Wl2.size + bl2.size)
        big_delta_wl1, big_delta_bl1, big_delta_wl2, big_delta_bl2 = self._extract_weights(big_delta)
        for i, x in enumerate(X):
            dE_dy = layers_outputs[-1][i, :] - y[i, :]
            dE_dz_out = dE_dy * fprime(layers_outputs[-1][i, :])  # the bug: fprime of a, not z
            big_delta_bl2 += dE_dz_out
            big_delta_wl2 += np.outer(layers_outputs[0][i, :], dE_dz_out)
            dE_dhl = dE_dz_out.dot(Wl2.T)
            dE_dz_hl = dE_dhl * fprime(layers_outputs[0][i, :])  # and here again
            big_delta_bl1 += dE_dz_hl
            big_delta_wl1 += np.outer(x, dE_dz_hl)
        return big_delta / num_samples


def data(m: int = 4):
    rng = np.random.default_rng(3)
    X = (rng.random((m, 784)) < 0.19) * rng.random((m, 784))  # raw pixels in [0, 1]
    labels = rng.integers(0, 10, m)
    W = np.concatenate([rng.standard_normal(784 * 300) * 0.05, np.zeros(300),
                        rng.standard_normal(300 * 10) * 0.1, np.zeros(10)])
    return X, labels, W


def target():
    """For the command line: gradcheck check examples/courses/seed003_flat_net.py:target
    --layout W1=784x300,b1=300,W2=300x10,b2=10"""
    X, labels, W = data()
    net = NeuralNetwork()
    return (lambda w: net.cost(w, X, labels)), W, net._back_prop(W, X, labels)


def main(show: bool = True, m: int = 4) -> dict[str, gradcheck.Report]:
    X, labels, W = data(m)
    net = NeuralNetwork()
    grad = net._back_prop(W, X, labels)
    flat = gradcheck.check(net.cost, W, grad, args=(X, labels), layout=net.layout())

    # The same net, written with a dict: the report above must read the same.
    def dict_cost(p):
        return net.cost(np.concatenate([np.ravel(p[k]) for k in ("W1", "b1", "W2", "b2")]),
                        X, labels)

    names = dict(zip(("W1", "b1", "W2", "b2"), net._extract_weights(W), strict=True))
    grads = dict(zip(("W1", "b1", "W2", "b2"), net._extract_weights(grad), strict=True))
    named = gradcheck.check(dict_cost, names, grads)
    if show:
        print(flat)
        same = (flat.suspects, flat.origin, flat.findings) == (named.suspects, named.origin,
                                                               named.findings)
        print(f"\nThe dict form names the same tensors, origin and findings: {same}")
    return {"flat": flat, "dict": named}


if __name__ == "__main__":
    main()
