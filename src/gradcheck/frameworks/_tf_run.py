"""TensorFlow adapter, part 2: TensorFlow's side of the adapter protocol, the dtype policy,
``GradientTape``'s gradient and batched evaluation through ``tf.vectorized_map``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck._errors import (
    GradCheckError,
    NonFiniteError,
    OptionError,
    StochasticLossError,
    short,
)
from gradcheck.frameworks import _batching, _protocol
from gradcheck.frameworks import _shared as _adapters
from gradcheck.report._sentences import Note, NoteCode

if TYPE_CHECKING:
    from gradcheck.report._report import Report

CHUNK = 64  # rows of perturbed parameter vectors per tf.vectorized_map call
TOOL = "tf.vectorized_map"


def _tf() -> Any:
    try:
        import tensorflow as tf
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            'gradcheck.tensorflow needs TensorFlow: pip install "gradcheck[tensorflow]"'
        ) from error
    return tf


# --- shared machinery -------------------------------------------------------------------------


def _first_order_only(api: str, options: dict[str, Any]) -> None:
    for key in ("order", "mode"):
        if key in options and options[key] not in (1, "reverse"):
            raise OptionError(
                f"{api}({key}={options[key]!r}): the TensorFlow adapter checks first-order "
                "reverse mode (GradientTape) only; order=2 and mode='forward' are in "
                "gradcheck.torch and gradcheck.jax."
            )
        options.pop(key, None)


def _nest_leaves(tf: Any, x: Any, label: str) -> list[tuple[int, str, Any]]:
    """``(j, name, leaf)`` for each leaf of a nested input, in ``tf.nest`` order, named by
    path: ``input0.W``, ``input0.1`` (``input0[j]`` where TensorFlow gives no paths)."""
    leaves = tf.nest.flatten(x)
    try:
        from tensorflow.python.util import nest

        paths = [p for p, _ in nest.flatten_with_joined_string_paths(x, separator=".")]
    except Exception:  # noqa: BLE001 - a private helper: fall back to positions
        paths = []
    if len(paths) != len(leaves) or len(set(paths)) != len(paths):
        return [(j, f"{label}[{j}]", leaf) for j, leaf in enumerate(leaves)]
    return [(j, f"{label}.{p}", leaf) for j, (p, leaf) in enumerate(zip(paths, leaves, strict=True))]


def _refuse_complex(tf: Any, name: str, x: Any) -> None:
    """A complex tensor would otherwise be taken as a constant: unchecked without a word."""
    if isinstance(x, tf.Tensor | tf.Variable) and x.dtype.is_complex:
        raise OptionError(
            f"check_function(): {name} is {x.dtype.name}; gradcheck.tensorflow checks real "
            "floating tensors only. Pass its real and imaginary parts as two float inputs and "
            "build tf.complex(re, im) inside fn (or check it with gradcheck.jax / "
            "gradcheck.torch, which take complex inputs)."
        )


def _checkable(tf: Any, x: Any) -> bool:
    if isinstance(x, tf.Variable):
        return bool(x.trainable) and x.dtype.is_floating
    return isinstance(x, tf.Tensor) and x.dtype.is_floating


def _numpy(x: Any) -> np.ndarray:
    return np.array(x.numpy(), copy=True)


def _leaves(tf: Any, out: Any) -> list[Any]:
    """The floating tensors of an output (a tensor, or nested tuples/lists/dicts)."""
    if isinstance(out, tf.Tensor | tf.Variable):
        return [out] if out.dtype.is_floating else []
    if isinstance(out, list | tuple):
        return [t for v in out for t in _leaves(tf, v)]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _leaves(tf, v)]
    if isinstance(out, np.ndarray) and np.issubdtype(out.dtype, np.floating):
        return [tf.constant(out)]
    return []


class _TensorFlow:
    """TensorFlow's side of the adapter protocol (``_protocol.Adapter``); complex outputs are
    not among the leaves (complex inputs are refused)."""

    def leaves(self, out: Any) -> list[Any]:
        return _leaves(_tf(), out)

    def is_complex(self, leaf: Any) -> bool:
        return False

    def real_view(self, leaf: Any) -> Any:
        return leaf

    def shape(self, view: Any) -> tuple[int, ...]:
        return tuple(view.shape)

    def size(self, leaf: Any) -> int:
        return int(leaf.shape.num_elements())

    def scalar(self, leaf: Any) -> Any:
        return _tf().reshape(leaf, [])

    def constant(self, view: Any, r: np.ndarray) -> Any:
        return _tf().constant(r, dtype=view.dtype)

    def key(self, view: Any) -> Any:
        # Eager constants are made once; inside a graph (vectorized_map), in that graph.
        return view.dtype if _tf().executing_eagerly() else None

    def dot(self, view: Any, c: Any) -> Any:
        return _tf().reduce_sum(view * c)

    def entry(self, view: Any, m: int) -> Any:
        return _tf().reshape(view, [-1])[m]

    def loss(self, j: Any) -> Any:
        tf = _tf()
        j = tf.convert_to_tensor(j)
        if j.shape.num_elements() != 1:
            raise GradCheckError(
                f"loss_fn(output) must return a scalar J; it returned shape "
                f"{tuple(j.shape)}. Reduce it, e.g. with tf.reduce_mean."
            )
        return tf.reshape(j, [])


TENSORFLOW = _TensorFlow()


def _run(
    call: Callable[[dict[str, Any], Callable], Any],
    originals: dict[str, np.ndarray],
    loss_fn: Callable | None,
    options: dict[str, Any],
    precision: Any,
    vectorize: Any,
    api: str,
    notes: Sequence[str] = (),
    widen: bool = True,
) -> Report:
    tf = _tf()
    precision = _adapters.choose(api, "precision", precision, _adapters.PRECISIONS)
    vectorize = _adapters.choose(api, "vectorize", vectorize, _adapters.VECTORIZE)
    seed = options.get("seed", 0)
    out = call({n: tf.constant(a) for n, a in originals.items()}, _identity)
    n_out = 1 if loss_fn is not None else len(_leaves(tf, out))
    if n_out == 0:
        raise GradCheckError(
            f"{api}(): fn returned no floating-point tensor, so there is no gradient to check. "
            "Return the tensor (or tuple of tensors) your gradient differentiates."
        )
    objective = _protocol.Objective(TENSORFLOW, seed, loss_fn)
    dtypes, note = _precision(tf, call, originals, objective, precision, api, widen)

    def one(obj: _protocol.Objective) -> Report:
        return _check_one(tf, call, originals, obj, dtypes, options, vectorize, note)

    outputs = range(n_out) if loss_fn is None else ()
    screen = _adds_up(tf, call, originals, objective, dtypes, outputs)  # the linearity screen
    report = _protocol.by_output(one(objective), outputs, lambda k: one(objective.alone(k)), screen)
    return _adapters.with_notes(report, notes)


def _adds_up(
    tf: Any,
    call: Callable,
    originals: dict[str, np.ndarray],
    objective: _protocol.Objective,
    dtypes: dict[str, Any],
    outputs: Sequence[int],
) -> Callable[[], bool]:
    """The protocol's linearity screen of several outputs, as in torch and JAX: the
    GradientTape gradient of each output alone against the combined one (no loss call)."""

    def screen() -> bool:
        if len(outputs) < 2:
            return True
        cast = _caster(originals, dtypes)

        def gradient(obj: _protocol.Objective) -> dict[str, np.ndarray]:
            leaves = {n: tf.constant(a.astype(dtypes[n])) for n, a in originals.items()}
            return _as_arrays(tf, _taped(tf, call, obj, leaves, cast)[1], originals)

        alone = [gradient(objective.alone(k)) for k in outputs]
        eps = max(float(np.finfo(d).eps) for d in dtypes.values())
        return _protocol.gradients_add_up(gradient(objective), alone, eps)

    return screen


def _caster(originals: dict[str, np.ndarray], dtypes: dict[str, Any]) -> Callable[[Any], Any]:
    """How constants are cast: to float64 where float64 copies stand in for narrower tensors."""
    wide = all(d == np.float64 for d in dtypes.values()) and any(
        a.dtype != np.float64 for a in originals.values()
    )
    return _cast64 if wide else _identity


def _taped(tf: Any, call: Callable, objective: Callable, leaves: dict[str, Any],
           cast: Callable) -> tuple[Any, list[Any]]:
    """J at ``leaves`` and GradientTape's gradient of it (None where J does not depend)."""
    with tf.GradientTape() as tape:
        tape.watch(list(leaves.values()))
        j = objective(call(leaves, cast))
    return j, tape.gradient(j, list(leaves.values()))


