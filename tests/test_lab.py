"""The Lab as users drive it, under every runner."""

from __future__ import annotations

import itertools
import re
import time
import warnings
from pathlib import Path

import pytest
from sample_tasks import (
    Array,
    Chatty,
    Colour,
    Fails,
    Frame,
    NeedsFailed,
    OneAtATime,
    ReadsContext,
    ReadsEnvironment,
    Square,
    Stamp,
    Tally,
    TallyParent,
    Total,
    Uncached,
    WithEnum,
)

import labnb


def test_run_cache_and_reuse(make_lab):
    lab = make_lab()
    tasks = [Stamp(n=i) for i in range(4)]
    first = lab.run_tasks(tasks)
    assert set(first) == set(tasks)
    assert all(lab.is_cached(task) for task in tasks)
    again = make_lab().run_tasks([Stamp(n=i) for i in range(4)])
    assert {task: again[task] for task in tasks} == dict(first)


def test_nested_results_and_shared_dependencies_run_once(make_lab, tmp_path):
    lab = make_lab(context={"tally": str(tmp_path)})
    shared = Tally(name="shared")
    parents = [TallyParent(child=Tally(name="shared"), tag=i) for i in range(3)] + [
        TallyParent(child=shared, tag=9)
    ]
    results = lab.run_tasks(parents)
    assert sorted(results.values()) == ["shared-0", "shared-1", "shared-2", "shared-9"]
    assert (tmp_path / "shared.txt").read_text() == "ran\n"
    assert parents[0].child.result == "shared" and shared.result == "shared"
    assert parents[0].result == "shared-0"


def test_cached_parent_does_not_run_its_dependencies(make_lab, tmp_path):
    lab = make_lab(context={"tally": str(tmp_path)})
    lab.run_tasks([TallyParent(child=Tally(name="c"), tag=1)])
    lab.uncache_tasks([Tally(name="c")])
    lab.run_tasks([TallyParent(child=Tally(name="c"), tag=1)])
    assert (tmp_path / "c.txt").read_text() == "ran\n"


def test_context_and_run_task(make_lab):
    lab = make_lab(context={"answer": 42})
    assert lab.run_task(ReadsContext(key="answer")) == 42


def test_cache_none_runs_every_time(make_lab):
    lab = make_lab()
    first = lab.run_task(Uncached(n=1))
    assert not lab.is_cached(Uncached(n=1))
    assert lab.run_task(Uncached(n=1)) != first
    assert lab.cached_tasks([Uncached]) == []


def test_bust_cache_reruns(make_lab):
    lab = make_lab()
    first = lab.run_task(Stamp(n=1))
    assert lab.run_task(Stamp(n=1)) == first
    assert lab.run_task(Stamp(n=1), bust_cache=True) != first
    assert lab.run_task(Stamp(n=1)) != first


def test_find_inspect_and_clear(make_lab):
    lab = make_lab()
    tasks = [WithEnum(colour=colour, options={"k": [1, 2]}) for colour in Colour]
    lab.run_tasks([*tasks, Square(x=3)])
    found = lab.cached_tasks([WithEnum])
    assert sorted(found, key=str) == sorted(tasks, key=str)
    assert {task.colour for task in found} == set(Colour)  # real Enum members, not dicts
    table = lab.cache_table([WithEnum])
    assert list(table.columns) == [
        "type",
        "id",
        "params.colour",
        "params.options",
        "started",
        "finished",
        "duration_s",
        "size_bytes",
        "status",
        "stale",
    ]
    assert sorted(table["params.colour"]) == ["Colour.BLUE", "Colour.RED"]
    assert (table["duration_s"] >= 0).all() and (table["size_bytes"] > 0).all()
    assert len(lab.cache_table()) == 3
    assert lab.uncache_tasks(tasks[:1]) == 1
    assert not lab.is_cached(tasks[0]) and lab.is_cached(tasks[1])
    assert lab.cached_tasks([WithEnum]) == [tasks[1]]


