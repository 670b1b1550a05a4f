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


def test_the_run_widget_says_why_a_task_ran_instead_of_loading(tmp_path: Path):
    from labnb.display.widgets import RunView

    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    lab.run_tasks([Square(x=2)], disable_progress=True)
    run = lab.submit([Square(x=2), Square(x=3)])
    run.wait(60)
    view = RunView(run.state, storage=lab.storage)
    ran, loaded = labnb.task_id(Square(x=3)), labnb.task_id(Square(x=2))
    reply = view._why({"id": ran})
    assert reply["ok"], reply
    # As it stood before the task ran: its own (new) entry is left out.
    assert reply["text"].startswith("Square(x=3) is not cached.")
    assert "params.x: 2 cached, 3 now" in reply["text"]
    assert view._why({"id": loaded}) == {"ok": False, "error": "no task of this run that ran"}
    assert view._why({"id": "../../etc"})["ok"] is False
    view.close()
