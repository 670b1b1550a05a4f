"""What a failure shows: the user's own frames with their source lines (notebook
cells included), a row line and a summary of what failed, and one line when a
blocking run is interrupted."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from notebooks import run_notebook
from sample_tasks import Fails, Square

import labnb
from labnb.display.widgets import RunView

TESTS = Path(__file__).parent
pytestmark = pytest.mark.timeout(300)


def test_a_failed_tasks_traceback_has_no_labnb_frames(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2, continue_on_failure=True)
    results = lab.run_tasks([Fails(n=3)], disable_progress=True)
    (error,) = results.failures.values()
    assert "sample_tasks.py" in error.traceback and "raise ValueError" in error.traceback
    assert "labnb" + "/" not in error.traceback.replace("\\\\", "/"), error.traceback


def test_the_run_view_says_what_failed(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2, continue_on_failure=True)
    run = lab.submit([Fails(n=1), Fails(n=2), Square(x=5)])
    assert run.wait(60)
    view = RunView(run.state)
    summary, rows = view.summary, {row["label"]: row for row in view.tasks}
    assert summary["failed"] == 2 and summary["done"] == 1 and summary["not_started"] == 0
    assert summary["failures"][0]["type"] == "ValueError"
    assert summary["failures"][0]["count"] == 2
    assert rows["Fails(n=1, unpicklable=False)"]["error"] == "ValueError: bad value 1"
    assert rows["Square(x=5)"]["error"] is None
    view.close()


CELL = """
import labnb

@labnb.task
class Divides:
    n: int

    def run(self):
        zero = 0
        return self.n / zero  # the failing line

lab = labnb.Lab(storage="storage", max_workers=1, continue_on_failure=True)
(error,) = lab.run_tasks([Divides(n=1)], disable_progress=True).failures.values()
print(error.traceback)
"""


def test_a_notebook_tasks_traceback_shows_the_cells_line(
    tmp_path: Path, kernel_spec_manager: KernelSpecManager
):
    notebook = run_notebook([CELL], tmp_path, kernel_spec_manager, timeout=120)
    printed = "".join(o.get("text", "") for o in notebook.cells[0].outputs if o.get("name"))
    assert "ZeroDivisionError" in printed
    assert "return self.n / zero  # the failing line" in printed, printed
    assert "labnb/" not in printed, printed


INTERRUPTED = """
import sys
sys.path.insert(0, {tests!r})
import labnb
from sample_tasks import SleepsLong
lab = labnb.Lab(storage="storage", max_workers=2, context={{"pids": "."}})
lab.run_tasks([SleepsLong(n=i) for i in range(2)], disable_progress=True)
"""


def test_an_interrupted_run_says_in_one_line_what_was_kept(tmp_path: Path):
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(INTERRUPTED.format(tests=str(TESTS)))],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 60
    while len(list(tmp_path.glob("*.pid"))) < 2:
        assert time.time() < deadline, "the tasks never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert "cancelled: 0 result(s) kept, 2 task(s) stopped" in err, err
    assert "multiprocessing" not in err and "threading.py" not in err, err
