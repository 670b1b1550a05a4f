"""The live widget in a real browser: JupyterLab on 127.0.0.1, headless Chromium.

Clicks go where a user clicks; each test then checks both what changed on the
page and what changed in the kernel.
"""

from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.browser

SETUP = """\
import time, uuid
import labnb

@labnb.task
class Step:
    i: int
    seconds: float = 0.15

    def run(self):
        print(f"step {self.i} starting")
        for k in labnb.progress(range(20), desc="steps"):
            time.sleep(self.seconds)
            labnb.log_metric("loss", 1.0 / (k + 1), step=k)
        print(f"step {self.i} says hello")
        return self.i

lab = labnb.Lab(storage=f"storage-{uuid.uuid4().hex[:8]}", max_workers=2)
print("task id:", labnb.task_id(Step(i=0)))
"""


def overall(nb) -> tuple[int, int]:
    bar = nb.page.get_by_role("progressbar", name="Overall progress").first
    return int(bar.get_attribute("aria-valuenow")), int(bar.get_attribute("aria-valuemax"))


def wait_until(condition, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(message)


def task_id_from(nb, cell: int) -> str:
    nb.wait_for_output_text(cell, "task id:")
    return re.search(r"task id: ([0-9a-f]{32})", nb.cell_output_text(cell)).group(1)


def test_background_run_logs_other_cells_and_uncache(notebook):
    nb = notebook([SETUP, "run = lab.submit([Step(i=i) for i in range(6)])\nrun"])
    nb.run_all()
    step0 = task_id_from(nb, 0)

    # Progress advances while the kernel is idle.
    nb.page.get_by_role("progressbar", name="Overall progress").first.wait_for()
    assert overall(nb) == (0, 6) or overall(nb)[1] == 6
    wait_until(lambda: overall(nb)[0] >= 1, 30, "the overall bar never advanced")
    nb.screenshot("run-progress")

    # Another cell runs while tasks are still running.
    cell = nb.append_and_run("print(6 * 7)")
    nb.wait_for_output_text(cell, "42")
    assert overall(nb)[0] < 6, "the run had already finished: nothing ran alongside"

    # Open a task's logs: the lines it printed are there.
    row = nb.page.locator(f'tr[data-task-id="{step0}"]').first
    row.get_by_role("button", name="Logs").click()
    log = nb.page.get_by_role("log").first
    wait_until(lambda: "step 0 says hello" in log.inner_text(), 30, "step 0's logs never showed")
    assert "step 0 starting" in log.inner_text()
    nb.page.get_by_role("img", name="loss over steps").first.wait_for(timeout=30_000)
    nb.screenshot("run-logs")

    wait_until(lambda: overall(nb)[0] == 6, 60, "the run never finished")

    # The cache browser: click "Uncache" on a row.
    browser_cell = nb.append_and_run("lab")
    cache_row = nb.cell(browser_cell).locator(f'.labnb-cache-view tr[data-task-id="{step0}"]')
    cache_row.wait_for()
    cache_row.get_by_role("button", name="Uncache").click()
    cache_row.wait_for(state="detached", timeout=10_000)
    nb.screenshot("cache-uncached")
    check = nb.append_and_run(
        "print('cached:', lab.is_cached(Step(i=0)), lab.is_cached(Step(i=1)))"
    )
    nb.wait_for_output_text(check, "cached: False True")


def test_reload_while_the_kernel_runs_then_click(notebook):
    """Default JupyterLab settings: a click after a reload is acknowledged, or the
    widget says plainly it was not delivered and re-running the cell recovers."""
    nb = notebook(
        [
            SETUP,
            "lab.run_tasks([Step(i=i, seconds=0.0) for i in range(3)])\n"
            "run = lab.submit([Step(i=10 + i, seconds=0.5) for i in range(4)])\n"
            'print("task id:", labnb.task_id(Step(i=0, seconds=0.0)))\n'
            "lab",
        ]
    )
    nb.run_all()
    step0 = task_id_from(nb, 1)
    nb.cell(1).locator(f'.labnb-cache-view tr[data-task-id="{step0}"]').wait_for()
    nb.reload()
    nb.screenshot("after-reload")

    cache_row = nb.cell(1).locator(f'.labnb-cache-view tr[data-task-id="{step0}"]')
    cache_row.wait_for(timeout=30_000)
    cache_row.get_by_role("button", name="Uncache").click()
    status = nb.cell(1).locator(".labnb-cache-view").get_by_role("status")

    def settled():
        if cache_row.count() == 0:
            return "acknowledged"
        if "Not delivered" in status.inner_text():
            return "not delivered"
        return None

    outcome = wait_until(settled, 15, "the click was neither acknowledged nor reported lost")
    nb.screenshot(f"after-click-{outcome.replace(' ', '-')}")
    if outcome == "not delivered":
        # The recovery the widget tells the user: re-run the cell to reconnect.
        again = nb.append_and_run("lab")
        row = nb.cell(again).locator(f'.labnb-cache-view tr[data-task-id="{step0}"]')
        row.wait_for()
        row.get_by_role("button", name="Uncache").click()
        row.wait_for(state="detached", timeout=10_000)
    check = nb.append_and_run("print('cached:', lab.is_cached(Step(i=0, seconds=0.0)))")
    nb.wait_for_output_text(check, "cached: False")
