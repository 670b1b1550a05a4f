"""Definitions that change under a storage (issue 11): a new validation rule, a
class of the same name in another module."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from sample_tasks import Square

import labnb


@labnb.task
class Bounded:
    x: int

    def run(self) -> int:
        return self.x


def stricter_bounded() -> type:
    """``Bounded`` as a later version of the module defines it: x must be at most 3."""

    class Bounded:
        x: int

        def __post_init__(self) -> None:
            if self.x > 3:
                raise ValueError(f"x must be at most 3, not {self.x}")

        def run(self) -> int:
            return self.x

    Bounded.__qualname__ = Bounded.__name__ = "Bounded"
    return labnb.task(Bounded)


def test_cached_tasks_leaves_out_entries_a_new_post_init_refuses(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    lab.run_tasks([Bounded(x=x) for x in (1, 2, 5, 10)])
    strict = stricter_bounded()
    with pytest.warns(labnb.CacheWarning, match=r"left out 2 cached Bounded entries .*at most 3"):
        found = lab.cached_tasks([strict])
    assert sorted(task.x for task in found) == [1, 2]
    assert all(type(task) is strict for task in found)


def other_square() -> type:
    """A ``Square`` of this module: the same qualified name as sample_tasks' one."""

    class Square2:
        x: int

        def run(self) -> int:
            return -self.x

    Square2.__qualname__ = Square2.__name__ = "Square"
    return labnb.task(Square2)


def test_cached_tasks_warns_about_an_entry_from_another_module(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    lab.run_tasks([Square(x=3)])
    other = other_square()  # same qualified name, this module: the same ids
    with pytest.warns(labnb.CacheWarning, match=r"sample_tasks.*not test_definitions\.Square"):
        (found,) = lab.cached_tasks([other])
    assert labnb.task_id(found) == labnb.task_id(Square(x=3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lab.cached_tasks([Square]) == [Square(x=3)]  # its own module: no warning


@labnb.task
class Link:
    previous: object
    n: int

    def run(self) -> int:
        return 1 if self.previous is None else self.previous.result + 1


def test_a_chain_of_10000_dependent_tasks_is_hashed_and_planned(tmp_path):
    """Ids and planning once recursed one Python frame per dependency: a chain
    of 300 raised RecursionError."""
    from labnb.engine.planning import make_plan
    from labnb.storage import open_storage

    links = [Link(previous=None, n=0)]
    for n in range(1, 10_000):
        links.append(Link(previous=links[-1], n=n))
    head = links[-1]
    assert len({labnb.task_id(link) for link in links}) == 10_000
    rebuilt = Link(previous=None, n=0)
    for n in range(1, 10_000):
        rebuilt = Link(previous=rebuilt, n=n)
    assert labnb.task_id(rebuilt) == labnb.task_id(head) and rebuilt == head
    plan = make_plan([head], open_storage(tmp_path / "s"), bust_cache=False)
    assert [node.key for node in plan.nodes] == [labnb.task_id(link) for link in links]
    assert plan.nodes[5].dependencies == (labnb.task_id(links[4]),)


def test_a_chain_of_10000_dependent_tasks_runs_in_a_run_process_and_is_cached(tmp_path):
    """Pickling the chain for the run process, for each job and storing each
    entry's parameters all recursed once per link ("excessively deep recursion");
    they go flat now (``model.flat_pickle``, stored forms by reference past
    ``STORED_DEPTH``). Default Lab: the process runner, in a run process."""
    links = [Link(previous=None, n=0)]
    for n in range(1, 10_000):
        links.append(Link(previous=links[-1], n=n))
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    assert lab.run_tasks([links[-1]], disable_progress=True)[links[-1]] == 10_000
    (run,) = lab.runs()
    assert run.status == "done" and run.tasks == [links[-1]]  # its tasks file reads back
    rebuilt = lab.cached_tasks([Link])
    assert len(rebuilt) == 10_000 and rebuilt[-1] == links[-1]
    assert lab.run_task(links[-1]) == 10_000  # from the cache


def test_a_cycle_is_still_named_by_the_iterative_walk(tmp_path):
    from labnb.engine.planning import make_plan
    from labnb.storage import open_storage

    first = Link(previous=None, n=0)
    second = Link(previous=first, n=1)
    object.__setattr__(first, "previous", second)  # only by mutating a frozen task
    with pytest.raises(labnb.CycleError, match="Link -> Link -> Link"):
        make_plan([second], open_storage(tmp_path / "s"), bust_cache=False)


def test_a_deep_chain_of_tasks_has_a_short_repr_without_deep_recursion():
    @labnb.task
    class Step:
        n: int
        prev: Any = None

        def run(self) -> int:
            return self.n

    task = None
    for n in range(5000):
        task = Step(n=n, prev=task)
    name = Step.__qualname__  # as @dataclass writes it
    assert repr(task) == (
        f"{name}(n=4999, prev={name}(n=4998, prev={name}(n=4997, prev={name}(...))))"
    )
    assert repr(Step(n=1)) == f"{name}(n=1, prev=None)"

    @labnb.task
    class OwnRepr:
        def __repr__(self) -> str:
            return "mine"

        def run(self) -> None:
            return None

    assert repr(OwnRepr()) == "mine"


def test_run_tasks_and_submit_warn_when_they_reuse_an_entry_from_another_module(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    lab.run_tasks([Square(x=3), Square(x=4)])
    other = other_square()
    with pytest.warns(
        labnb.CacheWarning, match=r"sample_tasks.*not test_definitions\.Square"
    ) as seen:
        results = lab.run_tasks([other(x=3), other(x=4)])
    assert list(results.values()) == [9, 16]  # ids as they were: project A's results
    assert len([w for w in seen if issubclass(w.category, labnb.CacheWarning)]) == 1  # per type
    with pytest.warns(labnb.CacheWarning, match=r"computed by Square of another module"):
        assert lab.submit([other(x=3)]).wait()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lab.run_tasks([Square(x=3)])[Square(x=3)] == 9  # its own module: no warning
