"""What a run's widget says about failed tasks, seen in the browser.

A notebook cell defines two task types, ``Flaky`` (raises ``ValueError`` for
n = 1 and 2, the second with a long message) and ``Lookup`` (raises
``KeyError`` for a missing key), and submits six tasks to a Lab with
``continue_on_failure=True``. Once the run is over, the page must show:

- the badge "Done, 3 failed" (every task was tried) and counts naming them;
- a failures line "3 failed: ValueError x2 · KeyError x1";
- each failed row's error line ("ValueError: bad 1", "KeyError: 'missing'"),
  the long one cut with an ellipsis, the full text on hover, the table no
  wider than its box and the line inside its cell;
- a click on "ValueError x2" opens the log panel on a traceback that shows the
  notebook cell's failing source line and no frame of labnb's own.

Then a sweep on a Lab that stops at the first failure (one worker): the badge
is "Failed" and the counts say how many tasks were not started (an expected
failure while the run's follower reports them as cancelled).

Screenshots in the light and the dark theme land in ``screenshots/``.
"""

from __future__ import annotations

import pytest
from test_catalog_browser import set_theme
from test_run_reattach import badge, until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TASKS = """\
import labnb

@labnb.task
class Flaky:
    n: int

    def run(self):
        if self.n in (1, 2):
            detail = " because " + "the value is out of range, " * 12 if self.n == 2 else ""
            raise ValueError(f"bad {self.n}{detail}")
        return self.n * 10

@labnb.task
class Lookup:
    key: str

    def run(self):
        return {"a": 1}[self.key]
"""

GOES_ON = """\
lab = labnb.Lab(storage={storage!r}, max_workers=2, continue_on_failure=True)
run = lab.submit([Flaky(n=n) for n in range(4)] + [Lookup(key="a"), Lookup(key="missing")]); run"""

STOPS = """\
lab = labnb.Lab(storage={storage!r}, max_workers=1)
run = lab.submit([Flaky(n=n) for n in (1, 10, 11, 12, 13)]); run"""

FAILING_LINE = 'raise ValueError(f"bad {self.n}{detail}")'
VIEW = ".labnb-run-view"
TIMES = "\u00d7"  # the widget's "ValueError x2"


def row(view, label: str):
    return view.locator("tbody tr", has=view.page.locator(".labnb-label", has_text=label))


def wait_over(view, nb, timeout: float = 90) -> None:
    until(
        lambda: view.get_attribute("data-state") not in (None, "running"),
        "the run to end",
        nb,
        timeout,
    )


def screenshots(nb, shots: dict[str, object]) -> None:
    """``{name: locator}``: each scrolled into view, in the light theme then the
    dark one (switched back for the tests after this one)."""
    for name, locator in shots.items():
        locator.scroll_into_view_if_needed()
        nb.screenshot(f"{name}-light")
    try:
        set_theme(nb, "JupyterLab Dark")
        for name, locator in shots.items():
            locator.scroll_into_view_if_needed()
            nb.screenshot(f"{name}-dark")
    finally:
        set_theme(nb, "JupyterLab Light")


