"""Nothing lost, nothing crashes the run (issue 11): every line a task writes
reaches its log, and one odd write fails at most its own task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nothing_lost_tasks import (
    PrintsLines,
    PrintsOddName,
    RaisesInterrupt,
    WritesBelowPython,
    WritesNonText,
)
from sample_tasks import Square

import labnb


def test_every_printed_line_reaches_the_log_in_order(tmp_path):
    """The worker's channel once swapped its buffer without a lock: lines
    appended meanwhile vanished (thousands of 300,000)."""
    lab = labnb.Lab(storage=tmp_path / "s", runner="process", max_workers=2)
    count = 300_000
    results = lab.run_tasks([PrintsLines(n=count), PrintsLines(n=count + 1)])
    assert dict(results) == {PrintsLines(n=count): count, PrintsLines(n=count + 1): count + 1}
    for n in (count, count + 1):
        logs = lab.logs(PrintsLines(n=n))
        assert logs == "".join(f"line {line}\n" for line in range(n))


def test_a_lone_surrogate_is_stored_as_python_prints_it(make_lab):
    lab = make_lab(continue_on_failure=True)
    tasks = [PrintsOddName(), Square(x=3)]
    results = lab.run_tasks(tasks)
    assert results[Square(x=3)] == 9 and not results.failures
    assert lab.logs(PrintsOddName()) == "found caf\\udce9.txt\n"
    assert lab.is_cached(PrintsOddName()) and lab.is_cached(Square(x=3))


@pytest.mark.parametrize("what, name", [("bytes", "bytes"), ("int", "int")])
def test_writing_non_text_to_stdout_fails_only_that_task(make_lab, what, name):
    lab = make_lab(continue_on_failure=True)
    results = lab.run_tasks([WritesNonText(what=what), *[Square(x=i) for i in range(3)]])
    assert dict(results) == {Square(x=i): i * i for i in range(3)}
    failure = results.failures[WritesNonText(what=what)]
    assert failure.exc_type == "TypeError"
    assert failure.message == f"write() argument must be str, not {name}"
    assert isinstance(failure.__cause__, TypeError)


def test_output_below_python_lands_in_the_task_log(tmp_path, capfd):
    lab = labnb.Lab(storage=tmp_path / "s", runner="process", max_workers=1)
    lab.run_tasks([WritesBelowPython(), Square(x=2)], disable_progress=True)
    logs = lab.logs(WritesBelowPython())
    for line in (
        "from print",
        "from os.write 1",
        "from os.write 2 \\xff",
        "from a subprocess",
        "from C printf 7",
    ):
        assert f"{line}\n" in logs
    assert lab.logs(Square(x=2)) == ""  # nothing of the first task's leaks into the next
    out, err = capfd.readouterr()
    assert "from os.write" not in out + err and "from a subprocess" not in out + err


def test_keyboard_interrupt_raised_by_a_task_is_its_own_failure(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="process", continue_on_failure=True)
    results = lab.run_tasks([RaisesInterrupt(), Square(x=4)])
    assert results[Square(x=4)] == 16
    failure = results.failures[RaisesInterrupt()]
    assert failure.exc_type == "KeyboardInterrupt"
    assert failure.message == "raised by the task itself"
    assert "about to interrupt" in lab.logs(RaisesInterrupt())


def in_own_mount_namespace() -> list[str]:
    """``unshare`` for a mount namespace of this test's own (and a user namespace
    when not root, where a user may mount a tmpfs): a tmpfs mounted there goes
    away with the namespace's last process, however the test ends."""
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return ["unshare", *user, "--mount", "--propagation", "private"]


def test_a_full_disk_keeps_what_fits_fails_what_does_not_and_recovers(tmp_path):
    """On an 8 MB tmpfs (tests/full_disk_scenario.py): a full disk once crashed
    the run (ENOSPC, SQLite's "database or disk is full" on the commit), lost
    the results written before it, and left ``.tmp-*`` files that made the
    rerun fail again. The result that does not fit is not returned: it exists
    only in the worker, and a run process hands results over through the
    storage that is full."""
    disk, tally = tmp_path / "disk", tmp_path / "tally"
    disk.mkdir()
    tally.mkdir()
    tests = Path(__file__).parent
    mount = 'mount -t tmpfs -o size=8m tmpfs "$1" && exec "$2" "$3" "$1" "$4"'
    source = str(Path(labnb.__file__).parent.parent)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([source, str(tests)])}
    done = subprocess.run(
        [
            *in_own_mount_namespace(),
            "sh",
            "-c",
            mount,
            "sh",
            str(disk),
            sys.executable,
            str(tests / "full_disk_scenario.py"),
            str(tally),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    kept = [0, 1, 2, 4, 5, 6]
    assert seen["returned"] == kept and seen["cached"] == kept  # before and after the full disk
    assert seen["failed"] == {
        "3": "OSError: its result could not be saved: [Errno 28] No space left on device"
    }
    assert seen["temporaries"] == []  # the partial file is gone
    assert seen["chatty"] == 1 and seen["chatty_cached"]  # its log did not fit; its result did
    assert seen["chatty_log"].startswith("[labnb] the storage's disk was full: only the end")
    assert seen["rerun"] == seen["rerun_cached"] == [0, 1, 2, 3, 4, 5, 6]
    assert seen["temporaries_after"] == []
    runs = {path.name: path.read_text().count("ran") for path in tally.iterdir()}
    assert runs == {"0": 1, "1": 1, "2": 1, "3": 2, "4": 1, "5": 1, "6": 1}  # only what was missing
    assert list(disk.iterdir()) == []  # nothing was written beside the tmpfs
