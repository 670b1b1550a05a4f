"""The storage contract: every backend keeps the same promises.

Run alike against ``LocalStorage`` (a directory with ``catalog.sqlite``) and
``FsspecStorage`` on fsspec's in-memory and local filesystems and on a real S3
server (moto), and, for the promises that do not look at files, against a
user's labtech-style ``Storage`` subclass (``key_stores``). Entries appear
only once their payload is complete, damaged payloads are ``CorruptEntry``,
replaced and removed payloads are deleted, a second instance on the same
location (another process, another machine) sees everything the first one
committed, the catalog answers the same queries the same way, housekeeping
removes only what nothing references, and names read from an index never lead
outside the storage.

Only Ray-free parts: the Lab tests use the process, thread and serial runners.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from key_stores import DirectoryStorage
from ray_tasks import LogsArtifact
from s3_server import moto_s3
from sample_tasks import Chatty, Square, Tally, Total

import labnb
from labnb.storage import (
    CorruptEntry,
    FsspecStorage,
    IndexEntry,
    LocalStorage,
    QueryError,
    Storage,
    StoredFile,
    Tracking,
)

BACKENDS = ["local", "memory", "file", "s3"]
FSSPEC_BACKENDS = ["memory", "file", "s3"]
KEYED = "labtech-style"
"""A user's ``Storage`` subclass of labtech's four methods (``key_stores.DirectoryStorage``),
for the promises that do not look at a storage's files."""
LAYOUT_FREE = [*BACKENDS, KEYED]
MakeStorage = Callable[..., Storage]

TASK = "ab" * 16
OTHER = "cd" * 16


def on(*backends: str) -> pytest.MarkDecorator:
    """Run a test on these backends only."""
    return pytest.mark.parametrize("backend", backends, indirect=True)


# --- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_options() -> Iterator[dict[str, Any]]:
    with moto_s3() as options:
        yield options


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def location(backend: str, tmp_path: Path, request: pytest.FixtureRequest):
    """(path or URL, storage options) of a fresh, empty location on ``backend``.

    Each location is ``<parent>/store`` with a parent of its own, so a test can
    put files just outside the storage.
    """
    name = uuid.uuid4().hex[:12]
    if backend in ("local", KEYED):
        yield tmp_path / "store", {}
    elif backend == "memory":
        pytest.importorskip("fsspec")
        yield f"memory://labnb-{name}/store", {}
        import fsspec

        fs = fsspec.filesystem("memory")
        if fs.exists(f"/labnb-{name}"):
            fs.rm(f"/labnb-{name}", recursive=True)
    elif backend == "file":
        pytest.importorskip("fsspec")
        yield f"file://{tmp_path}/store", {}
    else:
        yield f"s3://labnb-{name}/some/store", request.getfixturevalue("s3_options")


@pytest.fixture
def make_storage(location, backend: str) -> MakeStorage:
    """A new storage instance on the location: each call is another process's view."""
    where, options = location

    def make(**extra: Any) -> Storage:
        if backend == "local":
            return LocalStorage(where)
        if backend == KEYED:
            return DirectoryStorage(where)
        return FsspecStorage(where, **options, **extra)

    return make


@dataclass(frozen=True)
class Files:
    """A storage's files reached around labnb: to damage, craft or inspect them."""

    fs: Any
    """The fsspec filesystem; None for a local storage (plain ``os`` calls)."""
    root: str

    @classmethod
    def of(cls, storage: Storage) -> Files:
        if isinstance(storage, FsspecStorage):
            return cls(storage.fs, storage.root)
        assert isinstance(storage, LocalStorage)
        return cls(None, str(storage.path))

    @property
    def parent(self) -> Files:
        return Files(self.fs, self.root.rpartition("/")[0])

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def write(self, relative: str, data: bytes) -> None:
        if self.fs is None:
            path = Path(self.path(relative))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.fs.makedirs(self.path(relative).rpartition("/")[0], exist_ok=True)
            self.fs.pipe_file(self.path(relative), data)

    def delete(self, relative: str) -> None:
        if self.fs is None:
            os.unlink(self.path(relative))
        else:
            self.fs.rm_file(self.path(relative))

    def exists(self, relative: str) -> bool:
        if self.fs is None:
            return os.path.exists(self.path(relative))
        self.fs.invalidate_cache()
        return bool(self.fs.exists(self.path(relative)))

    def names(self) -> set[str]:
        """Every file under the root, relative to it."""
        if self.fs is None:
            return {
                os.path.relpath(os.path.join(folder, name), self.root)
                for folder, _, files in os.walk(self.root)
                for name in files
            }
        self.fs.invalidate_cache()
        start = len(self.fs._strip_protocol(self.root)) + 1
        return {self.fs._strip_protocol(path)[start:] for path in self.fs.find(self.root)}


