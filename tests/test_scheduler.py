"""The scheduler alone: dependency order, per-type limits and failure policy."""

from __future__ import annotations

import pytest

from labnb.engine.scheduler import Node, Scheduler


def drain(scheduler: Scheduler) -> list[str]:
    taken = []
    while (key := scheduler.take()) is not None:
        taken.append(key)
    return taken


def test_a_task_is_ready_as_soon_as_its_own_dependencies_are_done():
    scheduler = Scheduler(
        [Node("a"), Node("b"), Node("slow"), Node("x", ("a", "b")), Node("y", ("slow",))]
    )
    assert drain(scheduler) == ["a", "b", "slow"]
    scheduler.finish("a")
    assert drain(scheduler) == []
    scheduler.finish("b")
    # "x" starts while "slow" (another branch) is still running: no waiting for a whole level.
    assert drain(scheduler) == ["x"]
    assert scheduler.running == {"slow", "x"}


def test_shared_dependencies_are_counted_once():
    scheduler = Scheduler([Node("a"), Node("b", ("a", "a"))])
    assert drain(scheduler) == ["a"]
    scheduler.finish("a")
    assert drain(scheduler) == ["b"]


def test_per_type_limit():
    nodes = [Node(f"n{i}", group="T", limit=2) for i in range(5)] + [Node("other", group="U")]
    scheduler = Scheduler(nodes)
    assert drain(scheduler) == ["n0", "n1", "other"]
    scheduler.finish("n0")
    assert drain(scheduler) == ["n2"]


def test_failure_halts_and_blocks_dependents():
    scheduler = Scheduler([Node("a"), Node("b"), Node("c", ("a",)), Node("d", ("c",))])
    assert drain(scheduler) == ["a", "b"]
    assert sorted(scheduler.fail("a")) == ["c", "d"]
    assert scheduler.blocked == {"c": "a", "d": "a"}
    assert scheduler.take() is None and not scheduler.over
    scheduler.finish("b")
    assert scheduler.over


def test_continue_on_failure_runs_everything_else():
    scheduler = Scheduler([Node("a"), Node("b"), Node("c", ("a",)), Node("e", ("b",))], True)
    drain(scheduler)
    scheduler.fail("a")
    scheduler.finish("b")
    assert drain(scheduler) == ["e"]
    scheduler.finish("e")
    assert scheduler.over and scheduler.blocked == {"c": "a"}


def test_unknown_dependencies_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        Scheduler([Node("a", ("missing",))])
