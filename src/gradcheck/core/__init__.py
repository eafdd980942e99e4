"""core: the numerics and the verdict. Layer 2.

Owns parameter trees (``_tree``), the options of a check (``_options.CheckConfig``) and input
checks (``_validate``), evaluation of the loss on copies (``_evaluate``; pools and Dask in
``_executor``), the noise estimate (``_noise``), finite-difference schemes (``_schemes``),
tolerances by dtype (``_tolerance``), coordinate selection (``_coords``), directional search
(``_directional``), progress and Ctrl-C (``_progress``), the verdict (``verdict.run``, a
pipeline of stages, docs/verdict.md) and ``numerical_gradient`` (``_numerical``).

May import: ``gradcheck._errors`` and ``gradcheck.report`` (the data it fills in). Never the
diagnosis, the public checks, the adapters or the command line.
"""
