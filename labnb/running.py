"""One run: drive the scheduler and a runner until every planned task is done or failed.

Events from the runner are folded here: output goes to the progress display
and is collected per task; outcomes are committed to storage in batches (one
index transaction per poll), so finished results are kept even when the run
is interrupted a moment later.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from .errors import TaskFailed
from .execution import Job, Outcome, RunSetup
from .planning import Plan
from .progress import TextProgress
from .runners.base import Output, Runner, Started
from .scheduler import Scheduler
from .storage import Record, Storage

POLL_SECONDS = 0.5
COMMIT_SECONDS = 0.2
"""Outcomes are committed to the index at most this long after they arrive:
one transaction per batch instead of one per task."""


class Execution:
    def __init__(
        self,
        plan: Plan,
        storage: Storage,
        runner: Runner,
        setup: RunSetup,
        progress: TextProgress,
        continue_on_failure: bool,
    ) -> None:
        self.plan = plan
        self.storage = storage
        self.runner = runner
        self.setup = setup
        self.progress = progress
        self.scheduler = Scheduler(plan.nodes, continue_on_failure)
        self.payloads = dict(plan.loaded)
        self.failures: dict[str, TaskFailed] = {}
        self.first_failure: TaskFailed | None = None
        self._output: dict[str, list[str]] = defaultdict(list)
        self._started: dict[str, float] = {}
        self._records: list[Record] = []
        self._committed_at = time.monotonic()

    def run(self) -> None:
        self.runner.open(self.setup)
        try:
            while not self.scheduler.over:
                self._submit_ready()
                self._handle(self.runner.poll(POLL_SECONDS))
                if time.monotonic() - self._committed_at > COMMIT_SECONDS:
                    self._commit()
        except BaseException:
            self.runner.close(cancel=True)
            self._keep_interrupted_logs()
            raise
        finally:
            self._commit()
        self.runner.close()

    def _commit(self) -> None:
        records, self._records = self._records, []
        if records:
            self.storage.commit(records)
        self._committed_at = time.monotonic()

    def _submit_ready(self) -> None:
        while self.runner.busy < self.runner.capacity:
            key = self.scheduler.take()
            if key is None:
                return
            task = self.plan.tasks[key]
            dependencies = {
                dep._labnb_id: self.payloads[dep._labnb_id] for dep in task._labnb_dependencies
            }
            cache = task._labnb_meta.format is not None
            self._started[key] = time.time()
            self.runner.submit(Job(key, task, dependencies, cache))

    def _handle(self, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, Output):
                self._output[event.task_id].append(event.text)
                self.progress.output(self.plan.tasks[event.task_id], event.text)
            elif isinstance(event, Started):
                self._started[event.task_id] = event.time
            elif isinstance(event, Outcome):
                self._records.append(self._finish(event))

    def _finish(self, outcome: Outcome) -> Record:
        key = outcome.task_id
        task = self.plan.tasks[key]
        logs = "".join(self._output.pop(key, ()))
        self.progress.finished(task)
        if outcome.failure is not None:
            error = outcome.failure.to_error(task)
            self._record_failure(key, error)
            for blocked in self.scheduler.fail(key):
                blocked_task = self.plan.tasks[blocked]
                self._record_failure(
                    blocked,
                    TaskFailed(
                        blocked_task, "DependencyFailed", f"it depends on {task!r}, which failed"
                    ),
                )
            return key, None, logs + outcome.failure.traceback
        self.scheduler.finish(key)
        self.payloads[key] = outcome.payload
        entry = None
        if outcome.stored is not None:
            meta = task._labnb_meta
            entry = {
                "type": meta.type_name,
                "module": meta.module,
                "code_version": meta.code_version,
                "params": task._labnb_stored["params"],
                "format": meta.format.name,
                "file": outcome.stored.name,
                "size": outcome.stored.size,
                "checksum": outcome.stored.checksum,
                "started": outcome.started,
                "finished": outcome.finished,
                "mlflow_run_id": outcome.mlflow_run_id,
            }
        return key, entry, logs

    def _record_failure(self, key: str, error: TaskFailed) -> None:
        self.failures[key] = error
        if self.first_failure is None:
            self.first_failure = error

    def _keep_interrupted_logs(self) -> None:
        self._records.extend(
            (key, None, "".join(self._output.pop(key, ())) + "\n[labnb] interrupted\n")
            for key in self.scheduler.running
        )
