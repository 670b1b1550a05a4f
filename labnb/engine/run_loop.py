"""One run: drive the scheduler and a runner until every planned task is done or failed.

Runner events are folded into the run's ``RunState`` (which displays read);
outcomes are committed to storage in batches, so finished results are kept
even when the run is interrupted or cancelled a moment later. What tasks print
goes to their logs as it arrives (``TaskLog``: a file once it is long), and
only its end to displays and followers (``live_output``).
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import time
from collections.abc import Callable
from typing import Any

from ..errors import TaskFailed
from ..model.cell_versions import KEPT_NAME, cell_version_of
from ..model.code_hash import code_hash
from ..model.tasks import (
    AUTO,
    code_version_of,
    config_origin,
    dependencies_of,
    meta_of,
    stored_params,
    task_id,
)
from ..runners.base import Metric, Output, Progress, Runner, Started
from ..storage import IndexEntry, Record, Storage, Tracking
from ..storage.index import TaskRow
from ..storage.store import is_disk_full
from ..storage.task_logs import Logs, TaskLog
from .claims import Claims
from .job import Failure, Job, Outcome, RunSetup
from .live_output import LiveOutput
from .machine import Machine
from .packing import Pool
from .planning import Plan, load_cached
from .scheduler import Scheduler
from .state import CANCELLED, DONE, FAILED, WAITING, RunState

NOT_STARTED = "not started"
"""A task the run never started (it stopped first: a failure, a cancel)."""

log = logging.getLogger("labnb")

LIVE_METRIC_POINTS = 500
"""Points per metric a running task's record keeps for live charts (its entry keeps all)."""
POLL_SECONDS = 0.1
COMMIT_SECONDS = 0.2
"""Outcomes are committed to the index at most this long after they arrive:
one transaction per batch instead of one per task."""


