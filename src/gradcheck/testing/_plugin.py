"""pytest plugin (entry point ``gradcheck``): a seed fixture and readable gradient failures.

* ``gradcheck_seed``: a seed for ``check(..., seed=...)``, stable per test, mixed with
  pytest-randomly's ``-p randomly_seed`` when that plugin runs, and fixed by
  ``--gradcheck-seed=N`` to replay a failure.
* A failing ``gradcheck.testing.assert_gradients`` is reported as the test's line plus the report
  table (parameter, worst index, likely cause), not as a traceback of gradcheck internals.
"""

from __future__ import annotations

import zlib
from collections.abc import Generator
from typing import Any

import pytest

_STASH = pytest.StashKey[int]()  # the seed a test's fixture handed out, for the failure text


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


def _is_gradient_failure(error: BaseException) -> bool:
    from gradcheck.testing._assert import GradientAssertionError

    return isinstance(error, GradientAssertionError)


def _render(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """``path:line: gradient check failed`` then the report table, then how to replay."""
    entries = [e for e in excinfo.traceback if str(e.path) == str(item.path)]
    where = entries[-1] if entries else excinfo.traceback[-1]
    lines = [f"{where.path}:{where.lineno + 1}: gradient check failed", "", str(excinfo.value)]
    seed = item.stash.get(_STASH, None)
    if seed is not None:
        lines += ["", f"gradcheck_seed was {seed}; replay with --gradcheck-seed={seed}."]
    return "\n".join(lines)
