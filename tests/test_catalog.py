"""The catalog: queries in SQLite, any field name, CLI on URLs, race-free creation,
consistent uncache, housekeeping."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sample_tasks import Collides, Colour, Square, Stamp, WithEnum
from test_cli import labnb_command
from test_migration import open_at_once

import labnb
from labnb.display.widgets import CacheView
from labnb.storage import QueryError

TESTS = Path(__file__).parent


@pytest.fixture
def lab(tmp_path: Path) -> labnb.Lab:
    lab = labnb.Lab(storage=tmp_path / "store", runner="serial")
    lab.run_tasks([Square(x=x) for x in range(10)], disable_progress=True)
    lab.run_tasks(
        [WithEnum(colour=colour, options={"depth": 1}) for colour in Colour],
        disable_progress=True,
    )
    return lab


def ids(rows: list[dict]) -> list[str]:
    return [row["id"] for row in rows]


def test_queries_filter_sort_count_and_page_inside_sqlite(lab: labnb.Lab):
    catalog = lab.catalog
    assert catalog.groups() == {"Square": 10, "WithEnum": 2}
    assert catalog.count(Square, where="params.x > 4") == 5
    assert catalog.count(where="x >= 2 and x < 4 or colour == 'Colour.RED'") == 3
    page = catalog.query(Square, sort="params.x", descending=True, offset=3, limit=3)
    assert [row["params.x"] for row in page] == [6, 5, 4]
    assert catalog.count(where={"params.colour": Colour.BLUE}) == 1
    assert catalog.count(where="x in [1, 2, 99]") == 2
    assert catalog.count(where="x not in [1, 2]") == 8  # WithEnum rows have no x
    assert catalog.count(text="colour.blue") == 1
    # Rows without the sort column come last in both directions, as in pandas.
    both = catalog.query(sort="params.x", descending=False)
    assert [row["type"] for row in both[-2:]] == ["WithEnum", "WithEnum"]
    assert catalog.query(sort="params.x", descending=True)[-1]["type"] == "WithEnum"
    assert catalog.count(where="params.nothing == 3") == 0


@pytest.mark.parametrize(
    "where",
    ["x > y", "__import__('os')", "x.y.z == 1", "lambda: 1", "x ==", "unknown_column == 1"],
)
def test_bad_queries_are_a_clear_error(lab: labnb.Lab, where: str):
    with pytest.raises(QueryError):
        lab.catalog.count(where=where)
    with pytest.raises(QueryError):
        lab.catalog.query(sort="nope")


def test_numbers_compare_only_with_numbers(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    lab.run_tasks([Collides(id=1, type="a"), Collides(id=2, type="b")], disable_progress=True)
    assert lab.catalog.count(where="params.type > 0") == 0  # text is not "greater" than 0
    assert lab.catalog.count(where="params.type > 'a'") == 1


def test_fields_named_like_columns_never_collide(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    task = Collides(id=7, type="svm", started=1.5, size_bytes=3)
    lab.run_tasks([task], disable_progress=True)
    table = lab.cache_table()
    row = table.iloc[0]
    assert row["id"] == labnb.task_id(task) and row["type"] == "Collides"
    assert (row["params.id"], row["params.type"]) == (7, "svm")
    assert (row["params.started"], row["params.size_bytes"]) == (1.5, 3)
    assert row["size_bytes"] > 0 and row["started"].year > 2000
    assert lab.cached_tasks([Collides]) == [task]
    assert lab.catalog.count(where={"params.id": 7}) == 1
    # The browser's Uncache removes the task (not nothing, as 0.1.0 did).
    view = CacheView(lab)
    (shown,) = view.rows
    assert shown["id"] == labnb.task_id(task) and shown["label"].startswith("Collides(id=7")
    assert view._uncache({"ids": [shown["id"]]}) == {"ok": True, "removed": 1, "unknown": []}
    assert not lab.is_cached(task) and view.total_rows == 0
    view.close()


def test_cli_lists_collisions(tmp_path: Path):
    lab = labnb.Lab(storage=tmp_path / "s", runner="serial")
    lab.run_tasks([Collides(id=7, type="svm")], disable_progress=True)
    result = labnb_command("ls", str(tmp_path / "s"))
    assert result.returncode == 0, result.stderr
    assert "params.id" in result.stdout and "svm" in result.stdout


def test_cli_takes_the_same_urls_as_the_lab(tmp_path: Path):
    pytest.importorskip("fsspec")
    url = f"file://{tmp_path}/remote"
    lab = labnb.Lab(storage=url, runner="serial")
    lab.run_tasks([Square(x=x) for x in range(5)], disable_progress=True)
    before = sorted(path.name for path in (tmp_path / "remote").iterdir())
    listed = labnb_command("ls", url)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 6 and "Square" in listed.stdout
    key = labnb.task_id(Square(x=3))
    shown = labnb_command("show", url, key[:6])
    assert shown.returncode == 0 and shown.stdout.startswith(f"Square  {key}")
    removed = labnb_command("rm", url, key, "--yes")
    assert removed.returncode == 0 and "removed 1" in removed.stdout
    assert sorted(path.name for path in (tmp_path / "remote").iterdir()) == before  # no cache.db
    assert labnb.Lab(storage=url, runner="serial").catalog.count() == 4
    missing = labnb_command("ls", f"file://{tmp_path}/nothing-here")
    assert missing.returncode == 2 and "not a labnb storage" in missing.stderr


def test_processes_creating_one_storage_at_once_all_succeed(tmp_path: Path):
    for attempt in range(3):
        path = tmp_path / f"new-{attempt}"
        assert open_at_once(path, 6) == ["0"] * 6


KILLED_UNCACHE = """
import os, sys
sys.path.insert(0, {tests!r})
import labnb
from labnb.storage.blobs import LocalBlobs
from sample_tasks import Square