def entry_for(stored: StoredFile, task_id: str = TASK, **extra: Any) -> IndexEntry:
    fields: dict[str, Any] = {
        "task_id": task_id,
        "type": "Square",
        "module": "sample_tasks",
        "code_version": None,
        "params": {"x": 1},
        "format": "pickle",
        "file": stored.name,
        "size": stored.size,
        "checksum": stored.checksum,
        "started": 1.0,
        "finished": 2.0,
        **extra,
    }
    return IndexEntry(**fields)


# --- the Storage interface -------------------------------------------------------


@on(*LAYOUT_FREE)
def test_a_committed_entry_is_found_read_and_listed_with_its_logs(make_storage: MakeStorage):
    storage = make_storage()
    before = storage.generation()
    stored = storage.writer()(TASK, ".pkl", b"payload bytes")
    assert storage.lookup(TASK) is None  # a written payload is not an entry yet
    entry = entry_for(stored)
    storage.commit([(TASK, entry, "the logs"), (OTHER, None, "failed: no entry")])
    assert storage.lookup(TASK) == entry
    assert storage.read(entry) == b"payload bytes"
    assert storage.read_logs(TASK) == "the logs"
    assert storage.lookup(OTHER) is None and storage.read_logs(OTHER) == "failed: no entry"
    assert storage.read_logs("ef" * 16) is None
    assert list(storage.entries()) == [entry]
    assert storage.generation() != before
    # Another instance on the same location (another process or machine) sees it all.
    other = make_storage()
    assert other.lookup(TASK) == entry and other.read(entry) == b"payload bytes"
    assert other.read_logs(TASK) == "the logs" and list(other.entries()) == [entry]
    assert other.generation() == storage.generation()


@on(*LAYOUT_FREE)
def test_many_lookups_in_one_call_find_what_single_lookups_find(make_storage: MakeStorage):
    storage = make_storage()
    stored = storage.writer()(TASK, ".pkl", b"payload bytes")
    storage.commit([(TASK, entry_for(stored), "")])
    other = make_storage(listing_seconds=0) if isinstance(storage, FsspecStorage) else storage
    for reader in (storage, other):
        assert reader.lookup_many([TASK, OTHER, TASK]) == {TASK: reader.lookup(TASK)}
        assert reader.lookup_many([]) == {}


@on(*LAYOUT_FREE)
def test_committing_nothing_changes_nothing(make_storage: MakeStorage):
    storage = make_storage()
    before = storage.generation()
    storage.commit([])
    assert storage.generation() == before and list(storage.entries()) == []


def test_the_payload_writer_survives_pickling(make_storage: MakeStorage):
    storage = make_storage()
    writer = pickle.loads(pickle.dumps(storage.writer()))
    stored = writer(TASK, ".npy", b"from a worker")
    assert stored.name.startswith(f"{TASK[:2]}/{TASK}-") and stored.name.endswith(".npy")
    storage.commit([(TASK, entry_for(stored), "")])
    assert make_storage().read(entry_for(stored)) == b"from a worker"


@on(*LAYOUT_FREE)
def test_two_writes_of_one_task_never_share_a_file(make_storage: MakeStorage):
    writer = make_storage().writer()
    names = {writer(TASK, ".pkl", b"same").name for _ in range(5)}
    assert len(names) == 5


def test_a_recommit_deletes_the_replaced_payload(make_storage: MakeStorage):
    storage = make_storage()
    first = storage.writer()(TASK, ".pkl", b"first")
    storage.commit([(TASK, entry_for(first), "")])
    second = storage.writer()(TASK, ".pkl", b"second")
    assert second.name != first.name
    storage.commit([(TASK, entry_for(second), "")])
    assert storage.read(storage.lookup(TASK)) == b"second"
    assert make_storage().read(make_storage().lookup(TASK)) == b"second"
    with pytest.raises(CorruptEntry, match="missing"):
        storage.read(entry_for(first))
    assert not Files.of(storage).exists(f"results/{first.name}")


