"""checks: the public NumPy checks, composing the verdict with the diagnosis. Layer 4.

Owns ``check`` (``_check``: ``core`` verdict, then ``diagnose``), ``check_layer`` (``_layer``:
a forward/backward layer as J = Σ out·dout) and ``sweep`` (``_sweep``).

May import: ``diagnose``, ``core``, ``report``, ``gradcheck._errors``.
"""
