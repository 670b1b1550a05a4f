"""The Ray runner on a local Ray instance: the core scenarios of the suite, and Ray's own faults.

One Ray instance serves the whole module (starting one takes seconds). Task
classes come from ``ray_tasks``, a real module: Ray workers import them by
name, so the fixture puts this directory on the workers' ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from ray_tasks import (
    Blob,
    BlobSizes,
    Chatty,
    ChoosesRayOptions,
    DeclaresNeeds,
    Dies,
    DiesOnce,
    Fails,
    LogsMetrics,
    NeedsFailed,
    ReadsContext,
    SleepsLong,
    Square,
    Streams,
    Tally,
    Total,
    UsesSlot,
    Waits,
)
from s3_server import moto_s3

import labnb
from labnb.engine.job import RunSetup

pytestmark = pytest.mark.ray
TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    # Set before Ray starts, workers inherit it from the raylet: quicker than a
    # runtime_env, whose workers cannot be the ones Ray starts in advance.
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), saved]))
    try:
        try:
            ray.init(num_cpus=2, resources={"slot": 1}, include_dashboard=False)
        except Exception:  # Ray gives its processes 30 s to start: on a busy machine, again
            ray.shutdown()
            ray.init(num_cpus=2, resources={"slot": 1}, include_dashboard=False)
        yield ray
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def ray_runner(ray_instance: Any) -> Any:
    """One runner for the module: like a notebook's, it serves one Lab after another."""
    from labnb.runners.ray import RayRunner

    return RayRunner()


@pytest.fixture
def make_lab(tmp_path: Path, ray_runner: Any):
    def make(**options: Any) -> labnb.Lab:
        options.setdefault("storage", tmp_path / "storage")
        options.setdefault("runner", ray_runner)
        return labnb.Lab(**options)

    return make


def test_without_ray_the_runner_says_how_to_install_it(monkeypatch):
    from labnb.runners.ray import RayRunner

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ImportError, match=r'pip install "labnb\[ray\]"'):
        RayRunner()


def test_nested_tasks_and_cache_hits(make_lab, tmp_path):
    (tmp_path / "tally").mkdir()
    lab = make_lab(context={"tally": str(tmp_path / "tally")})
    total = Total(parts=[Square(x=x) for x in range(5)])
    results = lab.run_tasks([total, Tally(name="t")], disable_progress=True)
    assert results == {total: 30, Tally(name="t"): "t"}
    assert total.parts[3].result == 9
    again = make_lab(context={"tally": str(tmp_path / "tally")})
    assert again.run_tasks([Tally(name="t")], disable_progress=True) == {Tally(name="t"): "t"}
    assert (tmp_path / "tally" / "t.txt").read_text() == "ran\n"
    assert again.is_cached(total) and again.is_cached(Square(x=4))
    # Cached dependencies of a new task go to Ray from the cache.
    assert again.run_task(Total(parts=[Square(x=1), Square(x=4)]), disable_progress=True) == 17


def test_large_results_pass_between_tasks_as_object_refs(make_lab, ray_runner, monkeypatch):
    from labnb.runners.ray import _RayPayload

    puts = []
    real_put = ray_runner._ray.put
    monkeypatch.setattr(ray_runner._ray, "put", lambda value: puts.append(value) or real_put(value))
    blobs = [Blob(n=n) for n in range(3)]
    lab = make_lab(storage=None, context={"big": list(range(1000))})
    assert lab.run_task(BlobSizes(blobs=blobs), disable_progress=True) == [
        (n, 400_000) for n in range(3)
    ]
    # Only the run's setup was put: the blobs went from task to task inside Ray.
    assert len(puts) == 1 and isinstance(puts[0].setup, RunSetup)
    # After the run, dependencies' results were fetched to the notebook.
    payload = blobs[1].__dict__["_labnb_result"]
    assert isinstance(payload, _RayPayload) and payload.ref is None
    assert blobs[1].result == bytes([1]) * 400_000


def test_a_cached_dependency_is_put_once_per_run(make_lab, ray_runner, monkeypatch):
    lab = make_lab()
    lab.run_task(Square(x=7), disable_progress=True)
    puts = []
    real_put = ray_runner._ray.put
    monkeypatch.setattr(ray_runner._ray, "put", lambda value: puts.append(value) or real_put(value))
    parents = [Total(parts=[Square(x=7), Square(x=n)]) for n in range(3)]
    assert lab.run_tasks(parents, disable_progress=True) == {
        parent: 49 + parent.parts[1].x ** 2 for parent in parents
    }
    assert len(puts) == 2  # the setup and Square(x=7)'s payload