def test_cache_table_shows_nested_tasks_by_type_and_id(make_lab):
    lab = make_lab()
    total = Total(parts=[Square(x=1), Square(x=2)])
    lab.run_tasks([total])
    row = lab.cache_table([Total]).iloc[0]
    assert row["params.parts"] == (
        f"Square:{labnb.task_id(Square(x=1))[:8]}",
        f"Square:{labnb.task_id(Square(x=2))[:8]}",
    )
    assert lab.cached_tasks([Total]) == [total]


def test_logs_capture_print_stderr_and_logging_in_order_without_mixing(make_lab):
    lab = make_lab()
    tasks = [Chatty(n=i) for i in range(4)]
    lab.run_tasks(tasks)
    for task in tasks:
        n = task.n
        # Logged lines carry their time and level; printed ones are as printed.
        assert re.fullmatch(
            f"task {n} line 0\ntask {n} line 1\ntask {n} line 2\ntask {n} to stderr\n"
            rf"\d\d:\d\d:\d\d INFO labnb: task {n} logged\n"
            rf"\d\d:\d\d:\d\d WARNING user.module: task {n} warned\n",
            lab.logs(task),
        )


def test_log_lines_reach_the_parent_while_running(make_lab, capfd):
    make_lab().run_tasks([Chatty(n=7)])
    err = capfd.readouterr().err
    assert re.search(r"\[Chatty:[0-9a-f]{8}\] task 7 line 0", err)
    assert "task 7 logged" in err


def test_logs_of_a_task_that_never_ran(make_lab):
    with pytest.raises(LookupError, match="no logs"):
        make_lab().logs(Square(x=99))


def test_failure_raises_task_failed_with_original_details(make_lab):
    lab = make_lab()
    with pytest.raises(labnb.TaskFailed) as caught:
        lab.run_tasks([Fails(n=1)])
    error = caught.value
    assert error.task == Fails(n=1)
    assert error.exc_type == "ValueError" and error.message == "bad value 1"
    assert "raise ValueError" in error.traceback
    assert isinstance(error.__cause__, ValueError)
    assert "Fails(n=1" in str(error)
    assert not lab.is_cached(Fails(n=1))
    logs = lab.logs(Fails(n=1))
    assert logs.startswith("about to fail 1\n") and "ValueError: bad value 1" in logs


def test_unpicklable_exception_still_reports(make_lab):
    with pytest.raises(labnb.TaskFailed) as caught:
        make_lab().run_tasks([Fails(n=2, unpicklable=True)])
    assert caught.value.exc_type == "Unpicklable"
    assert caught.value.message == "odd failure 2"
    assert "odd failure 2" in caught.value.traceback


def test_first_failure_stops_new_tasks(make_lab):
    lab = make_lab(max_workers=1)
    with pytest.raises(labnb.TaskFailed):
        lab.run_tasks([Fails(n=1), *[Square(x=i) for i in range(5)]])
    assert not any(lab.is_cached(Square(x=i)) for i in range(5))


def test_continue_on_failure(make_lab):
    lab = make_lab(continue_on_failure=True)
    tasks = [Square(x=2), Fails(n=3), NeedsFailed(dependency=Fails(n=3))]
    results = lab.run_tasks(tasks)
    assert dict(results) == {Square(x=2): 4}
    assert set(results.failures) == {Fails(n=3), NeedsFailed(dependency=Fails(n=3))}
    blocked = results.failures[NeedsFailed(dependency=Fails(n=3))]
    assert blocked.exc_type == "DependencyFailed" and "Fails(n=3" in blocked.message


def test_max_parallel_bounds_one_type(make_lab):
    results = make_lab(max_workers=2).run_tasks([OneAtATime(n=i) for i in range(3)])
    spans = sorted(results.values())
    assert all(previous[1] <= following[0] for previous, following in itertools.pairwise(spans))


def test_numpy_format(make_lab, tmp_path):
    import numpy as np

    lab = make_lab()
    assert lab.run_task(Array(n=5)).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert list((tmp_path / "storage" / "results").rglob("*.npy"))
    again = make_lab().run_task(Array(n=5))
    assert isinstance(again, np.ndarray) and again.sum() == 10