class RunLoop:
    scheduler_type: type[Scheduler] = Scheduler
    """What decides which task runs next (a search's loop uses one that grows)."""

    def __init__(
        self,
        plan: Plan,
        storage: Storage,
        runner: Runner,
        setup: RunSetup,
        continue_on_failure: bool,
        run_id: str | None = None,
        roots: set[str] | frozenset[str] = frozenset(),
        machine: Machine | None = None,
        code: dict[str, str] | None = None,
    ) -> None:
        """``machine``: what a runner that packs tasks (a local one) packs them onto.
        ``code``: each task type's code hash (``code_hashes``), taken where the run
        was asked for: there the user's own classes and their source are."""
        self.plan = plan
        self.storage = storage
        self.runner = runner
        self.setup = setup
        self.state = RunState(plan)
        pool = None
        if machine is not None and runner.packs:
            gpus = any(node.needs.gpus for node in plan.nodes)
            pool = Pool.of(machine, runner.capacity, gpus)
        self.scheduler = self.scheduler_type(plan.nodes, continue_on_failure, pool)
        self.code = code if code is not None else code_hashes(plan)
        self.payloads = dict(plan.loaded)
        self.run_ids = dict(plan.run_ids)
        self.failures: dict[str, TaskFailed] = {}
        self.first_failure: TaskFailed | None = None
        self._records: list[Record] = []
        self._committed_at = time.monotonic()
        self._cancel_requested = False
        self.claims = Claims(storage, run_id)
        self.roots = roots
        """Ids of the tasks the user submitted (the rest are their dependencies)."""
        self._output = LiveOutput()
        """What tasks printed since the last commit, for the run's followers."""
        self._logs: dict[str, TaskLog] = {}
        """The logs of the tasks running, as they print."""
        self._logs_folder = storage.logs_folder()
        self._changed: set[str] = set()
        """Tasks whose state the run record has not been told yet."""
        self._limits: dict[str, float] = {}
        """Started tasks whose type has a time limit (the limit), until they end."""
        self._timed_out: dict[str, float] = {}
        """Tasks stopped for running past their time limit (the limit)."""
        self._lost: str | None = None
        """Why the storage is gone, once the run found it deleted (``_check_storage``)."""
        self._ours: list[str] = []
        """Tasks this run took over from another run, to start when a worker is free."""
        self._configs: dict[str, str] = {}
        """Digest of the config file each task was built from (``labnb.sweep``)."""

    def run(self, recorded: Callable[[], object] | None = None) -> None:
        """Run to the end; on an exception (KeyboardInterrupt) stop every worker and re-raise.

        ``recorded`` is called once the run's record exists (followers can find
        it); a run given it is recorded even when it has nothing to compute.
        """
        if not self.plan.nodes and recorded is None:
            self.state.close(DONE)
            return
        outcome = CANCELLED
        self.runner.open(self.setup)
        self.claims.start([node.key for node in self.plan.nodes if self._shared(node.key)])
        self._changed.update(self.state.records)
        try:
            self._keep_configs()  # before any entry or task row names one
            self._commit()  # every task's row, so followers see the whole run at once
            if recorded is not None:
                recorded()
            while not self.scheduler.over and not self._cancel_requested and not self._lost:
                self._submit_ready()
                if self.runner.busy:
                    self._handle(self.runner.poll(POLL_SECONDS))
                else:  # only waiting for other runs' results
                    time.sleep(POLL_SECONDS)
                self._enforce_time_limits()
                self._adopt(*self.claims.tick())
                self._cancel_requested |= self.claims.cancelled
                if time.monotonic() - self._committed_at > COMMIT_SECONDS:
                    self._commit()
                    self._check_storage()
            if self._cancel_requested:
                self._stop("cancelled")
            else:
                self.runner.close()
                outcome = FAILED if self.failures else DONE
        except BaseException:
            self._stop("interrupted")
            raise
        finally:
            self._changed.update(self.state.records)  # the final state of every task
            self._commit(over=True)
            self.claims.finish(outcome)
            self.state.close(outcome)

    def _check_storage(self) -> None:
        """A storage deleted under a run (``rm -rf``) must fail the run, naming it:
        it once reported success with every result gone, and its workers
        recreated ``results/``, which the next Lab then refused as not a storage.
        Every worker is stopped and every unfinished task fails."""
        lost = self.storage.missing()
        if lost is None:
            return
        self._lost = lost
        self.scheduler.halt()
        self.runner.close(cancel=True)
        for key, record in self.state.items():
            if record.status not in (DONE, FAILED, CANCELLED) and key not in self.plan.loaded:
                error = TaskFailed(record.task, "StorageError", lost)
                self._record_failure(key, error)
                self.state.finished(key, FAILED, error)
        self._changed.update(self.state.records)

    def cancel(self) -> None:
        """Ask the run to stop (from any thread): nothing new starts, running tasks are stopped."""
        self._cancel_requested = True

    def _stop(self, why: str) -> None:
        self.scheduler.halt()
        self.runner.close(cancel=True)
        for key in self.state.running_keys():
            self._records.append((key, None, self._end_log(key, f"\n[labnb] {why}\n")))
            self.state.finished(key, CANCELLED)
        for key in [*self.claims.waiting, *self._ours]:
            self.state.finished(key, CANCELLED)
        self._changed.update(self.state.records)
        self.claims.waiting.clear()

    def _commit(self, over: bool = False) -> None:
        """Commit finished tasks and tell the run's record. On a full disk every
        result that fits is kept, a task whose result does not fails alone, and
        a record that cannot be written is told again next time (its output is
        in the tasks' logs)."""
        records, self._records = self._records, []
        if records:
            for key in self.storage.commit_what_fits(records):
                self._not_stored(key)
            finished = [key for key, _, _ in records]
            _unless_disk_full(
                "release the tasks it finished", lambda: self.claims.release(finished)
            )
            self._changed.update(key for key, _, _ in records)
        changed, self._changed = self._changed, set()
        output = self._output.take()
        rows = [self._task_row(key, over) for key in changed]
        if not _unless_disk_full("update its record", lambda: self.claims.record(rows, output)):
            self._changed |= changed
        self._committed_at = time.monotonic()

    def _not_stored(self, key: str) -> None:
        task = self.plan.tasks[key]
        error = TaskFailed(
            task,
            "OSError",
            "its result could not be stored: the storage's disk is full (free space and run "
            "again: only what is missing runs)",
        )
        self._record_failure(key, error)
        self.state.failed_after_all(key, error)

    def _keep_configs(self) -> None:
        """Keep the config files the run's tasks were built from, and the versions of
        the ``%%labtask`` cells they are (``lab.explain`` compares them): each text once."""
        kept = {}
        for key, task in self.plan.tasks.items():
            config = config_origin(task)
            if config is not None:
                digest = self._configs[key] = config.digest
                kept[digest] = (digest, config.name, config.text)
            cell, version = cell_version_of(type(task)), code_version_of(task)
            if cell is not None and version is not None:
                kept[version] = (version, KEPT_NAME.format(name=cell.name), cell.text())
        self.storage.index.keep_configs(list(kept.values()))

    def _task_row(self, key: str, over: bool = False) -> TaskRow:
        with self.state.lock:
            record = self.state.records[key]
            error = failure = None
            if record.error is not None:
                error = f"{record.error.exc_type}: {record.error.message}"[:1000]
                failure = _failure_json(record.error)
            status = NOT_STARTED if over and record.status == WAITING else record.status
            return TaskRow(
                key,
                meta_of(record.task).type_name,
                repr(record.task)[:300],
                status,
                record.started,
                record.finished,
                error,
                root=key in self.roots,
                pid=record.pid,
                progress=None if record.progress is None else json.dumps(record.progress),
                metrics=json.dumps(
                    {name: points[-LIVE_METRIC_POINTS:] for name, points in record.metrics.items()}
                )
                if record.metrics
                else None,
                failure=failure,
                resources=record.resources,
                config=self._configs.get(key),
            )

    def _submit_ready(self) -> None:
        while self.runner.busy < self.runner.capacity:
            if self._ours:  # taken over from another run: already leased to this one
                if not self.scheduler.regrant(self._ours[-1]):
                    return  # its needs are not free yet
                self._start(self._ours.pop())
                continue
            key = self.scheduler.take()
            if key is None:
                return
            if self.claims.take(key):
                self._start(key)
            else:  # another live run computes it, and _adopt takes its result
                self.scheduler.set_aside(key)

    def _shared(self, key: str) -> bool:
        """Whether other runs could use this task's result (it is cached)."""
        return meta_of(self.plan.tasks[key]).format is not None and self.setup.writer is not None

    def _adopt(self, done: dict[str, tuple[IndexEntry, str]], ours: list[str]) -> None:
        """Tasks other runs computed become this run's results; those they gave up
        (failed, stopped, died) are this run's to compute."""
        for key, (entry, holder) in done.items():
            task = self.plan.tasks[key]
            found = load_cached(self.storage, task, entry, decode=False)
            if found is None:  # damaged: compute it here after all
                self._ours.append(key)
                continue
            self.payloads[key], run_id = found
            if run_id:
                self.run_ids[key] = run_id
            self.scheduler.finish(key)
            self.state.output(key, f"[labnb] computed by run {holder}\n")
            self.state.finished(key, DONE)
            self._changed.add(key)
        self._ours.extend(ours)

    def _start(self, key: str) -> None:
        task = self.plan.tasks[key]
        dependencies = {task_id(dep): self.payloads[task_id(dep)] for dep in dependencies_of(task)}
        cache = meta_of(task).format is not None
        runs = {dep: self.run_ids[dep] for dep in dependencies if dep in self.run_ids}
        grant = self.scheduler.grants.get(key)
        limit = meta_of(task).timeout
        if limit is not None:
            self._limits[key] = limit
        self.state.starting(key, grant)
        self._changed.add(key)
        self.runner.submit(Job(key, task, dependencies, cache, runs, grant))

    def _handle(self, events: list[Any]) -> None:
        for event in events:
            if event.task_id not in self.state.records:
                # Only a runner bug could send these; never let them break a run.
                log.warning("labnb ignored an event for a task not in this run: %r", event)
            elif isinstance(event, Output):
                self.state.output(event.task_id, event.text)
                self._log(event.task_id).write(event.text)
                self._output.add(event.task_id, event.text)
            elif isinstance(event, Metric):
                self.state.metric(event.task_id, event.name, event.value, event.step)
                self._changed.add(event.task_id)
            elif isinstance(event, Progress):
                self.state.progress(event.task_id, event.n, event.total, event.desc)
                self._changed.add(event.task_id)
            elif isinstance(event, Started):
                self.state.started(event.task_id, event.pid, event.time)
                self._changed.add(event.task_id)
            elif isinstance(event, Outcome):
                self._records.append(self._finish(event))

    def _enforce_time_limits(self) -> None:
        """Stop tasks that have run longer than their type's ``timeout``."""
        now = time.time()
        # Not a walk over every task per turn: that made a long chain O(n²).
        for key, limit in list(self._limits.items()):
            started = self.state.records[key].started
            if started is None or key in self._timed_out:
                continue
            if now - started > limit and self.runner.stop(key):
                self._timed_out[key] = limit

    def _log(self, key: str) -> TaskLog:
        task_log = self._logs.get(key)
        if task_log is None:
            task_log = self._logs[key] = TaskLog(key, self._logs_folder)
        return task_log

    def _end_log(self, key: str, last: str = "") -> Logs:
        """A finished task's log, with ``last`` (a traceback, why it stopped) at its end."""
        task_log = self._logs.pop(key, None) or TaskLog(key, self._logs_folder)
        task_log.write(last)
        return task_log.close()

    def _finish(self, outcome: Outcome) -> Record:
        key = outcome.task_id
        self._limits.pop(key, None)
        task = self.plan.tasks[key]
        if outcome.failure is not None and key in self._timed_out:
            limit = self._timed_out.pop(key)
            outcome.failure = Failure(
                "TimeoutError", f"it ran longer than its time limit of {limit:g} s and was stopped"
            )
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
            self.state.finished(key, FAILED, error)
            return key, None, self._end_log(key, outcome.failure.traceback)
        self.scheduler.finish(key)
        self.state.finished(key, DONE)
        if outcome.payload is not None:
            self.payloads[key] = outcome.payload
        if outcome.mlflow_run_id:
            self.run_ids[key] = outcome.mlflow_run_id
        entry = None
        meta = meta_of(task)
        if outcome.stored is not None and meta.format is not None:
            code = self.code.get(type_key(task))
            entry = IndexEntry(
                task_id=key,
                type=meta.type_name,
                module=meta.module,
                code_version=code if meta.code_version == AUTO else meta.code_version,
                params=stored_params(task),
                format=meta.format.name,
                file=outcome.stored.name,
                size=outcome.stored.size,
                checksum=outcome.stored.checksum,
                started=outcome.started,
                finished=outcome.finished,
                mlflow_run_id=outcome.mlflow_run_id,
                tracking=Tracking.from_json(outcome.record),
                artifacts=outcome.artifacts,
                run_id=self.claims.run_id,
                config=self._configs.get(key),
                code=code,
                result=outcome.number,
            )
        return key, entry, self._end_log(key)

    def _record_failure(self, key: str, error: TaskFailed) -> None:
        self.failures[key] = error
        if self.state.records[key].error is None:
            self.state.records[key].error = error
        if self.first_failure is None:
            self.first_failure = error


def _unless_disk_full(what: str, action: Callable[[], object]) -> bool:
    """Run ``action``; a full disk only logs a warning (the run goes on). Whether it ran."""
    try:
        action()
        return True
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        log.warning("labnb: the run could not %s: the storage's disk is full", what)
        return False


def type_key(task: Any) -> str:
    meta = meta_of(task)
    return f"{meta.module}:{meta.type_name}"


def code_hashes(plan: Plan) -> dict[str, str]:
    """The code hash of each task type the plan runs, by ``type_key``."""
    types_ = {type_key(plan.tasks[node.key]): type(plan.tasks[node.key]) for node in plan.nodes}
    return {key: code_hash(cls) for key, cls in types_.items()}


def _failure_json(error: TaskFailed) -> str:
    """A failure as its run record keeps it, original exception included when it pickles."""
    cause = None
    if error.__cause__ is not None:
        try:
            cause = base64.b64encode(pickle.dumps(error.__cause__)).decode()
        except Exception:
            cause = None
    return json.dumps(
        {
            "type": error.exc_type,
            "message": error.message,
            "traceback": error.traceback,
            "exception": cause,
        }
    )
