"""A run's task graph by type, drawn in the run widget.

A notebook cell runs a three-step pipeline: ``Prepare`` feeds ``Train``, and
both feed ``Evaluate``; one evaluation fails. "Task graph" draws a box per
type with its counts, an arrow per dependency between types, and marks the
type with a failure. Screenshots in both themes land in ``screenshots/``.
"""

from __future__ import annotations

import pytest
from test_run_failures import VIEW, screenshots, wait_over
from test_run_reattach import until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PIPELINE = """\
import labnb

@labnb.task
class Prepare:
    n: int
    def run(self):
        return list(range(self.n))

@labnb.task
class Train:
    data: Prepare
    c: float
    def run(self):
        return sum(self.data.result) * self.c

@labnb.task
class Evaluate:
    data: Prepare
    model: Train
    def run(self):
        if self.model.c > 2:
            raise ValueError("diverged")
        return self.model.result

lab = labnb.Lab(storage={storage!r}, max_workers=2, continue_on_failure=True)
data = Prepare(n=10)
run = lab.submit([Evaluate(data=data, model=Train(data=data, c=c)) for c in (0.5, 1, 4)]); run"""


def test_the_task_graph_draws_each_type_and_how_they_depend(notebook, tmp_path):
    nb = notebook([PIPELINE.format(storage=str(tmp_path / "s"))])
    nb.run_cell(0)
    view = nb.cell(0).locator(VIEW)
    view.get_by_role("progressbar", name="Overall progress").wait_for(timeout=60_000)
    wait_over(view, nb)
    view.get_by_role("button", name="Task graph").click()
    graph = view.get_by_role("region", name="Task graph")
    nodes = graph.locator(".labnb-graph-node")
    until(lambda: nodes.count() == 3, "a box per type", nb, 30)
    assert graph.locator(".labnb-graph-edge").count() == 3
    evaluate = graph.locator('.labnb-graph-node[data-type="Evaluate"]')
    assert evaluate.get_attribute("data-state") == "failed"
    assert "2/3 · 1 failed" in evaluate.text_content()
    assert graph.locator('.labnb-graph-node[data-type="Prepare"]').get_attribute("data-state") == (
        "done"
    )
    screenshots(nb, {"graph": view})