def test_remove_forgets_the_entry_its_logs_payload_and_artifacts(make_storage: MakeStorage):
    storage = make_storage()
    files = Files.of(storage)
    stored = storage.writer()(TASK, ".pkl", b"payload")
    files.write(f"artifacts/{TASK}-kept/note.txt", b"kept")
    storage.commit([(TASK, entry_for(stored, artifacts=f"{TASK}-kept"), "logs")])
    before = storage.generation()
    assert storage.remove([TASK, OTHER, TASK]) == 1
    assert storage.lookup(TASK) is None and storage.read_logs(TASK) is None
    assert list(storage.entries()) == []
    assert storage.generation() != before
    with pytest.raises(CorruptEntry):
        storage.read(entry_for(stored))
    assert not files.exists(f"results/{stored.name}")
    assert not files.exists(f"artifacts/{TASK}-kept/note.txt")
    other = make_storage()
    assert other.lookup(TASK) is None and other.read_logs(TASK) is None
    assert storage.remove([]) == 0


@pytest.mark.parametrize("damage", ["truncate", "garble", "delete"])
def test_a_damaged_payload_is_a_corrupt_entry(make_storage: MakeStorage, damage: str):
    storage = make_storage()
    stored = storage.writer()(TASK, ".pkl", b"0123456789")
    entry = entry_for(stored)
    storage.commit([(TASK, entry, "")])
    files = Files.of(storage)
    relative = f"results/{stored.name}"
    if damage == "truncate":
        files.write(relative, b"01234")
        match = "truncated"
    elif damage == "garble":
        files.write(relative, b"x" * 10)
        match = "checksum"
    else:
        files.delete(relative)
        match = "missing"
    with pytest.raises(CorruptEntry, match=match):
        storage.read(entry)
    with pytest.raises(CorruptEntry, match=match):
        make_storage().read(entry)


@on(*FSSPEC_BACKENDS)
def test_a_listing_makes_lookups_cheap_and_goes_stale_briefly(make_storage: MakeStorage):
    reader = make_storage(listing_seconds=0.3)
    assert reader.lookup(TASK) is None  # lists index/ once
    writer = make_storage()
    stored = writer.writer()(TASK, ".pkl", b"new")
    writer.commit([(TASK, entry_for(stored), "")])
    assert make_storage(listing_seconds=0).lookup(TASK) is not None  # always reads
    time.sleep(0.35)
    assert reader.lookup(TASK) is not None  # the listing was refreshed


def test_a_non_empty_location_that_is_not_a_storage_is_refused(
    location: tuple[Any, dict[str, Any]], backend: str, tmp_path: Path
):
    where, options = location
    if backend == "local":
        Path(where).mkdir()
        (Path(where) / "notes.txt").write_text("mine")
        with pytest.raises(labnb.StorageError, match="not a labnb storage"):
            LocalStorage(where)
        with pytest.raises(labnb.StorageError, match="not a directory"):
            LocalStorage(Path(where) / "notes.txt")
        with pytest.raises(labnb.StorageError, match="cannot use"):
            LocalStorage(Path(where) / "notes.txt" / "below")
        return
    import fsspec

    fs, root = fsspec.core.url_to_fs(where, **options)
    fs.makedirs(root, exist_ok=True)  # creates the bucket on S3
    fs.pipe_file(f"{root}/notes.txt", b"mine")
    with pytest.raises(labnb.StorageError, match="not a labnb storage"):
        FsspecStorage(where, **options)
    with pytest.raises(labnb.StorageError, match="not a directory"):
        FsspecStorage(where + "/notes.txt", **options)
    with pytest.raises(labnb.StorageError, match="cannot use"):
        FsspecStorage("nosuchprotocol://x")


