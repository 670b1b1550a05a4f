"""The cache browser's compare chart, seen in the browser.

A notebook cell runs a sweep of ``Fit`` tasks over ``C`` and ``seed``, each
logging an ``accuracy``; the next cell shows the Lab (its cache browser). A
click on the ``metrics.accuracy`` header sorts by it; a click on "Compare"
draws accuracy against C, one point per task; colouring by seed gives each
seed its colour and a legend entry. Screenshots in the light
and the dark theme land in ``screenshots/``.
"""

from __future__ import annotations

import pytest
from test_run_failures import screenshots
from test_run_reattach import until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SWEEP = """\
import labnb

@labnb.task
class Fit:
    C: float
    seed: int

    def run(self):
        accuracy = 0.6 + 0.1 * self.seed + 0.02 * self.C
        labnb.log_metric("accuracy", accuracy)
        return accuracy

lab = labnb.Lab(storage={storage!r}, max_workers=2)
lab.run_tasks([Fit(C=c, seed=s) for c in (0.5, 1.0, 2.0, 4.0) for s in (0, 1, 2)],
              disable_progress=True);"""


def test_compare_draws_a_metric_against_a_parameter(notebook, tmp_path):
    nb = notebook([SWEEP.format(storage=str(tmp_path / "s")), "lab"])
    nb.run_cell(0)
    nb.run_cell(1)
    view = nb.cell(1).locator(".labnb-cache-view")
    view.locator("tbody tr").first.wait_for(timeout=60_000)
    # A metric is a column like any other: sorted by a click on its header.
    view.get_by_role("button", name="metrics.accuracy", exact=True).click()
    first = view.locator("tbody tr").first
    lowest = ["0.5", "0", "0.61", "0.61"]  # C, seed, metrics.accuracy, result
    until(lambda: first.locator("td.labnb-param").all_inner_texts() == lowest,
          "the lowest accuracy first", nb, 30)  # fmt: skip
    view.get_by_role("button", name="Compare").click()
    panel = view.get_by_role("region", name="Compare")
    points = panel.locator("circle.labnb-point")
    until(lambda: points.count() == 12, "12 points", nb, 30)
    assert panel.get_by_label("Metric (vertical axis)").input_value() == "metrics.accuracy"
    assert panel.get_by_label("Parameter (horizontal axis)").input_value() == "params.C"
    panel.get_by_label("Colour by").select_option("params.seed")
    legend = panel.locator(".labnb-legend-item")
    until(lambda: legend.count() == 3, "a legend entry per seed", nb, 30)
    fills = {points.nth(i).get_attribute("fill") for i in range(points.count())}
    assert len(fills) == 3, fills
    assert "12 of 12 matching tasks" in panel.inner_text()
    # Narrowed by the filter: the chart follows it.
    view.get_by_role("searchbox", name="Filter").fill("seed=2")
    view.get_by_role("searchbox", name="Filter").press("Enter")
    until(lambda: points.count() == 4, "the 4 points of seed 2", nb, 30)
    screenshots(nb, {"compare": panel})
