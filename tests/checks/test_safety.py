"""The user's arrays come back bit-for-bit, whatever happens during the check."""

from __future__ import annotations

import numpy as np
import pytest
from nets import mlp, snapshot

import gradcheck


def _case():
    loss, params, grads = mlp("relu", dtype=np.float32)
    return loss, params, grads(params)


def test_untouched_after_pass_and_fail() -> None:
    loss, params, grads = _case()
    before, gbefore = snapshot(params), snapshot(grads)
    assert gradcheck.check(loss, params, grads).passed
    wrong = {k: v * 2 for k, v in grads.items()}
    assert not gradcheck.check(loss, params, wrong).passed
    assert snapshot(params) == before and snapshot(grads) == gbefore


def test_untouched_when_the_loss_raises_midway() -> None:
    loss, params, grads = _case()
    before = snapshot(params)
    calls = 0

    def flaky(p):
        nonlocal calls
        calls += 1
        if calls == 50:
            raise RuntimeError("boom")
        return loss(p)

    with pytest.raises(gradcheck.LossRaisedError, match="boom") as info:
        gradcheck.check(flaky, params, grads)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert snapshot(params) == before


def test_untouched_when_interrupted() -> None:
    loss, params, grads = _case()
    before = snapshot(params)
    calls = 0

    def interrupted(p):
        nonlocal calls
        calls += 1
        if calls == 100:
            raise KeyboardInterrupt
        return loss(p)

    with pytest.raises(KeyboardInterrupt):
        gradcheck.check(interrupted, params, grads)
    assert snapshot(params) == before


def test_a_loss_that_writes_to_its_params_is_reported_and_the_originals_survive() -> None:
    params = {"w": np.array([1.0, 2.0])}
    before = snapshot(params)

    def vandal(p):
        value = float(np.sum(p["w"] ** 2))
        p["w"] *= 1.0000001
        return value

    with pytest.raises(gradcheck.GradCheckError, match="in place"):
        gradcheck.check(vandal, params, {"w": 2 * params["w"]})
    assert snapshot(params) == before


def test_callable_grads_cannot_modify_the_params() -> None:
    params = {"w": np.array([1.0, 2.0])}
    before = snapshot(params)

    def grads(p):
        p["w"][0] = 99.0
        return {"w": 2 * np.array([1.0, 2.0])}

    gradcheck.check(lambda p: float(np.sum(p["w"] ** 2)), params, grads)
    assert snapshot(params) == before
