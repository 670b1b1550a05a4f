"""A run outlives a kernel restart, seen in the browser as a user sees it.

A notebook submits 12 one-second tasks (two workers) and shows the run's
widget; once some are done, the user restarts the kernel from the Kernel menu.
The old widget must say it no longer hears from the kernel, name
``lab.runs()[-1]``, and leave no live Cancel button nor a "Running" badge. In a
new cell, ``lab.runs()[-1]`` shows the run's widget again, fed from its record:
still running, then following the run live to "Done" with 12/12. Each task
wrote one line to its tally file: every task ran exactly once, across the
restart.

All but the first 4 tasks wait for a gate file the test creates once the new
widget shows, so the run is still going when it re-attaches (the kernel
restart plus the 5 s of silence before the note outlast 6 s of tasks).

Screenshots in the light and the dark theme land in ``screenshots/``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from test_catalog_browser import set_theme

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TASKS = 12
WORKERS = 2
FREE = 4  # tasks that run at once; the others wait for the gate file

SUBMIT = """\
import os, time
import labnb

TALLY = {tally!r}
GATE = os.path.join(TALLY, "go")

@labnb.task
class Sleepy:
    n: int

    def run(self):
        if self.n >= {free}:  # held until the test opens the gate (2 min at most)
            deadline = time.monotonic() + 120
            while not os.path.exists(GATE) and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(1.0)
        with open(os.path.join(TALLY, f"{{self.n}}.txt"), "a") as file:
            file.write(f"{{os.getpid()}}\\n")
        return self.n * 10

lab = labnb.Lab(storage={storage!r}, max_workers={workers})
run = lab.submit([Sleepy(n=n) for n in range({tasks})]); run"""

REATTACH = """\
import labnb
lab = labnb.Lab(storage={storage!r})
lab.runs()[-1]"""

CHECK = """\
import labnb
_run = labnb.Lab(storage={storage!r}).runs()[-1]
print("check:", _run.id, _run.status, sorted(_run.results.values()))"""

VIEW = ".labnb-run-view"


def until(condition, what: str, nb, timeout: float):
    """Poll ``condition`` every 100 ms until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
            if value:
                return value
        except AssertionError:
            raise
        except Exception:  # an element replaced mid-read: look again
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen after {timeout} s\n{nb.describe()}")
        time.sleep(0.1)


def overall(view) -> tuple[int, int]:
    bar = view.get_by_role("progressbar", name="Overall progress")
    return int(bar.get_attribute("aria-valuenow")), int(bar.get_attribute("aria-valuemax"))


def badge(view) -> str:
    return view.locator(".labnb-summary .labnb-badge").inner_text().strip()


