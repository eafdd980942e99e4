"""Course code, written the courses' way (tests/bugs/course.py): a quick subset of the sweep in
benchmarks/course_code.py. A correct implementation passes; a planted bug fails with exactly the
faulty tensors as suspects and the expected kind; the course's arrays are left as they were."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from bugs.course import Course, courses

CASES = [c for c in (build() for build in courses()) if c.fast]


def _snapshot(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return (x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, dict):
        return tuple((k, _snapshot(v)) for k, v in x.items())
    if isinstance(x, list | tuple):
        return tuple(_snapshot(v) for v in x)
    return repr(x)


def test_the_subset_has_both_kinds_of_case_from_every_course() -> None:
    assert len(CASES) >= 20
    assert sum(not c.faulty for c in CASES) >= 4 and sum(bool(c.faulty) for c in CASES) >= 12
    assert {c.name.split("/")[0] for c in CASES} == {"ng", "cs231n", "nielsen", "micrograd", "d2l"}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_course_code(case: Course) -> None:
    before = _snapshot(case.args)
    report = case.run()
    if not case.faulty:
        assert report.passed is True, report.explain()
        assert report.findings == ()
    else:
        assert report.passed is False
        assert set(report.suspects) == case.faulty
        if case.kinds:
            assert {f.kind for f in report.findings} <= set(case.kinds)
    assert _snapshot(case.args) == before