@on("local", "file")
def test_an_interrupted_index_write_leaves_the_old_entry(
    make_storage: MakeStorage, backend: str, monkeypatch: pytest.MonkeyPatch
):
    """On filesystems (an object store writes each object with one atomic PUT)."""
    storage = make_storage()
    old = storage.writer()(TASK, ".pkl", b"old")
    storage.commit([(TASK, entry_for(old), "old logs")])
    new = storage.writer()(TASK, ".pkl", b"new")

    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    if backend == "local":  # in the middle of the SQLite transaction
        monkeypatch.setattr("labnb.storage.schema.write", crash)
    else:  # after the temporary object is written, before it is renamed into place
        assert isinstance(storage, FsspecStorage) and storage.rename
        monkeypatch.setattr(storage.fs, "mv", crash)
    with pytest.raises(KeyboardInterrupt):
        storage.commit([(TASK, entry_for(new), "new logs")])
    monkeypatch.undo()
    fresh = make_storage()
    assert fresh.read(fresh.lookup(TASK)) == b"old"
    assert not [name for name in Files.of(fresh).names() if "/.tmp-" in f"/{name}"]
    # The kill left a payload no entry points at; housekeeping reclaims it.
    assert fresh.catalog.gc(older_than=0).files == 1
    assert fresh.read(fresh.lookup(TASK)) == b"old"


# --- names read from an index ------------------------------------------------------


@pytest.mark.parametrize("field", ["file", "artifacts"])
@pytest.mark.parametrize("value", ["/etc/passwd", "../../outside/kept.txt", "a/../../b", "..", ""])
def test_an_entry_naming_a_path_outside_the_storage_is_refused(field: str, value: str):
    entry = entry_for(StoredFile("ab/x.pkl", 1, "0"), artifacts=f"{TASK}-x")
    data = {**_as_dict(entry), field: value}
    with pytest.raises(labnb.StorageError, match="unsafe path"):
        IndexEntry.from_json(TASK, data)
    assert IndexEntry.from_json(TASK, entry.to_json()) == entry  # the safe original parses


def _as_dict(entry: IndexEntry) -> dict[str, Any]:
    return json.loads(entry.to_json())


@pytest.mark.parametrize("field", ["file", "artifacts"])
@pytest.mark.parametrize("style", ["dotdot", "absolute"])
def test_removing_a_crafted_entry_never_deletes_outside_the_storage(
    make_storage: MakeStorage, backend: str, field: str, style: str
):
    storage = make_storage()
    files = Files.of(storage)
    outside = files.parent
    outside.write("outside/kept.txt", b"not labnb's")
    good = storage.writer()(TASK, ".pkl", b"good")
    storage.commit([(TASK, entry_for(good), "")])

    payload = storage.writer()(OTHER, ".pkl", b"crafted")
    if style == "dotdot":
        unsafe = "../../outside/kept.txt" if field == "file" else "../../outside"
    else:
        unsafe = outside.path("outside/kept.txt" if field == "file" else "outside")
        unsafe = "/" + unsafe.lstrip("/")
    crafted = replace(entry_for(payload, OTHER), artifacts=f"{OTHER}-folder")
    crafted = replace(crafted, **{field: unsafe})
    if backend == "local":
        _insert_row(Path(files.root) / "catalog.sqlite", crafted)
    else:
        files.write(f"index/{OTHER}.json", crafted.to_json().encode())
        files.write("generation", b"crafted")

    fresh = make_storage()
    found = fresh.lookup(OTHER)
    if found is not None:  # a local index shows the row, but never follows its names
        if field == "file":
            with pytest.raises(CorruptEntry, match="unsafe path"):
                fresh.read(found)
        else:
            with pytest.raises(labnb.StorageError, match="unsafe path"):
                fresh.artifacts_path(found)
    fresh.remove([OTHER, TASK])
    assert fresh.lookup(TASK) is None and not files.exists(f"results/{good.name}")
    fresh.catalog.remove()
    fresh.catalog.gc(older_than=0)
    assert outside.exists("outside/kept.txt")


def _insert_row(catalog: Path, entry: IndexEntry) -> None:
    """Write an entry straight into a local catalog, past every check labnb makes."""
    db = sqlite3.connect(catalog)
    try:
        db.execute(
            "INSERT INTO entries (task_id, type, module, code_version, format, file, size, "
            "checksum, started, finished, run_id, mlflow_run_id, artifacts, params, tracking, "
            "search) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.task_id, entry.type, entry.module, entry.code_version, entry.format,
                entry.file, entry.size, entry.checksum, entry.started, entry.finished, None,
                None, entry.artifacts, "{}", "{}", entry.type.lower(),
            ),
        )  # fmt: skip
        db.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
        db.commit()
    finally:
        db.close()


# --- the catalog ---------------------------------------------------------------------

A1, A2, B1, B2, C1 = (prefix + "0" * 30 for prefix in ("a1", "a2", "b1", "b2", "c1"))


