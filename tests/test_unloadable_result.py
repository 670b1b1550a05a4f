"""A result that pickles in the worker but cannot be loaded by the caller (its
class is in a module only the worker imported) fails that task alone, saying why;
the other results of the run come back."""

from __future__ import annotations

from pathlib import Path

import pytest
from nothing_lost_tasks import ReturnsWorkerOnlyObject
from sample_tasks import Square

import labnb


def test_a_result_only_the_worker_can_load_fails_its_task_alone(tmp_path: Path):
    folder = tmp_path / "only_here"
    folder.mkdir()
    (folder / "worker_only_module.py").write_text("class Thing:\n    pass\n")
    bad = ReturnsWorkerOnlyObject(folder=str(folder))
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2, continue_on_failure=True)
    results = lab.run_tasks([Square(x=3), bad], disable_progress=True)
    assert results == {Square(x=3): 9}
    (error,) = results.failures.values()
    assert error.exc_type == "ModuleNotFoundError"
    assert "cached but cannot be loaded in this process" in error.message
    assert "worker_only_module" in error.message
    strict = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    with pytest.raises(labnb.TaskFailed, match="cannot be loaded"):
        strict.run_tasks([bad], bust_cache=True, disable_progress=True)
