"""``Net``: a fully connected NumPy network with hand-written backprop, and its gradient check."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck._errors import OptionError, ShapeMismatchError
from gradcheck.checks._check import check
from gradcheck.nn._activations import ACTIVATIONS
from gradcheck.nn._bugs import Bug, plant
from gradcheck.nn._init import INITS, init_params
from gradcheck.nn._losses import OUTPUTS
from gradcheck.nn._train import History, train
from gradcheck.report._sentences import Note, NoteCode

if TYPE_CHECKING:
    from gradcheck.report._report import Report

Params = dict[str, np.ndarray]


def _choice(name: str, value: str, table: dict[str, Any]) -> str:
    if value not in table:
        raise OptionError(f"{name}={value!r} is not known; choose one of: {', '.join(table)}.")
    return value


class Net:
    """A fully connected net: Z_l = A_{l−1} W_l + b_l, A_l = g(Z_l), A_L = output(Z_L).

    J = (1/m) Σ_i cost(A_L[i], Y[i]) + λ/(2m) Σ_l ‖W_l‖²; hidden layers may use inverted
    dropout with ``keep_prob``. ``params`` is the dict W1, b1, …, WL, bL that ``gradcheck.check``
    takes.

    Args:
      sizes: layer widths n[0], n[1], …, n[L] (inputs first).
      activation: "sigmoid", "tanh", "relu" or "leaky-relu" (hidden layers).
      loss: "softmax-ce", "sigmoid-bce" or "linear-mse" (output layer and cost).
      init: "he" (2/n[l−1]), "xavier" (1/n[l−1]) or "glorot" (2/(n[l−1]+n[l])).
      init_scale: multiplier on the initial standard deviation.
      l2: λ of the L2 penalty.
      keep_prob: dropout keep probability on hidden layers (1.0: no dropout).
      seed: seeds the net's own generator (initial weights, dropout masks, minibatches).
      bug: a planted bug (``gradcheck.nn.Bug`` or its name), for learning; None is correct.

    >>> net = Net((4, 5, 3), activation="tanh", init="xavier", seed=0)
    >>> net
    Net(4-5-3, tanh, softmax-ce, init=xavier×1, l2=0, keep_prob=1)
    >>> X, Y = np.ones((2, 4)), np.eye(3)[[0, 2]]
    >>> net.check(X, Y).passed
    True
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        activation: str = "tanh",
        loss: str = "softmax-ce",
        init: str = "xavier",
        init_scale: float = 1.0,
        l2: float = 0.0,
        keep_prob: float = 1.0,
        seed: int = 0,
        bug: Bug | str | None = None,
    ) -> None:
        self.sizes = tuple(int(n) for n in sizes)
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise OptionError(f"sizes={sizes!r} needs at least two positive widths (in, out).")
        self.activation = ACTIVATIONS[_choice("activation", activation, ACTIVATIONS)]
        self.output = OUTPUTS[_choice("loss", loss, OUTPUTS)]
        self.init, self.init_scale = _choice("init", init, INITS), float(init_scale)
        if l2 < 0 or not 0 < keep_prob <= 1:
            raise OptionError(f"l2={l2} must be ≥ 0 and keep_prob={keep_prob} in (0, 1].")
        self.l2, self.keep_prob, self.seed = float(l2), float(keep_prob), seed
        self.bug, self._plant = plant(bug)
        self._refuse_invisible_bug()
        self.rng = np.random.default_rng(seed)
        self.params: Params = init_params(self.sizes, init, self.init_scale, self.rng)

    def _refuse_invisible_bug(self) -> None:
        if self._plant.derivative_at_a and (self.activation.kinked or len(self.sizes) < 3):
            raise OptionError(
                f"bug='act-deriv-of-a' changes nothing with activation={self.activation.name!r} "
                "or without hidden layers (g'(g(z)) = g'(z) there); use sigmoid or tanh."
            )
        if self._plant.drop_l2 and self.l2 == 0:
            raise OptionError("bug='missing-l2' needs l2 > 0 to make a difference; set l2=1e-2.")

    @property
    def depth(self) -> int:
        """L, the number of weight layers."""
        return len(self.sizes) - 1

    def __repr__(self) -> str:
        bug = f", bug={self.bug.value}" if self.bug else ""
        return (
            f"Net({'-'.join(map(str, self.sizes))}, {self.activation.name}, {self.output.name}, "
            f"init={self.init}×{self.init_scale:g}, l2={self.l2:g}, keep_prob={self.keep_prob:g}"
            f"{bug})"
        )

    # ---- forward -----------------------------------------------------------------------------

    def dropout_masks(self, m: int, rng: np.random.Generator) -> list[np.ndarray | None]:
        """Inverted-dropout masks for the hidden layers (entries 0 or 1/keep_prob)."""
        if self.keep_prob == 1.0:
            return [None] * self.depth
        return [
            (rng.random((m, n)) < self.keep_prob) / self.keep_prob for n in self.sizes[1:-1]
        ] + [None]

    def forward(
        self, X: np.ndarray, params: Params | None = None, masks: Sequence[Any] | None = None
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Zs[l] and As[l] for l = 0…L (Zs[0] unused, As[0] = X); no dropout unless ``masks``."""
        p = self.params if params is None else params
        Zs, As = [X], [X]
        for layer in range(1, self.depth + 1):
            Z = As[-1] @ p[f"W{layer}"] + p[f"b{layer}"]
            last = layer == self.depth
            A = self.output.output(Z) if last else self.activation.f(Z)
            if not last and masks is not None and masks[layer - 1] is not None:
                A = A * masks[layer - 1]  # inverted dropout: E[A] unchanged
            Zs.append(Z)
            As.append(A)
        return Zs, As

    def predict(self, X: np.ndarray) -> np.ndarray:
        """A_L for inputs X (probabilities for classifiers), without dropout."""
        return self.forward(np.asarray(X, dtype=np.float64))[1][-1]

    def accuracy(self, X: np.ndarray, Y: np.ndarray) -> float:
        """Fraction of rows where argmax A_L equals the label (Y one-hot or integer labels)."""
        labels = np.asarray(Y).argmax(axis=1) if np.ndim(Y) == 2 else np.asarray(Y)
        return float(np.mean(self.predict(X).argmax(axis=1) == labels))

    def loss(
        self, X: np.ndarray, Y: np.ndarray, params: Params | None = None,
        masks: Sequence[Any] | None = None,
    ) -> float:
        """J = (1/m) Σ cost + λ/(2m) Σ‖W_l‖², at ``params`` (default: the net's own)."""
        X, Y = self._data(X, Y)
        p = self.params if params is None else params
        Zs, _ = self.forward(X, p, masks)
        m = X.shape[0]
        penalty = sum(float(np.sum(p[f"W{layer}"] ** 2)) for layer in range(1, self.depth + 1))
        return self.output.cost(Zs[-1], Y) / m + self.l2 / (2 * m) * penalty

    def batch_loss(self, batch: Mapping[str, np.ndarray]) -> Callable[[Params], float]:
        """``loss(params)`` on a batch as ``fit(monitor=...)`` saves it: X, Y and the dropout
        masks mask1, mask2, ... (for ``gradcheck.monitor.reproduce``).

        >>> net = Net((2, 3, 2), seed=0)
        >>> f = net.batch_loss({"X": np.ones((1, 2)), "Y": np.eye(2)[:1]})
        >>> f(net.params) == net.loss(np.ones((1, 2)), np.eye(2)[:1])
        True
        """
        X, Y = batch["X"], batch["Y"]
        masks = [batch.get(f"mask{layer}") for layer in range(1, self.depth + 1)]
        fixed = masks if any(m is not None for m in masks) else None
        return lambda params: self.loss(X, Y, params, fixed)

    # ---- backward ----------------------------------------------------------------------------

    def gradients(
        self, X: np.ndarray, Y: np.ndarray, params: Params | None = None,
        masks: Sequence[Any] | None = None,
    ) -> Params:
        """∂J/∂W_l and ∂J/∂b_l by backprop, in the order W1, b1, …, WL, bL."""
        X, Y = self._data(X, Y)
        p, bug, m = self.params if params is None else params, self._plant, X.shape[0]
        Zs, As = self.forward(X, p, masks)
        if bug.stale:  # the hidden cache is one example behind
            Zs = [X] + [np.roll(z, 1, axis=0) for z in Zs[1:-1]] + [Zs[-1]]
            As = [X] + [np.roll(a, 1, axis=0) for a in As[1:-1]] + [As[-1]]
        # Canonical output link: ∂J/∂Z_L = (A_L − Y) / m for all three outputs (see _losses.py).
        delta = (As[-1] - Y) / (1 if bug.drop_1_over_m else m)
        grads: Params = {}
        for layer in range(self.depth, 0, -1):
            W = p[f"W{layer}"]
            l2 = 0.0 if bug.drop_l2 else self.l2 / m  # ∂/∂W of λ/(2m)‖W‖² is (λ/m) W
            grads[f"W{layer}"] = As[layer - 1].T @ delta + l2 * W  # ∂J/∂W_l = A_{l−1}ᵀ δ_l
            grads[f"b{layer}"] = delta.sum(axis=0)  # ∂J/∂b_l = Σ_i δ_l[i]
            if layer > 1:
                # δ_{l−1} = (δ_l W_lᵀ) ⊙ mask ⊙ g'(Z_{l−1}): the derivative at the pre-activation.
                upstream = delta @ W.T
                if masks is not None and masks[layer - 2] is not None:
                    upstream = upstream * masks[layer - 2]
                at = As[layer - 1] if bug.derivative_at_a else Zs[layer - 1]
                delta = upstream * self.activation.df(at)
        if bug.negate_last_bias:
            grads[f"b{self.depth}"] = -grads[f"b{self.depth}"]
        if bug.transpose_w1:
            grads["W1"] = grads["W1"].T.reshape(p["W1"].shape)
        return {name: grads[name] for name in p}

    def _data(self, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y)
        if Y.ndim == 1 and self.output.classifier and Y.dtype.kind in "iu":
            Y = np.eye(self.sizes[-1])[Y]  # integer labels → one-hot rows
        Y = Y.reshape(len(Y), -1).astype(np.float64) if Y.ndim == 1 else Y.astype(np.float64)
        if X.ndim != 2 or X.shape[1] != self.sizes[0] or Y.shape != (X.shape[0], self.sizes[-1]):
            raise ShapeMismatchError(
                f"X has shape {X.shape} and Y {Y.shape}, but this net needs X of shape "
                f"(m, {self.sizes[0]}) and Y of shape (m, {self.sizes[-1]}) (one-hot) or (m,) "
                "integer labels. Reshape the data or build the net with matching sizes."
            )
        return X, Y

    # ---- checking ----------------------------------------------------------------------------

    def check(self, X: np.ndarray, Y: np.ndarray, *, mask_seed: int = 0, **options: Any) -> Report:
        """``gradcheck.check`` of this net's backprop on (X, Y) at the current parameters.

        J includes the L2 term; with dropout on, one mask (drawn from ``mask_seed``) is fixed
        for every loss call and for backprop, so J is deterministic, and the report says so.
        The net's parameters are not modified.

        Args:
          X, Y: a batch (a few dozen rows is plenty); Y one-hot or integer labels.
          mask_seed: seeds the fixed dropout mask.
          **options: passed to ``gradcheck.check`` (eps, scheme, seed, rtol, atol).

        Returns:
          The ``Report``, with ``layers`` set to W1, b1, …, WL, bL.
        """
        X, Y = self._data(X, Y)
        masks = self.dropout_masks(X.shape[0], np.random.default_rng(mask_seed))
        fixed = masks if self.keep_prob < 1.0 else None
        report = check(
            lambda p: self.loss(X, Y, p, fixed),
            self.params,
            self.gradients(X, Y, self.params, fixed),
            layers=list(self.params),
            **options,
        )
        return dataclasses.replace(report, notes=(*report.notes, *self._notes(fixed)))

    def _notes(self, fixed: Any) -> tuple[Note, ...]:
        notes = []
        if self.l2 > 0:
            notes.append(Note(NoteCode.NET_L2, None, {"l2": self.l2}))
        if fixed is not None:
            notes.append(Note(NoteCode.NET_DROPOUT, None, {"keep_prob": self.keep_prob}))
        if self.bug is not None:
            plant = self._plant
            notes.append(Note(NoteCode.NET_PLANTED_BUG, None, {
                "bug": self.bug.value, "what": plant.what, "wrong": plant.wrong}))
        return tuple(notes)

    def fit(self, X: np.ndarray, Y: np.ndarray, **options: Any) -> History:
        """Train with minibatches; see ``gradcheck.nn.train`` for the options."""
        return train(self, X, Y, **options)