def test_failure_raises_task_failed_with_the_original_message(make_lab):
    lab = make_lab()
    with pytest.raises(labnb.TaskFailed, match="bad value 1") as caught:
        lab.run_tasks([Fails(n=1)], disable_progress=True)
    error = caught.value
    assert error.exc_type == "ValueError" and error.task == Fails(n=1)
    assert isinstance(error.__cause__, ValueError)
    logs = lab.logs(Fails(n=1))
    assert "about to fail 1" in logs and "ValueError: bad value 1" in logs
    assert not lab.is_cached(Fails(n=1))


def test_continue_on_failure(make_lab):
    lab = make_lab(continue_on_failure=True)
    dependent = NeedsFailed(dependency=Fails(n=2))
    results = lab.run_tasks([Square(x=2), dependent], disable_progress=True)
    assert dict(results) == {Square(x=2): 4}
    assert results.failures[dependent].exc_type == "DependencyFailed"
    assert "bad value 2" in results.failures[Fails(n=2)].message
    assert lab.is_cached(Square(x=2))


def test_logs_hold_what_the_task_printed_and_logged(make_lab):
    lab = make_lab()
    lab.run_tasks([Chatty(n=3)], disable_progress=True)
    logs = lab.logs(Chatty(n=3))
    for text in ("task 3 line 0", "task 3 line 2", "task 3 to stderr", "task 3 logged"):
        assert text in logs
    assert logs.index("line 0") < logs.index("line 2") < logs.index("logged")


def test_live_output_and_progress_reach_the_notebook_while_tasks_run(make_lab, tmp_path):
    flags = tmp_path / "flags"
    flags.mkdir()
    lab = make_lab(context={"flags": str(flags)})
    run = lab.submit([Waits(name="w")])
    record = run.state.records[labnb.task_id(Waits(name="w"))]
    deadline = time.monotonic() + 20
    while "w is waiting" not in "".join(record.output) or record.progress != (2, 2, "waiting"):
        assert time.monotonic() < deadline, "no live output from the Ray worker"
        assert not run.done
        time.sleep(0.05)
    assert record.status == "running" and psutil.pid_exists(record.pid)
    (flags / "w").touch()
    assert run.wait(20)
    assert run.results == {Waits(name="w"): "w"}
    logs = lab.logs(Waits(name="w"))
    assert logs.index("w is waiting") < logs.index("w saw the flag")


def test_every_line_of_a_streaming_task_is_logged_in_order(make_lab):
    lab = make_lab(storage=None)
    tasks = [Streams(lines=25, pause=0.02 + 0.01 * n) for n in range(3)]
    run = lab.submit(tasks)
    assert run.wait(30)
    for task in tasks:
        assert lab.logs(task) == "".join(f"line {line}\n" for line in range(25))
        record = run.state.records[labnb.task_id(task)]
        assert record.progress == (25, 25, "streaming")


def test_a_killed_worker_fails_only_its_task(make_lab):
    lab = make_lab(continue_on_failure=True)
    results = lab.run_tasks([Dies(n=1), *[Square(x=x) for x in range(4)]], disable_progress=True)
    assert dict(results) == {Square(x=x): x * x for x in range(4)}
    error = results.failures[Dies(n=1)]
    assert error.exc_type == "WorkerDied" and "Ray worker died" in error.message
    with pytest.raises(labnb.TaskFailed, match="Ray worker died"):
        make_lab().run_tasks([Dies(n=2)], disable_progress=True)
    assert make_lab().run_task(Square(x=9), disable_progress=True) == 81


def test_max_retries_reruns_a_task_whose_worker_died(make_lab, ray_runner, tmp_path, monkeypatch):
    monkeypatch.setattr(ray_runner, "max_retries", 1)  # as RayRunner(max_retries=1)
    lab = make_lab(context={"markers": str(tmp_path)})
    assert lab.run_task(DiesOnce(n=5), disable_progress=True) == 5
    assert (tmp_path / "5.died").exists()


