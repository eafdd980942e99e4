"""Every note of the framework adapters is a record with its own code: none reaches a report
as a plain sentence (``NoteCode.TEXT``), merged reports' notes included."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.report._sentences import Note, NoteCode, unwrap

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import gradcheck.jax as gj  # noqa: E402
import gradcheck.torch as gt  # noqa: E402


class SquareAndSin(torch.autograd.Function):
    """Two outputs; the second one's backward is cos(x)·g·2 (wrong)."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(x)
        return x**2, torch.sin(x)

    @staticmethod
    def backward(ctx, g0, g1):  # type: ignore[no-untyped-def]
        (x,) = ctx.saved_tensors
        return 2 * x * g0 + 2 * torch.cos(x) * g1


@jax.custom_vjp
def _host_square(x: jnp.ndarray) -> jnp.ndarray:
    return jnp.asarray(np.asarray(x) ** 2)  # NumPy on the host: jit cannot trace it


def _host_square_fwd(x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    return _host_square(x), x


def _host_square_bwd(x: jnp.ndarray, g: jnp.ndarray) -> tuple[jnp.ndarray]:
    return (2 * x * g,)


_host_square.defvjp(_host_square_fwd, _host_square_bwd)


def _not_jittable(p: dict) -> jnp.ndarray:
    return jnp.sum(_host_square(p["x"]))


def _codes(notes: tuple[Note, ...]) -> set[NoteCode]:
    return {unwrap(n).code for n in notes}


def _checks() -> dict[str, tuple[Note, ...]]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, dtype=torch.float64, generator=gen).requires_grad_()
    z = torch.randn(3, dtype=torch.complex128, generator=gen).requires_grad_()
    ref = torch.nn.Linear(8, 4)
    return {
        "complex": gt.check_function(lambda t: (t * t.conj()).real.sum(), z).notes,
        "jit": gj.check(_not_jittable, {"x": jnp.linspace(0.1, 1.0, 5)}).notes,
        "order=2": gt.check_function(torch.sin, x, order=2).notes,
        "mode=both": gt.check_function(torch.sin, x, mode="both").notes,
        "against": gt.check_against(ref, ref, (2, 8), dtype="bfloat16").notes,
        "merged": gt.check_function(SquareAndSin.apply, x).notes,
    }


def test_representative_adapter_checks_leave_no_note_as_plain_text() -> None:
    notes = _checks()
    assert {name: [str(n) for n in said if unwrap(n).code is NoteCode.TEXT]
            for name, said in notes.items()} == {name: [] for name in notes}
    # ... and each check said what it is about, by code:
    assert NoteCode.COMPLEX_WORST in _codes(notes["complex"])
    assert NoteCode.JIT_FALLBACK in _codes(notes["jit"])
    assert NoteCode.ORDER2 in _codes(notes["order=2"])
    assert NoteCode.PART in {n.code for n in notes["order=2"]}  # "[order 2] ..."
    assert NoteCode.FORWARD_JVPS in _codes(notes["mode=both"])
    assert {NoteCode.AGAINST_RUNS, NoteCode.AGAINST_STATS} <= _codes(notes["against"])
    assert NoteCode.BY_OUTPUT in _codes(notes["merged"])


def test_a_note_every_part_repeats_is_said_once_without_its_label() -> None:
    from gradcheck.frameworks._shared import _dedupe

    same = Note(NoteCode.JACOBIAN)
    own = Note(NoteCode.EMPTY, "w", {"shape": (0,)})
    parts = [Note(NoteCode.PART, None, {"part": k, "note": n})
             for k, n in (("a", same), ("b", same), ("b", own))]
    kept = _dedupe(parts)
    assert [n.code for n in kept] == [NoteCode.JACOBIAN, NoteCode.PART]
    assert unwrap(kept[1]) is own and kept[1].numbers["part"] == "b"
