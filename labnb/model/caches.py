"""labtech's caches (``PickleCache()``, ``NullCache()``, ``BaseCache`` subclasses) as labnb formats.

labnb stores each result as one payload (bytes, written by the worker and
indexed in the catalog), in a ``ResultFormat``. labtech's caches write files
into a per-task folder of a ``Storage`` instead. The two meet here:

- ``PickleCache`` is labnb's pickle format under labtech's name;
- ``NullCache()`` means what ``cache=None`` means: never cache;
- a ``BaseCache`` subclass is a ``ResultFormat`` whose payload is a zip of the
  files its ``save_result`` writes through ``storage.file_handle(...)``;
  ``load_result`` reads them back from the same zip. Any file layout a
  custom cache chooses therefore works, on every labnb storage (local, S3...).

One deliberate difference: labnb encodes a result without its task (payloads
are written by workers, and a format is shared by a whole type), so the
``task`` a custom cache receives offers only ``cache_key``. A cache that
needs a task's parameters to store its result is not supported.
"""

from __future__ import annotations

import io
import zipfile
from abc import abstractmethod
from collections.abc import Sequence
from typing import IO, Any

from ..errors import CacheError
from .formats import PickleFormat, ResultFormat

PAYLOAD_KEY = "result"
"""The one key a custom cache's files are written under inside a payload."""


class PickleCache(PickleFormat):
    """labtech's default cache: results pickled (labnb uses cloudpickle, so
    notebook-defined classes work). ``pickle_protocol`` is accepted for
    compatibility; labnb always uses the highest protocol."""

    def __init__(self, *, serializer: Any = None, pickle_protocol: int | None = None) -> None:
        self.pickle_protocol = pickle_protocol


class NullCache:
    """``@task(cache=NullCache())``: results are never stored (the same as ``cache=None``)."""

    def __repr__(self) -> str:
        return "NullCache()"


class _PayloadTask:
    """What a custom cache is given as ``task``: only the key its files go under."""

    cache_key = PAYLOAD_KEY

    def __getattr__(self, name: str) -> Any:
        raise CacheError(
            f"a labnb custom cache receives only task.cache_key, not task.{name}: "
            "labnb encodes a result without its task"
        )


class _Handle(io.BytesIO):
    """A file being written into a ``_ZipStorage``: stored when closed."""

    def __init__(self, files: dict[str, bytes], name: str) -> None:
        super().__init__()
        self._files, self._name = files, name

    def close(self) -> None:
        if not self.closed:
            self._files[self._name] = self.getvalue()
        super().close()


class _ZipStorage:
    """The four methods of labtech's ``Storage`` over the files of one payload, in memory."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files: dict[str, bytes] = {} if files is None else files

    def find_keys(self) -> Sequence[str]:
        return [PAYLOAD_KEY] if self.files else []

    def exists(self, key: str) -> bool:
        return key == PAYLOAD_KEY and bool(self.files)

    def file_handle(self, key: str, filename: str, *, mode: str = "r") -> IO:
        name = f"{key}/{filename}"
        if "w" in mode or "a" in mode:
            handle: IO = _Handle(self.files, name)
            return handle if "b" in mode else io.TextIOWrapper(handle, encoding="utf-8")
        try:
            data = io.BytesIO(self.files[name])
        except KeyError:
            raise FileNotFoundError(f"the cached result has no file {filename!r}") from None
        return data if "b" in mode else io.TextIOWrapper(data, encoding="utf-8")

    def delete(self, key: str) -> None:
        self.files.clear()


class BaseCache(ResultFormat):
    """Subclass to store results your own way: implement ``save_result`` and ``load_result``.

    ``KEY_PREFIX`` names the format in the catalog (it should differ between
    cache types, as in labtech); ``storage`` offers labtech's ``file_handle``,
    ``exists``, ``find_keys`` and ``delete``.
    """

    KEY_PREFIX = ""
    suffix = ".zip"

    def __init__(self, *, serializer: Any = None) -> None:
        self.serializer = serializer

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The format's name in the catalog: a cache type's results are found only by it.
        cls.name = f"cache:{cls.KEY_PREFIX or cls.__qualname__}"

    @abstractmethod
    def save_result(self, storage: Any, task: Any, result: Any) -> None: ...

    @abstractmethod
    def load_result(self, storage: Any, task: Any) -> Any: ...

    def dumps(self, value: Any) -> bytes:
        storage = _ZipStorage()
        self.save_result(storage, _PayloadTask(), value)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in storage.files.items():
                archive.writestr(name, data)
        return buffer.getvalue()

    def loads(self, data: bytes) -> Any:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            files = {name: archive.read(name) for name in archive.namelist()}
        return self.load_result(_ZipStorage(files), _PayloadTask())


def as_format(cache: Any) -> ResultFormat | None:
    """What ``@task(cache=...)`` stores results with, from labnb's or labtech's spelling."""
    if cache is None or isinstance(cache, NullCache) or cache is NullCache:
        return None
    if isinstance(cache, type) and issubclass(cache, ResultFormat):
        cache = cache()
    if not isinstance(cache, ResultFormat):
        raise TypeError(
            f"cache= takes a labnb ResultFormat, a labnb.cache cache (PickleCache, NullCache, "
            f"a BaseCache subclass) or None, not {cache!r}"
        )
    return cache


__all__ = ["BaseCache", "NullCache", "PickleCache", "as_format"]