def test_cancel_kills_running_ray_tasks_and_keeps_finished_results(make_lab, tmp_path):
    lab = make_lab(context={"pids": str(tmp_path)})
    lab.run_tasks([Square(x=1)], disable_progress=True)
    run = lab.submit([SleepsLong(n=1), SleepsLong(n=2)])
    deadline = time.monotonic() + 20
    while len(list(tmp_path.glob("*.pid"))) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pids = [int(path.read_text()) for path in tmp_path.glob("*.pid")]
    started = time.monotonic()
    run.cancel()
    assert run.wait(timeout=10) and time.monotonic() - started < 5
    assert run.state.outcome == "cancelled"
    assert not lab.is_cached(SleepsLong(n=1)) and lab.is_cached(Square(x=1))
    assert "[labnb] cancelled" in lab.logs(SleepsLong(n=1))
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids):
        assert time.monotonic() < deadline, "cancelled Ray workers still alive"
        time.sleep(0.1)


def test_ray_options_on_a_task_class_reach_ray(make_lab):
    assert make_lab().run_task(UsesSlot(n=1), disable_progress=True) == 1.0


def test_declared_resources_become_ray_options(make_lab):
    assigned = make_lab().run_task(DeclaresNeeds(n=1), disable_progress=True)
    assert assigned["CPU"] == 2.0 and assigned["memory"] == 64 * 2**20, assigned


def test_a_tasks_runner_options_reach_ray_and_win_over_class_options_and_declared_needs(
    make_lab,
):
    tasks = [ChoosesRayOptions(share=0.25), ChoosesRayOptions(share=0.5)]
    results = make_lab().run_tasks(tasks, disable_progress=True)
    for task in tasks:
        assert results[task]["slot"] == task.share, results[task]
        assert results[task]["CPU"] == 1.0, results[task]


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ([], "must return a dict"),
        ({"ray": "fast"}, r"\['ray'\] must be a dict"),
        ({"ray": {"remote_options": {"num_returns": 3}}}, "cannot set 'num_returns'"),
        ({"ray": {"remote_options": {"num_cpus": "two"}}}, "num_cpus must be a number"),
    ],
)
def test_runner_options_ray_cannot_use_are_refused_with_a_clear_error(given, error):
    from labnb.runners.ray import task_options

    class Odd:
        def runner_options(self) -> Any:
            return given

    with pytest.raises((TypeError, ValueError), match=error):
        task_options(Odd())


def test_a_task_without_runner_options_asks_nothing_and_numbers_in_strings_are_numbers():
    from labnb.runners.ray import task_options

    assert task_options(Square(x=1)) == {}
    assert task_options(ChoosesRayOptions(share=0.5)) == {"num_cpus": 1, "resources": {"slot": 0.5}}


def test_ray_workers_cache_into_a_labtech_style_storage_of_the_users_own(make_lab, tmp_path):
    from key_stores import DirectoryStorage

    lab = make_lab(storage=DirectoryStorage(tmp_path / "mine"))
    total = Total(parts=[Square(x=x) for x in range(3)])
    assert lab.run_tasks([total], disable_progress=True) == {total: 5}
    again = labnb.Lab(storage=DirectoryStorage(tmp_path / "mine"), runner="serial")
    assert sorted(task.x for task in again.cached_tasks([Square])) == [0, 1, 2]
    assert again.is_cached(total)


