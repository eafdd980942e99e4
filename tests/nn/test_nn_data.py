"""gradcheck.nn data: bundled digits, and MNIST from local IDX / .npz files (never downloaded)."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from gradcheck import GradCheckError
from gradcheck.nn import load_digits, load_mnist, one_hot


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 28, 28)), rng.integers(0, 10, 40)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_idx_files(tmp_path, images, compress):
    X, y = images
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", X, compress)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", y, compress)
    data = load_mnist(tmp_path / f"train-images-idx3-ubyte{suffix}", test_size=0.25)
    assert data.X_train.shape == (30, 784) and data.X_test.shape == (10, 784)
    assert data.X_train.min() >= 0.0 and data.X_train.max() <= 1.0
    # Every image comes back with its own label.
    rows = {X[i].tobytes(): y[i] for i in range(len(X))}
    for x, label in zip(data.X_train, data.y_train, strict=True):
        assert rows[np.rint(x * 255).astype(np.int64).reshape(28, 28).tobytes()] == label


def test_mnist_from_npz_both_layouts(tmp_path, images):
    X, y = images
    np.savez(tmp_path / "mnist.npz", x_train=X[:30], y_train=y[:30], x_test=X[30:], y_test=y[30:])
    data = load_mnist(tmp_path / "mnist.npz")
    assert data.X_test.shape == (10, 784) and (data.y_test == y[30:]).all()
    np.savez(tmp_path / "flat.npz", X=X, y=y)
    assert load_mnist(tmp_path / "flat.npz").X_train.shape == (30, 784)


def test_bad_files_get_clear_errors(tmp_path, images):
    X, y = images
    with pytest.raises(GradCheckError, match="does not exist.*nothing is downloaded"):
        load_mnist(tmp_path / "missing.npz")
    (tmp_path / "junk-images-idx3-ubyte").write_bytes(b"hello world")
    with pytest.raises(GradCheckError, match="is not an IDX file"):
        load_mnist(tmp_path / "junk-images-idx3-ubyte")
    write_idx(tmp_path / "cut-images-idx3-ubyte", X)
    data = (tmp_path / "cut-images-idx3-ubyte").read_bytes()
    (tmp_path / "cut-images-idx3-ubyte").write_bytes(data[:-5])
    with pytest.raises(GradCheckError, match="truncated or malformed"):
        load_mnist(tmp_path / "cut-images-idx3-ubyte")
    write_idx(tmp_path / "lonely-images-idx3-ubyte", X)
    with pytest.raises(GradCheckError, match="no labels file"):
        load_mnist(tmp_path / "lonely-images-idx3-ubyte")
    np.savez(tmp_path / "other.npz", a=X)
    with pytest.raises(GradCheckError, match="expected x_train"):
        load_mnist(tmp_path / "other.npz")
    (tmp_path / "fake.npz").write_bytes(b"not a zip")
    with pytest.raises(GradCheckError, match="not a readable .npz"):
        load_mnist(tmp_path / "fake.npz")


def test_digits_split_is_stratified_and_standardised_with_training_statistics():
    data = load_digits(seed=3)
    assert np.bincount(data.y_test).min() >= 43  # 25% of each class (≈ 45)
    std = data.standardized()
    np.testing.assert_allclose(std.X_train.mean(axis=0), 0.0, atol=1e-12)
    assert not np.allclose(std.X_test.mean(axis=0), 0.0, atol=1e-3)
    assert one_hot(data.y_train, 10).sum(axis=0).tolist() == np.bincount(data.y_train).tolist()
