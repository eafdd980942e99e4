"""gradcheck.torch.monitor_step: a module's .grad between backward() and optimizer.step()."""

from __future__ import annotations

import pytest
from fake_clock import FakeClock

torch = pytest.importorskip("torch")

import gradcheck  # noqa: E402
import gradcheck.torch  # noqa: E402
from gradcheck import GradientMismatchError, Monitor, OptionError  # noqa: E402
from gradcheck.report._sentences import NoteCode  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def data(seed: int = 0) -> tuple:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g)


CLOCK = FakeClock()


def loss_fn(model, x, y):
    CLOCK.advance(0.1)  # a loss call takes 0.1 s of the fake clock, a training step 1 s
    return torch.nn.functional.cross_entropy(model(x), y)


def fit(model, monitor, steps: int, corrupt_from: int | None = None) -> int | None:
    """SGD on minibatches of 16; from ``corrupt_from`` on, the first layer's weight gradient is
    scaled by 1.5 after backward (a late bug). Returns the step at which the monitor stopped."""
    torch.manual_seed(0)
    x, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(1, steps + 1):
        CLOCK.advance(1.0)
        rows = torch.randint(0, 64, (16,))
        opt.zero_grad()
        loss_fn(model, x[rows], y[rows]).backward()
        if corrupt_from is not None and step >= corrupt_from:
            model[0].weight.grad *= 1.5
        if gradcheck.torch.monitor_step(monitor, model, loss_fn, (x[rows], y[rows])):
            return step
        opt.step()
    return None


def mlp(batch_norm: bool = False) -> torch.nn.Module:
    torch.manual_seed(1)
    middle = [torch.nn.BatchNorm1d(8)] if batch_norm else []
    return torch.nn.Sequential(torch.nn.Linear(5, 8), *middle, torch.nn.Tanh(),
                               torch.nn.Linear(8, 3))


def test_a_clean_float32_run_raises_no_alarm():
    monitor = Monitor(overhead=0.3, clock=CLOCK)
    assert fit(mlp(), monitor, 120) is None
    assert monitor.checks >= 5 and {c.outcome for c in monitor.log} == {"passed"}


def test_batch_norm_in_training_mode_uses_the_batch_statistics():
    monitor = Monitor(overhead=0.3, clock=CLOCK)
    assert fit(mlp(batch_norm=True), monitor, 200) is None
    assert monitor.checks >= 5 and monitor.report is None


def test_a_late_bug_is_caught_and_names_the_step(tmp_path):
    monitor = Monitor(overhead=0.3, clock=CLOCK, save_dir=tmp_path)
    with pytest.raises(GradientMismatchError) as caught:
        fit(mlp(), monitor, 400, corrupt_from=150)
    step = monitor.log[-1].step
    assert step >= 150 and caught.value.report.suspects == ("0.weight",)
    found = caught.value.report.notes[-1]
    assert found.code is NoteCode.MONITOR_FOUND and found.numbers["step"] == step
    saved = gradcheck.monitor.load(monitor.saved)
    assert set(saved.batch) == {"batch0", "batch1"} and saved.batch["batch0"].shape == (16, 5)


def test_the_model_rng_and_grad_mode_are_untouched():
    model = mlp(batch_norm=True)
    x, y = data(1)
    model.zero_grad()
    loss_fn(model, x, y).backward()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    rng = torch.get_rng_state()
    monitor = Monitor(overhead=0.5, clock=CLOCK)
    for _ in range(60):
        CLOCK.advance(1.0)
        gradcheck.torch.monitor_step(monitor, model, loss_fn, (x, y))
    assert monitor.checks > 3
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(p.grad, grads[n]) for n, p in model.named_parameters())
    assert torch.equal(torch.get_rng_state(), rng) and torch.is_grad_enabled()
    assert model.training and model[0].weight.dtype == torch.float32


def test_dropout_in_training_mode_is_refused_with_the_reason():
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Dropout(0.5),
                                torch.nn.Linear(8, 3))
    x, y = data()
    loss_fn(model, x, y).backward()
    with pytest.raises(OptionError, match="1 is a Dropout in training mode.*cannot redraw"):
        gradcheck.torch.monitor_step(Monitor(), model, loss_fn, (x, y))
    model.eval()
    gradcheck.torch.monitor_step(Monitor(), model, loss_fn, (x, y))  # eval: accepted


def test_no_grad_yet_is_explained():
    model = mlp()
    x, y = data()
    monitor = Monitor(overhead=1.0, clock=CLOCK)
    with pytest.raises(OptionError, match="after loss.backward"):
        for _ in range(60):
            CLOCK.advance(1.0)
            gradcheck.torch.monitor_step(monitor, model, loss_fn, (x, y))
