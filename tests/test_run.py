"""Background runs (``lab.submit``) and what a run reports while it goes."""

from __future__ import annotations

import time

import pytest
from sample_tasks import Counts, Fails, SleepsLong, Square, Stamp

import labnb


def test_submit_returns_at_once_and_results_land_in_the_cache(make_lab):
    lab = make_lab()
    started = time.monotonic()
    run = lab.submit([Stamp(n=i, seconds=0.3) for i in range(3)])
    assert time.monotonic() - started < 0.3
    assert not run.done
    assert run.wait(timeout=30)
    assert run.done and len(run.results) == 3 and run.failures == {}
    assert all(lab.is_cached(Stamp(n=i, seconds=0.3)) for i in range(3))
    assert Stamp(n=0, seconds=0.3) in run.results
    assert "done" in repr(run)


def test_results_so_far_and_failures(make_lab):
    lab = make_lab(continue_on_failure=True)
    run = lab.submit([Square(x=2), Fails(n=1)])
    run.wait(30)
    assert run.results == {Square(x=2): 4}
    assert run.failures[Fails(n=1)].exc_type == "ValueError"
    assert run.state.outcome == "failed"


@pytest.mark.parametrize("runner", ["process"])
def test_cancel_stops_running_tasks_and_keeps_finished_ones(make_lab, tmp_path):
    lab = make_lab(context={"pids": str(tmp_path)})
    lab.run_tasks([Square(x=1)])
    run = lab.submit([SleepsLong(n=1), SleepsLong(n=2), Square(x=3)])
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("*.pid"))) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    run.cancel()
    assert run.wait(timeout=10)
    assert time.monotonic() - started < 5
    assert run.state.outcome == "cancelled"
    assert not lab.is_cached(SleepsLong(n=1)) and lab.is_cached(Square(x=1))
    assert "[labnb] cancelled" in lab.logs(SleepsLong(n=1))


def test_wait_times_out(make_lab):
    run = make_lab().submit([Stamp(n=9, seconds=1.0)])
    assert run.wait(timeout=0.05) is False
    assert run.wait(timeout=30) is True


def test_cycle_is_refused_by_submit_before_anything_runs(make_lab):
    from sample_tasks import Total

    first = Total(parts=[Square(x=1)])
    object.__setattr__(first, "parts", (first,))
    with pytest.raises(labnb.CycleError):
        make_lab().submit([first])


def test_progress_reaches_the_run_state(make_lab, runner):
    lab = make_lab()
    run = lab.submit([Counts(n=30, pause=0.02)])
    seen = []
    while not run.done:
        record = run.state.records[labnb.task_id(Counts(n=30, pause=0.02))]
        if record.progress is not None:
            seen.append(record.progress)
        time.sleep(0.02)
    run.wait()
    assert run.results == {Counts(n=30, pause=0.02): sum(range(30))}
    # The serial runner hands over a task's events when it ends: nothing to see live.
    assert seen or runner == "serial"
    assert all(total == 30 and desc == "counting" for _, total, desc in seen)
    assert run.state.records[labnb.task_id(Counts(n=30, pause=0.02))].progress == (
        30,
        30,
        "counting",
    )


def test_progress_outside_a_run_is_the_iterable_itself():
    items = [1, 2, 3]
    assert labnb.progress(items) is items
    assert Counts(n=4).run() == 6


def test_a_new_run_after_a_cancelled_one_on_the_thread_runner(tmp_path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="thread", max_workers=2)
    first = lab.submit(
        [Counts(n=40, pause=0.02) for _ in range(1)] + [Stamp(n=i, seconds=0.4) for i in range(4)]
    )
    time.sleep(0.2)
    first.cancel()
    assert first.wait(10)
    second = lab.submit([Counts(n=5, pause=0.01), Square(x=4)])
    assert second.wait(30)
    assert second.results == {Counts(n=5, pause=0.01): 10, Square(x=4): 16}