def test_an_unimportable_task_class_fails_clearly(make_lab, tmp_path, monkeypatch):
    (tmp_path / "notebook_only.py").write_text(
        "import labnb\n\n@labnb.task\nclass Local:\n    n: int\n\n"
        "    def run(self):\n        return self.n\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # the driver's path only, not the workers'
    from notebook_only import Local  # type: ignore[import-not-found]

    try:
        with pytest.raises(labnb.TaskFailed, match="could not be run in a Ray worker"):
            make_lab().run_tasks([Local(n=1)], disable_progress=True)
    finally:
        sys.modules.pop("notebook_only", None)


def test_context_is_shared_through_the_object_store(make_lab):
    import numpy as np

    lab = make_lab(context={"array": np.arange(5)})
    assert list(lab.run_task(ReadsContext(key="array"), disable_progress=True)) == [0, 1, 2, 3, 4]


def test_ray_with_fsspec_storage_on_s3(ray_runner, tmp_path):
    from labnb.fsspec_storage import FsspecStorage

    with moto_s3() as options:
        url = "s3://labnb-ray/lab"
        lab = labnb.Lab(storage=FsspecStorage(url, **options), runner=ray_runner)
        total = Total(parts=[Square(x=x) for x in range(3)])
        assert lab.run_task(total, disable_progress=True) == 5
        fresh = FsspecStorage(url, **options)
        assert fresh.lookup(labnb.task_id(total)) is not None
        again = labnb.Lab(storage=fresh, runner=ray_runner)
        assert again.run_task(Chatty(n=4), disable_progress=True) == 4
        assert "task 4 logged" in again.logs(Chatty(n=4))
        assert sorted(task.x for task in again.cached_tasks([Square])) == [0, 1, 2]


def test_pid_of_a_local_worker_is_its_process(make_lab):
    lab = make_lab()
    run = lab.submit([Square(x=11)])
    run.wait(20)
    record = run.state.records[labnb.task_id(Square(x=11))]
    assert record.pid and record.pid != os.getpid()


def test_an_unpicklable_context_is_refused_before_anything_runs(make_lab):
    import threading

    lab = make_lab(context={"lock": threading.Lock()})
    with pytest.raises(TypeError, match="cannot be sent to Ray workers"):
        lab.run_tasks([ReadsContext(key="lock")], disable_progress=True)


def test_options_labnb_sets_itself_are_refused(ray_instance):
    from labnb.runners.ray import RayRunner

    with pytest.raises(ValueError, match="num_returns"):
        RayRunner(task_options={"num_returns": 3})
    with pytest.raises(ValueError, match="max_retries"):
        RayRunner(max_retries=-1)


def test_runner_ray_by_name(ray_instance, tmp_path):
    from labnb.runners.ray import RayRunner

    lab = labnb.Lab(storage=tmp_path / "s", runner="ray")
    assert isinstance(lab.runner, RayRunner) and lab.runner.max_workers is None
    assert lab.run_task(Total(parts=[Square(x=1), Square(x=2)]), disable_progress=True) == 5
    (run,) = lab.runs()
    assert run.status == "done" and run.pid != os.getpid()  # driven by a run process
    assert labnb.Lab(storage=None, runner="ray", max_workers=3).runner.max_workers == 3


SUBMIT_AND_DIE = """
import os, signal, sys
sys.path.insert(0, {tests!r})
import labnb
from ray_tasks import SlowTally
lab = labnb.Lab(storage={storage!r}, runner="ray", context={context!r})
lab.submit([SlowTally(name=str(n)) for n in range(4)])
os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would, right after submitting
"""


def test_a_ray_run_outlives_its_killed_submitter(ray_instance, tmp_path):
    """``runner='ray'`` detaches as the local runners do: the run process joins the
    cluster as a driver of its own, so the run goes on without the process that asked."""
    (tmp_path / "tally").mkdir()
    context = {"tally": str(tmp_path / "tally"), "seconds": 1.0}
    script = SUBMIT_AND_DIE.format(tests=str(TESTS), storage=str(tmp_path / "s"), context=context)
    address = ray_instance.get_runtime_context().gcs_address
    died = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "RAY_ADDRESS": address}, timeout=120
    )
    assert died.returncode == -signal.SIGKILL
    (run,) = labnb.Lab(storage=tmp_path / "s", runner="serial").runs()
    assert run.wait(timeout=120) and run.status == "done", run.status
    assert sorted(run.results.values()) == ["0", "1", "2", "3"]
    tallies = sorted(path.read_text() for path in (tmp_path / "tally").iterdir())
    assert tallies == ["ran\n"] * 4  # each ran once


def test_logged_metrics_reach_the_run_state(make_lab):
    lab = make_lab(storage=None)
    tasks = [LogsMetrics(steps=3), LogsMetrics(steps=6, pause=0.05)]  # at the end; some live
    run = lab.submit(tasks)
    assert run.wait(30) and run.failures == {}
    for task in tasks:
        metrics = run.state.records[labnb.task_id(task)].metrics
        assert metrics == {"loss": [(step, 1.0 / (step + 1)) for step in range(task.steps)]}


def test_labtechs_ray_runner_backend_runs_on_the_ray_runner(ray_instance, tmp_path):
    from labnb.runners.ray import RayRunner, RayRunnerBackend

    lab = labnb.Lab(storage=tmp_path / "s", runner_backend=RayRunnerBackend(max_retries=1))
    assert isinstance(lab.runner, RayRunner) and lab.runner.max_retries == 1
    assert lab.run_task(Total(parts=[Square(x=1), Square(x=3)]), disable_progress=True) == 10