def test_failures_named_in_rows_summary_and_tracebacks(notebook, tmp_path):
    nb = notebook([TASKS, GOES_ON.format(storage=str(tmp_path / "storage"))])
    nb.run_cell(0)
    nb.run_cell(1)
    view = nb.cell(1).locator(VIEW)
    view.get_by_role("progressbar", name="Overall progress").wait_for(timeout=30_000)
    wait_over(view, nb)
    until(lambda: badge(view) == "Done, 3 failed", "the badge 'Done, 3 failed'", nb, 10)
    assert view.get_attribute("data-state") == "failed"
    counts = view.locator(".labnb-counts").inner_text()
    assert counts == "3/6 done · 0 loaded from cache · 3 failed", counts

    failures = view.locator(".labnb-failures")
    assert failures.is_visible()
    line = " ".join(failures.inner_text().split())
    assert line == f"3 failed: ValueError {TIMES}2 KeyError {TIMES}1", line
    kinds = failures.locator(".labnb-link").all_inner_texts()
    assert kinds == [f"ValueError {TIMES}2", f"KeyError {TIMES}1"], kinds

    statuses = {
        label: row(view, label).get_attribute("data-status")
        for label in ("Flaky(n=0)", "Flaky(n=1)", "Flaky(n=2)", "Flaky(n=3)")
    }
    assert statuses == {
        "Flaky(n=0)": "done",
        "Flaky(n=1)": "failed",
        "Flaky(n=2)": "failed",
        "Flaky(n=3)": "done",
    }, statuses
    error = row(view, "Flaky(n=1)").locator(".labnb-error-line")
    assert error.is_visible() and error.inner_text() == "ValueError: bad 1"
    missing = row(view, "Lookup(key='missing')").locator(".labnb-error-line")
    assert missing.inner_text() == "KeyError: 'missing'"
    for label in ("Flaky(n=0)", "Lookup(key='a')"):
        assert row(view, label).locator(".labnb-error-line").is_hidden(), label

    # The long message: cut with an ellipsis inside its cell, all of it on hover,
    # and the table no wider than its scroll box.
    long = row(view, "Flaky(n=2)").locator(".labnb-error-line")
    full = long.get_attribute("title")
    assert full.startswith("ValueError: bad 2 because the value is out of range"), full
    geometry = long.evaluate(
        """(el, short) => {
            const style = getComputedStyle(el);
            const box = el.getBoundingClientRect();
            const cell = el.closest('td').getBoundingClientRect();
            const next = el.closest('td').nextElementSibling.getBoundingClientRect();
            const scroll = el.closest('.labnb-scroll');
            return {
                // an ellipsis either way: one clamped line, or text-overflow
                ellipsis: style.webkitLineClamp === '1' || style.textOverflow === 'ellipsis',
                cut: el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth,
                oneLine: Math.abs(box.height - short.getBoundingClientRect().height) < 1,
                inCell: box.left >= cell.left - 0.5 && box.right <= cell.right + 0.5,
                beforeNext: box.right <= next.left + 0.5,
                tableFits: scroll.scrollWidth <= scroll.clientWidth,
                widths: [scroll.scrollWidth, scroll.clientWidth, Math.round(box.width)],
            };
        }""",
        error.element_handle(),
    )
    assert geometry["ellipsis"] and geometry["cut"] and geometry["oneLine"], geometry
    assert geometry["inCell"] and geometry["beforeNext"], geometry
    assert geometry["tableFits"], geometry  # no horizontal scroll: the Logs column shows
    assert row(view, "Flaky(n=2)").get_by_role("button", name="Logs").is_visible()

    # A click on "ValueError x2" opens the first such task's traceback.
    failures.get_by_role("button", name=f"ValueError {TIMES}2").click()
    log = view.locator(".labnb-logs .labnb-log")
    until(lambda: "ValueError: bad" in log.inner_text(), "the traceback in the log panel", nb, 20)
    title = view.locator(".labnb-log-title").inner_text()
    assert title in ("Logs of Flaky(n=1)", "Logs of Flaky(n=2)"), title
    text = log.inner_text()
    assert "Traceback" in text and FAILING_LINE in text, text
    assert "labnb/" not in text.replace("\\", "/"), text
    screenshots(nb, {"summary": view.locator(".labnb-summary"), "traceback": log})


def test_a_run_stopped_by_a_failure_says_what_never_started(notebook, tmp_path):
    nb = notebook([TASKS, STOPS.format(storage=str(tmp_path / "storage"))])
    nb.run_cell(0)
    nb.run_cell(1)
    view = nb.cell(1).locator(VIEW)
    view.get_by_role("progressbar", name="Overall progress").wait_for(timeout=30_000)
    wait_over(view, nb)
    until(lambda: badge(view) == "Failed", "the badge 'Failed'", nb, 10)
    failures = " ".join(view.locator(".labnb-failures").inner_text().split())
    assert failures == f"1 failed: ValueError {TIMES}1", failures
    error = row(view, "Flaky(n=1)").locator(".labnb-error-line").inner_text()
    assert error == "ValueError: bad 1", error
    screenshots(nb, {"stopped": view})

    counts = view.locator(".labnb-counts").inner_text()
    assert counts.startswith("0/5 done · 0 loaded from cache · 1 failed · "), counts
    assert counts.endswith(" · 4 not started"), counts
