"""The wording of the notes the tools around the engine add (``Monitor``, ``nn.Net``, the pytest
plugin, progress): one renderer per ``NoteCode``, looked up by ``_sentences.render``.

>>> monitor_found(None, step=7, check=2, steps=100, worst=3.5, names="W", path="/tmp/s")[:34]
'Monitor: found at training step 7 '
"""

from __future__ import annotations


def monitor_found(_: None, step: int, check: int, steps: int, worst: float, names: str,
                  path: str) -> str:
    return (
        f"Monitor: found at training step {step} (check {check} of {steps:,} "
        f"steps): a random direction disagreed by {worst:.3g}× its noise bound, and this "
        f"check of {names} confirmed it. The step's parameters, gradients and "
        f"batch are saved in {path}: gradcheck.monitor.reproduce({path!r}, loss) runs "
        "this check again."
    )
