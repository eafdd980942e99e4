"""gradcheck for test suites: ``assert_gradients`` and its pytest plugin.

Layer 6: may import everything below it (``checks``, ``frameworks``, ``report``, ``core``).
``_assert.py`` holds ``assert_gradients``; ``_plugin.py`` is the pytest plugin (entry point).
"""

from gradcheck.testing._assert import GradientAssertionError, assert_gradients

__all__ = ["GradientAssertionError", "assert_gradients"]
