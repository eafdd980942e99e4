"""Octave and MATLAB: ``check_m`` runs a ``.m`` cost function ``[J grad] = f(nn_params, ...)``.

The public door to ``gradcheck.frameworks.octave``; importing it does not import oct2py, but
without it installed it raises an ImportError that says ``pip install "gradcheck[octave]"``
(GNU Octave itself: ``sudo apt-get install octave``).

>>> import gradcheck.octave  # doctest: +SKIP
>>> gradcheck.octave.check_m("examples/octave/nnCostFunction.m",
...                          {"Theta1": Theta1, "Theta2": Theta2},
...                          args=(3, 5, 3, X, y, 3.0)).passed  # doctest: +SKIP
True
"""

from gradcheck._errors import ensure_available

ensure_available("oct2py", "octave", "gradcheck.octave")

from gradcheck.frameworks.octave import check_m, check_mat, from_mat  # noqa: E402

__all__ = ["check_m", "check_mat", "from_mat"]
