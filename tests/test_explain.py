"""``lab.explain(task)``: why a task is, or is not, cached."""

from __future__ import annotations

from pathlib import Path

from sample_tasks import Colour, Square, WithEnum

import labnb


def test_a_cached_task_says_when_and_by_which_run(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="thread")
    lab.run_tasks([Square(x=2)], disable_progress=True)
    explanation = lab.explain(Square(x=2))
    assert explanation.usable and explanation.entry is not None
    assert str(explanation).startswith("Square(x=2) is cached: computed ")
    assert explanation.entry.run_id in str(explanation)


def test_an_uncached_task_names_the_parameter_that_differs(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="thread")
    lab.run_tasks([Square(x=2), Square(x=30)], disable_progress=True)
    explanation = lab.explain(Square(x=3))
    assert not explanation.usable and explanation.entry is None
    found = {(d.what, d.cached, d.now) for _, diffs in explanation.nearest for d in diffs}
    assert found == {("params.x", 2, 3), ("params.x", 30, 3)}
    assert "params.x: 2 cached, 3 now" in str(explanation)


def test_a_changed_code_version_is_named(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="thread")

    @labnb.task(code_version="v1")
    class Model:
        depth: int

        def run(self) -> int:
            return self.depth

    lab.run_tasks([Model(depth=3)], disable_progress=True)

    @labnb.task(code_version="v2")
    class Model:  # the same type, edited
        depth: int

        def run(self) -> int:
            return self.depth + 1

    explanation = lab.explain(Model(depth=3))
    ((_, differences),) = explanation.nearest
    assert [(d.what, d.cached, d.now) for d in differences] == [("code_version", "v1", "v2")]


def test_nothing_of_the_type_is_cached(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="thread")
    text = str(lab.explain(WithEnum(colour=Colour.RED, options={})))
    assert "is not cached, and nothing of type WithEnum is" in text
