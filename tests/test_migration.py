"""Storages written by labnb 0.1.0 (tests/fixtures) open, migrate once, and lose nothing."""

from __future__ import annotations

import json
import pickle
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sample_tasks import Array, Collides, Colour, Fails, Square, Total, WithEnum
from tracking_tasks import Prepare, Train

import labnb
from labnb.storage.schema import SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures"
SQUARES = [Square(x=x) for x in range(3)]
CACHED = [
    *SQUARES,
    Total(parts=SQUARES),
    Collides(id=7, type="svm", started=1.5, size_bytes=3),
    WithEnum(colour=Colour.BLUE, options={"depth": 2, "tags": ["x"]}),
    Array(n=4),
    Prepare(n=4),
    Train(c=0.5, data=Prepare(n=4)),
]


@pytest.fixture
def old_storage(tmp_path: Path) -> Path:
    copy = tmp_path / "old"
    shutil.copytree(FIXTURES / "storage-0.1.0", copy)
    return copy


def old_started(path: Path) -> dict[str, float]:
    """Start times as 0.1.0 recorded them, read straight from its diskcache."""
    db = sqlite3.connect(path / "index" / "cache.db")
    rows = db.execute("SELECT key, value FROM Cache WHERE key != 'labnb:generation'").fetchall()
    db.close()
    return {key: pickle.loads(value)["started"] for key, value in rows}


def test_a_0_1_0_storage_is_migrated_in_place_without_loss(old_storage: Path):
    started = old_started(old_storage)
    lab = labnb.Lab(storage=old_storage, runner="serial")
    assert json.loads((old_storage / "labnb-storage.json").read_text()) == {
        "labnb_storage_version": 2
    }
    assert not (old_storage / "index").exists() and not (old_storage / "logs").exists()
    assert all(lab.is_cached(task) for task in CACHED)
    table = lab.cache_table()
    assert len(table) == len(CACHED) == len(started)
    assert {row.id: row.started.timestamp() for row in table.itertuples()} == pytest.approx(started)
    results = lab.run_tasks(CACHED, disable_progress=True)  # all loaded: nothing reruns
    assert [results[task] for task in SQUARES] == [0, 1, 4]
    assert results[CACHED[4]] == "svm-7" and results[Array(n=4)].tolist() == [0, 1, 2, 3]
    assert len(lab.cache_table()) == len(CACHED)  # no entry was rewritten
    assert {row.id: row.started.timestamp() for row in lab.cache_table().itertuples()} == (
        pytest.approx(started)
    )
    assert "about to fail 1" in lab.logs(Fails(n=1))  # a failed task's logs are kept too
    assert "ValueError" in lab.logs(Fails(n=1))
    train = Train(c=0.5, data=Prepare(n=4))
    logged = lab.logged(train)
    assert logged["params"] == {"solver": "lbfgs"} and logged["features"] == ["x"]
    assert logged["artifacts"]["report.txt"].read_text() == "C=0.5\n"
    assert lab.load_model(train, "model").predict([[3.0]]).tolist() == [1]
    assert table.set_index("type").loc["Train", "metrics.accuracy"] == 0.75
    assert sorted(lab.cached_tasks([Square, WithEnum]), key=str) == sorted(
        [*SQUARES, CACHED[5]], key=str
    )


OPEN_AT = """
import sys, time
import labnb
start = float(sys.argv[2])
while time.time() < start:
    pass
print(labnb.Lab(storage=sys.argv[1], runner="serial").catalog.count())
"""


def open_at_once(path: Path, processes: int) -> list[str]:
    """Open one storage from several processes at the same moment; what each printed."""
    start = str(time.time() + 2.0)
    running = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, str(path), start],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(processes)
    ]
    return [process.communicate(timeout=120)[0].strip() for process in running]


def test_processes_opening_a_0_1_0_storage_at_once_migrate_it_once(old_storage: Path):
    assert open_at_once(old_storage, 4) == [str(len(CACHED))] * 4
    assert labnb.Lab(storage=old_storage, runner="serial").catalog.count() == len(CACHED)
    assert not list(old_storage.glob(".catalog.sqlite.migrating-*"))


