"""checks: the public NumPy checks, composing the verdict with the diagnosis. Layer 4.

Owns ``check`` (``_check``: ``core`` verdict, then ``diagnose``) and ``sweep`` (``_sweep``).

May import: ``diagnose``, ``core``, ``report``, ``gradcheck._errors``.
"""
