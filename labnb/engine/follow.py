"""Following a run from its record: a ``RunState`` mirrored from the storage.

A run process writes its run's record as it goes (``run_loop.RunLoop``:
task rows with live state, printed text, a version per update). A follower
reads only what changed since its last look and folds it into a local
``RunState``, the same object a run inside this process would update, so the
widget, the text bar and ``Run`` read a followed run exactly as a local one.
Any number of processes can follow one run.
"""

from __future__ import annotations

import base64
import contextlib
import json
import pickle
from typing import Any

from ..errors import TaskFailed
from ..storage.index import Index, RunRow, TaskRow
from ..storage.runs import run_status
from .planning import Plan
from .state import (
    CANCELLED,
    DONE,
    FAILED,
    IN_FLIGHT,
    LOADED,
    RUNNING,
    STARTING,
    WAITING,
    RunState,
    TaskRecord,
)

_STATUSES = {STARTING, RUNNING, WAITING, DONE, FAILED, LOADED, CANCELLED}
ENDED = (DONE, FAILED, LOADED, CANCELLED)


class RecordedTask:
    """A task whose class this process cannot rebuild (defined in a kernel that is
    gone, in a module not importable here): its id, type and text, from the record."""

    def __init__(self, row: TaskRow) -> None:
        self.task_id = row.task_id
        self.type_name = row.type
        self.label = row.label

    def __repr__(self) -> str:
        return self.label


class Follower:
    """Mirrors the record of run ``run_id`` into ``state``; ``poll()`` to catch up."""

    def __init__(self, index: Index, run_id: str, tasks: dict[str, Any]) -> None:
        self.index = index
        self.run_id = run_id
        self.tasks = tasks
        """Task objects by id, where this process has them."""
        self.state = RunState(Plan())
        self.status = RUNNING
        """The run's status: ``running``, ``done``, ``failed``, ``cancelled`` or ``lost``."""
        self.row: RunRow | None = None
        self._version = 0
        self._after_output = 0

    def poll(self) -> bool:
        """Read what changed; False when the run is not (or no longer) recorded."""
        update = self.index.run_update(self.run_id, self._version, self._after_output)
        if update is None:
            return False
        run = update.run
        self.row = run
        with self.state.lock:
            self.state.started_at = run.started
            for row in run.tasks:
                self._apply(row)
            for seq, key, text in update.output:
                self._after_output = seq
                self._output(key, text)
            self._version = run.version
            self.state.to_run = sum(r.status != LOADED for r in self.state.records.values())
            self.status = run_status(run)
            if self.status != RUNNING and self.state.outcome == RUNNING:
                self._close(run)
            self.state.version += 1
        return True

    def _close(self, run: RunRow) -> None:
        """The run ended: tasks still running in its record never will finish (a
        killed or lost run process could not say so itself); waiting ones never
        started."""
        for record in self.state.records.values():
            if record.status in IN_FLIGHT:
                record.status = CANCELLED
        self.state.close(self.status)
        self.state.finished_at = run.finished or run.heartbeat

    def _apply(self, row: TaskRow) -> None:
        state = self.state
        record = state.records.get(row.task_id)
        if record is None:
            task = self.tasks.get(row.task_id) or RecordedTask(row)
            record = state.records[row.task_id] = TaskRecord(task, WAITING, type_name=row.type)
        was = record.status
        record.status = row.status if row.status in _STATUSES else WAITING  # "not started"
        record.started, record.finished, record.pid = row.started, row.finished, row.pid
        record.resources = row.resources
        if row.progress is not None:
            n, total, desc = json.loads(row.progress)
            record.progress = (n, total, desc)
        if row.metrics is not None:
            record.metrics = {
                name: [(step, value) for step, value in points]
                for name, points in json.loads(row.metrics).items()
            }
        if row.failure is not None and record.error is None:
            record.error = _error(record.task, row.failure)
        if record.status in ENDED and was not in ENDED:
            for listener in state.listeners:
                listener.finished(record.task)

    def _output(self, key: str, text: str) -> None:
        if key in self.state.records:
            self.state.output(key, text)


def _error(task: Any, failure: str) -> TaskFailed:
    data = json.loads(failure)
    error = TaskFailed(task, data["type"], data["message"], data.get("traceback") or "")
    if data.get("exception"):
        with contextlib.suppress(Exception):
            error.__cause__ = pickle.loads(base64.b64decode(data["exception"]))
    return error
