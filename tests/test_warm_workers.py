"""Warm workers: the next run of a Lab reuses the last run's run process and
workers, and nothing stale runs (``engine.warm_runs``, ``runners.warmth``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from nothing_lost_tasks import ThreadLimits
from sample_tasks import Stamp
from warm_tasks import ReadsContext, ReadsModule

import labnb

TESTS = Path(__file__).parent


def run_process_pid(lab: labnb.Lab) -> int:
    pid = lab.runs()[-1].pid
    assert pid is not None and pid != os.getpid()
    return pid


def wait_gone(pids: list[int], seconds: float = 30.0) -> None:
    deadline = time.time() + seconds
    for pid in pids:
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.time() < deadline, f"process {pid} is still running"
            time.sleep(0.05)


@pytest.fixture
def lab(tmp_path: Path) -> labnb.Lab:
    return labnb.Lab(storage=tmp_path / "s", max_workers=2, warm_seconds=60)


def test_the_next_run_reuses_the_run_process_and_its_workers(lab: labnb.Lab):
    first = lab.run_tasks([Stamp(n=n, seconds=0.2) for n in range(4)], disable_progress=True)
    owner = run_process_pid(lab)
    second = lab.run_tasks([Stamp(n=n, seconds=0.2) for n in range(4, 8)], disable_progress=True)
    workers = {pid for _, _, pid in first.values()}
    assert len(workers) == 2
    assert {pid for _, _, pid in second.values()} == workers
    assert run_process_pid(lab) == owner
    assert {child.pid for child in psutil.Process(owner).children()} == workers


def test_a_module_edited_between_runs_is_picked_up(lab: labnb.Lab, tmp_path: Path, monkeypatch):
    (tmp_path / "edited_helper.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = lab.run_tasks([ReadsModule("edited_helper", n) for n in range(2)])
    assert {value for value, _ in first.values()} == {1}
    (tmp_path / "edited_helper.py").write_text("VALUE = 22\n")
    second = lab.run_tasks([ReadsModule("edited_helper", n) for n in range(2, 4)])
    assert {value for value, _ in second.values()} == {22}
    # The workers that imported it were replaced; the run process (which never did) stayed.
    assert not {pid for _, pid in first.values()} & {pid for _, pid in second.values()}
    assert len(lab.runs()) == 2 and lab.runs()[0].pid == lab.runs()[1].pid


def test_a_changed_context_reaches_the_tasks(tmp_path: Path):
    storage = tmp_path / "s"
    first = labnb.Lab(storage=storage, max_workers=2, context={"value": 1}).run_tasks(
        [ReadsContext(n) for n in range(2)]
    )
    lab = labnb.Lab(storage=storage, max_workers=2, context={"value": 2})
    second = lab.run_tasks([ReadsContext(n) for n in range(2, 4)])
    assert {value for value, _ in first.values()} == {1}
    assert {value for value, _ in second.values()} == {2}
    assert lab.runs()[0].pid == lab.runs()[1].pid  # the same run process, new workers
    assert not {pid for _, pid in first.values()} & {pid for _, pid in second.values()}


def test_an_idle_pool_shuts_down(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2, warm_seconds=3)
    results = lab.run_tasks([Stamp(n=n) for n in range(2)], disable_progress=True)
    owner = run_process_pid(lab)
    workers = [child.pid for child in psutil.Process(owner).children()]
    assert sorted(workers) == sorted({pid for _, _, pid in results.values()})
    wait_gone([owner, *workers])


def test_a_pool_ends_when_its_storage_is_removed(tmp_path: Path):
    import shutil

    lab = labnb.Lab(storage=tmp_path / "s", max_workers=1, warm_seconds=300)
    lab.run_tasks([Stamp(n=0)], disable_progress=True)
    owner = run_process_pid(lab)
    workers = [child.pid for child in psutil.Process(owner).children()]
    shutil.rmtree(tmp_path / "s")
    wait_gone([owner, *workers])


def test_a_worker_that_died_between_runs_is_replaced(lab: labnb.Lab):
    first = lab.run_tasks([Stamp(n=n, seconds=0.2) for n in range(2)], disable_progress=True)
    dead, alive = sorted({pid for _, _, pid in first.values()})
    os.kill(dead, signal.SIGKILL)
    wait_gone([dead])
    second = lab.run_tasks([Stamp(n=n, seconds=0.2) for n in range(2, 6)], disable_progress=True)
    pids = {pid for _, _, pid in second.values()}
    assert len(second) == 4 and dead not in pids and alive in pids


def test_thread_limits_inside_a_task_are_the_workers_share_in_every_run(lab: labnb.Lab):
    share = max(1, labnb.engine.cpus.available_cpus() // 2)
    for run in range(2):
        results = lab.run_tasks([ThreadLimits(n=run * 2 + n) for n in range(2)])
        assert list(results.values()) == [[share], [share]]


SCRIPT = """
import json, os, sys
import labnb
lab = labnb.Lab(storage={storage!r}, max_workers=1, warm_seconds=60)
answers = []
for version in (1, 2):
    exec(f'''
@labnb.task
class Answer:
    n: int
    def run(self):
        return {{version}}, os.getpid()
''')
    answers.append(lab.run_task(Answer(n=version)))
print(json.dumps(answers))
"""


def test_a_task_class_redefined_in_main_is_shipped_again(tmp_path: Path):
    script = SCRIPT.format(storage=str(tmp_path / "s"))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    (first, first_pid), (second, second_pid) = json.loads(done.stdout.splitlines()[-1])
    assert (first, second) == (1, 2) and first_pid == second_pid


def test_killing_a_finished_run_spares_the_run_its_process_runs_now(lab: labnb.Lab):
    lab.run_tasks([Stamp(n=0)], disable_progress=True)
    running = lab.submit([Stamp(n=n, seconds=1.0) for n in range(1, 3)])
    finished = lab.runs()[0]
    assert finished.pid == running.pid  # type: ignore[attr-defined]
    finished.kill()  # type: ignore[attr-defined]
    assert running.wait(timeout=60) and running.status == "done"


def test_a_changed_environment_gets_a_fresh_run_process(lab: labnb.Lab, monkeypatch):
    first = lab.run_tasks([Stamp(n=0)], disable_progress=True)
    monkeypatch.setenv("LABNB_WARM_TEST", "changed")
    second = lab.run_tasks([Stamp(n=1)], disable_progress=True)
    old, new = (run.pid for run in lab.runs())
    assert old != new and first[Stamp(n=0)][2] != second[Stamp(n=1)][2]
    wait_gone([old])  # it refused the run and ended
