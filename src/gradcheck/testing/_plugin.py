"""pytest plugin (entry point ``gradcheck``): a seed fixture and readable gradient failures.

* ``gradcheck_seed``: a seed for ``check(..., seed=...)``, stable per test, mixed with
  pytest-randomly's ``-p randomly_seed`` when that plugin runs, and fixed by
  ``--gradcheck-seed=N`` to replay a failure.
* A failing ``gradcheck.testing.assert_gradients`` is reported as the test's line plus the report
  table (parameter, worst index, likely cause), not as a traceback of gradcheck internals. The
  short-summary line carries the verdict (``W1, b1 wrong: ...``), ``--tb=line`` prints one line
  per failure, and a note repeated from an earlier failure (the vmap loop fallback, say) is
  shown once per session.
"""

from __future__ import annotations

import zlib
from collections.abc import Generator
from typing import Any

import pytest

_STASH = pytest.StashKey[int]()  # the seed a test's fixture handed out, for the failure text
_SHOWN = pytest.StashKey[set[str]]()  # notes already shown in an earlier failure this session
REPEATED = {"evaluation": "fallback"}  # notes worth showing once a session: code -> path


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcheck")
    group.addoption(
        "--gradcheck-seed",
        type=int,
        default=None,
        help="seed returned by the gradcheck_seed fixture in every test (to replay a failure).",
    )


def seed_for(nodeid: str, fixed: int | None, randomly: int | None) -> int:
    """The fixture's seed: ``fixed`` if given, else crc32 of the test id (mixed with randomly's).

    >>> seed_for("t.py::test_a", 7, None), seed_for("t.py::test_a", None, None) == seed_for("t.py::test_a", None, None)
    (7, True)
    """
    if fixed is not None:
        return fixed
    base = zlib.crc32(nodeid.encode())
    return base if randomly is None else zlib.crc32(f"{randomly}:{base}".encode())


@pytest.fixture
def gradcheck_seed(request: pytest.FixtureRequest) -> int:
    """A seed for ``gradcheck.check(..., seed=...)``, stable per test (derived from its id)."""
    config = request.config
    randomly = getattr(config.option, "randomly_seed", None)
    seed = seed_for(
        request.node.nodeid,
        config.getoption("--gradcheck-seed"),
        randomly if isinstance(randomly, int) else None,
    )
    request.node.stash[_STASH] = seed
    return seed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, Any, Any]:
    report = yield
    excinfo = call.excinfo
    if report.failed and excinfo is not None and _is_gradient_failure(excinfo.value):
        report.longrepr = _render(item, excinfo)
    return report


class _Location:
    """Where and what, as pytest's ``reprcrash``: ``path:line: message`` (``--tb=line``)."""

    def __init__(self, path: str, lineno: int, message: str) -> None:
        self.path, self.lineno, self.message = path, lineno, message

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.message}"


class GradientFailureRepr:
    """A failure's text for pytest: the table for ``--tb=auto/long/short``, the verdict as the
    short-summary message and the one line of ``--tb=line``."""

    def __init__(self, text: str, crash: _Location, one_line: bool = False) -> None:
        self.text, self.reprcrash, self.one_line = text, crash, one_line

    def toterminal(self, tw: Any) -> None:
        if self.one_line:  # --tb=line: pytest writes str(reprcrash) after this, and only that
            return
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


def verdict_line(report: Any) -> str:
    """``W1, b1 wrong: <the first finding>``, the message of the short-summary line.

    >>> import numpy as np, gradcheck
    >>> w = np.array([1.0, 2.0, 3.0])
    >>> r = gradcheck.check(lambda p: float((p["W2"] ** 2).sum()), {"W2": w}, {"W2": w})
    >>> verdict_line(r)[:40]
    'W2 wrong: dW2 is off by a constant facto'
    """
    from gradcheck.report._text import explain, summary

    if not report.suspects:
        return summary(report)
    lines = explain(report).split("\n")[1:]
    several = len(report.suspects) > 1
    first = next((f"{f.param}: {f.detail}" if several else f.detail for f in report.findings),
                 None)
    detail = first or next((line for line in lines if line), summary(report))
    return f"{', '.join(report.suspects)} wrong: {' '.join(detail.split())}"


def _is_gradient_failure(error: BaseException) -> bool:
    from gradcheck.testing._assert import GradientAssertionError

    return isinstance(error, GradientAssertionError)


def _repeated(note: Any) -> str | None:
    """The code of a note worth showing once a session, else None."""
    code = str(note.code.value)
    if code in REPEATED and note.numbers.get("path") == REPEATED[code]:
        return code
    return None


def _render(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> GradientFailureRepr:
    """``path:line: gradient check failed`` then the report table, then how to replay."""
    import dataclasses

    entries = [e for e in excinfo.traceback if str(e.path) == str(item.path)]
    where = entries[-1] if entries else excinfo.traceback[-1]
    report = getattr(excinfo.value, "report", None)
    if report is None:
        text, message = str(excinfo.value), "gradient check failed"
    else:
        from gradcheck.report._sentences import Note, NoteCode

        shown = item.config.stash.setdefault(_SHOWN, set())
        notes = []
        for note in dict.fromkeys(report.notes):
            code = _repeated(note)
            if code and note in shown:
                notes.append(Note(NoteCode.SHOWN_BEFORE, note.tensor, {"code": code}))
                continue
            if code:
                shown.add(note)
            notes.append(note)
        text = dataclasses.replace(report, notes=tuple(notes)).to_text(verbose=True)
        message = verdict_line(report)
    lines = [f"{where.path}:{where.lineno + 1}: gradient check failed", "", text]
    seed = item.stash.get(_STASH, None)
    if seed is not None:
        lines += ["", f"gradcheck_seed was {seed}; replay with --gradcheck-seed={seed}."]
        message += f" (gradcheck_seed {seed})"
    crash = _Location(str(where.path), where.lineno + 1, message)
    one_line = getattr(item.config.option, "tbstyle", "auto") == "line"
    return GradientFailureRepr("\n".join(lines), crash, one_line=one_line)
