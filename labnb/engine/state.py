"""What one run looks like right now, folded from runner events.

The run loop writes here (from whichever thread runs it); displays read
snapshots under the same lock: the text progress bar as a listener called on
each event, the widget by polling ``version`` a few times a second. The end
of a task's output is kept here while it runs, to be shown live
(``live_output``); its whole log goes to the storage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import TaskFailed
from .live_output import keep_tail
from .packing import Grant
from .planning import Plan

RUNNING, WAITING, DONE, FAILED, LOADED, CANCELLED = (
    "running",
    "waiting",
    "done",
    "failed",
    "loaded",
    "cancelled",
)
STARTING = "starting"
"""Handed to a worker that has not begun it yet (a worker starting up): its
elapsed time counts from when it begins, as the cache records it."""
IN_FLIGHT = (STARTING, RUNNING)


class Listener(Protocol):
    def output(self, task: Any, text: str) -> None: ...

    def finished(self, task: Any) -> None: ...


@dataclass
class TaskRecord:
    task: Any
    status: str
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    progress: tuple[int, int | None, str | None] | None = None
    output: list[str] = field(default_factory=list)
    error: TaskFailed | None = None
    metrics: dict[str, list[tuple[int | None, float]]] = field(default_factory=dict)
    """Logged metrics so far: name -> [(step, value), ...]."""
    type_name: str = ""
    """The task's type, as displays name it."""
    resources: str | None = None
    """What it holds while it runs (``"GPU 0 · 4 CPUs"``), when it was given any."""

    def __post_init__(self) -> None:
        self.type_name = self.type_name or type(self.task).__qualname__


class RunState:
    def __init__(self, plan: Plan) -> None:
        self.lock = threading.RLock()
        self.version = 0
        self.records: dict[str, TaskRecord] = {}
        for key in plan.loaded:
            self.records[key] = TaskRecord(plan.tasks[key], LOADED)
        for node in plan.nodes:
            self.records[node.key] = TaskRecord(plan.tasks[node.key], WAITING)
        self.to_run = len(plan.nodes)
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.outcome = RUNNING
        self.listeners: list[Listener] = []

    def started(self, key: str, pid: int, when: float) -> None:
        with self.lock:
            record = self.records[key]
            record.status, record.pid, record.started = RUNNING, pid, when
            self.version += 1

    def starting(self, key: str, grant: Grant | None) -> None:
        """``key`` is handed to a worker, holding ``grant`` (what displays show beside it)."""
        label = None if grant is None else grant.describe() or None
        with self.lock:
            record = self.records[key]
            record.status = STARTING
            if label is not None:
                record.resources = label
            self.version += 1

    def output(self, key: str, text: str) -> None:
        with self.lock:
            record = self.records[key]
            record.output.append(text)
            keep_tail(record.output)
            self.version += 1
        for listener in self.listeners:
            listener.output(record.task, text)

    def progress(self, key: str, n: int, total: int | None, desc: str | None) -> None:
        with self.lock:
            self.records[key].progress = (n, total, desc)
            self.version += 1

    def metric(self, key: str, name: str, value: float, step: int | None) -> None:
        with self.lock:
            self.records[key].metrics.setdefault(name, []).append((step, value))
            self.version += 1

    def finished(self, key: str, status: str, error: TaskFailed | None = None) -> None:
        with self.lock:
            record = self.records[key]
            record.status, record.error = status, error
            record.finished = time.time()
            if record.started is None:
                record.started = record.finished
            self.version += 1
        for listener in self.listeners:
            listener.finished(record.task)

    def failed_after_all(self, key: str, error: TaskFailed) -> None:
        """A task that finished failed after all (its result could not be stored);
        listeners were told it finished already."""
        with self.lock:
            record = self.records[key]
            record.status, record.error = FAILED, error
            self.version += 1

    def close(self, outcome: str) -> None:
        with self.lock:
            self.outcome = outcome
            self.finished_at = time.time()
            self.version += 1

    def running_keys(self) -> list[str]:
        with self.lock:
            return [key for key, record in self.records.items() if record.status in IN_FLIGHT]

    def counts(self) -> dict[str, int]:
        with self.lock:
            counts = dict.fromkeys((STARTING, RUNNING, WAITING, DONE, FAILED, LOADED, CANCELLED), 0)
            for record in self.records.values():
                counts[record.status] += 1
            return counts

    def items(self) -> Iterator[tuple[str, TaskRecord]]:
        """A snapshot of the records (call under ``lock`` for a consistent view)."""
        return iter(list(self.records.items()))
