"""JAX: ``check`` for functions of pytrees (``jit``, ``custom_vjp``, ``custom_jvp``), and
``monitored`` to check a ``value_and_grad`` training step with a ``gradcheck.Monitor``.

The public door to ``gradcheck.frameworks.jax``; importing it does not import jax,
but without jax installed it raises an ImportError that says ``pip install "gradcheck[jax]"``.
"""

from gradcheck._errors import ensure_available

ensure_available("jax", "jax", "gradcheck.jax")

from gradcheck.frameworks._monitor_jax import monitored  # noqa: E402
from gradcheck.frameworks.jax import check  # noqa: E402

__all__ = ["check", "monitored"]
