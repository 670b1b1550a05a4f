"""Faults are tested, not assumed: each gets a clear error and nothing cached is lost."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from sample_tasks import Dies, SleepsLong, Square, Stamp

import labnb

TESTS = Path(__file__).parent


def result_files(storage: Path) -> list[Path]:
    return [path for path in (storage / "results").rglob("*") if path.is_file()]


@pytest.mark.parametrize("damage", ["truncate", "garble", "delete"])
def test_damaged_result_file_warns_and_reruns(tmp_path, damage):
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    first = lab.run_task(Stamp(n=1))
    (path,) = result_files(tmp_path / "s")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:5])
    elif damage == "garble":
        path.write_bytes(b"x" * path.stat().st_size)
    else:
        path.unlink()
    with pytest.warns(labnb.CacheWarning, match=r"Stamp\(n=1.*will run again"):
        second = lab.run_task(Stamp(n=1))
    assert second != first
    assert lab.run_task(Stamp(n=1)) == second  # cached again, cleanly


@pytest.mark.parametrize("runner", ["process", "serial"])
def test_damaged_dependency_is_rerun(tmp_path, runner):
    lab = labnb.Lab(storage=tmp_path / "s", runner=runner)
    from sample_tasks import Total

    lab.run_tasks([Total(parts=[Square(x=3)])])
    lab.uncache_tasks([Total(parts=[Square(x=3)])])
    for path in result_files(tmp_path / "s"):
        path.write_bytes(b"")
    with pytest.warns(labnb.CacheWarning):
        assert lab.run_task(Total(parts=[Square(x=3)])) == 9


def test_bad_storage_paths_fail_before_anything_runs(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(labnb.StorageError, match="not a directory"):
        labnb.Lab(storage=a_file)
    with pytest.raises(labnb.StorageError, match="cannot use"):
        labnb.Lab(storage=a_file / "below")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(labnb.StorageError, match="not a labnb storage"):
        labnb.Lab(storage=busy)
    with pytest.raises(labnb.StorageError, match="cannot use"):
        labnb.Lab(storage="/proc/labnb-storage")
    with pytest.raises(labnb.StorageError):
        labnb.Lab(storage=42)


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_worker_death_fails_only_its_task(tmp_path, how):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2, continue_on_failure=True)
    results = lab.run_tasks([Dies(how=how), *[Square(x=i) for i in range(6)]])
    assert dict(results) == {Square(x=i): i * i for i in range(6)}
    error = results.failures[Dies(how=how)]
    assert error.exc_type == "WorkerDied"
    assert "worker process died" in error.message
    assert ("SIGKILL" in error.message) if how == "kill" else ("exit code 3" in error.message)
    assert all(lab.is_cached(Square(x=i)) for i in range(6))
    # The pool recovers for the next run.
    assert lab.run_tasks([Square(x=10)]) == {Square(x=10): 100}


def test_worker_death_raises_by_default(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    with pytest.raises(labnb.TaskFailed, match="worker process died"):
        lab.run_tasks([Dies(how="kill")])


def run_script(code: str, tmp_path: Path, **options) -> subprocess.Popen:
    script = tmp_path / f"script_{time.monotonic_ns()}.py"
    script.write_text(textwrap.dedent(code))
    # This labnb, not whichever is installed (a worktree's tests test the worktree).
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


INTERRUPTED_RUN = """
    import json, sys
    import labnb
    from sample_tasks import SleepsLong, Stamp

    lab = labnb.Lab(storage="storage", max_workers=2, context={"pids": "."})
    lab.run_tasks([Stamp(n=i) for i in range(3)], disable_progress=True)
    print("quick done", flush=True)
    try:
        lab.run_tasks([SleepsLong(n=i) for i in range(2)], disable_progress=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
"""


def test_interrupt_stops_workers_and_keeps_finished_results(tmp_path):
    process = run_script(INTERRUPTED_RUN, tmp_path)
    assert process.stdout.readline().strip() == "quick done"
    deadline = time.time() + 30
    while len(pid_files := list(tmp_path.glob("*.pid"))) < 2:
        assert time.time() < deadline, "the long tasks never started"
        time.sleep(0.05)
    time.sleep(0.1)
    workers = [psutil.Process(int(path.read_text())) for path in pid_files]
    started = time.time()
    process.send_signal(signal.SIGINT)
    assert process.stdout.readline().strip() == "interrupted"
    assert process.wait(timeout=10) == 0
    assert time.time() - started < 5
    assert not any(worker.is_running() and worker.status() != "zombie" for worker in workers)
    lab = labnb.Lab(storage=tmp_path / "storage", runner="serial")
    assert all(lab.is_cached(Stamp(n=i)) for i in range(3))
    assert not any(lab.is_cached(SleepsLong(n=i)) for i in range(2))
    assert "[labnb] cancelled" in lab.logs(SleepsLong(n=0))
    assert len(lab.cache_table()) == 3


TWO_LABS = """
    import json, sys
    import labnb
    from sample_tasks import Stamp

    lab = labnb.Lab(storage=sys.argv[1] if len(sys.argv) > 1 else "shared", max_workers=2)
    offset = {offset}
    tasks = [Stamp(n=offset + i, seconds=0.01) for i in range(40)]
    results = lab.run_tasks(tasks, disable_progress=True)
    print(json.dumps(len(results)))
"""


def test_two_processes_on_one_storage(tmp_path):
    first = run_script(TWO_LABS.format(offset=0), tmp_path)
    second = run_script(TWO_LABS.format(offset=20), tmp_path)
    for process in (first, second):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert json.loads(out) == 40
    lab = labnb.Lab(storage=tmp_path / "shared", runner="serial")
    cached = lab.cached_tasks([Stamp])
    assert len(cached) == 60
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # no corrupted entry anywhere
        lab.run_tasks(cached)
    entries = list(lab.storage.entries())
    assert sorted(path.name for path in result_files(tmp_path / "shared")) == sorted(
        Path(entry.file).name for entry in entries
    )


NOTEBOOK_STYLE = """
    import enum, json
    import labnb

    class Mode(enum.Enum):
        FAST = "fast"
        SLOW = "slow"

    @labnb.task
    class Defined:
        mode: Mode
        x: int

        def run(self):
            print("running in a worker")
            return (self.mode.value, self.x * 2, helper(self.x))

    def helper(x):
        return x + 1

    lab = labnb.Lab(storage="storage", max_workers=2)
    tasks = [Defined(mode=mode, x=i) for mode in Mode for i in range(3)]
    results = lab.run_tasks(tasks, disable_progress=True)
    assert results[Defined(mode=Mode.SLOW, x=2)] == ("slow", 4, 3), results
    assert sorted(lab.cached_tasks([Defined]), key=str) == sorted(tasks, key=str)
    assert lab.logs(tasks[0]) == "running in a worker\\n"
    print("ok")
"""


def test_tasks_defined_in_main_run_in_worker_processes(tmp_path):
    process = run_script(NOTEBOOK_STYLE, tmp_path)
    out, err = process.communicate(timeout=120)
    assert out.strip() == "ok", err


def test_a_result_format_defined_in_a_notebook_works_in_worker_processes(tmp_path):
    import json

    class JsonFormat(labnb.ResultFormat):  # not importable: shipped by value
        name = "json"
        suffix = ".json"

        def dumps(self, value):
            return json.dumps(value).encode()

        def loads(self, data):
            return json.loads(data)

    @labnb.task(cache=JsonFormat())
    class Summary:
        n: int

        def run(self):
            return {"n": self.n, "squares": [i * i for i in range(self.n)]}

    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    assert lab.run_task(Summary(n=3)) == {"n": 3, "squares": [0, 1, 4]}
    assert list((tmp_path / "s" / "results").rglob("*.json"))
    assert labnb.Lab(storage=tmp_path / "s", runner="serial").run_task(Summary(n=3))["n"] == 3


ORPHANING_RUN = """
    import threading, time
    import labnb
    from sample_tasks import SleepsLong

    if {threaded}:  # a process with threads (a kernel) starts workers from the forkserver
        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
    lab = labnb.Lab(storage="storage", max_workers=2, context={{"pids": "."}})
    lab.run_tasks([SleepsLong(n=i) for i in range(2)], disable_progress=True)
"""


def started_workers(folder: Path, count: int) -> list[psutil.Process]:
    deadline = time.time() + 30
    while len(pid_files := list(folder.glob("*.pid"))) < count:
        assert time.time() < deadline, "the tasks never started"
        time.sleep(0.05)
    time.sleep(0.1)
    return [psutil.Process(int(path.read_text())) for path in pid_files]


def gone_within(workers: list[psutil.Process], seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not any(worker.is_running() and worker.status() != "zombie" for worker in workers):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("threaded", [False, True], ids=["forked", "forkserver"])
def test_workers_exit_when_their_run_process_is_killed(tmp_path, threaded):
    process = run_script(ORPHANING_RUN.format(threaded=threaded), tmp_path)
    workers = started_workers(tmp_path, 2)
    (run_process,) = {worker.parent() for worker in workers}
    assert run_process.pid != process.pid  # the run belongs to its own process
    run_process.kill()
    try:
        assert gone_within(workers, 10), "a worker outlived its run process by 10 s"
        _, err = process.communicate(timeout=30)
        assert process.returncode == 1 and "RunLost" in err
    finally:
        process.kill()
        for worker in workers:
            with contextlib.suppress(psutil.Error):
                worker.kill()


STUBBORN_RUN = """
    import labnb
    from sample_tasks import IgnoresTerm

    lab = labnb.Lab(storage="storage", max_workers=2, context={"pids": "."})
    lab.run_tasks([IgnoresTerm(n=i) for i in range(2)], disable_progress=True)
"""


def test_a_second_ctrl_c_kills_workers_that_ignore_sigterm(tmp_path):
    process = run_script(STUBBORN_RUN, tmp_path)
    workers = started_workers(tmp_path, 2)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)  # while the first interrupt waits for the workers to stop
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
        assert gone_within(workers, 5)
    finally:
        process.kill()
        for worker in workers:
            with contextlib.suppress(psutil.Error):
                worker.kill()


@pytest.mark.parametrize("runner", ["process", "thread"])
def test_a_storage_deleted_while_a_run_writes_into_it_fails_the_run_naming_it(tmp_path, runner):
    """The run once reported success with its results gone, and its workers
    recreated ``results/``, which the next Lab refused as not a storage."""
    import shutil
    import threading

    from sample_tasks import SlowTally

    storage, tally = tmp_path / "s", tmp_path / "tally"
    tally.mkdir()
    lab = labnb.Lab(
        storage=storage, runner=runner, max_workers=2, context={"tally": str(tally), "seconds": 0.4}
    )

    def delete_once_tasks_ran() -> None:
        while len(list(tally.iterdir())) < 3:
            time.sleep(0.02)
        shutil.rmtree(storage)

    deleter = threading.Thread(target=delete_once_tasks_ran)
    deleter.start()
    with pytest.raises(labnb.StorageError, match=f"{storage} was deleted .*while the run wrote"):
        lab.run_tasks([SlowTally(name=str(n)) for n in range(8)], disable_progress=True)
    deleter.join()
    assert len(list(tally.iterdir())) < 8  # the run stopped
    time.sleep(0.5)  # a worker still writing would recreate something by now
    assert not storage.exists()
    assert labnb.Lab(storage=storage, runner="serial").run_task(Square(x=2)) == 4  # a fresh one
