"""PyTorch: ``check_module`` for ``nn.Module`` and ``check_function`` for custom Functions.

The public door to ``gradcheck.frameworks.torch``; importing it does not import torch.

>>> import torch, gradcheck.torch
>>> lin = torch.nn.Linear(3, 2).double()
>>> gradcheck.torch.check_module(lin, torch.randn(4, 3, dtype=torch.float64)).passed
True
"""

from gradcheck.frameworks.torch import check_function, check_module

__all__ = ["check_function", "check_module"]