def _catalog_entries(storage: Storage) -> dict[str, IndexEntry]:
    rows = [  # id, type, params, accuracy (None: no metric), started
        (A1, "Fit", {"model": "svm", "C": 1}, 0.70, 10.0),
        (A2, "Fit", {"model": "svm", "C": 10}, 0.90, 20.0),
        (B1, "Fit", {"model": "tree", "C": 5}, 0.80, 30.0),
        (B2, "Fit", {"model": "tree", "C": 0.5}, None, 40.0),
        (C1, "Prepare", {"rows": 100}, None, 50.0),
    ]
    writer = storage.writer()
    entries = {}
    for task_id, type_, params, accuracy, started in rows:
        stored = writer(task_id, ".pkl", task_id.encode())
        tracking = Tracking(
            params={"solver": "lbfgs"} if task_id == A1 else {},
            metrics=() if accuracy is None else (("accuracy", accuracy, None, started + 0.5),),
        )
        entries[task_id] = entry_for(
            stored, task_id, type=type_, params=params, tracking=tracking,
            started=started, finished=started + 1.0,
        )  # fmt: skip
    storage.commit([(key, entry, f"logs of {key}") for key, entry in entries.items()])
    return entries


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["id"] for row in rows]


@on(*LAYOUT_FREE)
@pytest.mark.parametrize("view", ["writer", "another instance"])
def test_catalog_queries_give_the_same_answers_on_every_backend(
    make_storage: MakeStorage, view: str
):
    storage = make_storage()
    entries = _catalog_entries(storage)
    catalog = storage.catalog if view == "writer" else make_storage().catalog

    assert catalog.groups() == {"Fit": 4, "Prepare": 1}
    assert catalog.count() == 5
    assert catalog.count(["Fit"]) == catalog.count("Fit") == 4
    assert catalog.count(where={"model": "svm"}) == 2
    assert catalog.count(["Fit"], where="C > 1") == 2
    assert catalog.count(text="TREE") == 2
    assert catalog.count(["Nothing"]) == 0

    assert _ids(catalog.query()) == [A1, A2, B1, B2, C1]  # oldest first
    assert _ids(catalog.query("Fit", where="params.model == 'svm' and params.C > 1")) == [A2]
    assert _ids(catalog.query("Fit", where="model in ['tree']")) == [B1, B2]
    assert _ids(catalog.query("Fit", where="not (C < 5)")) == [A2, B1]
    assert _ids(catalog.query("Fit", where={"params.solver": "lbfgs"})) == [A1]
    assert _ids(catalog.query("Fit", where="metrics.accuracy >= 0.8")) == [A2, B1]
    # Missing values sort last either way.
    assert _ids(catalog.query("Fit", sort="metrics.accuracy", descending=True)) == [A2, B1, A1, B2]
    assert _ids(catalog.query("Fit", sort="metrics.accuracy")) == [A1, B1, A2, B2]
    assert _ids(catalog.query("Fit", sort="C", descending=True)) == [A2, B1, A1, B2]
    assert _ids(catalog.query(sort="started", offset=1, limit=2)) == [A2, B1]
    assert _ids(catalog.query(["Fit", "Prepare"], text="c1")) == [C1]

    (row,) = catalog.query("Fit", where={"C": 10})
    assert row["type"] == "Fit" and row["params.model"] == "svm" and row["params.C"] == 10
    assert row["metrics.accuracy"] == 0.9 and row["duration_s"] == 1.0
    assert row["size_bytes"] == len(A2) and row["started"] == 20.0
    assert catalog.columns(["Fit"]) == ["params.model", "params.C", "params.solver",
                                        "metrics.accuracy"]  # fmt: skip
    with pytest.raises(QueryError):
        catalog.query(where="nosuch.column == 1")
    with pytest.raises(QueryError):
        catalog.query(where="model.startswith('s')")

    # Full entries come back exactly as committed.
    assert catalog.entries("Fit", where={"model": "tree"}) == [entries[B1], entries[B2]]
    assert catalog.entries(ids=[C1, "ef" * 16, A1]) == [entries[A1], entries[C1]]
    assert list(storage.entries()) == list(entries.values())

    # Short ids, as the CLI takes them.
    assert catalog.find("a") == [entries[A1], entries[A2]]
    assert catalog.find("A2") == [entries[A2]]
    assert catalog.find(B1) == [entries[B1]]
    assert catalog.find("") == [] and catalog.find("zz") == [] and catalog.find("d") == []

    table = catalog.table(["Fit"])
    assert list(table["id"]) == [A1, A2, B1, B2]
    assert list(table["params.model"]) == ["svm", "svm", "tree", "tree"]


