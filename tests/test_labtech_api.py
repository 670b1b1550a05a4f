"""labtech's documented public API, under labnb: module paths, exceptions, Lab and task options.

Where labtech (installed for the tests) can be imported, its public names and
exception hierarchy are the reference, so these tests fail if labnb drifts
from what a labtech user's code expects.
"""

from __future__ import annotations

import importlib
import json
import time
from datetime import datetime, timedelta

import pytest
from sample_tasks import Dies, Square, Total

import labnb
from labnb.exceptions import (
    LabError,
    LabtechError,
    RunnerError,
    TaskDiedError,
    TaskError,
    TaskFailed,
)
from labnb.runners.backends import runner_for
from labnb.runners.local import SerialRunner, ThreadRunner
from labnb.runners.process import ProcessRunner

SUBMODULES = {
    "labnb.types": ["Task", "is_task", "is_task_type", "ResultMeta", "LabContext", "Storage"],
    "labnb.cache": ["BaseCache", "PickleCache", "NullCache", "CacheError", "TaskNotFound"],
    "labnb.exceptions": [
        "LabtechError", "LabError", "RunnerError", "TaskDiedError", "TaskError",
        "SerializationError", "CacheError", "TaskNotFound", "StorageError",
    ],
    "labnb.storage": ["Storage", "LocalStorage", "FsspecStorage", "NullStorage"],
    "labnb.runners.ray": ["RayRunnerBackend"],
    "labnb.diagram": ["build_task_diagram", "display_task_diagram"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(SUBMODULES))
def test_labtechs_submodules_have_labnb_twins(module):
    imported = importlib.import_module(module)
    missing = [name for name in SUBMODULES[module] if not hasattr(imported, name)]
    assert missing == []


def test_exception_family_matches_labtechs():
    labtech_exceptions = pytest.importorskip("labtech.exceptions")
    from labnb import exceptions

    for name in dir(labtech_exceptions):
        reference = getattr(labtech_exceptions, name)
        if not (isinstance(reference, type) and issubclass(reference, Exception)):
            continue
        ours = getattr(exceptions, name)
        bases = {cls.__name__ for cls in reference.__mro__[1:]}
        our_bases = {cls.__name__ for cls in ours.__mro__} | {"LabtechError"}
        assert bases <= our_bases, (name, bases - our_bases)


def test_labnbs_own_errors_are_in_the_family():
    assert issubclass(labnb.TaskFailed, LabError)
    assert issubclass(labnb.StorageError, LabtechError)
    from labnb.storage import CorruptEntry

    assert issubclass(CorruptEntry, labnb.exceptions.CacheError)
    assert issubclass(labnb.exceptions.WorkerDied, TaskDiedError)
    assert issubclass(TaskDiedError, RunnerError)


def test_a_task_type_without_run_is_not_implemented():
    with pytest.raises(NotImplementedError, match="run"):

        @labnb.task
        class NoRun:
            x: int


def test_a_bad_parameter_is_a_task_error_and_a_type_error():
    with pytest.raises(TaskError) as error:
        Square(x=object())
    assert isinstance(error.value, TypeError)


def test_reading_result_before_a_run_is_a_task_error():
    with pytest.raises(TaskError, match="no result yet"):
        Square(x=1).result  # noqa: B018
    with pytest.raises(TaskError, match="no result_meta yet"):
        Square(x=1).result_meta  # noqa: B018
    assert not hasattr(Square(x=1), "result")  # still an AttributeError too


def test_run_tasks_of_a_non_task_is_a_lab_error():
    lab = labnb.Lab(storage=None, runner="serial")
    with pytest.raises(LabError):
        lab.run_tasks([42])
    with pytest.raises(LabError):
        lab.run_tasks(Square(x=1))


def test_the_first_failure_stops_the_run_with_a_lab_error():
    @labnb.task
    class Fails:
        def run(self):
            raise ValueError("nope")

    lab = labnb.Lab(storage=None, runner="serial")
    with pytest.raises(LabError, match="nope") as error:
        lab.run_tasks([Fails()])
    assert isinstance(error.value, TaskFailed)


def test_a_dead_worker_is_a_task_died_error(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=1, runner_backend="fork")
    with pytest.raises(TaskDiedError, match="worker process died"):
        lab.run_tasks([Dies(how="exit")], disable_progress=True)


@pytest.mark.parametrize(
    ("backend", "runner_type"),
    [
        ("fork", ProcessRunner),
        ("spawn", ProcessRunner),
        ("fork-per-task", ProcessRunner),
        ("thread", ThreadRunner),
        ("serial", SerialRunner),
    ],
)
def test_labtechs_runner_backends_map_onto_labnbs_runners(backend, runner_type):
    lab = labnb.Lab(storage=None, runner_backend=backend, max_workers=1)
    assert isinstance(lab.runner, runner_type)


def test_runner_backend_runs_tasks(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", runner_backend="thread", max_workers=2)
    assert isinstance(lab.runner, ThreadRunner)
    assert lab.run_task(Total(parts=[Square(x=2), Square(x=3)]), disable_progress=True) == 13
    backend = SerialRunner()
    assert labnb.Lab(storage=None, runner_backend=backend).runner is backend


def test_unknown_or_conflicting_runner_backends_are_refused():
    with pytest.raises(ValueError, match="runner_backend must be one of"):
        runner_for("process", "forkserver-please")
    with pytest.raises(ValueError, match="not both"):
        runner_for("thread", "serial")


def test_run_tasks_accepts_labtechs_top_options():
    lab = labnb.Lab(storage=None, runner="serial")
    results = lab.run_tasks(
        [Square(x=4)],
        disable_top=True,
        top_format="$name $status since $start_time CPU: $cpu MEM: $rss",
        top_sort="start_time",
        top_n=5,
    )
    assert results == {Square(x=4): 16}
    assert lab.run_task(Square(x=5), disable_top=True) == 25


def test_filter_context_narrows_what_a_task_sees(runner, tmp_path):
    @labnb.task
    class Narrow:
        key: str

        def filter_context(self, context):
            return {self.key: context[self.key]}

        def run(self):
            return sorted(self.context)

    lab = labnb.Lab(storage=None, runner=runner, max_workers=2, context={"a": 1, "b": 2})
    assert lab.run_tasks([Narrow(key="a"), Narrow(key="b")]) == {
        Narrow(key="a"): ["a"],
        Narrow(key="b"): ["b"],
    }


def test_post_init_is_called_after_the_parameters_are_checked():
    seen = []

    @labnb.task
    class Checked:
        values: list

        def post_init(self):
            seen.append(self.values)
            if not self.values:
                raise ValueError("values must not be empty")

        def run(self):
            return len(self.values)

    Checked(values=[1, 2])
    assert seen == [(1, 2)]  # already normalised to a tuple
    with pytest.raises(ValueError, match="must not be empty"):
        Checked(values=[])


def test_result_meta_says_when_a_result_was_made_and_how_long_it_took(tmp_path):
    @labnb.task
    class Slow:
        n: int

        def run(self):
            time.sleep(0.2)
            return self.n

    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    before = datetime.now()
    lab.run_tasks([Slow(n=1)])
    task = Slow(n=1)
    lab.run_tasks([task])  # loaded from the cache: the meta of the run that made it
    meta = task.result_meta
    assert before - timedelta(seconds=1) <= meta.start <= datetime.now()
    assert timedelta(seconds=0.2) <= meta.duration < timedelta(seconds=5)
    uncached = labnb.Lab(storage=None, runner="serial")
    other = Slow(n=2)
    uncached.run_tasks([other])
    assert other.result_meta.duration >= timedelta(seconds=0.2)


def test_task_attributes_labtech_documents():
    @labnb.task(code_version="v2")
    class Versioned:
        x: int

        def run(self):
            return self.x

    task = Versioned(x=1)
    assert task.code_version == task.current_code_version == "v2"
    assert task.cache_key == labnb.task_id(task)
    assert Square(x=1).code_version is None
    assert task.runner_options() == {}
    task.set_context({"k": 1})
    assert task.context == {"k": 1}
    assert labnb.is_task_type(Versioned) and not labnb.is_task_type(task)
    assert labnb.is_task(task) and not labnb.is_task(Versioned)


@pytest.mark.parametrize("name", ["cache_key", "result_meta", "code_version"])
def test_fields_cannot_shadow_task_attributes(name):
    with pytest.raises(TaskError, match=repr(name)):
        labnb.task(type("Shadow", (), {"__annotations__": {name: int}, "run": lambda self: 1}))


def test_tasks_sort_by_type_then_parameters():
    tasks = [Square(x=10), Total(parts=[Square(x=1)]), Square(x=2), Square(x=-1)]
    assert sorted(tasks) == [Square(x=-1), Square(x=2), Square(x=10), Total(parts=[Square(x=1)])]
    assert Square(x=1) <= Square(x=1) and Square(x=2) >= Square(x=1)


def test_labtechs_caches_are_accepted(tmp_path):
    from labnb.cache import BaseCache, NullCache, PickleCache

    class JsonCache(BaseCache):
        KEY_PREFIX = "json__"

        def save_result(self, storage, task, result):
            with storage.file_handle(task.cache_key, "data.json", mode="w") as file:
                json.dump(result, file)

        def load_result(self, storage, task):
            with storage.file_handle(task.cache_key, "data.json", mode="r") as file:
                return json.load(file)

    @labnb.task(cache=JsonCache())
    class AsJson:
        n: int

        def run(self):
            return {"n": self.n, "calls": [time.time()]}

    @labnb.task(cache=NullCache())
    class Never:
        def run(self):
            return 1

    @labnb.task(cache=PickleCache())
    class Pickled:
        def run(self):
            return {1, 2}

    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    first = lab.run_task(AsJson(n=3))
    assert lab.is_cached(AsJson(n=3)) and lab.run_task(AsJson(n=3)) == first
    assert lab.catalog.entries(["test_labtechs_caches_are_accepted.<locals>.AsJson"])[0].format == (
        "cache:json__"
    )
    lab.run_tasks([Never(), Pickled()])
    assert not lab.is_cached(Never()) and lab.is_cached(Pickled())
    assert lab.run_task(Pickled()) == {1, 2}


def test_a_custom_cache_sees_only_the_cache_key():
    from labnb.cache import BaseCache, CacheError

    class NeedsParams(BaseCache):
        def save_result(self, storage, task, result):
            task.n  # noqa: B018

        def load_result(self, storage, task):
            return None

    with pytest.raises(CacheError, match=r"only task\.cache_key"):
        NeedsParams().dumps(1)


def test_an_fsspec_storage_subclass_uses_its_fs_constructor(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    from labnb.storage import FsspecStorage

    class MemoryStorage(FsspecStorage):
        def fs_constructor(self):
            return fsspec.filesystem("memory")

    class LocalFsStorage(FsspecStorage):
        def fs_constructor(self):
            return fsspec.filesystem("file")

    memory = MemoryStorage("labnb-test-bucket/lab")
    assert memory.url == "memory:///labnb-test-bucket/lab"
    lab = labnb.Lab(storage=memory, runner="thread")
    assert lab.run_tasks([Square(x=3)]) == {Square(x=3): 9}
    assert fsspec.filesystem("memory").exists("/labnb-test-bucket/lab/labnb-storage.json")
    again = labnb.Lab(storage=MemoryStorage("labnb-test-bucket/lab"), runner="thread")
    assert again.cached_tasks([Square]) == [Square(x=3)]
    fsspec.filesystem("memory").rm("/labnb-test-bucket", recursive=True)

    # Workers in other processes rebuild the filesystem the constructor made.
    local = labnb.Lab(storage=LocalFsStorage(str(tmp_path / "lab")), max_workers=1)
    assert local.run_tasks([Square(x=4)], disable_progress=True) == {Square(x=4): 16}
    assert (tmp_path / "lab" / "labnb-storage.json").exists()
    assert local.is_cached(Square(x=4))