def restart_kernel(nb) -> None:
    """Kernel menu -> Restart Kernel..., then the dialog's Restart button."""
    page = nb.page
    page.keyboard.press("Escape")
    page.get_by_role("menuitem", name="Kernel", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Restart Kernel…")).first.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for()
    assert "Restart Kernel?" in dialog.inner_text()
    dialog.locator(".jp-Dialog-button.jp-mod-accept", has_text="Restart").click()
    dialog.wait_for(state="detached")


def tallies(tally: Path) -> dict[int, list[str]]:
    return {int(path.stem): path.read_text().splitlines() for path in sorted(tally.glob("*.txt"))}


def test_old_widget_disconnects_and_lab_runs_reattaches(notebook, tmp_path):
    tally = tmp_path / "tally"
    tally.mkdir()
    gate = tally / "go"
    storage = str(tmp_path / "storage")
    source = SUBMIT.format(
        tally=str(tally), storage=storage, workers=WORKERS, tasks=TASKS, free=FREE
    )
    nb = notebook([source])
    try:
        _restart_and_reattach(nb, storage, tally, gate)
    finally:
        gate.touch()  # never leave the run process waiting


def _restart_and_reattach(nb, storage: str, tally: Path, gate: Path) -> None:
    # 1. Submit and show the run; wait until some tasks are done.
    nb.run_cell(0)
    old = nb.cell(0).locator(VIEW)
    old.get_by_role("progressbar", name="Overall progress").wait_for(timeout=30_000)
    assert overall(old)[1] == TASKS
    until(lambda: overall(old)[0] >= 2, "two tasks done in the first widget", nb, 60)
    assert badge(old) == "Running"
    cancel = old.get_by_role("button", name="Cancel")
    assert cancel.is_enabled()
    print(f"done before restart: {overall(old)[0]}/{TASKS}")

    # 2. Restart the kernel as a user does; the run goes on in its own process.
    restart_kernel(nb)
    nb.wait_for_kernel_idle(60)

    # 3. The old widget: a note naming lab.runs()[-1], Cancel disabled, not "Running".
    note = old.locator(".labnb-note.labnb-warning")
    until(
        lambda: note.is_visible() and "lab.runs()[-1]" in note.inner_text(),
        "the disconnected note in the old widget",
        nb,
        20,
    )
    text = note.inner_text()
    assert re.fullmatch(
        r"No update from the kernel for \d+ s: it stopped or restarted\. Run (\S+) goes on "
        r"in its own process: follow it with lab\.runs\(\)\[-1\] in a new cell\.",
        text,
    ), text
    run_id = re.search(r"Run (\S+) goes on", text).group(1)
    assert cancel.is_disabled()
    assert badge(old) == "Disconnected"
    assert old.get_attribute("data-disconnected") == "true"
    header = " ".join(old.locator(".labnb-toolbar, .labnb-summary").all_inner_texts())
    assert "Running" not in header, header
    stuck_at = overall(old)[0]
    assert stuck_at < TASKS
    old.scroll_into_view_if_needed()
    nb.screenshot("old-widget-disconnected-light")

    # 4. A new cell re-attaches: the run's widget again, live, still running.
    index = nb.append_and_run(REATTACH.format(storage=storage), timeout=60)
    new = nb.cell(index).locator(VIEW)
    new.get_by_role("progressbar", name="Overall progress").wait_for(timeout=30_000)
    until(lambda: overall(new)[0] >= FREE, f"{FREE} tasks done in the new widget", nb, 30)
    assert overall(new) == (FREE, TASKS), "tasks past the gate ran before it opened"
    assert badge(new) == "Running"
    assert new.get_by_role("button", name="Cancel").is_enabled()
    assert new.locator(".labnb-note.labnb-warning").is_hidden()
    new.scroll_into_view_if_needed()
    nb.screenshot("reattached-running-light")

    # ...and, the gate open, it follows the run to Done, 12/12.
    gate.touch()
    seen: set[int] = set()

    def finished() -> bool:
        seen.add(overall(new)[0])
        return badge(new) == "Done" and overall(new) == (TASKS, TASKS)

    until(finished, "the re-attached widget reaching Done 12/12", nb, 90)
    print(f"re-attached widget showed done counts {sorted(seen)}")
    assert len(seen - {FREE, TASKS}) >= 1, f"no progress seen between: {sorted(seen)}"
    counts = new.locator(".labnb-counts").inner_text()
    assert counts.startswith(f"{TASKS}/{TASKS} done"), counts
    statuses = new.locator("tbody tr").evaluate_all("trs => trs.map(tr => tr.dataset.status)")
    assert statuses == ["done"] * TASKS, statuses
    assert new.get_by_role("button", name="Cancel").is_disabled()
    assert new.locator(".labnb-note.labnb-warning").is_hidden()
    # The old widget stays as it was left: no live Cancel comes back to it.
    assert cancel.is_disabled()
    assert badge(old) == "Disconnected"
    new.scroll_into_view_if_needed()
    nb.screenshot("reattached-done-light")

    # 5. Each task ran exactly once: the run's record, seen from the kernel, and
    # the tally files (one line per run of a task).
    check = nb.append_and_run(CHECK.format(storage=storage), timeout=60)
    nb.wait_for_output_text(check, "check:", timeout=30)
    line = nb.cell_output_text(check).strip()
    assert line == f"check: {run_id} done {[n * 10 for n in range(TASKS)]}", line
    runs = tallies(tally)
    assert sorted(runs) == list(range(TASKS)), runs
    assert all(len(lines) == 1 for lines in runs.values()), runs

    # 6. Both widgets in the dark theme (switched back for the tests after this one).
    try:
        set_theme(nb, "JupyterLab Dark")
        old.scroll_into_view_if_needed()
        nb.screenshot("old-widget-disconnected-dark")
        new.scroll_into_view_if_needed()
        nb.screenshot("reattached-done-dark")
    finally:
        set_theme(nb, "JupyterLab Light")
