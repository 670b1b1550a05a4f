"""Storages a labtech user writes: labtech's four ``Storage`` methods, nothing else.

A real module, so that process workers can unpickle them.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Sequence
from typing import IO, Any

from labnb.storage import Storage


class _Closing(io.BytesIO):
    """A file being written into a ``DictStorage``: kept when closed."""

    def __init__(self, files: dict[tuple[str, str], bytes], name: tuple[str, str]) -> None:
        super().__init__()
        self._files, self._name = files, name

    def close(self) -> None:
        if not self.closed:
            self._files[self._name] = self.getvalue()
        super().close()


class DictStorage(Storage):
    """Everything in a dict of ``(key, filename) -> bytes``: it lives in one process."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytes] = {}

    def find_keys(self) -> Sequence[str]:
        return sorted({key for key, _ in self.files})

    def exists(self, key: str) -> bool:
        return any(found == key for found, _ in self.files)

    def file_handle(self, key: str, filename: str, *, mode: str = "r") -> IO[Any]:
        if "w" in mode:
            handle: IO[Any] = _Closing(self.files, (key, filename))
        else:
            handle = io.BytesIO(self.files[(key, filename)])
        return handle if "b" in mode else io.TextIOWrapper(handle, encoding="utf-8")

    def delete(self, key: str) -> None:
        for name in [name for name in self.files if name[0] == key]:
            del self.files[name]


class DirectoryStorage(Storage):
    """A folder a key, a file a filename; calls ``super().__init__()`` as careful users do."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = os.fspath(path)

    def find_keys(self) -> Sequence[str]:
        return sorted(os.listdir(self.path)) if os.path.isdir(self.path) else []

    def exists(self, key: str) -> bool:
        return os.path.isdir(os.path.join(self.path, key))

    def file_handle(self, key: str, filename: str, *, mode: str = "r") -> IO[Any]:
        folder = os.path.join(self.path, key)
        if "w" in mode:
            os.makedirs(folder, exist_ok=True)
        return open(os.path.join(folder, filename), mode)

    def delete(self, key: str) -> None:
        shutil.rmtree(os.path.join(self.path, key), ignore_errors=True)
