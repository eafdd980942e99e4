# ruff: noqa: N802, N803, N806 - the course's names (nnCostFunction, X, Theta1)
"""Andrew Ng's Machine Learning, ex4, in NumPy: a flat, column-major θ and a cost returning (J, grad).

``nnCostFunction`` takes ``nn_params = [Theta1(:); Theta2(:)]`` (Octave unrolls column by column:
NumPy's ``order="F"``) and returns ``J, grad``. ``checkNNGradients`` prints one relative
difference. This version regularises the bias column (column 1 in Octave, 0 here) in the
gradient but not in the cost, the classic ex4 slip: gradcheck says only that column is wrong.
The same code in Octave is ``examples/octave/``.

Run:  python examples/courses/ng_ex4.py
"""

from __future__ import annotations

import numpy as np

import gradcheck


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoidGradient(z):
    return sigmoid(z) * (1 - sigmoid(z))


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_,
                   bias_regularised=True):
    Theta1 = np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)],
                        (hidden_layer_size, input_layer_size + 1), order="F")
    Theta2 = np.reshape(nn_params[hidden_layer_size * (input_layer_size + 1):],
                        (num_labels, hidden_layer_size + 1), order="F")
    m = X.shape[0]
    a1 = np.hstack([np.ones((m, 1)), X])
    z2 = a1 @ Theta1.T
    a2 = np.hstack([np.ones((m, 1)), sigmoid(z2)])
    a3 = sigmoid(a2 @ Theta2.T)
    Y = np.eye(num_labels)[y - 1]
    J = np.sum(-Y * np.log(a3) - (1 - Y) * np.log(1 - a3)) / m
    J += lambda_ / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))
    d3 = a3 - Y
    d2 = (d3 @ Theta2[:, 1:]) * sigmoidGradient(z2)
    Theta1_grad = d2.T @ a1 / m
    Theta2_grad = d3.T @ a2 / m
    if bias_regularised:  # the slip: the bias column is penalised in the gradient only
        Theta1_grad += lambda_ / m * Theta1
        Theta2_grad += lambda_ / m * Theta2
    else:
        Theta1_grad[:, 1:] += lambda_ / m * Theta1[:, 1:]
        Theta2_grad[:, 1:] += lambda_ / m * Theta2[:, 1:]
    grad = np.concatenate([Theta1_grad.ravel(order="F"), Theta2_grad.ravel(order="F")])
    return J, grad


def debugInitializeWeights(fan_out, fan_in):
    W = np.sin(np.arange(1, fan_out * (1 + fan_in) + 1))
    return np.reshape(W, (fan_out, 1 + fan_in), order="F") / 10


def computeNumericalGradient(J, theta, e=1e-4):
    numgrad, perturb = np.zeros(theta.size), np.zeros(theta.size)
    for p in range(theta.size):
        perturb[p] = e
        numgrad[p] = (J(theta + perturb)[0] - J(theta - perturb)[0]) / (2 * e)
        perturb[p] = 0
    return numgrad


def main(show: bool = True) -> dict[str, gradcheck.Report]:
    input_layer_size, hidden_layer_size, num_labels, m, lambda_ = 3, 5, 3, 5, 3.0
    Theta1 = debugInitializeWeights(hidden_layer_size, input_layer_size)
    Theta2 = debugInitializeWeights(num_labels, hidden_layer_size)
    X = debugInitializeWeights(m, input_layer_size - 1)
    y = 1 + np.mod(np.arange(1, m + 1), num_labels)
    nn_params = np.concatenate([Theta1.ravel(order="F"), Theta2.ravel(order="F")])
    args = (input_layer_size, hidden_layer_size, num_labels, X, y, lambda_)

    # checkNNGradients(3): one number.
    def costFunc(p):
        return nnCostFunction(p, *args)

    _, grad = costFunc(nn_params)
    numgrad = computeNumericalGradient(costFunc, nn_params)
    diff = np.linalg.norm(numgrad - grad) / np.linalg.norm(numgrad + grad)
    if show:
        print(f"Relative Difference: {diff:g}  (less than 1e-9 if backprop is right)")

    # gradcheck: the function as it is, (J, grad) and all; θ read column-major as Octave's.
    layout = gradcheck.Layout({"Theta1": Theta1.shape, "Theta2": Theta2.shape}, order="F")
    report = gradcheck.check(nnCostFunction, nn_params, "returned", args=args, layout=layout)
    fixed = gradcheck.check(nnCostFunction, nn_params, "returned", args=(*args, False),
                            layout=layout)
    if show:
        print(report)
        print(f"\nAfter the fix (Theta_grad(:, 2:end) only): {fixed.verdict.upper()}")
    return {"bug": report, "fixed": fixed}


if __name__ == "__main__":
    main()
