"""frameworks: PyTorch and JAX adapters over the NumPy checks. Layer 5.

Owns what the adapters share (``_shared``: option checks, batched wiring, merged reports) and
one module per framework (``torch``, ``jax``), each importing its framework inside functions.
The public doors are ``gradcheck.torch`` and ``gradcheck.jax``.

May import: ``checks``, ``report``, ``core``, ``gradcheck._errors``. Not ``nn``, ``testing``, ``cli``.
"""
