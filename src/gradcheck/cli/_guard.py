"""Around the user's code: its prints go to stderr, its sys.exit() is an input error, and the
worker pool for ``--workers`` (processes when the loss pickles, else threads)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


class Usage(Exception):
    """A usage or input problem: one line on stderr, exit code 2."""


def pool_for(workers: int, loss: Any) -> Any:
    """Processes when the loss can be pickled (real parallelism), else threads."""
    import pickle
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    try:
        pickle.dumps(loss)
    except Exception:
        return ThreadPoolExecutor(workers)
    return ProcessPoolExecutor(workers)


@contextlib.contextmanager
def user_code() -> Iterator[None]:
    """Around the user's code: its prints go to stderr, and its sys.exit() is an input error
    (it must not decide our exit code)."""
    try:
        with _stdout_to_stderr(), contextlib.redirect_stdout(sys.stderr):
            yield
    except SystemExit as error:
        raise Usage(f"the target called sys.exit({error.code!r}).") from None


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 points at stderr while the target runs: ``os.write(1, ...)``,
    ``sys.__stdout__`` and C extensions cannot slip text into our stdout (``--json``)."""
    import os

    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
        saved = os.dup(fd)
    except (OSError, ValueError, AttributeError):  # no real descriptor (an embedding, a test runner)
        yield
        return
    for stream in (sys.__stdout__, sys.stdout):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        os.dup2(sys.__stderr__.fileno() if sys.__stderr__ is not None else 2, fd)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.__stdout__.flush()  # what the target buffered goes to stderr, not to our output
        os.dup2(saved, fd)
        os.close(saved)
