"""PyTorch's door to ``gradcheck.Monitor``: the module's ``.grad`` checked between
``loss.backward()`` and ``optimizer.step()``.

On a checked step the module is copied and cast to float64 (parameters and buffers); J is
evaluated on that copy under ``torch.no_grad``, each call inside ``torch.random.fork_rng``, so
the user's module, its ``.grad``, its buffers, the RNG and the grad mode stay as they were.
Batch norm in training mode normalises with the batch's own statistics, as the training step
did (only the copy's running statistics move). Dropout in training mode is refused: the copy
cannot redraw the training step's mask. The monitor is duck-typed (``step_with``): this layer
does not import it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck._errors import OptionError, require

if TYPE_CHECKING:
    import torch

DROPOUT = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
           "FeatureAlphaDropout")


def monitor_step(
    monitor: Any,
    model: torch.nn.Module,
    loss_fn: Callable[..., Any],
    batch: Any,
) -> bool:
    """Offers this training step's gradient (``param.grad``) to ``monitor``.

    Call it after ``loss.backward()`` and before ``optimizer.step()``.

    Args:
      monitor: a ``gradcheck.Monitor``.
      model: the ``torch.nn.Module`` being trained; untouched (parameters, ``.grad``, buffers,
        training flags), as are the RNG and the grad mode.
      loss_fn: ``loss_fn(model, *batch) -> scalar tensor``, the loss of this step (called on a
        float64 copy of ``model`` with float64 copies of the batch's floating tensors).
      batch: a tensor or a tuple of tensors (inputs, targets); saved with a failure.

    Returns:
      True when training should stop (``Monitor(on_failure="stop")`` after a failure).

    >>> import itertools, torch, gradcheck, gradcheck.torch
    >>> model, x = torch.nn.Linear(3, 1), torch.randn(8, 3)
    >>> loss_fn = lambda m, x: (m(x) ** 2).mean()
    >>> monitor = gradcheck.Monitor(overhead=0.5, clock=itertools.count().__next__)
    >>> for _ in range(60):
    ...     model.zero_grad(); loss_fn(model, x).backward()
    ...     stop = gradcheck.torch.monitor_step(monitor, model, loss_fn, x)
    >>> monitor.checks > 0, monitor.report is None
    (True, True)
    """
    if not monitor.steps:  # the first step: refuse early what every check would refuse
        torch = require("torch", "torch", "gradcheck.torch.monitor_step")
        if not isinstance(model, torch.nn.Module):
            raise OptionError(f"model must be a torch.nn.Module, not {type(model).__name__}.")
        refuse_dropout(model)
    return bool(monitor.step_with(lambda: _prepare(model, loss_fn, batch)))


def refuse_dropout(model: Any) -> None:
    """An ``OptionError`` naming the first dropout layer in training mode, if any."""
    for name, layer in model.named_modules():
        if type(layer).__name__ in DROPOUT and layer.training and layer.p > 0:
            raise OptionError(
                f"{name or 'the model'} is a {type(layer).__name__} in training mode: the "
                "monitor cannot redraw the mask that the training step used, so its finite "
                "differences would compare another loss. Monitor the model with dropout off "
                "(p=0, or model.eval() for the monitored steps), or check it once with "
                "gradcheck.torch.check_module in eval mode."
            )


def _prepare(
    model: Any, loss_fn: Callable[..., Any], batch: Any
) -> tuple[Callable[[Any], float], dict[str, np.ndarray], dict[str, np.ndarray], dict]:
    """On a checked step: the loss on a float64 copy, and NumPy copies of params and grads."""
    torch = require("torch", "torch", "gradcheck.torch.monitor_step")
    if not isinstance(model, torch.nn.Module):
        raise OptionError(f"model must be a torch.nn.Module, not {type(model).__name__}.")
    refuse_dropout(model)
    batch = tuple(batch) if isinstance(batch, list | tuple) else (batch,)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.grad is not None]
    if not named:
        raise OptionError(
            "no parameter of model has a .grad: call gradcheck.torch.monitor_step after "
            "loss.backward() and before optimizer.step() (and before optimizer.zero_grad())."
        )
    params = {n: _numpy(p) for n, p in named}
    grads = {n: _numpy(p.grad) for n, p in named}
    twin = copy.deepcopy(model).to(torch.float64)
    mine = dict(twin.named_parameters())
    inputs = [t.detach().to(torch.float64) if _floating(torch, t) else t.detach() for t in batch]

    def loss(p: dict[str, np.ndarray]) -> float:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            for n, value in p.items():
                mine[n].copy_(torch.from_numpy(np.asarray(value, np.float64)))
            return float(loss_fn(twin, *inputs))

    saved = {f"batch{i}": _numpy(t) for i, t in enumerate(batch) if hasattr(t, "detach")}
    return loss, params, grads, saved


def _floating(torch: Any, t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point()


def _numpy(t: Any) -> np.ndarray:
    t = t.detach()
    if str(t.dtype) == "torch.bfloat16":  # NumPy has no bfloat16 (its precision is kept in
        t = t.float()  # the float32 grid: the measured noise and the bound allow for it)
    return t.cpu().numpy().copy()
