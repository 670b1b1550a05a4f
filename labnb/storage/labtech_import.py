"""Bringing a storage written by labtech into a labnb storage (``labnb import-labtech SRC DEST``).

A labtech storage is a directory with one folder per cached task, named by
its cache key, holding ``metadata.json`` (labtech's version, the cache type,
the task's class and parameters, start time and duration) and the result
file (``data.pickle`` for labtech's default ``PickleCache``).

Importing translates each task's parameters into labnb's stored encoding and
computes the id labnb gives that task, so a labnb ``@task`` class with the
same name and fields finds the result: ``cached_tasks`` lists it and
``run_tasks`` loads it instead of running it. No class is imported and
nothing is unpickled while importing (the pickled result is copied as it is),
so classes that were defined in a notebook import as well as any other.

The source is only read: the labtech storage stays usable by labtech. An
entry already in the destination is left alone, so importing again (after
labtech cached more) adds only what is new. Entries labnb cannot serve are
reported, not guessed at: results of custom labtech caches, and metadata
this module does not understand.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..model.identity import hash_identity
from .entry import IndexEntry
from .store import Storage

METADATA = "metadata.json"
PICKLE_RESULT = "data.pickle"
PICKLE_CACHE = "PickleCache"


class Unsupported(ValueError):
    """A labtech entry that cannot become a labnb entry (the reason is the message)."""


@dataclass
class ImportReport:
    """What an import did: ids imported, keys already there, and keys skipped with why."""

    imported: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Converted:
    """A labtech task as labnb stores it, and the id labnb gives it."""

    type_name: str
    module: str
    code_version: str | None
    params: dict[str, Any]
    task_id: str


def is_labtech_storage(path: Path) -> bool:
    """Whether ``path`` looks like a storage labtech wrote (a folder with labtech metadata)."""
    try:
        return any((child / METADATA).is_file() for child in path.iterdir() if child.is_dir())
    except OSError:
        return False


def import_labtech(source: str | Path, destination: Storage) -> ImportReport:
    """Copy every result cached in the labtech storage at ``source`` into ``destination``."""
    report = ImportReport()
    root = Path(source).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    writer = destination.writer()
    if writer is None:
        raise ValueError("the destination stores nothing (storage=None)")
    found: list[tuple[str, dict[str, Any], Path, _Converted]] = []
    for folder in sorted(child for child in root.iterdir() if child.is_dir()):
        try:
            metadata = json.loads((folder / METADATA).read_text())
            converted = _convert_entry(metadata)
            result = folder / PICKLE_RESULT
            if not result.is_file():
                raise Unsupported(f"it has no {PICKLE_RESULT}")
        except FileNotFoundError:
            continue  # not a cached task (labtech writes nothing else, but users might)
        except (Unsupported, ValueError, KeyError, TypeError) as exc:
            report.skipped[folder.name] = str(exc)
            continue
        found.append((folder.name, metadata, result, converted))
    present = destination.lookup_many(converted.task_id for *_, converted in found)
    records = []
    for key, metadata, result, converted in found:
        if converted.task_id in present:
            report.already.append(key)
            continue
        stored = writer(converted.task_id, ".pkl", result.read_bytes())
        started, finished = _timings(metadata)
        entry = IndexEntry(
            task_id=converted.task_id,
            type=converted.type_name,
            module=converted.module,
            code_version=converted.code_version,
            params=converted.params,
            format="pickle",
            file=stored.name,
            size=stored.size,
            checksum=stored.checksum,
            started=started,
            finished=finished,
        )
        records.append((converted.task_id, entry, f"imported from labtech cache {key}\n"))
        report.imported.append(converted.task_id)
    destination.commit(records)
    return report


def _convert_entry(metadata: dict[str, Any]) -> _Converted:
    cache = metadata.get("cache")
    if cache != PICKLE_CACHE:
        raise Unsupported(f"its cache is {cache!r}; labnb imports only labtech's {PICKLE_CACHE}")
    return _convert_task(metadata["task"])


def _convert_task(data: dict[str, Any]) -> _Converted:
    if data.get("_is_task") is not True:
        raise Unsupported("its metadata does not describe a task")
    module, qualname = split_class_path(data["__class__"])
    code_version = data.get("_code_version")
    stored: dict[str, Any] = {}
    hashed: dict[str, Any] = {}
    for name, value in data.items():
        if name in ("_is_task", "__class__", "_code_version"):
            continue
        if name.startswith("_"):
            raise Unsupported(f"its metadata has an unknown key {name!r}")
        stored[name], hashed[name] = _convert_value(value)
    task_id = hash_identity(qualname, code_version, hashed)
    return _Converted(qualname, module, code_version, stored, task_id)


def _convert_value(value: Any) -> tuple[Any, Any]:
    """A labtech-encoded parameter in labnb's (stored form, hash form); see ``model.identity``."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value, value
    if isinstance(value, list):
        pairs = [_convert_value(item) for item in value]
        return [stored for stored, _ in pairs], [hashed for _, hashed in pairs]
    if not isinstance(value, dict):
        raise Unsupported(f"a parameter value of type {type(value).__name__} is not understood")
    if value.get("_is_task") is True:
        task = _convert_task(value)
        stored = {
            "task": task.type_name,
            "module": task.module,
            "id": task.task_id,
            "params": task.params,
        }
        return stored, {"task": task.type_name, "id": task.task_id}
    if value.get("_is_enum") is True:
        module, qualname = split_class_path(value["__class__"])
        name = value["name"]
        return (
            {"enum": qualname, "name": name, "module": module},
            {"enum": qualname, "name": name},
        )
    markers = [key for key in value if key.startswith("_is_")]
    if markers:
        raise Unsupported(f"a parameter marked {markers[0]!r} is not understood")
    converted = {key: _convert_value(item) for key, item in value.items()}
    return (
        {"dict": {key: stored for key, (stored, _) in converted.items()}},
        {"dict": {key: hashed for key, (_, hashed) in converted.items()}},
    )


def split_class_path(path: str) -> tuple[str, str]:
    """``module.Qual.Name`` as (module, qualified name).

    labtech records a class as one dotted path, which does not say where the
    module ends. The longest prefix that is a loaded or findable module is
    taken; when none is (the notebook that defined the class is gone), the
    last part is the class name.
    """
    parts = path.split(".")
    for end in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:end])
        if module in sys.modules or _findable(module):
            return module, ".".join(parts[end:])
    module, _, qualname = path.rpartition(".")
    return module, qualname


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _timings(metadata: dict[str, Any]) -> tuple[float, float]:
    try:
        started = datetime.fromisoformat(metadata["start_timestamp"]).timestamp()
        duration = float(metadata.get("duration_seconds") or 0.0)
    except (KeyError, TypeError, ValueError):
        return 0.0, 0.0
    return started, started + duration