def die(self, names):
    os._exit(9)  # killed after the index transaction, before any file is deleted

LocalBlobs.remove = die
lab = labnb.Lab(storage={storage!r}, runner="serial")
lab.uncache_tasks([Square(x=x) for x in range(5)])
"""


def test_an_uncache_killed_midway_leaves_entries_and_logs_together(lab: labnb.Lab, tmp_path):
    script = KILLED_UNCACHE.format(tests=str(TESTS), storage=str(tmp_path / "store"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == 9, result.stderr
    for x in range(10):
        cached, logs = lab.is_cached(Square(x=x)), lab.storage.read_logs(labnb.task_id(Square(x=x)))
        assert cached == (x >= 5) and (logs is not None) == cached
    report = lab.gc(older_than=0)
    assert report.files == 5 and report.logs == 0
    files = list((tmp_path / "store" / "results").rglob("*.pkl"))
    assert len(files) == 7  # 5 Squares and 2 WithEnum, all still cached
    assert lab.run_tasks([Square(x=7)], disable_progress=True)[Square(x=7)] == 49


def test_gc_reclaims_what_kills_leave_and_keeps_the_rest(lab: labnb.Lab, tmp_path: Path):
    root = tmp_path / "store"
    writer = lab.storage.writer()
    orphan = writer("ab" * 16, ".pkl", b"x" * 1000)  # written, never committed (a kill)
    leftover = root / "results" / "ab" / f".tmp-{'ab' * 16}-0123"
    leftover.write_bytes(b"partial")
    folder = root / "artifacts" / f"{'ab' * 16}-0123"
    folder.mkdir(parents=True)
    (folder / "plot.png").write_bytes(b"png")
    lab.storage.commit([("cd" * 16, None, "logs of a failed task")])
    assert lab.gc().files == 0  # everything is new: a live run may still commit it
    dry = lab.gc(older_than=0, dry_run=True)
    assert (dry.files, dry.temporary, dry.artifacts, dry.logs) == (1, 1, 1, 1)
    assert (root / "results" / orphan.name).exists()
    report = lab.gc(older_than=0)
    assert (report.files, report.temporary, report.artifacts, report.logs) == (1, 1, 1, 1)
    assert report.bytes == 1000 + 7 + 3 and "freed 1,010 bytes" in str(report)
    assert not (root / "results" / orphan.name).exists() and not leftover.exists()
    assert not folder.exists() and lab.storage.read_logs("cd" * 16) is None
    assert lab.catalog.count() == 12
    assert all(lab.storage.read(entry) for entry in lab.storage.entries())
    cli = labnb_command("gc", str(root), "--older-than", "0")
    assert cli.returncode == 0 and "freed 0 bytes" in cli.stdout


def test_paths_in_a_crafted_index_never_leave_the_storage(lab: labnb.Lab, tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    key = labnb.task_id(Square(x=1))
    db = sqlite3.connect(tmp_path / "store" / "catalog.sqlite")
    db.execute("UPDATE entries SET file = ?, artifacts = ? WHERE task_id = ?",
               ("../../victim.txt", str(tmp_path), key))  # fmt: skip
    db.commit()
    db.close()
    with pytest.warns(labnb.CacheWarning):  # the entry is refused: the task reruns
        assert lab.run_tasks([Square(x=1)], disable_progress=True)[Square(x=1)] == 1
    assert victim.read_text() == "keep me" and tmp_path.is_dir()


def test_the_index_holds_no_pickles(lab: labnb.Lab, tmp_path: Path):
    db = sqlite3.connect(tmp_path / "store" / "catalog.sqlite")
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in db.execute(f"SELECT * FROM {table}"):
            assert not any(isinstance(value, bytes) for value in row), (table, row)
    db.close()


def test_cache_table_reads_every_type_with_its_own_columns(lab: labnb.Lab):
    lab.run_tasks([Stamp(n=1)], disable_progress=True)
    assert list(lab.cache_table([Square]).columns) == [
        "type", "id", "params.x", "started", "finished", "duration_s", "size_bytes", "status",
        "stale",
    ]  # fmt: skip
    table = lab.cache_table()
    assert len(table) == 13 and table["started"].is_monotonic_increasing
    assert str(table["params.x"].dtype) == "Int64"
    assert os.fspath(lab.storage.where).endswith("store")


def test_a_damaged_or_missing_payload_shows_in_the_status_column(lab: labnb.Lab, tmp_path):
    root = tmp_path / "store"
    entries = {entry.task_id: entry for entry in lab.storage.entries()}
    one, two = labnb.task_id(Square(x=1)), labnb.task_id(Square(x=2))
    (root / "results" / entries[one].file).unlink()
    (root / "results" / entries[two].file).write_bytes(b"garbage of another size")
    assert lab.catalog.count(where="status == 'ok'") == 12  # nothing noticed yet
    assert lab.catalog.verify() == {"ok": 10, "missing": 1, "damaged": 1}
    assert lab.catalog.count(where="status != 'ok'") == 2
    table = lab.cache_table([Square]).set_index("id")
    assert (table.loc[one, "status"], table.loc[two, "status"]) == ("missing", "damaged")
    cli = labnb_command("verify", str(root))
    assert cli.returncode == 1 and cli.stdout.strip() == "10 ok, 1 missing, 1 damaged"
    with pytest.warns(labnb.CacheWarning):  # the tasks run again and are ok after
        lab.run_tasks([Square(x=1), Square(x=2)], disable_progress=True)
    assert lab.catalog.count(where="status == 'ok'") == 12
    assert labnb_command("verify", str(root), "--checksums").returncode == 0


def test_a_read_that_finds_damage_records_it(lab: labnb.Lab, tmp_path):
    entry = lab.storage.lookup(labnb.task_id(Square(x=3)))
    path = tmp_path / "store" / "results" / entry.file
    path.write_bytes(b"x" * entry.size)  # same size: only the checksum tells
    assert lab.catalog.verify() == {"ok": 12, "missing": 0, "damaged": 0}
    with pytest.raises(labnb.storage.CorruptEntry, match="checksum"):
        lab.storage.read(entry)
    assert lab.storage.lookup(entry.task_id).status == "damaged"


SHARED_SWEEP = """
import sys
sys.path.insert(0, {tests!r})
import labnb
from sample_tasks import Stamp

