"""``@labnb.task(timeout=...)``: a task over its time limit is stopped and fails
alone, with a message that says so; the others run on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from nothing_lost_tasks import LimitedNap

import labnb


def test_a_task_over_its_time_limit_fails_alone(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2, continue_on_failure=True)
    started = time.monotonic()
    results = lab.run_tasks(
        [LimitedNap(seconds=0.1), LimitedNap(seconds=60)], disable_progress=True
    )
    assert time.monotonic() - started < 30  # stopped, not waited for
    assert results == {LimitedNap(seconds=0.1): 0.1}
    (error,) = results.failures.values()
    assert error.exc_type == "TimeoutError"
    assert "longer than its time limit of 1 s" in error.message
    assert not lab.is_cached(LimitedNap(seconds=60))


def test_a_time_limit_must_be_a_positive_number():
    with pytest.raises(ValueError, match="timeout must be a positive number"):

        @labnb.task(timeout=0)
        class Never:
            def run(self) -> None:
                return None
