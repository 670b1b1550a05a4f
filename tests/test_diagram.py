"""Task diagrams (labtech's ``labtech.diagram``): Mermaid text and how notebooks show it."""

from __future__ import annotations

from typing import Protocol

import pytest

import labnb
from labnb.diagram import build_task_diagram, display_task_diagram, format_type


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
