"""Seed 003: a NumPy MNIST net (784-300-10, sigmoid, minibatches of 100, RMSprop) stuck at 7% error.

The backprop took the sigmoid's derivative at the layer's *output* A instead of at its input Z
(``fprime(layers_outputs[...])``). Training still "works", which is why the bug hides; the
gradient check finds it in seconds and names the parameters.

Run:  .venv/bin/python examples/mnist_bug.py                 # sklearn digits (64-300-10)
      .venv/bin/python examples/mnist_bug.py --data mnist.npz  # a local MNIST file (784-300-10)
"""

from __future__ import annotations

import argparse

from gradcheck.nn import Net, load_digits, load_mnist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="local MNIST .npz or IDX images file")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=300)
    args = parser.parse_args()
    data = (load_digits() if args.data is None else load_mnist(args.data)).standardized()
    sizes = (data.X_train.shape[1], args.hidden, data.n_classes)
    X, y = data.X_train[:32], data.y_train[:32]
    for bug in ("act-deriv-of-a", None):
        net = Net(sizes, activation="sigmoid", init="xavier", seed=0, bug=bug)
        print(f"\n{net!r}")
        report = net.check(X, y)  # first, before training: the notes' recipe
        print(report.explain())
        net.fit(data.X_train, data.y_train, epochs=args.epochs, batch_size=100,
                optimizer="rmsprop", lr=1e-3, progress=False)
        error = 1 - net.accuracy(data.X_test, data.y_test)
        print(f"test error after {args.epochs} epochs of RMSprop: {error:.2%}")


if __name__ == "__main__":
    main()
