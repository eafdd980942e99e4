"""frameworks: PyTorch, JAX and TensorFlow adapters over the NumPy checks. Layer 5.

``_protocol`` holds the adapter protocol and the rules the three share (the cotangent rule,
the objective, several outputs, the dtype note); ``_shared`` the option checks, batched wiring
(and the batched-or-loop choice) and merged reports; ``_special`` complex, non-finite and
empty tensors. One door per framework (``torch``, ``jax``, ``tensorflow``) with its parts
(``_torch_problem``/``_torch_views``/``_torch_run``, ``_jax_problem``/``_jax_compiled``/``_jax_stacks``,
``_tf_run``; ``_higher`` for order 2 and forward mode, with ``_higher_torch`` and
``_higher_jax``), each importing its framework inside functions. The public doors are
``gradcheck.torch``, ``gradcheck.jax`` and ``gradcheck.tensorflow``.

May import: ``checks``, ``report``, ``core``, ``gradcheck._errors``. Not ``nn``, ``testing``, ``cli``.
"""
