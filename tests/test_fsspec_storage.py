"""``FsspecStorage`` on fsspec's in-memory and local filesystems and on a real S3 server (moto).

The same guarantees as ``LocalStorage``: entries appear only once their
payload is complete, damaged payloads are ``CorruptEntry``, replaced and
removed payloads are deleted, and a second ``FsspecStorage`` on the same URL
(another process, another machine) sees everything the first one committed.
"""

from __future__ import annotations

import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_tasks import Chatty, LogsArtifact, Square, Tally, Total
from s3_server import moto_s3

import labnb
from labnb.storage import CorruptEntry

fsspec = pytest.importorskip("fsspec")
from labnb.fsspec_storage import FsspecStorage  # noqa: E402 - after the skip

BACKENDS = ["memory", "file", "s3"]
MakeStorage = Callable[..., FsspecStorage]


@pytest.fixture(scope="module")
def s3_options() -> Iterator[dict[str, Any]]:
    with moto_s3() as options:
        yield options


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def location(backend: str, tmp_path: Path, request: pytest.FixtureRequest):
    """(url, storage options) of a fresh, empty location on ``backend``."""
    name = uuid.uuid4().hex[:12]
    if backend == "memory":
        url = f"memory://labnb-{name}"
        yield url, {}
        fs = fsspec.filesystem("memory")
        if fs.exists(f"/labnb-{name}"):
            fs.rm(f"/labnb-{name}", recursive=True)
    elif backend == "file":
        yield f"file://{tmp_path}/store", {}
    else:
        yield f"s3://labnb-{name}/some/prefix", request.getfixturevalue("s3_options")


@pytest.fixture
def make_storage(location) -> MakeStorage:
    url, options = location

    def make(**extra: Any) -> FsspecStorage:
        return FsspecStorage(url, **options, **extra)

    return make


def entry_for(stored: Any, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Square",
        "module": "ray_tasks",
        "code_version": None,
        "params": {"x": 1},
        "format": "pickle",
        "file": stored.name,
        "size": stored.size,
        "checksum": stored.checksum,
        "started": 1.0,
        "finished": 2.0,
        "mlflow_run_id": None,
        **extra,
    }


TASK = "ab" * 16
OTHER = "cd" * 16


# --- the Storage interface ---------------------------------------------------


def test_commit_then_lookup_read_logs_and_entries(make_storage: MakeStorage):
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
    assert list(storage.entries()) == [(TASK, entry)]
    assert storage.generation() != before
    # Another instance on the same URL (another process or machine) sees it all.
    other = make_storage()
    assert other.lookup(TASK) == entry and other.read(entry) == b"payload bytes"
    assert other.generation() == storage.generation()


def test_writer_survives_pickling(make_storage: MakeStorage, backend: str):
    storage = make_storage()
    writer = pickle.loads(pickle.dumps(storage.writer()))
    stored = writer(TASK, ".npy", b"from a worker")
    assert stored.name.startswith(f"{TASK[:2]}/{TASK}-") and stored.name.endswith(".npy")
    storage.commit([(TASK, entry_for(stored), "")])
    if backend != "memory":  # memory:// objects live in one process (see FsspecPayloadWriter)
        assert make_storage().read(entry_for(stored)) == b"from a worker"


def test_recommit_deletes_the_replaced_payload(make_storage: MakeStorage):
    storage = make_storage()
    first = storage.writer()(TASK, ".pkl", b"first")
    storage.commit([(TASK, entry_for(first), "")])
    second = storage.writer()(TASK, ".pkl", b"second")
    assert second.name != first.name
    storage.commit([(TASK, entry_for(second), "")])
    assert storage.read(storage.lookup(TASK)) == b"second"
    with pytest.raises(CorruptEntry, match="missing"):
        storage.read(entry_for(first))


def test_remove_forgets_entry_logs_and_payload(make_storage: MakeStorage):
    storage = make_storage()
    stored = storage.writer()(TASK, ".pkl", b"payload")
    storage.commit([(TASK, entry_for(stored), "logs")])
    before = storage.generation()
    assert storage.remove([TASK, OTHER]) == 1
    assert storage.lookup(TASK) is None and storage.read_logs(TASK) is None
    assert list(storage.entries()) == []
    assert storage.generation() != before
    with pytest.raises(CorruptEntry):
        storage.read(entry_for(stored))
    assert make_storage().lookup(TASK) is None
    assert storage.remove([]) == 0


@pytest.mark.parametrize("damage", ["truncate", "garble", "delete"])
def test_damaged_payload_is_corrupt_entry(make_storage: MakeStorage, damage: str):
    storage = make_storage()
    stored = storage.writer()(TASK, ".pkl", b"0123456789")
    entry = entry_for(stored)
    storage.commit([(TASK, entry, "")])
    path = f"{storage.root}/results/{stored.name}"
    if damage == "truncate":
        storage.fs.pipe_file(path, b"01234")
        match = "truncated"
    elif damage == "garble":
        storage.fs.pipe_file(path, b"x" * 10)
        match = "checksum"
    else:
        storage.fs.rm_file(path)
        match = "missing"
    with pytest.raises(CorruptEntry, match=match):
        storage.read(entry)


