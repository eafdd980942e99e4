"""Writes ex4small.mat, the data of the Octave walk-through (run once; the file is committed).

The sizes and values of Ng's checkNNGradients: 3 inputs, 5 hidden units, 3 labels, 5 examples,
weights from debugInitializeWeights (sin(1:n) / 10, reshaped column-major), lambda = 3, and
nn_params = [Theta1(:); Theta2(:)].
"""

from pathlib import Path

import numpy as np
from scipy.io import savemat


def debug_initialize_weights(fan_out: int, fan_in: int) -> np.ndarray:
    """Ng's debugInitializeWeights: reshape(sin(1:numel(W)), size(W)) / 10, column-major."""
    n = fan_out * (1 + fan_in)
    return np.reshape(np.sin(np.arange(1, n + 1)), (fan_out, 1 + fan_in), order="F") / 10


if __name__ == "__main__":
    input_layer_size, hidden_layer_size, num_labels, m = 3, 5, 3, 5
    data = {
        "input_layer_size": float(input_layer_size),
        "hidden_layer_size": float(hidden_layer_size),
        "num_labels": float(num_labels),
        "Theta1": debug_initialize_weights(hidden_layer_size, input_layer_size),
        "Theta2": debug_initialize_weights(num_labels, hidden_layer_size),
        "X": debug_initialize_weights(m, input_layer_size - 1),
        "y": (1 + np.mod(np.arange(1, m + 1), num_labels)).reshape(-1, 1).astype(float),
        "lambda": 3.0,
    }
    data["nn_params"] = np.concatenate([data["Theta1"].ravel(order="F"),
                                        data["Theta2"].ravel(order="F")]).reshape(-1, 1)
    savemat(Path(__file__).with_name("ex4small.mat"), data)
