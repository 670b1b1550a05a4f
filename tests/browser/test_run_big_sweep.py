"""A big sweep in the run widget, seen in the browser: every task reachable.

A notebook cell runs 260 tasks, 6 of which fail, on a Lab with
``continue_on_failure=True``. Once it is over, the page must say "Showing 200
of 260 tasks" with a "Show 60 more" button that brings the rest; the status
filter ("Failed 6") must narrow the table to the failed tasks; "All" brings
every row back. A rerun of a sweep that is entirely cached is one line ("All
20 tasks loaded from cache.") with the table a click away. Screenshots in the
light and the dark theme land in ``screenshots/``.
"""

from __future__ import annotations

import pytest
from test_run_failures import VIEW, screenshots, wait_over
from test_run_reattach import until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TASKS = """\
import labnb

@labnb.task
class Point:
    n: int

    def run(self):
        if self.n % 50 == 7:
            raise ValueError(f"bad point {self.n}")
        return self.n
"""

SWEEP = """\
lab = labnb.Lab(storage={storage!r}, max_workers=2, continue_on_failure=True)
run = lab.submit([Point(n=n) for n in range(260)]); run"""

CACHED = """\
lab.run_tasks([Point(n=n) for n in range(1010, 1030)], disable_progress=True)
again = lab.submit([Point(n=n) for n in range(1010, 1030)]); again"""


def rows(view):
    return view.locator("tbody tr")


def test_a_big_sweep_keeps_every_task_reachable(notebook, tmp_path):
    nb = notebook([TASKS, SWEEP.format(storage=str(tmp_path / "storage")), CACHED])
    nb.run_cell(0)
    nb.run_cell(1)
    view = nb.cell(1).locator(VIEW)
    view.get_by_role("progressbar", name="Overall progress").wait_for(timeout=30_000)
    wait_over(view, nb, timeout=180)
    note = view.locator(".labnb-rows-note")
    until(lambda: "Showing 200 of 260 tasks." in note.inner_text(), "'Showing 200 of 260'", nb, 20)
    assert rows(view).count() == 200

    filters = view.get_by_role("group", name="Show tasks")
    failed = filters.get_by_role("button", name="Failed 6")
    failed.click()
    until(lambda: rows(view).count() == 6, "only the 6 failed rows", nb, 20)
    statuses = {tr.get_attribute("data-status") for tr in rows(view).all()}
    assert statuses == {"failed"}, statuses
    assert failed.get_attribute("aria-pressed") == "true"
    assert note.is_hidden()
    screenshots(nb, {"filtered": view})

    filters.get_by_role("button", name="All 260").click()
    until(lambda: rows(view).count() == 200, "every status again", nb, 20)
    view.get_by_role("button", name="Show 60 more").click()
    until(lambda: rows(view).count() == 260, "all 260 rows", nb, 20)
    assert note.is_hidden()

    nb.run_cell(2)
    again = nb.cell(2).locator(VIEW)
    again.get_by_role("progressbar", name="Overall progress").wait_for(timeout=60_000)
    wait_over(again, nb)
    loaded = again.locator(".labnb-loaded-note")
    until(lambda: loaded.is_visible(), "the one-line cached rerun", nb, 20)
    assert loaded.inner_text().startswith("All 20 tasks loaded from cache.")
    assert again.locator(".labnb-tasks").is_hidden()
    screenshots(nb, {"cached-rerun": again})
    again.get_by_role("button", name="Show them").click()
    until(lambda: rows(again).count() == 20, "the cached rows, one click away", nb, 20)
