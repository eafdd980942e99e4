"""diagnose: what kind of mistake a wrong gradient is, and where it starts. Layer 3.

Owns the signature table (``_signatures``), the findings, the likely origin and the
re-check of candidate corrections (``_diagnose``), and the Taylor test (``_taylor``).

May import: ``gradcheck.core`` and ``gradcheck.report``. It never imports the verdict's
``run``: a caller hands it ``recheck(loss, params, grads) -> passed``.
"""
