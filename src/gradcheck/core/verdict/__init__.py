"""The verdict engine: backprop gradients against finite differences, judged against the
measured noise, as a pipeline of stages (``run``; docs/verdict.md describes each stage).

Imports: ``gradcheck._errors``, ``gradcheck.report`` and the rest of ``gradcheck.core`` only;
the stages import each other downwards (records, plan, first pass, kinks, refinement, flat
entries, the tensor stage, assembly, run), never back.
"""

from gradcheck.core._options import SchemeName
from gradcheck.core.verdict._run import run

__all__ = ["SchemeName", "run"]
