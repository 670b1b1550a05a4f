"""Definitions that change under a storage (issue 11): a new validation rule, a
class of the same name in another module."""

from __future__ import annotations

import warnings

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


def test_cached_tasks_warns_about_an_entry_from_another_module(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    lab.run_tasks([Square(x=3)])

    class Square2:  # same qualified name, this module: the same ids
        x: int

        def run(self) -> int:
            return -self.x

    Square2.__qualname__ = Square2.__name__ = "Square"
    other = labnb.task(Square2)
    with pytest.warns(labnb.CacheWarning, match=r"sample_tasks.*not test_definitions\.Square"):
        (found,) = lab.cached_tasks([other])
    assert labnb.task_id(found) == labnb.task_id(Square(x=3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lab.cached_tasks([Square]) == [Square(x=3)]  # its own module: no warning
