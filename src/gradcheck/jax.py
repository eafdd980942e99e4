"""JAX: ``check`` for functions of pytrees (``jit``, ``custom_vjp``, ``custom_jvp``).

The public door to ``gradcheck.frameworks.jax``; importing it does not import jax.
"""

from gradcheck.frameworks.jax import check

__all__ = ["check"]
