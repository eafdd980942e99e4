"""gradcheck.nn: the reference net's backprop is right for every combination, and every planted
bug is caught and named."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck import OptionError, ShapeMismatchError
from gradcheck.nn import ACTIVATIONS, OUTPUTS, Bug, Net, init_params, make_optimizer
from gradcheck.report._sentences import NoteCode


def batch(net: Net, m: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, net.sizes[0]))
    if net.output.name == "softmax-ce":
        return X, rng.integers(0, net.sizes[-1], m)
    if net.output.name == "sigmoid-bce":
        return X, rng.integers(0, 2, (m, net.sizes[-1])).astype(float)
    return X, rng.standard_normal((m, net.sizes[-1]))


COMBOS = list(itertools.product(ACTIVATIONS, OUTPUTS, [0.0, 0.3], [1.0, 0.7]))


@pytest.mark.parametrize(("activation", "loss", "l2", "keep_prob"), COMBOS)
def test_every_combination_passes_the_check(activation, loss, l2, keep_prob):
    net = Net((4, 5, 3), activation=activation, loss=loss, l2=l2, keep_prob=keep_prob, seed=1)
    report = net.check(*batch(net))
    assert report.passed, report.explain()
    assert (NoteCode.NET_L2 in report.note_codes) == (l2 > 0)
    assert (NoteCode.NET_DROPOUT in report.note_codes) == (keep_prob < 1)


@pytest.mark.parametrize(("activation", "loss", "l2", "keep_prob"), COMBOS)
def test_gradients_match_pytorch_float64_autograd(activation, loss, l2, keep_prob):
    torch = pytest.importorskip("torch")
    net = Net((4, 6, 5, 3), activation=activation, loss=loss, l2=l2, keep_prob=keep_prob, seed=2)
    X, Y = net._data(*batch(net, m=7))
    masks = net.dropout_masks(len(X), np.random.default_rng(3))
    ours = net.gradients(X, Y, masks=masks)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
           "leaky-relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01)}[activation]
    a, y = torch.tensor(X), torch.tensor(Y)
    for layer in range(1, net.depth + 1):
        z = a @ p[f"W{layer}"] + p[f"b{layer}"]
        if layer < net.depth:
            a = act(z) * (torch.tensor(masks[layer - 1]) if masks[layer - 1] is not None else 1)
    cost = {
        "softmax-ce": lambda: -(y * torch.log_softmax(z, dim=1)).sum(),
        "sigmoid-bce": lambda: torch.nn.functional.binary_cross_entropy_with_logits(
            z, y, reduction="sum"),
        "linear-mse": lambda: 0.5 * ((z - y) ** 2).sum(),
    }[loss]()
    m = len(X)
    J = cost / m + l2 / (2 * m) * sum((p[f"W{i}"] ** 2).sum() for i in range(1, net.depth + 1))
    J.backward()
    assert J.item() == pytest.approx(net.loss(X, Y, masks=masks), rel=1e-12)
    for name, value in p.items():
        np.testing.assert_allclose(ours[name], value.grad.numpy(), rtol=1e-10, atol=1e-14)


# Which parameters a planted bug makes wrong in a 2-layer net with L2 (each must be named).
EXPECTED = {
    Bug.ACT_DERIV_OF_A: {"W1", "b1"},
    Bug.MISSING_L2: {"W1", "W2"},
    Bug.MISSING_1_OVER_M: {"W1", "b1", "W2", "b2"},
    Bug.SIGN_DB2: {"b2"},
    Bug.TRANSPOSED_DW1: {"W1"},
    Bug.STALE_ACTIVATIONS: {"W1", "b1", "W2"},
}


@pytest.mark.parametrize("bug", list(Bug))
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_each_planted_bug_is_caught_and_named(bug, activation):
    assert set(EXPECTED) == set(Bug)
    net = Net((5, 6, 3), activation=activation, l2=0.2, seed=4, bug=bug)
    report = net.check(*batch(net, m=10))
    assert not report.passed
    assert set(report.suspects) == EXPECTED[bug]
    assert any(n.numbers["bug"] == bug.value for n in report.notes
               if n.code is NoteCode.NET_PLANTED_BUG)


@pytest.mark.parametrize("bug", list(Bug))
def test_planted_bugs_are_caught_after_training_too(bug):
    net = Net((5, 7, 3), activation="tanh", l2=0.1, seed=5, bug=bug)
    X, y = batch(net, m=30)
    history = net.fit(X, y, epochs=3, batch_size=10, lr=0.01, check_at=("end",), progress=False)
    (moment, report), = history.checks
    assert moment == "end" and set(report.suspects) == EXPECTED[bug]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_the_clean_net_is_never_flagged_at_init_or_after_training(seed, activation):
    net = Net((6, 8, 4), activation=activation, l2=0.05, keep_prob=0.8 if seed % 2 else 1.0,
              init="he", seed=seed)
    X, y = batch(net, m=40, seed=seed)
    history = net.fit(X, y, epochs=15, batch_size=8, optimizer="adam", lr=0.02,
                      check_at=("init", "end"), check_rows=16, progress=False)
    assert [m for m, _ in history.checks] == ["init", "end"]
    for _, report in history.checks:
        assert report.passed, report.explain()
    assert history.loss[-1] < history.loss[0]


@settings(max_examples=15, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    loss=st.sampled_from(sorted(OUTPUTS)),
    l2=st.sampled_from([0.0, 0.5]),
    seed=st.integers(0, 2**16),
)
def test_random_architectures_pass(sizes, activation, loss, l2, seed):
    net = Net(sizes, activation=activation, loss=loss, l2=l2, init="glorot", init_scale=1.5,
              seed=seed)
    assert net.check(*batch(net, m=4, seed=seed)).passed


def test_check_leaves_the_params_untouched_even_when_it_fails():
    net = Net((4, 5, 3), l2=0.1, keep_prob=0.5, seed=0, bug="sign-db2")
    before = {k: v.copy() for k, v in net.params.items()}
    state = np.random.get_state()[1].copy()
    assert not net.check(*batch(net)).passed
    for k, v in before.items():
        assert net.params[k].tobytes() == v.tobytes()
    assert (np.random.get_state()[1] == state).all()


def test_dropout_is_random_in_training_and_fixed_in_the_check():
    net = Net((4, 6, 3), keep_prob=0.5, seed=0)
    X, Y = batch(net)
    rng = np.random.default_rng(0)
    draws = {net.loss(X, Y, masks=net.dropout_masks(len(X), rng)) for _ in range(5)}
    assert len(draws) > 1
    assert net.check(X, Y, mask_seed=7).passed


def test_same_seed_same_training_run():
    runs = []
    for _ in range(2):
        net = Net((4, 6, 3), keep_prob=0.8, seed=11)
        X, y = batch(net, m=24)
        net.fit(X, y, epochs=3, batch_size=5, optimizer="rmsprop", progress=False)
        runs.append(net.params)
    for k in runs[0]:
        assert runs[0][k].tobytes() == runs[1][k].tobytes()


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "rmsprop", "adam"])
def test_every_optimizer_learns(optimizer):
    net = Net((4, 8, 3), seed=0)
    X = np.random.default_rng(1).standard_normal((60, 4))
    y = (X @ np.random.default_rng(2).standard_normal((4, 3))).argmax(axis=1)  # learnable
    lr = {"sgd": 0.5, "momentum": 0.5, "rmsprop": 0.01, "adam": 0.01}[optimizer]
    history = net.fit(X, y, epochs=30, batch_size=20, optimizer=optimizer, lr=lr, progress=False)
    assert history.loss[-1] < 0.7 * history.loss[0]


def test_check_every_n_steps_and_its_validation():
    net = Net((3, 4, 2), seed=0)
    X, y = batch(net, m=12)
    history = net.fit(X, y, epochs=2, batch_size=4, check_every=2, progress=False)
    assert [m for m, _ in history.checks] == ["step 2", "step 4", "step 6"]
    with pytest.raises(OptionError, match="check_at"):
        net.fit(X, y, check_at=("always",), progress=False)


@pytest.mark.parametrize(("init", "variance"), [
    ("he", lambda i, o: 2 / i), ("xavier", lambda i, o: 1 / i), ("glorot", lambda i, o: 2 / (i + o)),
])
def test_initialisation_variances(init, variance):
    W = init_params((400, 300), init, 0.5, np.random.default_rng(0))["W1"]
    assert W.var() == pytest.approx(0.25 * variance(400, 300), rel=0.02)
    assert f"init={init}×0.5" in repr(Net((400, 300), init=init, init_scale=0.5))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"activation": "swish"}, "activation='swish'.*sigmoid, tanh, relu, leaky-relu"),
    ({"loss": "hinge"}, "loss='hinge'"),
    ({"bug": "typo"}, "bug='typo'.*act-deriv-of-a"),
    ({"bug": "act-deriv-of-a", "activation": "relu"}, "changes nothing"),
    ({"bug": "missing-l2"}, "needs l2 > 0"),
    ({"keep_prob": 0.0}, "keep_prob"),
])
def test_bad_options_are_refused_with_a_sentence(kwargs, match):
    with pytest.raises(OptionError, match=match):
        Net((3, 4, 2), **kwargs)
    with pytest.raises(OptionError, match="optimizer='lbfgs'"):
        make_optimizer("lbfgs")


def test_data_of_the_wrong_shape_is_refused():
    net = Net((3, 4, 2))
    with pytest.raises(ShapeMismatchError, match=r"X of shape \(m, 3\)"):
        net.check(np.ones((5, 4)), np.zeros(5, dtype=int))
