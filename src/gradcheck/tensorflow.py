"""TensorFlow: ``check_function`` (``tf.custom_gradient``) and ``check_model`` for Keras 3 models.

The public door to ``gradcheck.frameworks.tensorflow``; importing it does not import tensorflow.
Install with ``pip install "gradcheck[tensorflow]"`` (the CPU build).
"""

from gradcheck.frameworks.tensorflow import check_function, check_model

__all__ = ["check_function", "check_model"]
