"""JAX's door to ``gradcheck.Monitor``: a ``value_and_grad`` training step, monitored.

``monitored(monitor, loss_fn)`` returns ``step(params, *batch) -> (value, grads)``, the same as
``jax.value_and_grad(loss_fn)``; on the steps the monitor checks, the gradients are compared with
finite differences of J evaluated by the step's own compiled ``value_and_grad`` (compiling a
separate loss would cost more than many checks) on NumPy copies of the parameters, in their own
dtype (float32 unless x64 is on: the monitor's noise-aware bound allows for it; the x64 flag is
never changed). The monitor is duck-typed (``step_with``): this layer does not import it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck._errors import OptionError, require


def monitored(monitor: Any, loss_fn: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    """``jax.value_and_grad(loss_fn)`` that offers every step's gradient to ``monitor``.

    Args:
      monitor: a ``gradcheck.Monitor``.
      loss_fn: ``loss_fn(params, *batch) -> scalar``; params a pytree of arrays (dicts, lists,
        tuples), differentiated as by ``jax.value_and_grad``; deterministic for a given batch.

    Returns:
      ``step(params, *batch) -> (value, grads)``; after a failure with
      ``Monitor(on_failure="stop")``, ``monitor.stopped`` is True.

    >>> import itertools, jax.numpy as jnp, gradcheck, gradcheck.jax
    >>> loss = lambda p, x: jnp.mean((x @ p["w"]) ** 2)
    >>> monitor = gradcheck.Monitor(overhead=0.5, clock=itertools.count().__next__)
    >>> step = gradcheck.jax.monitored(monitor, loss)
    >>> p, x = {"w": jnp.ones(3)}, jnp.arange(6.0).reshape(2, 3)
    >>> for _ in range(60):
    ...     value, grads = step(p, x)
    >>> monitor.checks > 0, monitor.report is None
    (True, True)
    """
    jax = require("jax", "jax", "gradcheck.jax.monitored")
    if not callable(loss_fn):
        raise OptionError(f"loss_fn={loss_fn!r} must be a function loss_fn(params, *batch).")
    value_and_grad = jax.jit(jax.value_and_grad(loss_fn))

    def step(params: Any, *batch: Any) -> tuple[Any, Any]:
        value, grads = value_and_grad(params, *batch)
        monitor.step_with(lambda: _prepare(jax, value_and_grad, params, grads, batch))
        return value, grads

    return step


def _prepare(jax: Any, compiled: Callable[..., Any], params: Any, grads: Any,
             batch: tuple[Any, ...]) -> tuple[Callable[[Any], float], Any, Any, dict]:
    numpy_params = jax.tree_util.tree_map(lambda x: np.array(x), params)
    numpy_grads = jax.tree_util.tree_map(lambda x: np.array(x), grads)
    dtypes = jax.tree_util.tree_map(lambda x: np.asarray(x).dtype, numpy_params)

    def loss(p: Any) -> float:
        cast = jax.tree_util.tree_map(lambda x, d: np.asarray(x, dtype=d), p, dtypes)
        return float(compiled(cast, *batch)[0])

    saved = {f"batch{i}": np.asarray(b) for i, b in enumerate(batch)}
    return loss, numpy_params, numpy_grads, saved
