"""Nothing lost, nothing crashes the run (issue 11): every line a task writes
reaches its log, and one odd write fails at most its own task."""

from __future__ import annotations

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
