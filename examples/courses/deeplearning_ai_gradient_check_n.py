# ruff: noqa: N803, N806, SIM108 - the course's names (X, W1, dW2) and its if/else
"""deeplearning.ai, course 2, "Gradient Checking": the assignment's flow, then gradcheck on it.

The assignment unrolls the parameters into one column θ with ``dictionary_to_vector``, the
gradients with ``gradients_to_vector``, loops over θ in ``gradient_check_n`` and prints one
number: "There is a mistake in the backward propagation! difference = 0.285...". Where? Its
``backward_propagation_n`` has two planted bugs (dW2 ×2, db1 ×4). gradcheck reads the same θ
with a layout and names them, with their factor.

Run:  python examples/courses/deeplearning_ai_gradient_check_n.py
"""

from __future__ import annotations

import numpy as np

import gradcheck

# ---- the assignment's code, as written there ----------------------------------------------------


def relu(x):
    return np.maximum(0, x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def gradient_check_n_test_case():
    np.random.seed(1)
    x = np.random.randn(4, 3)
    y = np.array([1, 1, 0])
    W1, b1 = np.random.randn(5, 4), np.random.randn(5, 1)
    W2, b2 = np.random.randn(3, 5), np.random.randn(3, 1)
    W3, b3 = np.random.randn(1, 3), np.random.randn(1, 1)
    return x, y, {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}


def forward_propagation_n(X, Y, parameters):
    m = X.shape[1]
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)
    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cost = 1. / m * np.sum(logprobs)
    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return cost, cache


def backward_propagation_n(X, Y, cache):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T) * 2  # the assignment's first planted bug
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T)
    db1 = 4. / m * np.sum(dZ1, axis=1, keepdims=True)  # the second one
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2,
            "db2": db2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def dictionary_to_vector(parameters):
    keys, count = [], 0
    for key in ["W1", "b1", "W2", "b2", "W3", "b3"]:
        new_vector = np.reshape(parameters[key], (-1, 1))
        keys = keys + [key] * new_vector.shape[0]
        if count == 0:
            theta = new_vector
        else:
            theta = np.concatenate((theta, new_vector), axis=0)
        count = count + 1
    return theta, keys


def vector_to_dictionary(theta):
    return {"W1": theta[:20].reshape((5, 4)), "b1": theta[20:25].reshape((5, 1)),
            "W2": theta[25:40].reshape((3, 5)), "b2": theta[40:43].reshape((3, 1)),
            "W3": theta[43:46].reshape((1, 3)), "b3": theta[46:47].reshape((1, 1))}


def gradients_to_vector(gradients):
    count = 0
    for key in ["dW1", "db1", "dW2", "db2", "dW3", "db3"]:
        new_vector = np.reshape(gradients[key], (-1, 1))
        if count == 0:
            theta = new_vector
        else:
            theta = np.concatenate((theta, new_vector), axis=0)
        count = count + 1
    return theta


def gradient_check_n(parameters, gradients, X, Y, epsilon=1e-7):
    parameters_values, _ = dictionary_to_vector(parameters)
    grad = gradients_to_vector(gradients)
    num_parameters = parameters_values.shape[0]
    gradapprox = np.zeros((num_parameters, 1))
    for i in range(num_parameters):
        thetaplus = np.copy(parameters_values)
        thetaplus[i][0] = thetaplus[i][0] + epsilon
        J_plus, _ = forward_propagation_n(X, Y, vector_to_dictionary(thetaplus))
        thetaminus = np.copy(parameters_values)
        thetaminus[i][0] = thetaminus[i][0] - epsilon
        J_minus, _ = forward_propagation_n(X, Y, vector_to_dictionary(thetaminus))
        gradapprox[i] = (J_plus - J_minus) / (2 * epsilon)
    numerator = np.linalg.norm(grad - gradapprox)
    denominator = np.linalg.norm(grad) + np.linalg.norm(gradapprox)
    difference = numerator / denominator
    if difference > 2e-7:
        print("There is a mistake in the backward propagation! difference = " + str(difference))
    else:
        print("Your backward propagation works perfectly fine! difference = " + str(difference))
    return difference


# ---- the walk-through ---------------------------------------------------------------------------

LAYOUT = {"W1": (5, 4), "b1": (5, 1), "W2": (3, 5), "b2": (3, 1), "W3": (1, 3), "b3": (1, 1)}


def main(show: bool = True) -> dict[str, gradcheck.Report]:
    X, Y, parameters = gradient_check_n_test_case()
    cost, cache = forward_propagation_n(X, Y, parameters)
    gradients = backward_propagation_n(X, Y, cache)

    # 1. The assignment: one number for the whole of θ.
    gradient_check_n(parameters, gradients, X, Y)

    # 2. The same θ and grad, read with a layout: the report names W2 and b1, and says by how
    #    much (batch_size= lets it name a factor of m).
    theta, _ = dictionary_to_vector(parameters)
    flat = gradcheck.check(lambda t: forward_propagation_n(X, Y, vector_to_dictionary(t))[0],
                           theta, gradients_to_vector(gradients), layout=LAYOUT,
                           batch_size=X.shape[1])

    # 3. No vectors at all: the parameters dict and the gradients dict as they are (dW1, db1;
    #    dZ3, dA2, ... are left out and named in a note).
    named = gradcheck.check(lambda p: forward_propagation_n(X, Y, p)[0], parameters, gradients,
                            batch_size=X.shape[1])
    if show:
        print(flat)
        print(named.explain())
    return {"flat": flat, "dict": named}


if __name__ == "__main__":
    main()