@on(*LAYOUT_FREE)
def test_catalog_remove_by_query_forgets_only_the_matches(make_storage: MakeStorage):
    storage = make_storage()
    entries = _catalog_entries(storage)
    assert storage.catalog.remove(types="Fit", where={"model": "svm"}) == 2
    fresh = make_storage()
    assert fresh.catalog.groups() == {"Fit": 2, "Prepare": 1}
    assert fresh.lookup(A1) is None and fresh.read_logs(A1) is None
    assert fresh.read(entries[B1]) == B1.encode()
    with pytest.raises(CorruptEntry):
        fresh.read(entries[A1])
    assert fresh.catalog.remove(ids=[C1]) == 1
    assert fresh.catalog.remove() == 2
    assert make_storage().catalog.count() == 0


# --- housekeeping ------------------------------------------------------------------------


def test_gc_removes_only_what_nothing_references(make_storage: MakeStorage):
    storage = make_storage()
    files = Files.of(storage)
    writer = storage.writer()
    kept = writer(TASK, ".pkl", b"kept")
    files.write(f"artifacts/{TASK}-kept/note.txt", b"kept")
    storage.commit([(TASK, entry_for(kept, artifacts=f"{TASK}-kept"), "kept logs")])
    orphan = writer(OTHER, ".pkl", b"never committed")  # a run killed before its commit
    leftover = f"results/{TASK[:2]}/.tmp-{TASK}-0badc0de"  # a write killed midway
    files.write(leftover, b"half")
    storage.commit([(OTHER, None, "logs of a failed run")])  # logs, no entry
    everything = files.names()
    time.sleep(0.05)  # every file is now older than ``older_than=0``

    nothing = storage.catalog.gc(older_than=3600)
    assert (nothing.files, nothing.temporary, nothing.artifacts, nothing.logs) == (0, 0, 0, 0)
    assert nothing.bytes == 0
    assert files.names() == everything and storage.read_logs(OTHER) is not None

    preview = storage.catalog.gc(older_than=0, dry_run=True)
    assert (preview.files, preview.temporary, preview.artifacts, preview.logs) == (1, 1, 0, 1)
    assert preview.dry_run and "would free" in str(preview)
    assert files.names() == everything

    report = make_storage().catalog.gc(older_than=0)
    assert (report.files, report.temporary, report.artifacts, report.logs) == (1, 1, 0, 1)
    assert report.bytes == len(b"never committed") + len(b"half")
    assert not files.exists(f"results/{orphan.name}") and not files.exists(leftover)
    assert make_storage().read_logs(OTHER) is None
    # Everything referenced is still there.
    assert storage.read(storage.lookup(TASK)) == b"kept"
    assert storage.read_logs(TASK) == "kept logs"
    assert files.exists(f"artifacts/{TASK}-kept/note.txt")
    again = storage.catalog.gc(older_than=0)
    assert (again.files, again.temporary, again.artifacts, again.logs) == (0, 0, 0, 0)


def test_gc_reclaims_an_orphan_artifact_folder_and_counts_its_bytes(
    make_storage: MakeStorage, backend: str, request: pytest.FixtureRequest
):
    storage = make_storage()
    files = Files.of(storage)
    files.write(f"artifacts/{TASK}-kept/note.txt", b"kept")
    kept = storage.writer()(TASK, ".pkl", b"kept")
    storage.commit([(TASK, entry_for(kept, artifacts=f"{TASK}-kept"), "")])
    files.write(f"artifacts/{OTHER}-orphan/deep/note.txt", b"orphan")  # a run killed midway
    time.sleep(0.05)
    assert storage.catalog.gc(older_than=3600).artifacts == 0
    report = make_storage().catalog.gc(older_than=0)
    assert not files.exists(f"artifacts/{OTHER}-orphan/deep/note.txt")
    assert files.exists(f"artifacts/{TASK}-kept/note.txt")
    assert (report.artifacts, report.bytes) == (1, len(b"orphan"))


# --- a Lab on it ---------------------------------------------------------------------------


