"""Hypothesis profiles: "ci", the default, is derandomized, so every run of the suite (``make
test``, CI) draws the same examples and a failure is reproducible; "dev" explores new examples
each run (``pytest --hypothesis-profile=dev``); "stress" is for long local sweeps
(``pytest --hypothesis-profile=stress``). A profile given on the command line wins."""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("dev", deadline=None, max_examples=40)
settings.register_profile("ci", deadline=None, max_examples=40, derandomize=True)
settings.register_profile("stress", deadline=None, max_examples=400)
settings.load_profile("ci")
