"""A task is computed once, whoever asks: leases and run heartbeats in the catalog."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
from sample_tasks import SlowTally
from test_cli import labnb_command

import labnb

TESTS = Path(__file__).parent
SWEEP = """
import json, sys, time
sys.path.insert(0, {tests!r})
import labnb
from sample_tasks import SlowTally
from test_cli import labnb_command

start = {start}
while time.time() < start:
    pass
lab = labnb.Lab(storage={storage!r}, max_workers=2,
                context={{"tally": {tally!r}, "seconds": {seconds}}})
results = lab.run_tasks([SlowTally(name=str(n)) for n in range({first}, {last})],
                        disable_progress=True)
print(json.dumps(sorted(results.values(), key=int)))
"""


def start_sweep(tmp_path: Path, first: int, last: int, seconds: float, start: float):
    (tmp_path / "tally").mkdir(exist_ok=True)
    script = SWEEP.format(
        tests=str(TESTS), storage=str(tmp_path / "storage"), tally=str(tmp_path / "tally"),
        seconds=seconds, first=first, last=last, start=start,
    )  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def executions(tmp_path: Path) -> dict[str, int]:
    return {
        path.stem: len(path.read_text().splitlines())
        for path in sorted((tmp_path / "tally").glob("*.txt"))
    }


def test_two_processes_asking_for_overlapping_tasks_compute_each_once(tmp_path: Path):
    start = time.time() + 2.0
    first = start_sweep(tmp_path, 0, 8, 0.5, start)
    second = start_sweep(tmp_path, 4, 12, 0.5, start)
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    assert [process.returncode for process in (first, second)] == [0, 0], outputs
    assert outputs[0][0].strip() == str([str(n) for n in range(8)]).replace("'", '"')
    assert outputs[1][0].strip() == str([str(n) for n in range(4, 12)]).replace("'", '"')
    assert executions(tmp_path) == {str(n): 1 for n in range(12)}
    db = sqlite3.connect(tmp_path / "storage" / "catalog.sqlite")
    assert db.execute("SELECT count(*) FROM leases").fetchone() == (0,)
    assert db.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall() == [
        ("done", 2)
    ]
    runs = {run_id for (run_id,) in db.execute("SELECT run_id FROM runs")}
    assert {row[0] for row in db.execute("SELECT run_id FROM entries")} <= runs
    db.close()


def run_process_of(lab: labnb.Lab) -> psutil.Process:
    """The process of the one running run on ``lab``'s storage."""
    deadline = time.time() + 60
    while not (running := [run for run in lab.runs() if run.status == "running"]):
        assert time.time() < deadline, "the run never started"
        time.sleep(0.05)
    (run,) = running
    return psutil.Process(run.pid)


def test_a_killed_run_process_leaves_no_worker_and_its_tasks_are_taken_over(tmp_path: Path):
    holder = start_sweep(tmp_path, 0, 2, 600, time.time())
    deadline = time.time() + 60
    while executions(tmp_path) != {"0": 1, "1": 1}:
        assert time.time() < deadline, "the first run never started its tasks"
        time.sleep(0.05)
    lab = labnb.Lab(storage=tmp_path / "storage", runner="serial")
    run_process = run_process_of(lab)
    assert run_process.pid != holder.pid  # the run is owned by a process of its own
    workers = run_process.children()
    assert len(workers) == 2
    waiter = start_sweep(tmp_path, 0, 3, 0.1, time.time())
    deadline = time.time() + 60
    while "2" not in executions(tmp_path):  # the one task nobody else holds
        assert time.time() < deadline, "the second run never started"
        time.sleep(0.05)
    time.sleep(1)
    assert executions(tmp_path) == {"0": 1, "1": 1, "2": 1}  # waits for the live holder
    run_process.kill()
    killed_at = time.time()
    deadline = killed_at + 10
    while any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers):
        assert time.time() < deadline, "a worker outlived its run process by 10 s"
        time.sleep(0.1)
    _, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert time.time() - killed_at < 25  # a dead run is noticed after 10 s of silence
    assert executions(tmp_path) == {"0": 2, "1": 2, "2": 1}
    _, err = holder.communicate(timeout=30)  # the submitter learns its run was lost
    assert holder.returncode == 1 and "RunLost" in err and "was lost" in err
    assert all(lab.is_cached(SlowTally(name=str(n))) for n in range(3))
    killed, finished = lab.runs()
    assert (killed.status, finished.status) == ("lost", "done")  # its heartbeat went stale
    assert killed.counts() == {"running": 2} and finished.counts() == {"done": 3}


