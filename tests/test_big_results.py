"""A big result is written once, by its worker, straight into its file; what
crosses the pipe is a reference to the file, and whoever needs the value loads
it from there (issue 11: "big results are copied four times")."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import psutil
import pytest
from big_result_tasks import MEGABYTES, BigArray, BigPickled, Summed, big_array
from sample_tasks import Square

import labnb
from labnb.engine.job import Job, Outcome, RunSetup
from labnb.model.tasks import task_id
from labnb.runners.process import ProcessRunner
from labnb.storage.blobs import LocalPayloadWriter

TESTS = Path(__file__).parent


def run_one(runner: ProcessRunner, job: Job) -> tuple[Outcome, int]:
    """Run a job on a real worker; the outcome, and the bytes this process read meanwhile."""
    me = psutil.Process()
    runner.submit(job)
    before = me.io_counters().read_chars
    while True:
        for event in runner.poll(1.0):
            if isinstance(event, Outcome):
                return event, me.io_counters().read_chars - before


@pytest.mark.parametrize("task", [BigPickled(seed=1), BigArray(seed=1)], ids=["pickle", "npy"])
def test_a_stored_result_crosses_the_pipe_as_a_reference(tmp_path, task):
    (tmp_path / "results").mkdir()  # a storage's folder: writers create only what is inside
    runner = ProcessRunner(1)
    runner.open(RunSetup(writer=LocalPayloadWriter(str(tmp_path / "results"))))
    try:
        stored, read = run_one(runner, Job(task_id(task), task))
        uncached, read_uncached = run_one(runner, Job(task_id(task), task, cache=False))
    finally:
        runner.close()
    assert stored.failure is None and stored.stored is not None
    assert read < 2**20 < MEGABYTES * 2**20 <= stored.stored.size
    np.testing.assert_array_equal(stored.payload.value, big_array(1))  # loaded from the file
    # Not cached: nothing was written, so the result itself comes back.
    assert uncached.stored is None and read_uncached > MEGABYTES * 2**20
    np.testing.assert_array_equal(uncached.payload.value, big_array(1))


@pytest.mark.parametrize("part", [BigPickled(seed=2), BigArray(seed=2)], ids=["pickle", "npy"])
def test_a_dependency_is_loaded_from_its_file_by_the_next_worker(tmp_path, part):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    expected = float(big_array(2).sum())
    total, kind = lab.run_task(Summed(part=part))
    assert total == expected
    # NumpyFormat results load as copy-on-write memory maps of their files.
    assert kind == ("memmap" if isinstance(part, BigArray) else "ndarray")
    # Cached: the next run's worker reads it from the cache, checked.
    assert lab.run_task(Summed(part=part), bust_cache=False) == (expected, kind)
    lab.uncache_tasks([Summed(part=part)])
    assert lab.run_task(Summed(part=part)) == (expected, kind)


def test_a_memory_mapped_result_is_writable_and_its_file_never_changes(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=1)
    first = lab.run_task(BigArray(seed=3))
    assert isinstance(first, np.memmap)
    first[:] = 0  # copy-on-write: this process's copy only
    again = labnb.Lab(storage=tmp_path / "s").run_task(BigArray(seed=3))
    np.testing.assert_array_equal(again, big_array(3))


CACHED_IN_A_NEW_PROCESS = """
    import sys
    import labnb
    import numpy as np
    from big_result_tasks import BigArray, BigPickled, big_array

    lab = labnb.Lab(storage=sys.argv[1], max_workers=2)
    results = lab.run_tasks([BigPickled(seed=4), BigArray(seed=4)], disable_progress=True)
    for value in results.values():
        np.testing.assert_array_equal(value, big_array(4))
    print(sorted(type(value).__name__ for value in results.values()))
"""


def test_cached_big_results_load_in_a_new_process(tmp_path):
    script = tmp_path / "load.py"
    script.write_text(textwrap.dedent(CACHED_IN_A_NEW_PROCESS))
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    outputs = [
        subprocess.run(
            [sys.executable, str(script), str(tmp_path / "s")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for _ in range(2)  # computes, then loads from the cache
    ]
    assert outputs == ["['memmap', 'ndarray']\n"] * 2
    assert len(list((tmp_path / "s" / "results").rglob("*.*"))) == 2


def test_results_checked_with_earlier_blake2b_checksums_still_load(tmp_path):
    """Checksums are xxh3 now (checked at memory speed); an entry an earlier
    labnb wrote carries blake2b's, and is checked with it."""
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    lab.run_task(Square(x=4))
    (path,) = (tmp_path / "s" / "results").rglob("*.pkl")
    entry = lab.storage.lookup(task_id(Square(x=4)))
    assert entry.checksum.startswith("xxh3-128:")
    earlier = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    with sqlite3.connect(tmp_path / "s" / "catalog.sqlite") as db:
        db.execute("UPDATE entries SET checksum = ?", (earlier,))
    assert labnb.Lab(storage=tmp_path / "s", runner="serial").run_task(Square(x=4)) == 16
    path.write_bytes(path.read_bytes()[::-1])  # same size, other bytes
    with pytest.warns(labnb.CacheWarning, match="does not match its checksum"):
        assert labnb.Lab(storage=tmp_path / "s", runner="serial").run_task(Square(x=4)) == 16
