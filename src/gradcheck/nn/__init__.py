"""``gradcheck.nn``: a small, readable NumPy network with hand-written backprop to compare with.

Layer 5, beside ``frameworks``: may import ``checks``, ``report``, ``core`` and ``gradcheck._errors``.
Inside, ``_net`` builds on ``_train``, ``_bugs``, ``_losses``, ``_init``, ``_activations``, ``_optim``
and ``_data``; none of those imports ``_net``.

>>> import numpy as np
>>> from gradcheck.nn import Net
>>> net = Net((3, 4, 2), activation="sigmoid", l2=0.1, seed=1)
>>> net.check(np.ones((5, 3)), np.array([0, 1, 1, 0, 1])).passed
True
"""

from gradcheck.nn._activations import ACTIVATIONS, Activation
from gradcheck.nn._bugs import PLANTS, Bug
from gradcheck.nn._data import Dataset, load_digits, load_mnist, one_hot
from gradcheck.nn._init import INITS, init_params
from gradcheck.nn._losses import OUTPUTS, Output
from gradcheck.nn._net import Net
from gradcheck.nn._optim import OPTIMIZERS, SGD, Adam, Momentum, RMSprop, make_optimizer
from gradcheck.nn._train import History, train

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "OPTIMIZERS",
    "OUTPUTS",
    "PLANTS",
    "Activation",
    "Adam",
    "Bug",
    "Dataset",
    "History",
    "Momentum",
    "Net",
    "Output",
    "RMSprop",
    "SGD",
    "init_params",
    "load_digits",
    "load_mnist",
    "make_optimizer",
    "one_hot",
    "train",
]
