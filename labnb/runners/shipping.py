"""How jobs cross into a worker process: each task class travels once per worker and run.

cloudpickle ships classes defined in a notebook by value, which costs
kilobytes and tens of microseconds per job when done naively. Here a job's
task classes are sent the first time a worker needs them; after that a job
refers to them by a small key (pickle's ``persistent_id``), so a job message
holds little more than the task's parameters. Tasks travel flat
(``model.flat_pickle``), each once per worker: a dependency the worker was
sent before is a reference. A warm worker gets a new ``JobSender`` and
``JobReceiver`` pair for each run: the keys are ids of class objects, which a
later run's classes (a cell run again) may reuse.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import cloudpickle

from ..engine.job import Job
from ..model.flat_pickle import FlatPickler, FlatUnpickler
from ..model.tasks import dependencies_of, detach_result, is_task_type

PROTOCOL = pickle.HIGHEST_PROTOCOL


class _JobPickler(FlatPickler):
    """Task classes become keys (``types_used``); tasks the worker has, references."""

    def __init__(self, file: io.BytesIO, known: set[str]) -> None:
        super().__init__(file, known)
        self.types_used: dict[int, type] = {}

    def persistent_id(self, obj: Any) -> Any:
        if is_task_type(obj):
            self.types_used[id(obj)] = obj
            return id(obj)
        return super().persistent_id(obj)


class JobSender:
    """Parent side, one per worker: remembers which classes and tasks that worker
    already has, so each travels to it once (a job for the end of a chain of
    10,000 tasks sends only what the worker lacks, not the whole chain)."""

    def __init__(self) -> None:
        self._sent: set[int] = set()
        self._tasks: set[str] = set()

    def dumps(self, job: Job) -> bytes:
        buffer = io.BytesIO()
        pickler = _JobPickler(buffer, self._tasks)
        pickler.dump_flat(job, [job.task])
        new = {key: cls for key, cls in pickler.types_used.items() if key not in self._sent}
        types_bytes = cloudpickle.dumps(new, protocol=PROTOCOL) if new else b""
        self._sent.update(new)
        return pickle.dumps((job.task_id, types_bytes, buffer.getvalue()), protocol=PROTOCOL)


class _JobUnpickler(FlatUnpickler):
    def __init__(self, file: io.BytesIO, types: dict[int, type], tasks: dict[str, Any]) -> None:
        super().__init__(file, tasks)
        self._types = types

    def persistent_load(self, pid: Any) -> Any:
        return self._types[pid] if isinstance(pid, int) else super().persistent_load(pid)


class JobReceiver:
    """Worker side: the classes and tasks received so far, and the jobs that refer to them.

    A kept task that was a job's dependency had that job's dependency result
    attached; it is detached when the next job arrives, so results do not pile
    up in the worker along a chain."""

    def __init__(self) -> None:
        self._types: dict[int, type] = {}
        self._tasks: dict[str, Any] = {}
        self._attached: tuple[Any, ...] = ()

    def loads(self, types_bytes: bytes, job_bytes: bytes) -> Job:
        for task in self._attached:
            detach_result(task)
        if types_bytes:
            self._types.update(pickle.loads(types_bytes))
        job: Job = _JobUnpickler(io.BytesIO(job_bytes), self._types, self._tasks).load_flat()
        self._attached = dependencies_of(job.task)
        return job