def test_a_0_1_0_fsspec_storage_reads_as_it_is(tmp_path: Path):
    pytest.importorskip("fsspec")
    copy = tmp_path / "old-fsspec"
    shutil.copytree(FIXTURES / "storage-0.1.0-fsspec", copy)
    lab = labnb.Lab(storage=f"file://{copy}", runner="serial")
    assert lab.is_cached(Square(x=5)) and lab.is_cached(Collides(id=1, type="a"))
    assert lab.run_task(Square(x=5), disable_progress=True) == 25
    table = lab.cache_table()
    assert sorted(table["type"]) == ["Collides", "Square"]
    assert json.loads((copy / "labnb-storage.json").read_text())["labnb_storage_version"] == 2


class Boom:
    def __reduce__(self):
        return (print, ("code ran while migrating",))


def test_migration_never_unpickles_code(old_storage: Path, capsys):
    db = sqlite3.connect(old_storage / "index" / "cache.db")
    db.execute(
        "UPDATE Cache SET value = ? WHERE key = ?",
        (pickle.dumps({"type": "Square", "evil": Boom()}), labnb.task_id(Square(x=0))),
    )
    db.commit()
    db.close()
    with pytest.raises(labnb.StorageError, match=r"refusing builtins\.print"):
        labnb.Lab(storage=old_storage, runner="serial")
    assert "code ran" not in capsys.readouterr().out
    assert (old_storage / "index").exists() and not (old_storage / "catalog.sqlite").exists()


def test_a_storage_from_a_newer_labnb_is_refused(tmp_path: Path):
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "labnb-storage.json").write_text('{"labnb_storage_version": 99}')
    with pytest.raises(labnb.StorageError, match="newer labnb"):
        labnb.Lab(storage=tmp_path / "new", runner="serial")


SCHEMA3 = Path(__file__).parent / "fixtures" / "storage-schema3"
"""A storage the previous release wrote (catalog schema 3: run records without live
state), by its own code: three Squares cached, a failed Fails, one run."""


def test_a_schema_3_storage_is_upgraded_in_place_without_loss(tmp_path: Path):
    root = tmp_path / "store"
    shutil.copytree(SCHEMA3, root)
    lab = labnb.Lab(storage=root, runner="serial", continue_on_failure=True)
    (old_run,) = lab.runs()
    assert old_run.status == "failed" and old_run.counts() == {"done": 3, "failed": 1}
    results = lab.run_tasks([Square(x=i) for i in range(3)], disable_progress=True)
    assert [results[Square(x=i)] for i in range(3)] == [0, 1, 4]
    assert len(lab.runs()) == 1  # all loaded: nothing ran
    assert lab.run_tasks([Square(x=5)], disable_progress=True) == {Square(x=5): 25}
    newest = lab.runs()[-1]
    assert newest.status == "done" and newest.counts() == {"done": 1}


SCHEMA4 = Path(__file__).parent / "fixtures" / "storage-schema4"
"""A storage written by catalog schema 4 (no config files): three Squares cached, a
failed Fails, one run."""


def test_a_schema_4_storage_gains_the_config_table_and_columns_and_loses_nothing(tmp_path: Path):
    root = tmp_path / "store"
    shutil.copytree(SCHEMA4, root)
    with sqlite3.connect(root / "catalog.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (4,)
        assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'configs'").fetchall()
    lab = labnb.Lab(storage=root, runner="serial", continue_on_failure=True)
    (old_run,) = lab.runs()
    assert old_run.status == "failed" and old_run.counts() == {"done": 3, "failed": 1}
    assert old_run.config is None and lab.config_of(Square(x=1)) is None
    results = lab.run_tasks([Square(x=i) for i in range(3)], disable_progress=True)
    assert [results[Square(x=i)] for i in range(3)] == [0, 1, 4]
    assert len(lab.runs()) == 1  # all loaded: nothing ran
    swept = labnb.sweep(Square, {"x": [1, 7]})
    assert lab.run_tasks(swept, disable_progress=True) == {Square(x=1): 1, Square(x=7): 49}
    assert lab.config_of(Square(x=7)).text == '{\n  "x": [\n    1,\n    7\n  ]\n}'
    assert lab.config_of(Square(x=1)) is None  # loaded, not computed, by that run
    assert lab.runs()[-1].config == lab.config_of(Square(x=7))
    with sqlite3.connect(root / "catalog.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("SELECT count(*) FROM configs").fetchone() == (1,)