def test_a_listing_makes_lookups_cheap_and_goes_stale_briefly(make_storage: MakeStorage):
    reader = make_storage(listing_seconds=0.3)
    assert reader.lookup(TASK) is None  # lists index/ once
    writer = make_storage()
    stored = writer.writer()(TASK, ".pkl", b"new")
    writer.commit([(TASK, entry_for(stored), "")])
    assert make_storage(listing_seconds=0).lookup(TASK) is not None  # always reads
    time.sleep(0.35)
    assert reader.lookup(TASK) is not None  # the listing was refreshed


def test_unusable_locations_fail_before_anything_runs(location: tuple[str, dict], backend: str):
    url, options = location
    fs, root = fsspec.core.url_to_fs(url, **options)
    fs.makedirs(root, exist_ok=True)  # creates the bucket on S3
    fs.pipe_file(f"{root}/notes.txt", b"mine")
    with pytest.raises(labnb.StorageError, match="not a labnb storage"):
        FsspecStorage(url, **options)
    with pytest.raises(labnb.StorageError, match="not a directory"):
        FsspecStorage(url + "/notes.txt", **options)
    with pytest.raises(labnb.StorageError, match="cannot use"):
        FsspecStorage("nosuchprotocol://x")


def test_an_interrupted_index_write_leaves_the_old_entry(tmp_path: Path, monkeypatch):
    """On a filesystem (object stores write each object with one atomic PUT)."""

    def make_storage() -> FsspecStorage:
        return FsspecStorage(f"file://{tmp_path}/store")

    storage = make_storage()
    assert storage.rename
    old = storage.writer()(TASK, ".pkl", b"old")
    storage.commit([(TASK, entry_for(old), "")])
    new = storage.writer()(TASK, ".pkl", b"new")

    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(storage.fs, "mv", crash)
    with pytest.raises(KeyboardInterrupt):
        storage.commit([(TASK, entry_for(new), "")])
    monkeypatch.undo()
    fresh = make_storage()
    assert fresh.read(fresh.lookup(TASK)) == b"old"
    assert not [path for path in fresh.fs.find(fresh.root) if "/.tmp-" in path]


# --- a Lab on it ---------------------------------------------------------------


def test_a_lab_runs_caches_and_finds_tasks(make_storage, backend, tmp_path):
    # Worker processes reach file:// and S3; memory:// objects stay in one process.
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
    assert sorted(table["x"]) == [0, 1, 2, 3] and (table["size_bytes"] > 0).all()
    assert again.uncache_tasks([Square(x=0)]) == 1
    assert not again.is_cached(Square(x=0))


def test_a_damaged_result_warns_and_reruns(make_storage):
    lab = labnb.Lab(storage=make_storage(), runner="thread")
    lab.run_task(Square(x=5), disable_progress=True)
    storage = lab.storage
    entry = storage.lookup(labnb.task_id(Square(x=5)))
    storage.fs.pipe_file(f"{storage.root}/results/{entry['file']}", b"garbage")
    with pytest.warns(labnb.CacheWarning, match="will run again"):
        assert lab.run_task(Square(x=5), disable_progress=True) == 25
    assert lab.run_task(Square(x=5), disable_progress=True) == 25


def test_memory_storage_refuses_writes_from_worker_processes():
    storage = FsspecStorage(f"memory://labnb-{uuid.uuid4().hex[:12]}")
    lab = labnb.Lab(storage=storage, runner="process", max_workers=1)
    with pytest.raises(labnb.TaskFailed, match="runner='thread' or 'serial'"):
        lab.run_task(Square(x=2), disable_progress=True)


@pytest.mark.skipif(
    "ray" not in labnb.lab.RUNNERS, reason="needs the lab.py patch: storage URLs -> FsspecStorage"
)
def test_a_storage_url_makes_an_fsspec_storage(tmp_path: Path):
    lab = labnb.Lab(storage=f"file://{tmp_path}/store", runner="serial")
    assert isinstance(lab.storage, FsspecStorage)
    assert lab.run_task(Square(x=6), disable_progress=True) == 36
    assert labnb.Lab(storage=f"file://{tmp_path}/store").is_cached(Square(x=6))


@pytest.mark.skipif(not hasattr(labnb, "log_artifact"), reason="labnb.log_artifact is not here yet")
def test_artifacts_live_beside_results_on_file_storage(make_storage, backend):
    lab = labnb.Lab(storage=make_storage(), runner="serial")
    if backend != "file":
        with pytest.raises(labnb.TaskFailed, match="does not keep them yet"):
            lab.run_task(LogsArtifact(text="hello"), disable_progress=True)
        return
    assert lab.run_task(LogsArtifact(text="hello"), disable_progress=True) == "note.txt"
    entry = lab.storage.lookup(labnb.task_id(LogsArtifact(text="hello")))
    folder = lab.storage.artifacts_path(entry)
    assert (folder / "note.txt").read_text() == "hello"
    lab.uncache_tasks([LogsArtifact(text="hello")])
    assert not folder.exists()
