"""The run widget's "Holds" column, seen in the browser.

A notebook cell defines ``Train``, which needs one GPU, and submits four to a
Lab with two simulated GPUs (``Lab(gpus=2)``) and three workers. While they
run, the page must show a "Holds" column in which each running task names its
own GPU (never two running tasks on one GPU: the third worker waits), and the
table must still fit its box. A run of tasks that declare nothing has no such
column. Screenshots in the light and the dark theme land in ``screenshots/``.
"""

from __future__ import annotations

import re

import pytest
from test_run_failures import VIEW, screenshots, wait_over
from test_run_reattach import until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TASKS = """\
import time
import labnb

@labnb.task(resources={"gpus": 1})
class Train:
    n: int

    def run(self):
        print(f"training {self.n}")
        labnb.logger.warning(f"GPU memory is short for {self.n}")
        time.sleep(4)
        return self.n

@labnb.task
class Plain:
    n: int

    def run(self):
        return self.n
"""

GPU_RUN = """\
lab = labnb.Lab(storage={storage!r}, max_workers=3, gpus=2)
run = lab.submit([Train(n=n) for n in range(4)]); run"""

PLAIN_RUN = """\
plain = lab.submit([Plain(n=n) for n in range(3)]); plain"""


def running_holds(view) -> list[str]:
    return view.locator('tbody tr[data-status="running"] td.labnb-gpu').all_inner_texts()


def test_each_running_task_shows_the_gpu_it_holds(notebook, tmp_path):
    nb = notebook([TASKS, GPU_RUN.format(storage=str(tmp_path / "storage")), PLAIN_RUN])
    nb.run_cell(0)
    nb.run_cell(1)
    view = nb.cell(1).locator(VIEW)
    view.get_by_role("progressbar", name="Overall progress").wait_for(timeout=30_000)
    until(lambda: len(running_holds(view)) == 2, "two tasks running, one per GPU", nb, 60)
    assert sorted(running_holds(view)) == ["GPU 0", "GPU 1"], running_holds(view)
    header = view.get_by_role("columnheader", name="Holds")
    assert header.is_visible()
    fits = view.locator(".labnb-scroll").evaluate("el => el.scrollWidth <= el.clientWidth")
    assert fits, "the Holds column made the table wider than its box"
    screenshots(nb, {"holds": view.locator(".labnb-tasks")})
    wait_over(view, nb)
    holds = view.locator("tbody td.labnb-gpu").all_inner_texts()
    assert sorted(holds) == ["GPU 0", "GPU 0", "GPU 1", "GPU 1"], holds

    # Its logs: the logged line with its time and level set apart, the printed one as is.
    view.locator("tbody tr").first.get_by_role("button", name="Logs").click()
    meta = view.locator(".labnb-log .labnb-log-meta")
    until(lambda: meta.count() == 1, "the logged line in the log panel", nb, 20)
    assert meta.get_attribute("data-level") == "WARNING"
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING labnb:", meta.inner_text()), meta.inner_text()
    assert view.locator(".labnb-log").inner_text().startswith("training ")
    screenshots(nb, {"log-levels": view.locator(".labnb-logs")})

    nb.run_cell(2)
    plain = nb.cell(2).locator(VIEW)
    plain.get_by_role("progressbar", name="Overall progress").wait_for(timeout=30_000)
    wait_over(plain, nb)
    assert plain.get_by_role("columnheader", name="Holds").is_hidden()
