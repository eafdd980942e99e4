"""Every note code has its sentence in the one table, and it renders from sample numbers: the
only test that reads the wording (code and the other tests compare codes)."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import numpy as np
import pytest

import gradcheck
from gradcheck.report._sentences import TABLE, Note, NoteCode, as_note

ENTRIES = {"shape": (3, 4), "entries": np.array([1, 5, 7, 9]), "order": 4, "flat": 6}
SAMPLES: dict[NoteCode, dict] = {
    NoteCode.TEXT: {"text": "W is a plain sentence."},
    NoteCode.MONITOR_FOUND: {"step": 7, "check": 2, "steps": 100, "worst": 3.5, "names": "W",
                             "path": "/tmp/step-7"},
    NoteCode.NET_L2: {"l2": 0.1},
    NoteCode.NET_DROPOUT: {"keep_prob": 0.8},
    NoteCode.NET_PLANTED_BUG: {"bug": "sign-db2", "what": "db2 negated", "wrong": "W"},
    NoteCode.SHOWN_BEFORE: {"code": "evaluation"},
    NoteCode.KINKS_SKIPPED: {"where": [(0, 1), (2, 3)], "count": 2},
    NoteCode.LOW_PRECISION: {"names": ["W", "b"], "noise": 1e-7, "j0": 2.0},
    NoteCode.DTYPE_ALLOWANCE: {"names": ["W"], "dtype": "float32"},
    NoteCode.TEXTBOOK_WORRY: {"relative_error": 0.3},
    NoteCode.TEXTBOOK_GREAT: {"relative_error": 1e-8},
    NoteCode.FLAT_LAYOUT: {"size": 12, "shape": (12,), "order": "F",
                           "where": "W = θ[0:12].reshape((3, 4), order='F')"},
    NoteCode.SIZE_ONE_AXES: {"found": [("W", (1, 4), (4,))]},
    NoteCode.SHARED_MEMORY: {"pairs": "W and b"},
    NoteCode.EXTRA_GRADS: {"extras": ["dW"]},
    NoteCode.DIAGNOSIS_INTERRUPTED: {},
    NoteCode.LAYER_CHECK: {"seed": 3, "outputs": 2, "diff": ["W"], "passed_through": []},
    NoteCode.HVP_COMPONENTS: {},
    NoteCode.HVP_ALONG_ONLY: {},
    NoteCode.EPS_WIDENED: {"eps": 1e-20, "reason": "does not move θ", "step": 1e-6},
    NoteCode.GRAD_DTYPE: {"dtype": "float32", "param_dtype": "float64"},
    NoteCode.NONFINITE: {"count": 2},
    NoteCode.DOMAIN_EDGE: {"shape": (3, 4), "done": {1: "one-sided"}},
    NoteCode.INTERRUPTED: {"done": 10, "planned": 12},
    NoteCode.SAMPLED: {"done": 10, "total": 12, "parts": "W 10 of 12"},
    NoteCode.DIRECTIONS_AGREE: {"tests": 4, "calls": 8},
    NoteCode.DIRECTION_FAILED: {"tests": 4, "calls": 8, "worst": 9.0, "culprits": np.array([3]),
                                "complete": False, "unresolved": 1},
    NoteCode.UNREFINED: {"count": 5, "budget": 100},
    NoteCode.KEPT: {"count": 5, "budget": 100},
    NoteCode.SAMPLE_CONFIRMED: {"sample": 12, "total": 500, "rest": 480},
    NoteCode.BUDGET_SPENT: {"budget": 100},
    NoteCode.AUTO_BUDGET: {"budget": 100, "total": 500, "calls": 1000},
    NoteCode.STAIRS: ENTRIES,
    NoteCode.SURROGATE: {**ENTRIES, "value": 0.5},
    NoteCode.LOCALLY_CONSTANT: {**ENTRIES, "value": 0.5, "reach": 1.0, "still": True},
    NoteCode.FINER_STAIRS: {"shape": ENTRIES["shape"], "entries": ENTRIES["entries"]},
    NoteCode.KINKS_IN_STENCIL: {"shape": ENTRIES["shape"], "entries": ENTRIES["entries"]},
    NoteCode.READS_COARSER: {"dtype": "float32"},
    NoteCode.FLOAT16_GRADIENT: {"ulps": 40.0},
    NoteCode.SUBGRADIENTS: {"kinks": 2, "callable_grads": False},
    NoteCode.RECHECKED_OFF_KINK: {"entries": 2, "bad": 0},
    NoteCode.TIES: {"shape": (2, 3), "entries": np.array([0, 4]), "left": np.array([4]),
                    "wrong": 0, "callable_grads": True},
    NoteCode.TIES_UNSCREENED: {"shape": (2, 3), "entries": np.array([0, 4]),
                               "left": np.array([4]), "callable_grads": True},
    NoteCode.PRECISION: {"evaluated": "float64", "native": "float32", "how": "autograd"},
    NoteCode.EVALUATION: {"tool": "torch.func.vmap", "path": "fallback", "reason": "W is odd."},
    NoteCode.BY_OUTPUT: {"outputs": 2, "found": True},
    NoteCode.EMPTY: {"shape": (0, 3)},
    NoteCode.NOTHING_CHECKED: {},
    NoteCode.COMPLEX_INPUT: {"convention": "conjugate Wirtinger"},
    NoteCode.GRAD_INSIDE: {},
    NoteCode.WRITTEN_BUFFERS: {"buffers": ("running_mean",)},
    NoteCode.HOOKS: {"params": ("W",)},
    NoteCode.INTEGER_OUTPUTS: {"count": 1, "dtypes": ("int64",)},
    NoteCode.UNDIFFERENTIABLE_OUTPUTS: {"outputs": (1,)},
    NoteCode.SPARSE_INPUT: {"kind": "COO", "stored": 3, "size": 12},
    NoteCode.UNCONNECTED: {"depends": False},
    NoteCode.QUANTIZED: {"quantum": 5.96e-8, "step": 1e-3},
    NoteCode.PART: {"part": "output 1", "note": Note(NoteCode.EMPTY, "W", {"shape": (0,)})},
    NoteCode.JIT_FALLBACK: {"error": "TypeError: W is not hashable"},
    NoteCode.COMPLEX_WORST: {"index": (2,), "numeric": -1 - 4j, "analytic": -1 + 4j},
    NoteCode.MODES_DISAGREE: {"wrong": "forward"},
    NoteCode.FORWARD_JVPS: {"count": 24},
    NoteCode.FORWARD_TANGENTS: {"names": ("W",), "tangents": 16, "full": 4096},
    NoteCode.ORDER2: {"outputs": 2},
    NoteCode.ORDER2_BACKWARD: {},
    NoteCode.ORDER2_CUT: {"names": ("W (backward w.r.t. input)",)},
    NoteCode.JACOBIAN: {},
    NoteCode.SPARSE_LOOP: {},
    NoteCode.AGAINST_RUNS: {"dtype": "torch.bfloat16"},
    NoteCode.AGAINST_ROUNDED: {"inputs": (0, 1), "dtype": "torch.bfloat16"},
    NoteCode.AGAINST_DRAWN: {"inputs": (2,), "dtype": "torch.float16"},
    NoteCode.AGAINST_HELD: {},
    NoteCode.AGAINST_JVP: {"who": "fn", "error": "W has no jvp"},
    NoteCode.AGAINST_UNJUDGED: {"count": 3, "dtype": "torch.float16"},
    NoteCode.AGAINST_STATS: {"blocks": 8, "describe": "axes (0, 1)", "yard": (6e-4, 8e-4),
                             "ratio": (0.9, 3.1), "median": 1.02, "level": 2.0, "z": 3.09,
                             "spread": 0.12, "allowed_mean": (2.4, 2.6),
                             "allowed_q": (2.9, 3.3), "failed": 1},
    NoteCode.TAYLOR_SKIPPED: {"names": "W, b"},
    NoteCode.TAYLOR_LINEAR: {},
    NoteCode.TAYLOR_RATE: {"border": 2.0, "rate": 1.98, "agrees": False, "verdict": "WRONG",
                           "suspect": True},
}


def test_every_code_has_a_renderer() -> None:
    assert set(TABLE) == set(NoteCode)


@pytest.mark.parametrize("code", list(NoteCode), ids=lambda c: c.value)
def test_every_code_renders_a_sentence_about_its_tensor(code: NoteCode) -> None:
    assert code in SAMPLES, f"add sample numbers for {code} to SAMPLES"
    note = Note(code, "W", SAMPLES[code])
    text = str(note)
    assert note.code is code and text == note and len(text) > 10 and text.endswith(".")
    if next(iter(inspect.signature(TABLE[code]).parameters)) != "_":  # a note about a tensor
        assert "W" in text
    again = pickle.loads(pickle.dumps(note))  # reports travel to worker processes
    assert again == note and again.code is code and hash(again) == hash(note)


def test_a_plain_sentence_becomes_a_text_note_and_the_json_keeps_both() -> None:
    assert as_note("J is 0.").code is NoteCode.TEXT
    report = gradcheck.check(lambda p: float(np.sum(np.maximum(p, 0.0))), np.array([0.0, 1.0]),
                             np.array([0.0, 1.0]))  # a kink at 0: engine notes, with codes
    report = dataclasses.replace(report, notes=(*report.notes, "J is 0."))
    assert NoteCode.SUBGRADIENTS in report.note_codes and report.note_codes[-1] is NoteCode.TEXT
    data = report.to_dict()
    assert data["notes"][-1] == "J is 0." and data["note_codes"][-1] == "text"
    assert len(data["notes"]) == len(data["note_codes"])
