"""A Dask LocalCluster (2 worker processes) gives bit-for-bit the serial report."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from nets import mlp, snapshot

import gradcheck

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _case():
    loss, params, grads = mlp(sizes=(6, 12, 3))
    g = grads(params)
    g["W1"][1, 4] += 0.02
    g["b2"] = 2 * g["b2"]
    return loss, params, g


def _plain(r: gradcheck.Report) -> dict:
    d = r.to_dict()
    d.pop("seconds")
    return d


@pytest.mark.parametrize("coords", ["all", 30, "directional"])
def test_dask_gives_the_serial_report(client: object, coords: object) -> None:
    loss, params, g = _case()
    before = snapshot(params)
    serial = gradcheck.check(loss, params, g, coords=coords)
    dask = gradcheck.check(loss, params, g, coords=coords, executor=client)
    assert _plain(serial) == _plain(dask) and snapshot(params) == before
    for name, c in serial.components.items():
        other = dask.components[name]
        assert c.numeric_array.tobytes() == other.numeric_array.tobytes()
        assert np.array_equal(c.flags, other.flags)
    assert "b2" in dask.suspects


def test_dask_reports_loss_errors(client: object) -> None:
    loss, params, g = _case()

    def broken(p: dict) -> float:
        if p["W1"][0, 0] != params["W1"][0, 0]:
            raise RuntimeError("boom")
        return loss(p)

    with pytest.raises(gradcheck.LossRaisedError, match="boom"):
        gradcheck.check(broken, params, g, executor=client)
