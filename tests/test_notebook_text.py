"""The text a notebook saves for a run's widget is the run's latest state, not its
first moment: a reopened notebook (or nbviewer, which cannot draw widgets) shows
how the run ended. Executed with nbclient on a real kernel, as JupyterLab would."""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from notebooks import run_notebook

pytestmark = pytest.mark.timeout(300)

CELLS = [
    """
import time
import labnb

@labnb.task
class Nap:
    n: int

    def run(self):
        time.sleep(0.3)
        return self.n

lab = labnb.Lab(storage="storage", max_workers=2)
run = lab.submit([Nap(n=n) for n in range(6)])
""",
    "run",
    "run.wait(120); time.sleep(1.5)  # the widget's last update reaches the notebook",
]


def test_the_saved_text_of_a_run_widget_is_how_the_run_ended(
    tmp_path: Path, kernel_spec_manager: KernelSpecManager
):
    notebook = run_notebook(CELLS, tmp_path, kernel_spec_manager)
    (shown,) = notebook.cells[1].outputs
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]  # the live widget
    text = shown["data"]["text/plain"]
    assert text.startswith("labnb run (done): 6 done, 0 loaded, 0 failed, 0 running of 6"), text
