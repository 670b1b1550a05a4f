"""The blob interface, and blobs in a local directory.

Blobs are the files of a storage: result payloads under ``results/`` and the
folders of artifacts tasks keep (``labnb.log_artifact``) under ``artifacts/``.
Workers write payloads themselves (``PayloadWriter``, small and picklable), to
a temporary name first and then renamed to a name unique to that write: a
crash leaves a ``.tmp-*`` file, never a partial payload under a final name,
and two writers of one task never overwrite each other's file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import StorageError
from ..model.formats import Payload
from .entry import StoredFile
from .paths import checked_name, safe_names
from .result_file import HashingWriter, ResultFile, checksum

RESULTS = "results"
ARTIFACTS = "artifacts"
TEMPORARY_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Blob:
    """A file (or artifact folder) found by a scan, for housekeeping."""

    area: str
    """``results`` or ``artifacts``."""
    name: str
    """Relative to its area: ``ab/<id>-<token>.pkl``, ``ab/.tmp-...`` or an artifact folder."""
    modified: float
    size: int

    @property
    def temporary(self) -> bool:
        return self.name.rpartition("/")[2].startswith(TEMPORARY_PREFIX)


class PayloadWriter:
    """Writes result payloads; small and picklable because it runs in workers."""

    def __init__(self, results_dir: str) -> None:
        self.results_dir = results_dir

    def __call__(self, task_id: str, suffix: str, data: bytes) -> StoredFile:
        name, temporary = self._names(task_id, suffix)
        with _replacing(temporary, os.path.join(self.results_dir, name)) as file:
            file.write(data)
        return StoredFile(name, len(data), checksum(data))

    def write_result(self, task_id: str, payload: Payload) -> tuple[StoredFile, Payload]:
        """Write a task's result; returns the file and the payload to send on
        (here the payload itself, its bytes encoded once for both)."""
        return self(task_id, payload.format.suffix, payload.data), payload

    def _names(self, task_id: str, suffix: str) -> tuple[str, str]:
        """A new payload's name under ``results/`` and the temporary path it is written at."""
        folder = os.path.join(self.results_dir, task_id[:2])
        make_folder(folder)
        token = secrets.token_hex(4)
        temporary = os.path.join(folder, f"{TEMPORARY_PREFIX}{task_id}-{token}")
        return f"{task_id[:2]}/{task_id}-{token}{suffix}", temporary

    def artifacts_folder(self, task_id: str) -> str:
        """A new folder for this run's artifacts: a rerun never overwrites the cached one's."""
        artifacts = os.path.join(os.path.dirname(self.results_dir), ARTIFACTS)
        make_folder(artifacts)
        folder = os.path.join(artifacts, f"{task_id}-{secrets.token_hex(4)}")
        os.mkdir(folder)
        return folder


@contextlib.contextmanager
def _replacing(temporary: str, path: str) -> Iterator[BinaryIO]:
    """A file written at ``temporary`` that becomes ``path`` once whole. On any
    failure the partial file is removed: on a full disk it would stay, filling it."""
    try:
        with open(temporary, "wb") as file:
            yield file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def make_folder(folder: str) -> None:
    """Create a folder of the storage, never its parents: a worker of a run whose
    storage was deleted must not recreate it half-way (a ``results/`` alone,
    which the next Lab refuses as not a storage)."""
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise StorageError(
            f"cannot create {folder}: its labnb storage is gone (deleted while the run "
            "wrote into it)"
        ) from None


class LocalPayloadWriter(PayloadWriter):
    """Writes a result straight into its file (never all of it as bytes in
    memory) and sends on a reference to the file, not its bytes."""

    def write_result(self, task_id: str, payload: Payload) -> tuple[StoredFile, Payload]:
        fmt = payload.format
        name, temporary = self._names(task_id, fmt.suffix)
        path = os.path.join(self.results_dir, name)
        with _replacing(temporary, path) as file:
            written = HashingWriter(file)
            fmt.dump(payload.value, written)
        stored = StoredFile(name, written.size, written.hexdigest())
        return stored, Payload(fmt, value=payload.value, source=ResultFile(path, stored.size))


class Blobs(ABC):
    """Where a storage's files are."""

    @abstractmethod
    def writer(self) -> PayloadWriter: ...

    @abstractmethod
    def read(self, name: str) -> bytes:
        """A payload's bytes (raises ``OSError`` when missing or unreadable)."""

    @abstractmethod
    def remove(self, names: Iterable[str]) -> None:
        """Delete payloads (missing ones are fine)."""

    @abstractmethod
    def remove_artifacts(self, folders: Iterable[str]) -> None: ...

    @abstractmethod
    def scan(self) -> Iterator[Blob]:
        """Every payload, temporary file and artifact folder."""

    @abstractmethod
    def location(self, name: str) -> str:
        """Where a payload is, for messages."""

    def artifacts_path(self, folder: str) -> Path | None:
        """A local path to an artifact folder (None where there is none)."""
        return None

    def local_file(self, name: str) -> str | None:
        """A payload's path on this machine, for reading it as a stream (None: not a local file)."""
        return None


class LocalBlobs(Blobs):
    def __init__(self, root: Path) -> None:
        self.root = root
        self._results = root / RESULTS
        self._results_prefix = f"{self._results}{os.sep}"
        """A string, joined by hand: pathlib costs a warm run of 1,000 loads a tenth."""
        self._artifacts = root / ARTIFACTS

    def writer(self) -> PayloadWriter:
        return LocalPayloadWriter(str(self._results))

    def local_file(self, name: str) -> str:
        return self._results_prefix + checked_name(name)

    def read(self, name: str) -> bytes:
        with open(self.local_file(name), "rb") as file:
            return file.read()

    def remove(self, names: Iterable[str]) -> None:
        for name in safe_names(names):
            with contextlib.suppress(FileNotFoundError):
                (self._results / name).unlink()

    def remove_artifacts(self, folders: Iterable[str]) -> None:
        for folder in safe_names(folders):
            path = self._artifacts / folder
            if path.is_symlink():
                path.unlink()
            else:
                shutil.rmtree(path, ignore_errors=True)

    def artifacts_path(self, folder: str) -> Path:
        return self._artifacts / checked_name(folder)

    def location(self, name: str) -> str:
        return str(self._results / name)

    def scan(self) -> Iterator[Blob]:
        for folder in _children(self._results):
            for path in _children(folder):
                with contextlib.suppress(FileNotFoundError):
                    stat = path.lstat()
                    yield Blob(RESULTS, f"{folder.name}/{path.name}", stat.st_mtime, stat.st_size)
        for path in _children(self._artifacts):
            with contextlib.suppress(FileNotFoundError):
                yield Blob(ARTIFACTS, path.name, *_tree_stat(path))


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _tree_stat(path: Path) -> tuple[float, int]:
    """The newest modification time and total size in a folder (a task may still write to it)."""
    stat = path.lstat()
    newest, size = stat.st_mtime, 0
    if path.is_dir() and not path.is_symlink():
        for parent, _, files in os.walk(path):
            newest = max(newest, os.lstat(parent).st_mtime)
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    item = os.lstat(os.path.join(parent, name))
                    newest, size = max(newest, item.st_mtime), size + item.st_size
    return newest, size