def _as_arrays(tf: Any, got: list[Any], like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Tape gradients as float64 arrays, a zero array for each None (no dependence)."""
    return {n: np.zeros(like[n].shape) if g is None
            else np.asarray(tf.convert_to_tensor(g), np.float64)
            for n, g in zip(like, got, strict=True)}


def _identity(x: Any) -> Any:
    return x


def _cast64(x: Any) -> Any:
    tf = _tf()
    if isinstance(x, tf.Tensor | tf.Variable) and x.dtype.is_floating:
        return tf.cast(x, tf.float64)
    if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float64)
    return x


def _precision(
    tf: Any,
    call: Callable,
    originals: dict[str, np.ndarray],
    objective: Callable,
    precision: str,
    api: str,
    widen: bool = True,
) -> tuple[dict[str, Any], str]:
    """The dtypes to check in, and a note. ``widen=False`` (Keras variables): no float64
    copies, since ``stateless_call`` casts each value to its variable's dtype; a float32
    kernel would be rounded to float32 while the output, promoted by float64 inputs, still
    reads float64, so the check would judge float32 rounding as a float64 gradient error."""
    native = {n: np.dtype(a.dtype) for n, a in originals.items()}
    kinds = ", ".join(sorted({str(d) for d in native.values()}))
    # bfloat16 (NumPy holds it through ml_dtypes, kind "V") is checked on float64 copies only:
    # the core computes in NumPy floats, which have no bfloat16.
    narrow = [n for n, d in native.items() if d.kind != "f"]
    if any(d.kind != "f" and d.name != "bfloat16" for d in native.values()):
        raise GradCheckError(
            f"{api}(): the checked tensors must be bfloat16 or float16/32/64 ({kinds})."
        )
    if narrow and precision == "native":
        raise GradCheckError(
            f"{api}(precision='native'): {narrow[0]} is bfloat16, which NumPy cannot compute "
            "in, so it cannot be checked in its own dtype. Use precision='auto' (float64 "
            "copies)."
        )
    if precision == "native" or all(d == np.float64 for d in native.values()):
        return native, _protocol.precision_note([kinds], kinds, "GradientTape")
    if not widen:
        why = ("Keras casts every value given for a variable to the variable's dtype, so "
               "float64 copies of its variables cannot be used")
        if precision == "float64" or narrow:
            raise GradCheckError(
                f"{api}(precision={precision!r}): {why}, and the variables are {kinds}. Build "
                "the model in float64 (keras.config.set_floatx('float64') before building it) "
                "for a float64 check" + ("." if narrow else ", or use precision='auto'.")
            )
        return native, _protocol.precision_note([kinds], kinds, "GradientTape", why)
    try:
        out = call(
            {n: tf.constant(a.astype(np.float64)) for n, a in originals.items()}, _cast64
        )
        j = objective(out)
        ok = j.dtype == tf.float64 and all(t.dtype == tf.float64 for t in _leaves(tf, out))
        why = "its output is not float64"
    except Exception as error:  # a float32-only kernel or mixed-dtype constants inside fn
        ok, why = False, f"it raised in float64 ({short(error)})"
    if ok:
        wide = dict.fromkeys(native, np.dtype(np.float64))
        return wide, _protocol.precision_note([kinds], "float64", "GradientTape")
    if precision == "float64" or narrow:
        fix = (f"{narrow[0]} is bfloat16, which can be checked on float64 copies only: make "
               "fn run in float64 or pass the tensor as float32") if narrow and precision != (
            "float64") else "Use precision='auto' to check it in its own dtype"
        raise GradCheckError(
            f"{api}(precision={precision!r}): the computation cannot run on float64 copies "
            f"({why}). {fix}."
        )
    why = f"float64 copies were tried, but {why}"
    return native, _protocol.precision_note([kinds], kinds, "GradientTape", why)


def _check_one(
    tf: Any,
    call: Callable,
    originals: dict[str, np.ndarray],
    objective: Callable,
    dtypes: dict[str, Any],
    options: dict[str, Any],
    vectorize: str,
    precision_note: str,
) -> Report:
    names = list(originals)
    cast = _caster(originals, dtypes)
    params = {n: originals[n].astype(dtypes[n]) for n in names}

    def tensors(p: dict[str, np.ndarray]) -> dict[str, Any]:
        return {n: tf.constant(p[n], dtype=tf.as_dtype(dtypes[n])) for n in names}

    def loss(p: dict[str, np.ndarray]) -> float:
        return float(objective(call(tensors(p), cast)))

    j, got = _taped(tf, call, objective, tensors(params), cast)
    if not (isinstance(j, tf.Tensor) and j.shape.num_elements() == 1):
        raise GradCheckError(
            "loss_fn(output) must return a scalar tensor J; it returned "
            f"{type(j).__name__}. Reduce it, e.g. with tf.reduce_mean."
        )
    grads = _as_arrays(tf, got, params)
    unconnected = [n for n, g in zip(names, got, strict=True) if g is None]
    batched, reason = _batched(tf, call, objective, params, dtypes, cast, loss, vectorize)
    batched = _batching.choose_path(batched, loss, params, CHUNK, TOOL, vectorize)
    notes = [precision_note, _batching.evaluation_note(batched, reason, TOOL)]
    try:
        native = {n: str(a.dtype) for n, a in originals.items()}
        report = _adapters.run_check(loss, params, grads, options, batched, notes, native)
        return _adapters.with_notes(report, _unconnected_notes(report, unconnected))
    except NonFiniteError as error:
        if str(error).startswith("grads["):
            error.add_note(_adapters.nonfinite_grad_note(str(error), "the GradientTape gradient", "tf.where"))
        raise
    except StochasticLossError as error:
        raise StochasticLossError(
            f"{error} For a Keras model, check with training=False (the default) or set the "
            "dropout rate to 0."
        ) from error


def _unconnected_notes(report: Report, names: Sequence[str]) -> list[str]:
    """What a None from ``tape.gradient`` meant, per input: J does not depend on it (nothing
    about its gradient was tested), or J does and the tape's path to it is cut."""
    notes = []
    for name in names:
        c = report.components.get(name)
        if c is None:
            continue
        notes.append(Note(NoteCode.UNCONNECTED, name, {"depends": not c.passed}))
    return notes


def _batched(
    tf: Any,
    call: Callable,
    objective: Callable,
    params: dict[str, np.ndarray],
    dtypes: dict[str, Any],
    cast: Callable,
    loss: Callable,
    vectorize: str,
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str]:
    """``fn(thetas (B, N)) -> J (B,)`` through ``tf.vectorized_map`` (chunked), or None and why."""
    if (refused := _batching.batched_refusal(vectorize)) is not None:
        return None, refused
    names = list(params)
    shapes = [params[n].shape for n in names]
    sizes = [int(np.prod(s)) for s in shapes]

    def one(theta: Any) -> Any:
        parts = tf.split(theta, sizes) if len(sizes) > 1 else [theta]
        tensors = {
            n: tf.cast(tf.reshape(p, s), tf.as_dtype(dtypes[n]))
            for n, p, s in zip(names, parts, shapes, strict=True)
        }
        return tf.cast(objective(call(tensors, cast)), tf.float64)

    # one trace for every chunk (a fresh vectorized_map per call would retrace each time)
    spec = tf.TensorSpec([None, sum(sizes)], tf.float64)
    mapped = tf.function(lambda t: tf.vectorized_map(one, t, warn=False), input_signature=[spec])

    def fn(thetas: np.ndarray) -> np.ndarray:
        thetas = np.asarray(thetas, dtype=np.float64)
        out = [
            mapped(tf.constant(thetas[s : s + CHUNK])).numpy()
            for s in range(0, len(thetas), CHUNK)
        ]
        return np.concatenate(out).reshape(-1).astype(np.float64)

    theta = np.concatenate([params[n].reshape(-1).astype(np.float64) for n in names])
    return _batching.probe_batched(fn, np.stack([theta, theta]), lambda: loss(params), vectorize, TOOL)