def test_parquet_format(make_lab, tmp_path):
    first = make_lab().run_task(Frame(n=4))
    assert list((tmp_path / "storage" / "results").rglob("*.parquet"))
    again = make_lab().run_task(Frame(n=4))
    assert again.equals(first) and again["square"].tolist() == [0, 1, 4, 9]


def test_a_format_that_refuses_the_result_fails_the_task(make_lab):
    @labnb.task(cache=labnb.NumpyFormat())
    class NotAnArray:
        def run(self):
            return "text"

    with pytest.raises(labnb.TaskFailed, match=r"could not be saved.*numpy arrays"):
        make_lab().run_task(NotAnArray())


def test_run_tasks_refuses_non_tasks(make_lab):
    with pytest.raises(TypeError, match="expected labnb tasks"):
        make_lab().run_tasks([Square(x=1), "nope"])
    with pytest.raises(TypeError, match="list of tasks"):
        make_lab().run_tasks(Square(x=1))


def test_cycles_are_refused_before_anything_runs(make_lab, tmp_path):
    first = Total(parts=[Square(x=1)])
    second = Total(parts=[first])
    object.__setattr__(first, "parts", (second,))
    with pytest.raises(labnb.CycleError, match="Total -> Total -> Total"):
        make_lab().run_tasks([Square(x=5), second])
    assert not make_lab().is_cached(Square(x=5))


def test_storage_none_caches_nothing_but_keeps_logs(runner):
    lab = labnb.Lab(storage=None, runner=runner)
    assert lab.run_task(Chatty(n=1)) == 1
    assert not lab.is_cached(Chatty(n=1))
    assert "task 1 line 0" in lab.logs(Chatty(n=1))


@pytest.mark.parametrize("runner", ["process"])
def test_tasks_of_a_type_run_in_parallel(make_lab):
    start = time.time()
    results = make_lab(max_workers=2).run_tasks([Stamp(n=i, seconds=0.5) for i in range(2)])
    assert len({pid for _, _, pid in results.values()}) == 2
    (a_start, a_end, _), (b_start, b_end, _) = results.values()
    assert a_start < b_end and b_start < a_end, "the two tasks overlapped in time"
    assert time.time() - start < 5


def test_default_storage_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lab = labnb.Lab(runner="serial")
    assert "labnb_storage" in capsys.readouterr().err
    lab.run_task(Square(x=1))
    assert Path("labnb_storage", "labnb-storage.json").exists()


def test_warning_free_run(make_lab):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_lab().run_tasks([Square(x=4)])


@pytest.mark.parametrize("runner", ["process"])
def test_workers_cap_blas_threads_unless_the_user_chose(make_lab, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "7")
    lab = make_lab(max_workers=2, context={"key": None})
    from labnb.engine.cpus import available_cpus

    threads = str(max(1, available_cpus() // 2))
    assert lab.run_task(ReadsEnvironment(names=["OMP_NUM_THREADS", "MKL_NUM_THREADS"])) == (
        threads,
        "7",
    )


def test_cached_tasks_come_in_the_order_they_ran(make_lab):
    lab = make_lab(max_workers=1)
    for x in [3, 1, 2]:
        lab.run_task(Square(x=x))
    assert lab.cached_tasks([Square]) == [Square(x=3), Square(x=1), Square(x=2)]


def test_output_is_captured_even_if_stdout_was_replaced_during_another_run(tmp_path):
    import contextlib
    import io
    import sys

    from labnb.intask.capture import capture_output

    class Channel:
        def __init__(self):
            self.text = ""

        def output(self, text):
            self.text += text

        def progress(self, n, total, desc):
            pass

    outer, inner = Channel(), Channel()
    with capture_output(outer):  # another run's task, still running
        with contextlib.redirect_stdout(io.StringIO()), capture_output(inner):
            print("inner task")
        print("outer task")
    assert inner.text == "inner task\n" and outer.text == "outer task\n"
    assert not type(sys.stdout).__name__.startswith("_Stream")
