"""The processes tasks start do not outlive their worker: subprocesses a task did
not wait for and daemons it detached end when the run does, and with the task
when it is cancelled."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
from nothing_lost_tasks import LeavesProcesses

import labnb


def task_processes(folder: Path, count: int) -> list[int]:
    deadline = time.time() + 60
    while len(files := sorted(folder.glob("*.pids"))) < count:
        assert time.time() < deadline, "the tasks never started their processes"
        time.sleep(0.05)
    time.sleep(0.2)
    return [int(pid) for path in files for pid in path.read_text().split()]


def alive(pids: list[int]) -> list[int]:
    living = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                living.append(pid)
        except psutil.NoSuchProcess:
            pass
    return living


@pytest.fixture
def lab(tmp_path: Path) -> labnb.Lab:
    return labnb.Lab(storage=tmp_path / "s", max_workers=2, context={"pids": str(tmp_path)})


def test_processes_a_finished_task_left_running_end_with_the_run(lab: labnb.Lab, tmp_path: Path):
    results = lab.run_tasks([LeavesProcesses(n=n) for n in range(2)], disable_progress=True)
    assert sorted(results.values()) == [0, 1]
    pids = task_processes(tmp_path, 2)
    assert len(pids) == 4 and alive(pids) == []


def test_a_cancelled_task_ends_with_its_processes(lab: labnb.Lab, tmp_path: Path):
    run = lab.submit([LeavesProcesses(n=n, linger=300) for n in range(2)])
    pids = task_processes(tmp_path, 2)
    assert len(alive(pids)) == 4
    assert run.cancel() and run.wait(timeout=30)
    deadline = time.time() + 5
    while alive(pids):
        assert time.time() < deadline, f"still running after the cancel: {alive(pids)}"
        time.sleep(0.1)
