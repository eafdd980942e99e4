"""cli: the ``gradcheck`` command and what only it needs. Layer 7 (the top).

Owns the typer app (``_app``), the demo (``_demo``), loading ``module:function`` targets
(``_target``) and ``approx`` for expressions (``_approx``). Importing this package does not
import typer; ``_app`` does.

May import every layer below: ``testing``, ``nn``, ``frameworks``, ``checks``, ``diagnose``,
``report``, ``core``, ``gradcheck._errors``.
"""
