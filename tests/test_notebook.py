"""examples/quickstart.ipynb runs in a real Jupyter kernel (nbclient + ipykernel): reports show
as compact HTML, str() and exception messages are full text, progress prints without warnings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _kernel_dir(tmp_path: Path) -> Path:
    """A kernelspec running this interpreter, whatever kernels the machine has registered."""
    spec = tmp_path / "kernels" / "gradcheck-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "gradcheck test", "language": "python",
    }))
    return tmp_path / "kernels"


def _outputs(nb) -> list[tuple[int, dict]]:
    return [(i, out) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", [])]


_RUN = """
import sys
import nbclient, nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

notebook, kernels, out, root = sys.argv[1:]
nb = nbformat.read(notebook, as_version=4)
specs = KernelSpecManager(kernel_dirs=[kernels], ensure_native_kernel=False)
km = KernelManager(kernel_name="gradcheck-test", kernel_spec_manager=specs)
nbclient.NotebookClient(nb, km=km, timeout=180, allow_errors=False,
                        resources={"metadata": {"path": root}}).execute()
nbformat.write(nb, out)
"""


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    # in a subprocess: the kernel's zmq sockets would trip this suite's warnings-as-errors
    tmp = tmp_path_factory.mktemp("nb")
    src = str(ROOT / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = tmp / "executed.ipynb"
    run = subprocess.run(
        [sys.executable, "-c", _RUN, str(NOTEBOOK), str(_kernel_dir(tmp)), str(out), str(ROOT)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return nbformat.read(out, as_version=4)


def test_notebook_has_no_outputs_committed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not _outputs(nb), "clear the outputs of examples/quickstart.ipynb before committing"


def test_reports_display_as_compact_html(executed):
    html = [out["data"]["text/html"] for _, out in _outputs(executed)
            if out.get("output_type") == "execute_result" and "text/html" in out.get("data", {})]
    assert len(html) == 2  # the passing report and the layer report
    assert all(h.startswith('<div class="gradcheck-report">') and "<svg" not in h for h in html)
    assert "PASSED" in html[0] and "FAILED" in html[1] and "<b>b</b>" in html[1]


def test_str_and_exception_messages_are_full_text_in_the_kernel(executed):
    streams = "".join(out.get("text", "") for _, out in _outputs(executed)
                      if out.get("output_type") == "stream" and out.get("name") == "stdout")
    assert "┃ parameter ┃" in streams and "FAILED: 2 of 4 parameters" in streams
    line = next(s for s in streams.splitlines() if "characters" in s)
    assert line.startswith("FAILED: 2 of 4 parameters") and int(line.split()[-2]) > 500
    reprs = [out["data"]["text/plain"] for _, out in _outputs(executed)
             if out.get("output_type") == "execute_result"
             and "<gradcheck.Report FAILED" in out["data"].get("text/plain", "")]
    assert reprs and all(len(r) < 300 for r in reprs)


def test_progress_prints_a_plain_line_without_warnings(executed):
    stderr = "".join(out.get("text", "") for _, out in _outputs(executed)
                     if out.get("output_type") == "stream" and out.get("name") == "stderr")
    assert "loss calls" in stderr and "gradcheck " in stderr
    assert "Warning" not in stderr and "ipywidgets" not in stderr
    stdout = "".join(out.get("text", "") for _, out in _outputs(executed)
                     if out.get("name") == "stdout")
    training = [line for line in stdout.splitlines() if line.startswith("training")]
    assert len(training) == 1 and "5/5" in training[0]  # net.fit's bar: one plain line
    assert "\x1b[" not in stdout + stderr  # no terminal escape codes in the notebook
