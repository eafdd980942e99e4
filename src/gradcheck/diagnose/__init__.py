"""diagnose: what kind of mistake a wrong gradient is, and where it starts. Layer 3.

Owns the signature table (``_signatures``; what they look at: ``_evidence``; partial mistakes:
``_localized``), the output delta across tensors (``_delta``), the hints table (``_hints``),
the findings, the likely origin and the re-check of candidate corrections (``_diagnose``),
and the Taylor test (``_taylor``).

May import: ``gradcheck.core`` and ``gradcheck.report``. It never imports the verdict's
``run``: a caller hands it ``recheck(loss, params, grads) -> passed``.
"""
