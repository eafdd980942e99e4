"""A failing step saved to disk reproduces the same report; Net.fit's door."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_clock import FakeClock

import gradcheck
from gradcheck import Monitor, OptionError
from gradcheck.monitor import load, reproduce
from gradcheck.nn import Net


def same_report(a: dict, b: dict) -> None:
    a, b = dict(a), dict(b)
    for d in (a, b):
        d.pop("seconds")
        codes = d.pop("note_codes", None) or [None] * len(d["notes"])
        d["notes"] = [n for n, c in zip(d["notes"], codes, strict=True) if c != "monitor-found"]
    assert a == b


def test_a_saved_failure_reproduces_exactly(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    net = Net((4, 6, 3), seed=0, bug="sign-db2")
    monitor = Monitor(overhead=1.0, on_failure="stop", save_dir=tmp_path,
                      clock=FakeClock(tick=1.0))
    history = net.fit(X, y, epochs=50, batch_size=8, progress=False, monitor=monitor)
    assert monitor.stopped and len(history.loss) < 50  # training stopped early
    (moment, report), = [c for c in history.checks if c[0].startswith("monitor")]
    assert moment == f"monitor: step {monitor.log[-1].step}" and report.suspects == ("b2",)
    saved = load(monitor.saved)
    assert saved.step == monitor.log[-1].step and set(saved.batch) == {"X", "Y"}
    assert saved.batch["X"].shape == (8, 4)
    again = reproduce(monitor.saved, net.batch_loss(saved.batch))
    same_report(again.to_dict(), json.loads((monitor.saved / "report.json").read_text()))
    assert (monitor.saved / "report.txt").read_text().startswith("gradcheck")


def test_dropout_masks_are_saved_and_replayed(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    net = Net((4, 6, 3), seed=0, keep_prob=0.7, bug="missing-1-over-m")
    monitor = Monitor(overhead=1.0, on_failure="stop", save_dir=tmp_path,
                      clock=FakeClock(tick=1.0))
    net.fit(X, y, epochs=50, batch_size=8, progress=False, monitor=monitor)
    saved = load(monitor.saved)
    assert set(saved.batch) == {"X", "Y", "mask1"}
    again = saved.check(net.batch_loss(saved.batch))
    same_report(again.to_dict(), saved.report)


def test_nested_params_keep_their_structure(tmp_path):
    params = {"layers": [{"w": np.array([1.0, 2.0])}, (np.array([3.0]),)]}

    def loss(p):
        return float(np.sum(p["layers"][0]["w"] ** 2) + np.sum(p["layers"][1][0] ** 2))

    grads = {"layers": [{"w": np.array([2.0, 4.0])}, (np.array([-6.0]),)]}  # sign of the last
    monitor = Monitor(overhead=1.0, on_failure="stop", save_dir=tmp_path,
                      clock=FakeClock(tick=1.0))
    while not monitor.step(loss, params, grads):
        pass
    saved = load(monitor.saved)
    assert isinstance(saved.params["layers"][1], tuple)
    np.testing.assert_array_equal(saved.params["layers"][0]["w"], [1.0, 2.0])
    assert saved.check(loss).suspects == ("layers.1.0",)


def test_a_clean_fit_on_digits_raises_no_alarm():
    data = gradcheck.nn.load_digits()
    net = Net((64, 32, 10), activation="relu", seed=0)
    monitor = Monitor(overhead=0.5, clock=FakeClock(tick=1.0))  # 1 s per reading
    net.fit(data.X_train[:320], data.y_train[:320], epochs=12, batch_size=32, progress=False,
            monitor=monitor)
    assert monitor.checks >= 3 and monitor.report is None


def test_load_names_what_is_missing(tmp_path):
    with pytest.raises(OptionError, match="not a directory saved by gradcheck.Monitor"):
        load(tmp_path)
