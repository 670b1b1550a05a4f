"""A storage of the user's own, as labtech documents it: a ``Storage`` subclass
with ``find_keys``, ``exists``, ``file_handle`` and ``delete``, and nothing else.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import IO, Any

import pytest
from config_tasks import Dataset
from key_stores import DictStorage, DirectoryStorage
from sample_tasks import Chatty, Fails, Square, Stamp

import labnb
from labnb.errors import CacheWarning, StorageError
from labnb.storage import Storage


def test_a_storage_of_four_methods_caches_results_and_loads_them_without_rerunning():
    storage = DictStorage()
    lab = labnb.Lab(storage=storage, runner="thread")
    first = lab.run_tasks([Stamp(n=1), Stamp(n=2)], disable_progress=True)
    assert lab.cached_tasks([Stamp]) == [Stamp(n=1), Stamp(n=2)]
    assert lab.is_cached(Stamp(n=1))
    assert lab.run_tasks([Stamp(n=1)], disable_progress=True) == {Stamp(n=1): first[Stamp(n=1)]}
    # One key per task (its cache key), and labnb's own.
    assert sorted(storage.find_keys()) == sorted(
        [Stamp(n=1).cache_key, Stamp(n=2).cache_key, "labnb-storage"]
    )


def test_uncaching_deletes_the_tasks_key_and_the_task_runs_again():
    storage = DictStorage()
    lab = labnb.Lab(storage=storage, runner="serial")
    first = lab.run_tasks([Stamp(n=1), Stamp(n=2)], disable_progress=True)[Stamp(n=1)]
    assert lab.uncache_tasks([Stamp(n=1)]) == 1
    assert not storage.exists(Stamp(n=1).cache_key)
    assert lab.cached_tasks([Stamp]) == [Stamp(n=2)]
    assert lab.run_tasks([Stamp(n=1)], disable_progress=True)[Stamp(n=1)] != first


def test_the_logs_of_cached_and_failed_tasks_are_kept_in_the_storage():
    lab = labnb.Lab(storage=DictStorage(), runner="serial", continue_on_failure=True)
    lab.run_tasks([Chatty(n=1), Fails(n=2)], disable_progress=True)
    assert "task 1 line 2" in lab.logs(Chatty(n=1))
    assert "about to fail 2" in lab.logs(Fails(n=2))
    assert lab.cached_tasks([Chatty, Fails]) == [Chatty(n=1)]


def test_a_new_lab_over_the_same_directory_finds_what_process_workers_cached(tmp_path):
    lab = labnb.Lab(storage=DirectoryStorage(tmp_path), max_workers=2)
    first = lab.run_tasks([Stamp(n=1), Stamp(n=2)], disable_progress=True)
    assert all(pid != os.getpid() for _, _, pid in first.values())
    again = labnb.Lab(storage=DirectoryStorage(tmp_path), runner="thread")
    assert sorted(again.cached_tasks([Stamp])) == [Stamp(n=1), Stamp(n=2)]
    assert again.run_tasks([Stamp(n=2)], disable_progress=True)[Stamp(n=2)] == first[Stamp(n=2)]


def test_one_lab_sees_what_another_lab_caches_and_uncaches_in_the_same_storage(tmp_path):
    one = labnb.Lab(storage=DirectoryStorage(tmp_path), runner="serial")
    other = labnb.Lab(storage=DirectoryStorage(tmp_path), runner="serial")
    one.run_tasks([Square(x=1)], disable_progress=True)
    assert other.cached_tasks([Square]) == [Square(x=1)]
    other.run_tasks([Square(x=2)], disable_progress=True)
    assert one.cached_tasks([Square]) == [Square(x=1), Square(x=2)]
    other.uncache_tasks([Square(x=1)])
    assert one.cached_tasks([Square]) == [Square(x=2)]


def test_a_replaced_result_leaves_its_old_file_empty_and_the_new_one_is_loaded():
    storage = DictStorage()
    lab = labnb.Lab(storage=storage, runner="serial")
    lab.run_tasks([Stamp(n=1)], disable_progress=True)
    (old,) = [name for name in storage.files if name[1].startswith("result-")]
    second = lab.run_tasks([Stamp(n=1)], bust_cache=True, disable_progress=True)[Stamp(n=1)]
    assert storage.files[old] == b""
    assert labnb.Lab(storage=storage, runner="serial").run_tasks(
        [Stamp(n=1)], disable_progress=True
    ) == {Stamp(n=1): second}


def test_a_damaged_result_file_is_noticed_and_the_task_runs_again():
    storage = DictStorage()
    lab = labnb.Lab(storage=storage, runner="serial")
    first = lab.run_tasks([Stamp(n=1)], disable_progress=True)[Stamp(n=1)]
    (payload,) = [name for name in storage.files if name[1].startswith("result-")]
    storage.files[payload] = storage.files[payload][:-3]
    with pytest.warns(CacheWarning, match="truncated"):
        again = lab.run_tasks([Stamp(n=1)], disable_progress=True)[Stamp(n=1)]
    assert again != first


def test_a_storage_in_the_labs_memory_caches_nothing_from_process_workers_and_says_so(caplog):
    lab = labnb.Lab(storage=DictStorage(), max_workers=1)
    with caplog.at_level(logging.WARNING, logger="labnb"):
        assert lab.run_tasks([Square(x=5)], disable_progress=True) == {Square(x=5): 25}
    assert "runner='thread' or 'serial'" in caplog.text
    assert lab.cached_tasks([Square]) == []


def test_keys_labnb_did_not_write_are_left_alone_by_queries_removal_and_gc():
    storage = DictStorage()
    foreign = ("pickle__Experiment__ab12", "metadata.json")
    storage.files[foreign] = b'{"written by": "labtech"}'
    lab = labnb.Lab(storage=storage, runner="serial")
    lab.run_tasks([Square(x=1), Square(x=2)], disable_progress=True)
    assert lab.catalog.count() == 2
    assert lab.catalog.remove(types="Square") == 2
    report = lab.catalog.gc(older_than=0)
    assert (report.files, report.logs) == (0, 0)
    assert storage.files[foreign] == b'{"written by": "labtech"}'
    assert storage.find_keys() == ["labnb-storage", "pickle__Experiment__ab12"]


def test_the_config_file_a_sweep_came_from_is_kept_in_the_storage(tmp_path):
    text = "n: [2, 3]\nnoise: 0.5\n"
    (tmp_path / "data.yaml").write_text(text)
    tasks = labnb.sweep(Dataset, tmp_path / "data.yaml")
    labnb.Lab(storage=DirectoryStorage(tmp_path / "s"), runner="serial").run_tasks(
        tasks, disable_progress=True
    )
    kept = labnb.Lab(storage=DirectoryStorage(tmp_path / "s"), runner="serial").config_of(tasks[1])
    assert kept is not None and kept.text == text and kept.name.endswith("data.yaml")


def test_a_custom_cache_and_a_custom_storage_work_together():
    from labnb.cache import BaseCache

    class TextCache(BaseCache):
        KEY_PREFIX = "text__"

        def save_result(self, storage, task, result):
            with storage.file_handle(task.cache_key, "data.txt", mode="w") as file:
                file.write(result)

        def load_result(self, storage, task):
            with storage.file_handle(task.cache_key, "data.txt", mode="r") as file:
                return file.read()

    calls: list[str] = []

    @labnb.task(cache=TextCache())
    class Note:
        text: str

        def run(self):
            calls.append(self.text)
            return self.text.upper()

    lab = labnb.Lab(storage=DictStorage(), runner="serial")
    assert lab.run_task(Note(text="hi"), disable_progress=True) == "HI"
    assert lab.run_task(Note(text="hi"), disable_progress=True) == "HI" and calls == ["hi"]


def test_a_subclass_missing_one_of_the_four_methods_cannot_be_instantiated():
    class NoDelete(Storage):
        def find_keys(self) -> Sequence[str]:
            return []

        def exists(self, key: str) -> bool:
            return False

        def file_handle(self, key: str, filename: str, *, mode: str = "r") -> IO[Any]:
            raise FileNotFoundError(filename)

    with pytest.raises(TypeError, match="lacks delete"):
        NoDelete()
    with pytest.raises(TypeError, match="find_keys, exists, file_handle and delete"):
        Storage()


def test_a_subclass_that_takes_labnbs_attribute_names_is_told_so():
    class OwnIndex(DictStorage):
        def __init__(self) -> None:
            super().__init__()
            self.index = {}

    with pytest.raises(StorageError, match=r"sets self\.index"):
        labnb.Lab(storage=OwnIndex())


def test_labtechs_custom_storage_code_runs_unchanged(tmp_path):
    """Written as labtech's docs write it, with only the import changed."""
    import labnb as labtech

    calls: list[int] = []

    class InMemoryStorage(labtech.storage.Storage):
        def __init__(self):
            self._store = DictStorage()

        def find_keys(self):
            return self._store.find_keys()

        def exists(self, key):
            return self._store.exists(key)

        def file_handle(self, key, filename, *, mode="r"):
            return self._store.file_handle(key, filename, mode=mode)

        def delete(self, key):
            self._store.delete(key)

    @labtech.task
    class Experiment:
        seed: int

        def run(self):
            calls.append(self.seed)
            return self.seed * 10

    storage = InMemoryStorage()
    lab = labtech.Lab(storage=storage, runner_backend="thread")
    experiments = [Experiment(seed=seed) for seed in range(3)]
    results = lab.run_tasks(experiments)
    assert results == {experiment: experiment.seed * 10 for experiment in experiments}
    assert lab.cached_tasks([Experiment]) == experiments
    assert lab.run_tasks(experiments) == results and calls == [0, 1, 2]
    lab.uncache_tasks([experiments[0]])
    assert not lab.is_cached(experiments[0])
    assert repr(storage) == "InMemoryStorage()"
