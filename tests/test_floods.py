"""A task that floods its output (issue 11): every line reaches its log, which
goes to a file as it arrives, while what the run process records live and what
displays hold is bounded."""

from __future__ import annotations

import os
import sqlite3

import pytest
from nothing_lost_tasks import Floods

import labnb
from labnb.engine.live_output import OUTPUT_KEPT, LiveOutput
from labnb.engine.planning import Plan
from labnb.engine.state import RunState
from labnb.model.tasks import task_id

LINES = 200_000  # about 2.3 MB


def expected_log(n: int) -> str:
    lines = [f"line {line}\n" for line in range(n)]
    lines.insert(n // 2 + 1, "not utf-8 \\xff\n")
    return "".join(lines)


def test_a_flood_is_logged_whole_in_a_file_and_recorded_live_in_part(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=1)
    assert lab.run_task(Floods(n=LINES), disable_progress=True) == LINES
    assert lab.logs(Floods(n=LINES)) == expected_log(LINES)
    key = task_id(Floods(n=LINES))
    with sqlite3.connect(tmp_path / "s" / "catalog.sqlite") as db:
        (row_text, file) = db.execute(
            "SELECT text, file FROM logs WHERE task_id = ?", (key,)
        ).fetchone()
        (live,) = db.execute(
            "SELECT group_concat(text, '') FROM run_output WHERE task_id = ?", (key,)
        ).fetchone()
    assert row_text == "" and (tmp_path / "s" / "logs" / file).is_file()
    # Followers got the end of each batch, and how many lines they were not sent.
    assert len(live) < len(expected_log(LINES)) / 2
    assert "more lines (the task's log has every line)" in live
    assert live.endswith(f"line {LINES - 1}\n")
    # Run again: the new log replaces the old one, file and all; uncached: gone.
    lab.run_task(Floods(n=LINES), bust_cache=True, disable_progress=True)
    assert [path.name for path in (tmp_path / "s" / "logs").rglob("*.log")] != [file]
    assert len(list((tmp_path / "s" / "logs").rglob("*.log"))) == 1
    lab.uncache_tasks([Floods(n=LINES)])
    assert list((tmp_path / "s" / "logs").rglob("*.log")) == []
    with pytest.raises(LookupError):
        lab.logs(Floods(n=LINES))


def test_a_small_log_stays_a_row_of_the_index(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=1)
    lab.run_task(Floods(n=10), disable_progress=True)
    assert lab.logs(Floods(n=10)) == expected_log(10)
    assert not (tmp_path / "s" / "logs").exists()


def test_what_displays_hold_of_a_flood_is_its_end():
    task = Floods(n=1)
    plan = Plan()
    plan.tasks[task_id(task)] = task
    plan.loaded[task_id(task)] = None  # type: ignore[assignment]
    state = RunState(plan)
    for chunk in range(100):
        state.output(task_id(task), f"{chunk:09}\n" * 10_000)  # 100,000 characters each
    held = "".join(state.records[task_id(task)].output)
    assert len(held) <= 2 * OUTPUT_KEPT + 100
    assert held.endswith(f"{99:09}\n")


def test_live_output_keeps_each_tasks_last_lines_and_counts_the_rest():
    live = LiveOutput()
    for line in range(100_000):
        live.add("a", f"{line}\n")
    live.add("b", "short\n")
    (a, text_a), (b, text_b) = live.take()
    assert (a, b, text_b) == ("a", "b", "short\n")
    note, _, rest = text_a.partition("\n")
    kept = rest.splitlines()
    assert kept[-1] == "99999" and int(kept[0]) == 100_000 - len(kept)
    assert note == f"[labnb] … {100_000 - len(kept)} more lines (the task's log has every line)"
    assert live.take() == []


def test_gc_removes_log_files_no_log_names(tmp_path):
    """A run killed while its task printed leaves its log file behind."""
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=1)
    lab.run_task(Floods(n=LINES), disable_progress=True)
    (kept,) = (tmp_path / "s" / "logs").rglob("*.log")
    stray = kept.with_name("0" * 32 + "-dead.log")
    stray.write_text("a killed run's log\n")
    for path in (kept, stray):
        os.utime(path, (0, 0))
    assert lab.gc(dry_run=True).logs == 1 and stray.exists()
    assert lab.gc().logs == 1
    assert list((tmp_path / "s" / "logs").rglob("*.log")) == [kept]
    assert lab.logs(Floods(n=LINES)) == expected_log(LINES)
