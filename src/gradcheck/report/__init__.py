"""report: a check's result as data, and its views. Layer 1.

Owns ``ReportData``, ``Component``, ``Finding`` and the per-entry status codes (``_model``), the
notes' sentences (``_notes``), number formatting (``_format``), the text/rich, HTML and Markdown
renderers (``_text``, ``_html``, ``_markdown``), the sweep's result and plot (``_sweep``), and
``Report`` (``_report``), which joins the data with its views.

May import: ``gradcheck._errors`` only (and numpy, rich, matplotlib lazily). The renderers read
``ReportData`` and never import ``_report``.
"""
