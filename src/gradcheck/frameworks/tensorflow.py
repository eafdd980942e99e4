"""Checking TensorFlow functions (``tf.custom_gradient``) and Keras 3 models with the NumPy core.

Analytic gradients come from ``tf.GradientTape`` (so the user's custom gradients run); numeric
ones from finite differences of the same function on *copies* (float64 copies when the function
computes in float64 from them, else the tensors' own dtype with the core's noise-aware tolerance).
Keras models are evaluated with ``model.stateless_call`` on copies of their variables: the
model's variables are never assigned. tensorflow is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gradcheck._errors import OptionError
from gradcheck.frameworks import _higher
from gradcheck.frameworks import _shared as _adapters
from gradcheck.frameworks._tf_run import (
    _checkable,
    _first_order_only,
    _nest_leaves,
    _numpy,
    _refuse_complex,
    _run,
    _tf,
)
from gradcheck.report._sentences import Note, NoteCode

if TYPE_CHECKING:
    from gradcheck.report._report import Report

Precision = Literal["auto", "float64", "native"]
Vectorize = Literal["auto", "vmap", "loop"]
def check_function(
    fn: Callable[..., Any],
    *inputs: Any,
    names: Sequence[str] | None = None,
    precision: Precision = "auto",
    vectorize: Vectorize = "auto",
    **options: Any,
) -> Report:
    """Checks ``tf.GradientTape`` gradients of ``fn`` (``tf.custom_gradient`` included).

    Floating ``tf.Tensor`` and trainable ``tf.Variable`` inputs are checked (on copies; a
    variable is passed to ``fn`` as a tensor), also inside lists, tuples and dicts (named by
    path: ``input0.1``, ``input0.W``); NumPy arrays and other arguments are constants, complex
    tensors are refused, empty ones left out with a note. An input whose gradient the tape
    returns as None is taken as zeros, with a note saying whether J depends on it.
    Each floating output gets its own random cotangent R (from ``seed``) and its own check.

    Args:
      fn: called as ``fn(*inputs)``; returns a tensor or a tuple/list/dict of tensors.
      inputs: the arguments.
      names: one name per input (default ``input0``, ``input1``, ...).
      precision: "auto" (float64 copies where fn computes in float64 from them, else the
        tensors' dtype), "float64" (insist) or "native".
      vectorize: "auto" batches perturbed losses with ``tf.vectorized_map`` where it agrees with
        a plain call and loops otherwise; "loop" never batches; "vmap" raises if it fails.
      options: keywords of ``gradcheck.check`` (``eps``, ``seed``, ``rtol``, ``coords``, ...).

    Returns:
      The ``Report``; with several outputs its components are ``"<input> (output k)"``.

    >>> import tensorflow as tf, gradcheck.tensorflow
    >>> x = tf.constant([0.5, -1.0, 2.0], dtype=tf.float64)
    >>> gradcheck.tensorflow.check_function(tf.sin, x).passed
    True
    """
    tf = _tf()
    _first_order_only("check_function", options)
    _higher.keyword_of_fn(fn, options, "check_function")
    options = _adapters.check_options("check_function", options)
    labels = _adapters.input_labels(inputs, names)
    # Each input is a tensor or a nest of them (list, tuple, dict, namedtuple: tf.nest order);
    # slot (i, j) is leaf j of input i (j None: the input itself).
    flat = {i: _nest_leaves(tf, x, labels[i]) for i, x in enumerate(inputs) if tf.nest.is_nested(x)}
    pairs = [
        ((i, j), name, leaf)
        for i, x in enumerate(inputs)
        for j, name, leaf in (flat[i] if i in flat else [(None, labels[i], x)])
    ]
    for _, name, leaf in pairs:
        _refuse_complex(tf, name, leaf)
    checked = {slot: name for slot, name, leaf in pairs if _checkable(tf, leaf)}
    if not checked:
        raise OptionError(
            "check_function(): no input is a floating tf.Tensor or trainable tf.Variable, so "
            "there is nothing to check. Pass the inputs to check as tf.constant(...) or "
            "tf.Variable(...) (NumPy arrays and Python numbers are constants)."
        )
    leaf_of = {slot: leaf for slot, _, leaf in pairs}
    notes = [
        Note(NoteCode.EMPTY, name, {"shape": tuple(leaf_of[slot].shape)})
        for slot, name in checked.items()
        if leaf_of[slot].shape.num_elements() == 0
    ]
    checked = {s: n for s, n in checked.items() if leaf_of[s].shape.num_elements() != 0}
    if not checked:
        return _adapters.nothing_checked(notes, options.get("scheme", "central"))
    originals = {n: _numpy(leaf_of[slot]) for slot, n in checked.items()}

    def call(tensors: dict[str, Any], cast: Callable[[Any], Any]) -> Any:
        def value(slot: tuple[int, int | None], x: Any) -> Any:
            return tensors[checked[slot]] if slot in checked else cast(x)

        args = []
        for i, x in enumerate(inputs):
            if i in flat:
                leaves = [value((i, j), leaf) for j, _, leaf in flat[i]]
                args.append(tf.nest.pack_sequence_as(x, leaves))
            else:
                args.append(value((i, None), x))
        return fn(*args)

    try:
        return _run(call, originals, None, options, precision, vectorize, "check_function", notes)
    except AttributeError as error:
        if "assign" in str(error):
            error.add_note(
                "gradcheck: check_function passes each checked tf.Variable to fn as a tensor "
                "(a copy, so the variable comes back unchanged), which has no assign(). Make fn "
                "compute J from the value it is given instead of assigning to it."
            )
        raise


def check_model(
    model: Any,
    *inputs: Any,
    loss_fn: Callable[[Any], Any] | None = None,
    precision: Precision = "auto",
    vectorize: Vectorize = "auto",
    training: bool = False,
    **options: Any,
) -> Report:
    """Checks a built Keras 3 model's gradients w.r.t. its trainable variables.

    The model is evaluated with ``model.stateless_call`` on copies of its variables (named by
    their path, the model's own name dropped: ``dense/kernel``); its variables are never
    assigned and come back bit for bit.

    Args:
      model: a built ``keras.Model`` (or layer) on the TensorFlow backend.
      inputs: the positional inputs of ``model(*inputs)``.
      loss_fn: ``J = loss_fn(output)``; None uses J = ⟨output, R⟩ with R drawn from ``seed``.
      precision, vectorize, options: as for ``check_function``.
      training: passed to the model (False: dropout off, batch norm in inference mode).

    Returns:
      The ``Report`` of ``gradcheck.check``.

    >>> import keras, numpy as np, gradcheck.tensorflow
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="tanh")])
    >>> gradcheck.tensorflow.check_model(model, np.ones((4, 3), np.float32)).passed
    True
    """
    tf = _tf()
    _first_order_only("check_model", options)
    options = _adapters.check_options("check_model", options)
    if not hasattr(model, "stateless_call") or not hasattr(model, "trainable_variables"):
        raise OptionError(
            f"check_model() needs a Keras 3 model or layer, got {type(model).__name__}. For a "
            "plain function (tf.custom_gradient), use gradcheck.tensorflow.check_function."
        )
    if not getattr(model, "built", False) or not model.trainable_variables:
        raise OptionError(
            f"check_model(): {type(model).__name__} has no trainable variable (is it built? "
            "call it once on an input, or give it keras.Input). There is nothing to check."
        )
    trainable = list(model.trainable_variables)
    frozen = list(model.non_trainable_variables)
    paths = [str(getattr(v, "path", v.name)) for v in trainable]
    prefix = f"{model.name}/"
    if all(p.startswith(prefix) for p in paths):
        paths = [p[len(prefix) :] for p in paths]
    if len(set(paths)) != len(paths):
        paths = [f"{p}:{i}" for i, p in enumerate(paths)]
    options.setdefault("layers", paths)
    saved = [v.numpy().copy() for v in trainable + frozen]
    originals = {p: _numpy(v) for p, v in zip(paths, trainable, strict=True)}

    def call(tensors: dict[str, Any], cast: Callable[[Any], Any]) -> Any:
        values = [tensors[p] for p in paths]
        consts = [tf.identity(v.value) for v in frozen]
        out, _ = model.stateless_call(
            values, consts, *[cast(x) for x in inputs], training=training
        )
        return out

    try:
        return _run(
            call, originals, loss_fn, options, precision, vectorize, "check_model", widen=False
        )
    except TypeError as error:
        if len(inputs) > 1 and "multiple values for argument 'training'" in str(error):
            error.add_note(
                "gradcheck: check_model calls model.stateless_call(..., *inputs, training=...); "
                "a model with several inputs takes them as one list: "
                "check_model(model, [x1, x2])."
            )
        raise
    finally:
        for v, value in zip(trainable + frozen, saved, strict=True):
            if not np.array_equal(v.numpy(), value, equal_nan=True):
                v.assign(value)
