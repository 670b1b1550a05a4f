"""How jobs cross into a worker process: each task class travels once per worker and run.

cloudpickle ships classes defined in a notebook by value, which costs
kilobytes and tens of microseconds per job when done naively. Here a job's
task classes are sent the first time a worker needs them; after that a job
refers to them by a small key (pickle's ``persistent_id``), so a job message
holds little more than the task's parameters. A warm worker gets a new
``JobSender`` and ``JobReceiver`` pair for each run: the keys are ids of class
objects, which a later run's classes (a cell run again) may reuse.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import cloudpickle

from ..engine.job import Job
from ..model.tasks import dependencies_of

PROTOCOL = pickle.HIGHEST_PROTOCOL


def task_types(task: Any) -> dict[int, type]:
    """The task classes of a task and everything nested in it, by a key unique in this process."""
    found: dict[int, type] = {}
    stack, seen = [task], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found[id(type(current))] = type(current)
        stack.extend(dependencies_of(current))
    return found


class _JobPickler(cloudpickle.Pickler):
    def __init__(self, file: io.BytesIO, keys: dict[int, type]) -> None:
        super().__init__(file, protocol=PROTOCOL)
        self._keys = keys

    def persistent_id(self, obj: Any) -> int | None:
        key = id(obj)
        return key if key in self._keys and self._keys[key] is obj else None


class JobSender:
    """Parent side, one per worker: remembers which classes that worker already has."""

    def __init__(self) -> None:
        self._sent: set[int] = set()

    def dumps(self, job: Job) -> bytes:
        types = task_types(job.task)
        new = {key: cls for key, cls in types.items() if key not in self._sent}
        buffer = io.BytesIO()
        _JobPickler(buffer, types).dump(job)
        types_bytes = cloudpickle.dumps(new, protocol=PROTOCOL) if new else b""
        self._sent.update(new)
        return pickle.dumps((job.task_id, types_bytes, buffer.getvalue()), protocol=PROTOCOL)


class _JobUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, types: dict[int, type]) -> None:
        super().__init__(file)
        self._types = types

    def persistent_load(self, pid: Any) -> type:
        return self._types[pid]


class JobReceiver:
    """Worker side: the classes received so far, and the jobs that refer to them."""

    def __init__(self) -> None:
        self._types: dict[int, type] = {}

    def loads(self, types_bytes: bytes, job_bytes: bytes) -> Job:
        if types_bytes:
            self._types.update(pickle.loads(types_bytes))
        return _JobUnpickler(io.BytesIO(job_bytes), self._types).load()
