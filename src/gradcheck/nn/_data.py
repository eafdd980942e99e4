"""Data: scikit-learn's bundled digits (no download), or MNIST from a local IDX / .npz file."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gradcheck._errors import GradCheckError


@dataclass(frozen=True)
class Dataset:
    """Train and test splits; X scaled to [0, 1] rows of features, y integer labels.

    Attributes:
      name: where the data came from (``"digits"``, a file name).
      X_train, y_train: training features (one row per example) and integer labels.
      X_test, y_test: the held-out split.

    >>> d = Dataset("toy", np.eye(2), np.array([0, 1]), np.eye(2), np.array([1, 0]))
    >>> d.n_classes, d.standardized().X_train.tolist()
    (2, [[1.0, -1.0], [-1.0, 1.0]])
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def standardized(self) -> Dataset:
        """Each feature shifted and scaled by the *training* mean and std (constant ones: 1)."""
        mean, std = self.X_train.mean(axis=0), self.X_train.std(axis=0)
        std = np.where(std < 1e-8, 1.0, std)
        return replace(
            self, X_train=(self.X_train - mean) / std, X_test=(self.X_test - mean) / std
        )


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows of the identity: one_hot([2, 0], 3) -> [[0, 0, 1], [1, 0, 0]].

    Args:
      y: integer labels.
      n_classes: the number of classes (columns).

    Returns:
      A float array of shape ``(len(y), n_classes)``.

    >>> one_hot(np.array([2, 0]), 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    return np.eye(n_classes)[np.asarray(y, dtype=np.int64)]


def load_digits(test_size: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's 8×8 digits (1,797 images, bundled), split stratified into train and test.

    Args:
      test_size: the held-out fraction.
      seed: the split's random state.

    Returns:
      A ``Dataset`` with pixels scaled to [0, 1]; needs ``pip install "gradcheck[demo]"``.

    >>> d = load_digits()
    >>> d.X_train.shape, d.X_test.shape, d.n_classes
    ((1347, 64), (450, 64), 10)
    """
    from gradcheck._errors import require

    sk_digits = require("sklearn.datasets", "demo", "nn.load_digits").load_digits
    from sklearn.model_selection import train_test_split

    X, y = sk_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X / 16.0, y, test_size=test_size, random_state=seed, stratify=y
    )
    return Dataset("digits", X_tr, y_tr, X_te, y_te)


def load_mnist(path: str | Path, test_size: float = 0.25, seed: int = 0) -> Dataset:
    """MNIST-like data from a local file, never downloaded.

    ``path`` is an ``.npz`` with ``x_train, y_train, x_test, y_test`` (Keras' mnist.npz) or with
    ``X, y`` (split here), or an IDX image file (``train-images-idx3-ubyte[.gz]``) whose labels
    file sits next to it (``train-labels-idx1-ubyte[.gz]``). Pixels are scaled to [0, 1].

    Args:
      path: the local file.
      test_size: the held-out fraction, when the file has no split of its own.
      seed: the split's random state.

    Returns:
      A ``Dataset``; a missing, truncated or malformed file raises a ``GradCheckError`` that
      names the file and what was expected.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> file = os.path.join(folder, "tiny.npz")
    >>> np.savez(file, X=np.full((8, 4), 255.0), y=np.arange(8) % 2)
    >>> d = load_mnist(file)
    >>> d.X_train.shape, float(d.X_train.max())
    ((6, 4), 1.0)
    >>> import shutil; shutil.rmtree(folder)
    """
    path = Path(path)
    if not path.is_file():
        raise GradCheckError(
            f"--data {str(path)!r} does not exist. Give a local MNIST .npz (x_train, y_train, "
            "x_test, y_test) or an IDX images file; nothing is downloaded."
        )
    if path.suffix == ".npz":
        return _from_npz(path, test_size, seed)
    X = _read_idx(path)
    y = _read_idx(_labels_path(path))
    return _split(path.name, X, y, test_size, seed)


def _from_npz(path: Path, test_size: float, seed: int) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as error:
        raise GradCheckError(f"--data {str(path)!r} is not a readable .npz file: {error}.") from None
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        return Dataset(
            path.name, _pixels(arrays["x_train"], path), arrays["y_train"].astype(np.int64),
            _pixels(arrays["x_test"], path), arrays["y_test"].astype(np.int64),
        )
    if {"X", "y"} <= arrays.keys():
        return _split(path.name, arrays["X"], arrays["y"], test_size, seed)
    raise GradCheckError(
        f"--data {str(path)!r} holds arrays {sorted(arrays)}; expected x_train, y_train, x_test, "
        "y_test (or X, y)."
    )


def _split(name: str, X: np.ndarray, y: np.ndarray, test_size: float, seed: int) -> Dataset:
    from gradcheck._errors import require

    train_test_split = require("sklearn.model_selection", "demo", "nn.load_mnist").train_test_split
    if len(X) != len(y):
        raise GradCheckError(f"{name}: {len(X)} images but {len(y)} labels; they must match.")
    X_tr, X_te, y_tr, y_te = train_test_split(
        _pixels(X, name), np.asarray(y, dtype=np.int64), test_size=test_size, random_state=seed
    )
    return Dataset(name, X_tr, y_tr, X_te, y_te)


def _pixels(X: np.ndarray, where: object) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    top = X.max() if X.size else 1.0
    return X / 255.0 if top > 1.0 else X


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path: Path) -> np.ndarray:
    """IDX: two zero bytes, a type code, the number of dimensions, big-endian uint32 sizes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise GradCheckError(f"--data {str(path)!r} could not be read: {error}.") from None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _IDX_TYPES:
        raise GradCheckError(
            f"--data {str(path)!r} is not an IDX file (it must start with two zero bytes and a "
            "type code); give MNIST's train-images-idx3-ubyte or an .npz file."
        )
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    body = data[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)) * dtype.itemsize:
        raise GradCheckError(
            f"--data {str(path)!r} is truncated or malformed: header says shape {shape}, "
            f"but {len(body)} bytes follow."
        )
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def _labels_path(images: Path) -> Path:
    candidate = images.with_name(images.name.replace("images-idx3", "labels-idx1"))
    if candidate == images or not candidate.is_file():
        raise GradCheckError(
            f"no labels file next to {str(images)!r}: expected {candidate.name!r} (MNIST's "
            "naming, images-idx3 -> labels-idx1) in the same folder."
        )
    return candidate
