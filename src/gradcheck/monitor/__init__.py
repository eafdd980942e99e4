"""monitor: gradient checks during training, within a fraction of its time. Layer 5.

Owns ``Monitor`` (``_monitor``: the decision, the escalation and the failure actions), the time
budget (``_budget``), the joint directional screen (``_screen``, on ``core._directional``) and
the saved state of a failing step with ``load`` and ``reproduce`` (``_saved``).

May import: ``checks``, ``diagnose``, ``core``, ``report`` and ``gradcheck._errors``; never ``nn``
or ``frameworks`` (beside it on layer 5: they call ``Monitor.step`` without importing it).

>>> import itertools, numpy as np, gradcheck
>>> clock = itertools.count().__next__  # a fake clock: each reading is 1 s later
>>> monitor = gradcheck.Monitor(overhead=0.5, on_failure="stop", clock=clock)
>>> w = np.array([1.0, -2.0, 0.5])
>>> for _ in range(100):
...     if monitor.step(lambda p: float(np.sum(p ** 3)), w, 3 * w):  # 3 w, not 3 w²
...         break
>>> monitor.stopped, monitor.report.suspects
(True, ('theta',))
"""

from gradcheck.monitor._monitor import Checked, Monitor, MonitorWarning
from gradcheck.monitor._saved import Saved, load, reproduce

__all__ = ["Checked", "Monitor", "MonitorWarning", "Saved", "load", "reproduce"]