lab = labnb.Lab(storage={storage!r}, runner="thread", max_workers=4)
for round in range(4):  # the same tasks as the other process, recomputed each round
    lab.run_tasks([Stamp(n=n) for n in range(25)], bust_cache=True, disable_progress=True)
"""


@pytest.mark.parametrize("kind", ["local", "file"])
def test_processes_sharing_a_storage_leave_only_what_gc_reclaims(tmp_path: Path, kind: str):
    if kind == "file":
        pytest.importorskip("fsspec")
    root = tmp_path / "shared"
    storage = str(root) if kind == "local" else f"file://{root}"
    script = SHARED_SWEEP.format(tests=str(TESTS), storage=storage)
    running = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
    assert [process.wait(timeout=180) for process in running] == [0, 0]
    lab = labnb.Lab(storage=storage, runner="serial")

    def files() -> set[str]:
        return {
            str(path.relative_to(root / "results"))
            for path in (root / "results").rglob("*")
            if path.is_file()
        }

    referenced = {entry.file for entry in lab.storage.entries()}
    assert len(referenced) == 25 and referenced <= files()
    if kind == "local":  # commits are transactions: nothing leaks at all
        assert files() == referenced
    lab.gc(older_than=0)  # an object store has no transactions: gc reclaims the rest
    assert files() == referenced
    assert lab.catalog.verify(checksums=True) == {"ok": 25, "missing": 0, "damaged": 0}


def test_columns_come_grouped_by_task_type_in_field_order(lab: labnb.Lab):
    lab.run_tasks([Collides(id=1, type="a")], disable_progress=True)
    assert lab.catalog.columns(prefix="params.") == [
        "params.id", "params.type", "params.started", "params.size_bytes",  # Collides
        "params.x",  # Square
        "params.colour", "params.options",  # WithEnum
    ]  # fmt: skip