@on(*LAYOUT_FREE)
def test_a_lab_runs_caches_and_finds_tasks(make_storage: MakeStorage, backend: str, tmp_path):
    # Worker processes reach local paths, file:// and S3; memory:// stays in one process.
    runner = "thread" if backend == "memory" else "process"
    (tmp_path / "tally").mkdir()
    context = {"tally": str(tmp_path / "tally")}
    lab = labnb.Lab(storage=make_storage(), runner=runner, max_workers=2, context=context)
    total = Total(parts=[Square(x=x) for x in range(4)])
    assert lab.run_tasks([total, Tally(name="a"), Chatty(n=1)], disable_progress=True) == {
        total: 14,
        Tally(name="a"): "a",
        Chatty(n=1): 1,
    }
    assert "task 1 line 2" in lab.logs(Chatty(n=1)) and "task 1 logged" in lab.logs(Chatty(n=1))

    again = labnb.Lab(storage=make_storage(), runner=runner, max_workers=2, context=context)
    assert again.run_task(Tally(name="a"), disable_progress=True) == "a"
    assert (tmp_path / "tally" / "a.txt").read_text() == "ran\n"  # a cache hit
    assert again.is_cached(total) and again.is_cached(Square(x=3))
    assert sorted(task.x for task in again.cached_tasks([Square])) == [0, 1, 2, 3]
    table = again.cache_table([Square])
    assert sorted(table["params.x"]) == [0, 1, 2, 3] and (table["size_bytes"] > 0).all()
    assert again.catalog.count([Square]) == 4
    assert again.uncache_tasks([Square(x=0)]) == 1
    assert not again.is_cached(Square(x=0))
    assert not labnb.Lab(storage=make_storage(), runner="serial").is_cached(Square(x=0))


def test_a_damaged_result_warns_and_runs_again(make_storage: MakeStorage):
    lab = labnb.Lab(storage=make_storage(), runner="thread")
    lab.run_task(Square(x=5), disable_progress=True)
    entry = lab.storage.lookup(labnb.task_id(Square(x=5)))
    Files.of(lab.storage).write(f"results/{entry.file}", b"garbage")
    with pytest.warns(labnb.CacheWarning, match="will run again"):
        assert lab.run_task(Square(x=5), disable_progress=True) == 25
    assert lab.run_task(Square(x=5), disable_progress=True) == 25
    assert lab.storage.read(lab.storage.lookup(labnb.task_id(Square(x=5)))) != b"garbage"


@on("memory")
def test_memory_storage_refuses_writes_from_worker_processes(make_storage: MakeStorage):
    lab = labnb.Lab(storage=make_storage(), runner="process", max_workers=1)
    with pytest.raises(labnb.TaskFailed, match="runner='thread' or 'serial'"):
        lab.run_task(Square(x=2), disable_progress=True)


def test_a_storage_url_makes_an_fsspec_storage_and_a_path_a_local_one(tmp_path: Path):
    pytest.importorskip("fsspec")
    lab = labnb.Lab(storage=f"file://{tmp_path}/store", runner="serial")
    assert isinstance(lab.storage, FsspecStorage)
    assert lab.run_task(Square(x=6), disable_progress=True) == 36
    assert labnb.Lab(storage=f"file://{tmp_path}/store").is_cached(Square(x=6))
    local = labnb.Lab(storage=tmp_path / "local", runner="serial")
    assert isinstance(local.storage, LocalStorage)
    assert isinstance(labnb.Lab(storage=str(tmp_path / "local")).storage, LocalStorage)


def test_artifacts_live_beside_results_on_filesystem_storage(
    make_storage: MakeStorage, backend: str
):
    lab = labnb.Lab(storage=make_storage(), runner="serial")
    if backend not in ("local", "file"):
        with pytest.raises(labnb.TaskFailed, match="does not keep them yet"):
            lab.run_task(LogsArtifact(text="hello"), disable_progress=True)
        return
    assert lab.run_task(LogsArtifact(text="hello"), disable_progress=True) == "note.txt"
    entry = lab.storage.lookup(labnb.task_id(LogsArtifact(text="hello")))
    folder = lab.storage.artifacts_path(entry)
    assert folder is not None and (folder / "note.txt").read_text() == "hello"
    lab.uncache_tasks([LogsArtifact(text="hello")])
    assert not folder.exists()
