"""A storage written by labtech 1.1.0 is imported, and its results load in labnb without rerunning.

labtech itself writes the storage (in a subprocess, as a user's script would,
with its task classes in ``__main__``); the labnb task types below have the
same names and fields, and fail if they are ever run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sample_tasks import Colour

import labnb
from labnb.cli import main

TESTS = Path(__file__).parent

WRITER = """
    import json
    import labtech
    from labtech.cache import BaseCache
    from sample_tasks import Colour


    class JsonCache(BaseCache):
        KEY_PREFIX = "json__"

        def save_result(self, storage, task, result):
            with storage.file_handle(task.cache_key, "data.json", mode="w") as file:
                json.dump(result, file)

        def load_result(self, storage, task):
            with storage.file_handle(task.cache_key, "data.json", mode="r") as file:
                return json.load(file)


    @labtech.task
    class LtSquare:
        x: int
        colour: Colour = Colour.RED

        def run(self):
            return self.x * self.x


    @labtech.task(code_version="v3")
    class LtTotal:
        parts: list
        weights: dict

        def run(self):
            return sum(part.result * self.weights[part.colour.value] for part in self.parts)


    @labtech.task(cache=JsonCache())
    class LtJson:
        n: int

        def run(self):
            return {"n": self.n}


    lab = labtech.Lab(storage="labtech_storage", runner_backend="serial")
    parts = [LtSquare(x=2), LtSquare(x=3, colour=Colour.BLUE)]
    lab.run_tasks([LtTotal(parts=parts, weights={"red": 1.0, "blue": 10.0}), LtJson(n=1)])
"""


@labnb.task
class LtSquare:
    x: int
    colour: Colour = Colour.RED

    def run(self):
        raise AssertionError("an imported result was computed again")


@labnb.task(code_version="v3")
class LtTotal:
    parts: list
    weights: dict

    def run(self):
        raise AssertionError("an imported result was computed again")


@pytest.fixture(scope="module")
def labtech_storage(tmp_path_factory) -> Path:
    pytest.importorskip("labtech")
    folder = tmp_path_factory.mktemp("labtech")
    (folder / "writer.py").write_text(textwrap.dedent(WRITER))
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    subprocess.run(
        [sys.executable, "writer.py"], cwd=folder, env=env, check=True, capture_output=True
    )
    return folder / "labtech_storage"


def snapshot(folder: Path) -> dict[str, tuple[int, float]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime)
        for path in folder.rglob("*")
    }


def test_opening_a_labtech_storage_says_how_to_import_it(labtech_storage):
    with pytest.raises(labnb.StorageError, match="labnb import-labtech"):
        labnb.Lab(storage=labtech_storage)


def test_imported_results_are_found_and_loaded_without_rerunning(labtech_storage, tmp_path, capsys):
    before = snapshot(labtech_storage)
    destination = tmp_path / "labnb_storage"
    assert main(["import-labtech", str(labtech_storage), str(destination)]) == 0
    output = capsys.readouterr().out
    assert output.startswith("imported 3 result(s), 0 already there, 1 skipped")
    assert "its cache is 'JsonCache'" in output
    assert snapshot(labtech_storage) == before  # the labtech storage is only read

    lab = labnb.Lab(storage=destination, runner="serial")
    squares = sorted(lab.cached_tasks([LtSquare]))
    assert squares == [LtSquare(x=2), LtSquare(x=3, colour=Colour.BLUE)]
    (total,) = lab.cached_tasks([LtTotal])
    assert total == LtTotal(parts=squares, weights={"red": 1.0, "blue": 10.0})
    assert lab.is_cached(total)
    results = lab.run_tasks([total, *squares])  # LtSquare.run and LtTotal.run would raise
    assert results == {total: 4 + 90, squares[0]: 4, squares[1]: 9}
    assert total.result_meta.start is not None and total.result_meta.duration is not None


def test_importing_again_adds_only_what_is_new(labtech_storage, tmp_path, capsys):
    destination = str(tmp_path / "again")
    main(["import-labtech", str(labtech_storage), destination])
    capsys.readouterr()
    assert main(["import-labtech", str(labtech_storage), destination]) == 0
    assert capsys.readouterr().out.startswith("imported 0 result(s), 3 already there, 1 skipped")


def test_a_directory_that_is_not_a_labtech_storage_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["import-labtech", str(tmp_path / "empty"), str(tmp_path / "dest")]) == 2
    assert "is not a labtech storage" in capsys.readouterr().err
    assert not (tmp_path / "dest").exists()


def test_class_paths_split_at_the_module():
    from labnb.storage.labtech_import import split_class_path

    assert split_class_path("sample_tasks.Colour") == ("sample_tasks", "Colour")
    assert split_class_path("__main__.Outer.Inner") == ("__main__", "Outer.Inner")
    assert split_class_path("labnb.storage.entry.IndexEntry") == (
        "labnb.storage.entry",
        "IndexEntry",
    )
    assert split_class_path("gone_notebook_module.Task") == ("gone_notebook_module", "Task")
