"""PyTorch: ``check_module`` for ``nn.Module``, ``check_function`` for custom Functions, and
``check_against`` for low-precision kernels (bf16, fp16) against a reference, and
``monitor_step`` to check a training step's ``.grad`` with a ``gradcheck.Monitor``.

The public door to ``gradcheck.frameworks.torch``; importing it does not import torch,
but without torch installed it raises an ImportError that says ``pip install "gradcheck[torch]"``.

>>> import torch, gradcheck.torch
>>> lin = torch.nn.Linear(3, 2).double()
>>> gradcheck.torch.check_module(lin, torch.randn(4, 3, dtype=torch.float64)).passed
True
"""

from gradcheck._errors import ensure_available

ensure_available("torch", "torch", "gradcheck.torch")

from gradcheck.frameworks._against import check_against  # noqa: E402
from gradcheck.frameworks._monitor_torch import monitor_step  # noqa: E402
from gradcheck.frameworks.torch import check_function, check_module  # noqa: E402

__all__ = ["check_against", "check_function", "check_module", "monitor_step"]
