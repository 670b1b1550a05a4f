"""Task diagrams (labtech's ``labtech.diagram``): Mermaid text and how notebooks show it."""

from __future__ import annotations

import re
import time
from typing import Protocol

import pytest
from key_stores import DictStorage
from sample_tasks import Fails, NeedsFailed, Square, Stamp, Total

import labnb
from labnb.diagram import (
    build_run_diagram,
    build_task_diagram,
    display_run_diagram,
    display_task_diagram,
    format_type,
)


class ScoreTask(Protocol):
    def run(self) -> float: ...


@labnb.task(cache=None)
class Model:
    seed: int

    def run(self) -> float:
        return float(self.seed)


@labnb.task
class Experiment:
    model: ScoreTask
    dataset: str

    def run(self) -> dict[str, float]:
        return {self.dataset: self.model.result}


@labnb.task
class Evaluation:
    experiments: list[Experiment]
    baseline: Experiment | None = None

    def run(self):
        return len(self.experiments)


def evaluation() -> Evaluation:
    experiments = [Experiment(model=Model(seed=s), dataset="iris") for s in range(3)]
    return Evaluation(experiments=experiments, baseline=experiments[0])


def test_the_diagram_has_each_type_its_fields_result_and_dependencies():
    text = build_task_diagram([evaluation()])
    assert text.startswith("classDiagram\n    direction BT\n")
    for line in [
        "class Evaluation",
        "Evaluation : list~Experiment~ experiments",
        "Evaluation : Experiment | None baseline",
        "Evaluation : run() Any",
        "Experiment : ScoreTask model",
        "Experiment : str dataset",
        "Experiment : run() dict~str, float~",
        "Model : int seed",
        "Model : run() float",
        'Evaluation --> "many" Experiment: experiments',
        "Evaluation --> Experiment: baseline",
        "Experiment --> Model: model",
    ]:
        assert f"    {line}\n" in text, line
    # Each type once, however many tasks of it there are.
    assert text.count("class Model\n") == 1


def test_direction_is_checked():
    assert "direction LR" in build_task_diagram([Model(seed=1)], direction="LR")
    with pytest.raises(ValueError, match="direction"):
        build_task_diagram([Model(seed=1)], direction="up")


def test_types_with_the_same_name_get_distinct_ids():
    def define():
        @labnb.task
        class Model:
            inner: Experiment

            def run(self):
                return 1

        return Model

    text = build_task_diagram([define()(inner=Experiment(model=Model(seed=1), dataset="x"))])
    assert "class Model\n" in text and "class Model_2\n" in text


def test_format_type():
    assert format_type(dict[str, list[int]]) == "dict~str, list~int~~"
    assert format_type("list[Foo]") == "list~Foo~"
    assert format_type(int | None) == "int | None"


def test_display_prints_outside_a_notebook(capsys):
    display_task_diagram([Model(seed=1)])
    assert capsys.readouterr().out.startswith("classDiagram")


def test_display_in_a_notebook_is_a_mermaid_block_jupyterlab_draws(monkeypatch):
    import IPython.display

    import labnb.display.kernel

    shown = []
    monkeypatch.setattr(labnb.display.kernel, "in_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw: shown.append((obj, raw)))
    display_task_diagram([evaluation()], direction="TB")
    ((bundle, raw),) = shown
    assert raw is True
    assert bundle["text/markdown"].startswith("```mermaid\nclassDiagram\n    direction TB\n")
    assert bundle["text/markdown"].endswith("```\n")
    assert bundle["text/plain"] == build_task_diagram([evaluation()], direction="TB")


# --- a run's task graph ------------------------------------------------------------


@labnb.task(cache=None)
class Says:
    text: str

    def run(self) -> str:
        return self.text


def _nodes_and_edges(text: str) -> tuple[dict[str, str], set[tuple[str, str]], dict[str, str]]:
    """(label by node id, (from label, to label) arrows, state by label) of a run diagram."""
    labels = dict(re.findall(r'^    (t\d+)\["(.*)"\]$', text, re.M))
    edges = {(labels[a], labels[b]) for a, b in re.findall(r"^    (t\d+) --> (t\d+)$", text, re.M)}
    states = {
        labels[node]: state
        for nodes, state in re.findall(r"^    class (\S+) (\w+)$", text, re.M)
        for node in nodes.split(",")
    }
    return labels, edges, states


def test_a_runs_diagram_has_each_task_the_arrows_to_its_users_and_its_state():
    lab = labnb.Lab(storage=DictStorage(), runner="serial", continue_on_failure=True)
    lab.run_tasks([Square(x=1)], disable_progress=True)
    total = Total(parts=[Square(x=1), Square(x=2)])
    run = lab.submit([total, NeedsFailed(dependency=Fails(n=3))])
    assert run.wait(30)
    text = build_run_diagram(run)
    assert text.startswith("flowchart LR\n")
    labels, edges, states = _nodes_and_edges(text)
    assert sorted(labels.values()) == sorted(
        repr(task)
        for task in (Square(x=1), Square(x=2), total, Fails(n=3), NeedsFailed(Fails(n=3)))
    )
    assert edges == {
        (repr(Square(x=1)), repr(total)),
        (repr(Square(x=2)), repr(total)),
        (repr(Fails(n=3)), repr(NeedsFailed(Fails(n=3)))),
    }
    assert states == {
        repr(Square(x=1)): "loaded",
        repr(Square(x=2)): "done",
        repr(total): "done",
        repr(Fails(n=3)): "failed",
        repr(NeedsFailed(Fails(n=3))): "notstarted",
    }
    assert build_run_diagram(run, direction="TB").startswith("flowchart TB\n")
    with pytest.raises(ValueError, match="direction"):
        build_run_diagram(run, direction="up")


def test_a_task_still_running_is_drawn_running_and_then_done():
    run = labnb.Lab(storage=None, runner="thread").submit([Stamp(n=1, seconds=1.0)])
    deadline = time.monotonic() + 10
    while run.state.counts()["running"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert set(_nodes_and_edges(build_run_diagram(run))[2].values()) == {"running"}
    assert run.wait(30)
    assert set(_nodes_and_edges(build_run_diagram(run))[2].values()) == {"done"}


def test_labels_are_short_and_escape_what_mermaid_reads_as_markup():
    run = labnb.Lab(storage=None, runner="serial").submit(
        [Says(text='say "hi" <b>&'), Says(text="x" * 200)]
    )
    assert run.wait(30)
    labels = list(_nodes_and_edges(build_run_diagram(run))[0].values())
    assert "Says(text='say #quot;hi#quot; #lt;b#gt;#amp;')" in labels
    assert all(len(label) <= 60 for label in labels) and any(
        label.endswith("…") for label in labels
    )


def test_display_run_diagram_is_a_mermaid_block_in_a_notebook(monkeypatch):
    import IPython.display

    import labnb.display.kernel

    run = labnb.Lab(storage=None, runner="serial").submit([Square(x=4)])
    assert run.wait(30)
    shown = []
    monkeypatch.setattr(labnb.display.kernel, "in_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw: shown.append(obj))
    display_run_diagram(run)
    ((bundle,),) = [shown]
    assert bundle["text/markdown"] == f"```mermaid\n{build_run_diagram(run)}```\n"
