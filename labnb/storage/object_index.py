"""The index of an fsspec storage: JSON objects, queried through a mirror.

Object stores have no transactions and no SQLite, so the entries themselves
are objects:

- ``index/<task id>.json``: one entry (``IndexEntry.to_json``), written only
  after the worker's payload write returned, so a reader sees the old entry or
  the new one, never an entry pointing at a partial file.
- ``logs/<task id>.txt``: the logs of each task's last run.
- ``configs/<digest>.json``: a config file tasks were built from
  (``{"name", "text"}``); entries name it by its digest, so writing it again
  changes nothing.
- ``generation``: a random number rewritten whenever entries change, so a
  reader notices another process's changes without listing.

Queries run on an in-memory SQLite database with the catalog's schema, kept
in step with the objects: when the generation changes, one listing tells which
entries are new, changed (by their listing tag) or gone, and only those are
fetched. Lookups during planning consult a listing at most
``listing_seconds`` old, so planning many uncached tasks costs one LIST, not a
GET per task; commits read the entry they replace directly, never through
that listing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import StorageError
from . import schema
from .entry import IndexEntry
from .fsspec_blobs import put, remove_quietly
from .index import MirroredIndex
from .task_logs import Logs, text_of

GENERATION = "generation"
INDEX_SUFFIX = ".json"


class ObjectIndex(MirroredIndex):
    """Entries as JSON objects at an fsspec URL; no runs are coordinated or
    recorded (``RunlessIndex``: fsspec has no atomic "create if absent" that
    works on every backend), so every run computes what it needs."""

    def __init__(self, fs: Any, root: str, rename: bool, listing_seconds: float = 1.0) -> None:
        self.fs = fs
        self.root = root
        self.rename = rename
        self.listing_seconds = listing_seconds
        super().__init__()
        self._tags: dict[str, str] = {}
        """Task id to its object's listing tag (ETag, or size and mtime), as mirrored."""
        self._listed: dict[str, str] | None = None
        self._listed_at = float("-inf")
        self._mirrored_generation: bytes | None = None

    # --- paths ---------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def _entry_path(self, task_id: str) -> str:
        return self._path("index", task_id + INDEX_SUFFIX)

    def _logs_path(self, task_id: str) -> str:
        return self._path("logs", task_id + ".txt")

    # --- the Index interface -------------------------------------------------

    def get(self, task_id: str) -> IndexEntry | None:
        return self.get_many([task_id]).get(task_id)

    def get_many(self, task_ids: list[str]) -> dict[str, IndexEntry]:
        with self._lock:
            listed = self._listing(fresh=self.listing_seconds <= 0)
        return self._fetch([key for key in task_ids if key in listed])

    def commit(self, entries: list[IndexEntry], logs: Mapping[str, Logs]) -> list[IndexEntry]:
        self._put_many(
            {
                self._logs_path(key): schema.safe_text(text_of(text)).encode()
                for key, text in logs.items()
            }
        )
        if not entries:
            return []
        old = self._fetch([entry.task_id for entry in entries])
        # The payload files are complete (workers wrote them before reporting):
        # only now do entries pointing at them appear.
        self._put_many(
            {self._entry_path(entry.task_id): entry.to_json().encode() for entry in entries}
        )
        self._bump_generation()
        with self._lock:
            if self._listed is not None:
                self._listed.update((entry.task_id, "") for entry in entries)
        return [
            old[entry.task_id]
            for entry in entries
            if entry.task_id in old and old[entry.task_id].file != entry.file
        ]

    def remove(self, task_ids: list[str]) -> list[IndexEntry]:
        old = self._fetch(task_ids)
        # Entries first: a payload is never deleted while an entry points at it.
        remove_quietly(self.fs, [self._entry_path(key) for key in old])
        remove_quietly(self.fs, [self._logs_path(key) for key in task_ids])
        if old:
            self._bump_generation()
        with self._lock:
            if self._listed is not None:
                for key in task_ids:
                    self._listed.pop(key, None)
        return list(old.values())

    def mark(self, statuses: dict[str, tuple[str, str]]) -> None:
        current = self._fetch(list(statuses))
        changed = {
            self._entry_path(key): dataclasses.replace(entry, status=statuses[key][1])
            .to_json()
            .encode()
            for key, entry in current.items()
            if entry.file == statuses[key][0] and entry.status != statuses[key][1]
        }
        if changed:
            self._put_many(changed)
            self._bump_generation()

    def read_logs(self, task_id: str) -> str | None:
        try:
            return bytes(self.fs.cat_file(self._logs_path(task_id))).decode(errors="replace")
        except FileNotFoundError:
            return None

    def keep_configs(self, configs: Sequence[tuple[str, str, str]]) -> None:
        self._put_many(
            {
                self._path("configs", digest + INDEX_SUFFIX): json.dumps(
                    {"name": name, "text": schema.safe_text(text)}
                ).encode()
                for digest, name, text in configs
            }
        )

    def read_config(self, digest: str) -> tuple[str, str] | None:
        try:
            data = json.loads(bytes(self.fs.cat_file(self._path("configs", digest + INDEX_SUFFIX))))
        except (FileNotFoundError, ValueError):
            return None
        return str(data["name"]), str(data["text"])

    def orphan_logs(self, older_than: float) -> list[str]:
        folder = self._path("logs")
        self.fs.invalidate_cache(folder)
        try:
            found = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return []
        from .fsspec_blobs import _modified

        with self.reading() as db:
            cached = {row[0] for row in db.execute("SELECT task_id FROM entries")}
        orphans = []
        for info in found:
            name = info["name"].rpartition("/")[2]
            key = name.removesuffix(".txt")
            if name.endswith(".txt") and key not in cached and _modified(info) < older_than:
                orphans.append(key)
        return orphans

    def remove_orphan_logs(self, task_ids: list[str]) -> None:
        remove_quietly(self.fs, [self._logs_path(key) for key in task_ids])

    # --- the mirror ----------------------------------------------------------

    def _sync(self) -> None:
        """Bring the mirror in step with the objects (only what changed is fetched)."""
        current = self._read_generation()
        if current == self._mirrored_generation and self._mirrored_generation is not None:
            return
        listed = self._listing(fresh=True)
        gone = [key for key in self._tags if key not in listed]
        changed = [key for key, tag in listed.items() if self._tags.get(key) != tag or not tag]
        fetched = self._fetch(changed) if changed else {}
        db = self._mirror
        db.execute("BEGIN")
        schema.delete(db, gone + [key for key in changed if key not in fetched])
        schema.write(db, list(fetched.values()))
        db.execute("COMMIT")
        for key in gone:
            self._tags.pop(key, None)
        for key in changed:
            if key in fetched:
                self._tags[key] = listed[key]
            else:
                self._tags.pop(key, None)
        self._mirrored_generation = current

    def _listing(self, fresh: bool) -> dict[str, str]:
        """Task ids in the index with their listing tags, from a listing at most
        ``listing_seconds`` old (or a new one)."""
        if (
            fresh
            or self._listed is None
            or time.monotonic() - self._listed_at > self.listing_seconds
        ):
            folder = self._path("index")
            self.fs.invalidate_cache(folder)  # s3fs and others cache listings
            try:
                found = self.fs.ls(folder, detail=True)
            except FileNotFoundError:
                found = []
            listed = {}
            for info in found:
                name = info["name"].rpartition("/")[2]
                if name.endswith(INDEX_SUFFIX) and not name.startswith("."):
                    tag = (
                        info.get("ETag")
                        or info.get("etag")
                        or f"{info.get('size')}:{info.get('mtime', info.get('LastModified', ''))}"
                    )
                    listed[name[: -len(INDEX_SUFFIX)]] = str(tag)
            self._listed = listed
            self._listed_at = time.monotonic()
        return self._listed

    def _fetch(self, task_ids: list[str]) -> dict[str, IndexEntry]:
        """Existing entries of these tasks, read directly; one batched request on async backends."""
        paths = {self._entry_path(key): key for key in task_ids}
        if not paths:
            return {}
        if len(paths) == 1:
            (path,) = paths
            try:
                found: dict[str, Any] = {path: self.fs.cat_file(path)}
            except FileNotFoundError:
                found = {}
        else:
            found = self.fs.cat(list(paths), on_error="omit")
        entries = {}
        for path, data in found.items():
            key = paths.get(path) or paths.get(self.fs._strip_protocol(path))
            if key is None or isinstance(data, Exception):
                continue
            with contextlib.suppress(StorageError):  # not an entry labnb wrote: not cached
                entries[key] = IndexEntry.from_json(key, data)
        return entries

    def _put_many(self, objects: dict[str, bytes]) -> None:
        if self.rename:
            for path, data in objects.items():
                put(self.fs, path, data, rename=True)
        elif objects:
            self.fs.pipe(objects)  # concurrent on async backends such as s3fs

    def _read_generation(self) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._path(GENERATION)))
        except FileNotFoundError:
            return b"0"

    def _bump_generation(self) -> None:
        # A random value rather than a counter: two processes may bump at once,
        # and all a reader needs is that the value differs from the one it saw.
        put(self.fs, self._path(GENERATION), str(secrets.randbits(62)).encode(), self.rename)
