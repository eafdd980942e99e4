"""Hypothesis profiles: "dev" explores new examples each run; "ci" (used when CI is set) is
derandomized, so a CI run is reproducible; "stress" is for long local sweeps
(``pytest --hypothesis-profile=stress``)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", deadline=None, max_examples=40)
settings.register_profile("ci", deadline=None, max_examples=40, derandomize=True)
settings.register_profile("stress", deadline=None, max_examples=400)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