FOLLOW = """
import sys, time
sys.path.insert(0, {tests!r})
import labnb
lab = labnb.Lab(storage={storage!r}, runner="serial")
(run,) = [run for run in lab.runs() if run.status == "running"]
assert run.wait(timeout=120)
print(run.status, sorted(run.results.values(), key=int))
"""


def test_a_run_outlives_its_killed_submitter_and_is_followed_from_another_process(
    tmp_path: Path,
):
    submitter = start_sweep(tmp_path, 0, 6, 0.5, time.time())
    deadline = time.time() + 60
    while not executions(tmp_path):
        assert time.time() < deadline, "the run never started"
        time.sleep(0.05)
    submitter.kill()  # SIGKILL, as the OOM killer would
    submitter.wait(timeout=10)
    script = FOLLOW.format(tests=str(TESTS), storage=str(tmp_path / "storage"))
    follower = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180
    )
    assert follower.returncode == 0, follower.stderr
    assert follower.stdout.split(maxsplit=1) == ["done", str([str(n) for n in range(6)]) + "\n"]
    assert executions(tmp_path) == {str(n): 1 for n in range(6)}  # each ran exactly once


def test_a_run_leaves_a_record_and_no_leases(tmp_path: Path):
    (tmp_path / "tally").mkdir()
    lab = labnb.Lab(storage=tmp_path / "s", runner="thread",
                    context={"tally": str(tmp_path / "tally"), "seconds": 0})  # fmt: skip
    lab.run_tasks([SlowTally(name="a"), SlowTally(name="b")], disable_progress=True)
    db = sqlite3.connect(tmp_path / "s" / "catalog.sqlite")
    (run_id, status, pid), *others = db.execute("SELECT run_id, status, pid FROM runs").fetchall()
    assert not others and status == "done" and pid != os.getpid()  # its run process
    assert db.execute("SELECT count(*) FROM leases").fetchone() == (0,)
    assert {entry.run_id for entry in lab.storage.entries()} == {run_id}
    lab.run_tasks([SlowTally(name="a")], bust_cache=True, disable_progress=True)
    assert executions(tmp_path) == {"a": 2, "b": 1}  # bust_cache reruns, even when cached
    db.close()


def test_runs_are_recorded_and_found_from_another_process(tmp_path: Path):
    script = """
import sys
sys.path.insert(0, {tests!r})
import labnb
from sample_tasks import Fails, Square

lab = labnb.Lab(storage={storage!r}, max_workers=2, continue_on_failure=True)
lab.run_tasks([Square(x=1), Square(x=2), Fails(n=3)], disable_progress=True)
lab.run_tasks([Square(x=1)], disable_progress=True)
""".format(tests=str(TESTS), storage=str(tmp_path / "s"))
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=120)
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    (first,) = lab.runs()  # a run that only loads from the cache computes nothing: no record
    assert first.status == "failed" and first.counts() == {"done": 2, "failed": 1}
    table = first.frame().set_index("task")
    assert table.loc["Fails(n=3, unpicklable=False)", "error"] == "ValueError: bad value 3"
    assert (table["duration_s"] >= 0).all() and first.finished >= first.started
    listed = labnb_command("runs", str(tmp_path / "s"))
    assert listed.returncode == 0 and first.id in listed.stdout and "1 failed" in listed.stdout
    assert labnb_command("cancel", str(tmp_path / "s"), first.id[:6]).returncode == 2
    pruned = labnb_command("runs", str(tmp_path / "s"), "--prune")
    assert pruned.stdout.strip() == "forgot 1 run(s) that have ended" and lab.runs() == []


def test_a_run_is_cancelled_from_another_process(tmp_path: Path):
    holder = start_sweep(tmp_path, 0, 4, 600, time.time())
    lab = labnb.Lab(storage=tmp_path / "storage", runner="serial")
    deadline = time.time() + 60
    while not (running := [run for run in lab.runs() if run.status == "running"]):
        assert time.time() < deadline, "the run never started"
        time.sleep(0.1)
    (run,) = running
    asked = time.time()
    assert run.cancel()
    holder.communicate(timeout=30)
    assert time.time() - asked < 10
    assert run.wait(timeout=10)
    assert run.status == "cancelled" and run.counts().get("done", 0) == 0
    assert not run.cancel()  # no longer running
