"""Storage: where results, their catalog entries and task logs live.

Layers, each a module:

- ``entry``: ``IndexEntry``, the typed record of one cached task;
- ``paths``: names read from an index are checked before use;
- ``schema``: the catalog's SQLite schema (real columns per parameter and metric);
- ``index``: the index interface and ``SqliteIndex`` (local storage);
  ``object_index``: ``ObjectIndex`` (JSON objects at an fsspec URL);
  ``keyed``: index and blobs over labtech's four ``Storage`` methods, for a
  user's own ``Storage`` subclass;
- ``blobs``: the blob interface and ``LocalBlobs``; ``fsspec_blobs``: ``FsspecBlobs``;
- ``store``: ``Storage``, the one implementation of the storage logic over an
  index and blobs, and ``LocalStorage``, ``FsspecStorage``, ``NullStorage``;
- ``catalog``: ``Catalog`` (query, page, remove, gc), used by every reader;
- ``tables``: pandas tables; ``migrate``: storages written by labnb 0.1.0.
"""

from .catalog import Catalog, GcReport, QueryError
from .entry import IndexEntry, StoredFile, Tracking
from .store import (
    MARKER,
    CorruptEntry,
    FsspecStorage,
    LocalStorage,
    NullStorage,
    Record,
    Storage,
    open_storage,
)

__all__ = [
    "MARKER",
    "Catalog",
    "CorruptEntry",
    "FsspecStorage",
    "GcReport",
    "IndexEntry",
    "LocalStorage",
    "NullStorage",
    "QueryError",
    "Record",
    "Storage",
    "StoredFile",
    "Tracking",
    "open_storage",
]
