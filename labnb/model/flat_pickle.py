"""Task graphs pickled flat: each task once, the tasks it holds as references.

Pickle recurses one level per nested object, so a task whose parameters reach
a chain of 10,000 dependent tasks ran out of stack ("excessively deep
recursion") when it was sent to the run process or to a worker. Here the
tasks an object reaches are written first, dependencies before dependents,
each as a pickle of its own in which the tasks it holds (written before it)
are persistent references; the reader rebuilds them in the same order. No
pickle nests deeper than one task's own parameters.

One stream is a sequence of pickles from one pickler (its memo spans them,
so a class pickled by value is written once), read by one unpickler. A
``known`` set outlives a stream: a worker's jobs (``runners.shipping``) send
each task once, not the whole chain under every job.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import cloudpickle

from .tasks import dependencies_of, task_id

PROTOCOL = pickle.HIGHEST_PROTOCOL


class FlatPickler(cloudpickle.Pickler):
    """Writes an object after the tasks it reaches; ``known`` holds the ids of
    tasks the reader has already (they are referred to, not written)."""

    def __init__(self, file: io.BytesIO, known: set[str] | None = None) -> None:
        super().__init__(file, protocol=PROTOCOL)
        self.known = set() if known is None else known
        self._refs: dict[int, str] = {}
        """Tasks of the graph being written that the reader has: ``id()`` to task id."""

    def persistent_id(self, obj: Any) -> Any:
        return self._refs.get(id(obj))

    def dump_flat(self, obj: Any, roots: list[Any]) -> list[Any]:
        """Write ``obj``, whose tasks are ``roots`` (and what they depend on);
        returns the tasks written now (the others the reader had)."""
        new = self._new_tasks(roots)
        try:
            self.dump(len(new))
            for task in new:
                self.dump(task)
                key = task_id(task)
                self._refs[id(task)] = key
                self.known.add(key)
            self.dump(obj)
        finally:
            self._refs.clear()
        return new

    def _new_tasks(self, roots: list[Any]) -> list[Any]:
        """The tasks the reader lacks, dependencies first; an iterative walk that
        stops at tasks the reader has (their dependencies it has too)."""
        order: list[Any] = []
        seen: set[int] = set()
        stack: list[tuple[Any, bool]] = [(root, False) for root in reversed(roots)]
        while stack:
            task, finishing = stack.pop()
            if finishing:
                order.append(task)
                continue
            if id(task) in seen:
                continue
            seen.add(id(task))
            key = task_id(task)
            if key in self.known:
                self._refs[id(task)] = key
                continue
            stack.append((task, True))
            stack.extend((dep, False) for dep in reversed(dependencies_of(task)))
        return order


class FlatUnpickler(pickle.Unpickler):
    """Reads what a ``FlatPickler`` wrote; ``known`` holds the tasks read so far
    (by id), kept for later streams when the caller keeps the dict."""

    def __init__(self, file: io.BytesIO, known: dict[str, Any] | None = None) -> None:
        super().__init__(file)
        self.known = {} if known is None else known

    def persistent_load(self, pid: Any) -> Any:
        return self.known[pid]

    def load_flat(self) -> Any:
        for _ in range(self.load()):
            task = self.load()
            self.known[task_id(task)] = task
        return self.load()


def dumps(tasks: list[Any]) -> bytes:
    """A list of tasks, pickled flat (cloudpickle: notebook classes by value)."""
    buffer = io.BytesIO()
    FlatPickler(buffer).dump_flat(tasks, tasks)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    return FlatUnpickler(io.BytesIO(data)).load_flat()
