"""``Run``: the handle of a run, wherever it runs.

A run is usually owned by a run process (``run_process.py``) and this handle
follows its record in the storage (``RecordedRun``): the handle ``submit``
returns and every run ``lab.runs()`` finds, in this process or any other, work
the same. Runs that cannot leave this process (no storage to keep results in,
tasks whose results are not cached, a Ray or custom runner, a context that
does not pickle) run in a daemon thread here (``LocalRun``), as in 0.1.0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timezone
from multiprocessing.connection import Connection
from typing import Any

from ..errors import TaskFailed
from ..model import flat_pickle
from ..model.config_files import ConfigFile
from ..model.formats import Payload, ResultFormat
from ..model.tasks import attach_result, dependencies_of, meta_of, task_id
from ..storage import CorruptEntry, IndexEntry, Storage
from ..storage.runs import TASKS_SUFFIX, RunRecord, read_runs, run_file
from .follow import Follower
from .planning import Plan
from .run_loop import RunLoop
from .state import DONE, FAILED, LOADED, RUNNING, RunState

log = logging.getLogger("labnb")

FOLLOW_SECONDS = 0.1
"""How often a live run's record is read while this process follows it."""
KILL_GRACE_SECONDS = 5.0
ENDED_SECONDS = 1.0
"""How long a follower that saw its run end waits for the run process to say so."""


def attach_results(plan: Plan, payloads: dict[str, Payload]) -> None:
    """Give every task object of the plan its ``.result`` (decoded on first access)."""
    for key, instances in plan.instances.items():
        payload = payloads.get(key)
        if payload is not None:
            for instance in instances:
                attach_result(instance, payload)


class Run(ABC):
    """A run: ``done``, ``wait()``, ``results``, ``failures``, ``cancel()``, and its
    live widget when displayed as the last expression of a notebook cell."""

    def __init__(self, tasks: list[Any], storage: Storage) -> None:
        self.tasks = tasks
        """The tasks submitted (their dependencies are in ``state``)."""
        self.storage = storage
        self._callbacks: list[Callable[[Run], object]] | None = []
        self._callbacks_lock = threading.Lock()

    @property
    @abstractmethod
    def state(self) -> RunState:
        """The run's live state, as displays read it."""

    @property
    @abstractmethod
    def id(self) -> str: ...

    @property
    def status(self) -> str:
        """``running``, ``done``, ``failed``, ``cancelled``, or ``lost`` (its run process died)."""
        return self.state.outcome

    @property
    def done(self) -> bool:
        return self.status != RUNNING

    @property
    def started(self) -> datetime:
        return datetime.fromtimestamp(self.state.started_at, tz=timezone.utc)

    @property
    def finished(self) -> datetime | None:
        end = self.state.finished_at
        return None if end is None else datetime.fromtimestamp(end, tz=timezone.utc)

    @abstractmethod
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (True) or ``timeout`` seconds pass (False)."""

    @abstractmethod
    def cancel(self) -> bool:
        """Start nothing more and stop running tasks; finished results stay cached.
        False when the run is no longer running."""

    def counts(self) -> dict[str, int]:
        """How many of the run's tasks are in each state (as its record has them)."""
        record = self.record()
        if record is not None:
            return record.counts()
        counts: dict[str, int] = {}
        for _, task in self.state.items():
            counts[task.status] = counts.get(task.status, 0) + 1
        return counts

    @property
    @abstractmethod
    def results(self) -> dict[Any, Any]:
        """``{task: result}`` for the submitted tasks that have finished so far."""

    @property
    def failures(self) -> dict[Any, TaskFailed]:
        """``{task: TaskFailed}`` for every task of the run that failed so far
        (those that could not start because a dependency failed included)."""
        with self.state.lock:
            return {r.task: r.error for _, r in self.state.items() if r.error is not None}

    def record(self) -> RunRecord | None:
        """The run as its storage records it (``frame()``: a table of its tasks);
        None for a run the storage does not record."""
        found = read_runs(self.storage.index, [self.id])
        return found[0] if found else None

    def frame(self) -> Any:
        """The run's tasks as a DataFrame: id, type, task, status, started, finished,
        duration_s, error."""
        record = self.record()
        if record is None:
            raise LookupError(f"run {self.id} is not recorded in {self.storage!r}")
        return record.frame()

    @property
    def config(self) -> ConfigFile | None:
        """The config file the run's tasks were built from (``labnb.sweep``), as its
        record keeps it; None when they were built in code (``record().configs()``:
        all of them, when there were several)."""
        record = self.record()
        return None if record is None else record.config

    def add_done_callback(self, callback: Callable[[Run], object]) -> None:
        """Call ``callback(run)`` when the run ends (at once if it has), from a
        background thread."""
        with self._callbacks_lock:
            if self._callbacks is not None:
                self._callbacks.append(callback)
                return
        self._call(callback)

    def _ended(self) -> None:
        with self._callbacks_lock:
            callbacks, self._callbacks = self._callbacks or [], None
        for callback in callbacks:
            self._call(callback)

    def _call(self, callback: Callable[[Run], object]) -> None:
        try:
            callback(self)
        except Exception:
            log.exception("labnb: a Run done-callback failed")

    def __repr__(self) -> str:
        counts = self.state.counts()
        finished = counts["done"] + counts["loaded"]
        return (
            f"<labnb.Run {self.id} {self.status}: {finished}/{len(self.state.records)} finished, "
            f"{counts['running']} running, {counts['failed']} failed>"
        )

    def _ipython_display_(self) -> None:
        """In a notebook, the live widget (fed from the run's record when it has one)."""
        from ..display.kernel import in_kernel

        if not in_kernel():
            print(repr(self))
            return
        from ..display.widgets import RunView

        cancel = None if self.done else self.cancel
        RunView(self.state, cancel=cancel, storage=self.storage, run_id=self.recorded_id).show()

    @property
    def recorded_id(self) -> str | None:
        """The run's id when a run process owns it (it outlives this process)."""
        return None


class LocalRun(Run):
    """A run in a daemon thread of this process: the kernel stays idle meanwhile."""

    def __init__(self, tasks: list[Any], loop: RunLoop) -> None:
        super().__init__(tasks, loop.storage)
        self._loop = loop
        self._finished = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="labnb-run", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            self._loop.run()
        except BaseException as error:  # reported by wait(); the thread must not die silently
            self._error = error
        finally:
            attach_results(self._loop.plan, self._loop.payloads)
            self._ended()
            self._finished.set()  # after the callbacks: wait() returns once they ran

    @property
    def id(self) -> str:
        return self._loop.claims.run_id

    @property
    def state(self) -> RunState:
        return self._loop.state

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        finished = self._finished.wait(timeout)
        if finished and self._error is not None:
            raise self._error
        return finished

    @property
    def results(self) -> dict[Any, Any]:
        payloads = self._loop.payloads
        found = {task: payloads.get(task_id(task)) for task in self.tasks}
        return {task: payload.value for task, payload in found.items() if payload is not None}

    def cancel(self) -> bool:
        if self.done:
            return False
        self._loop.cancel()
        return True


class _CachedResult:
    """A finished run's result in the storage, found when first read: a local
    file is loaded from the file as a stream, never read whole as bytes first.
    If another process replaced the entry meanwhile (a ``bust_cache`` run of the
    same task), the one that replaced it. (A ``PayloadSource`` that stays in
    this process: task results never travel with tasks.)"""

    def __init__(self, storage: Storage, entry: IndexEntry, fmt: ResultFormat) -> None:
        self._storage, self._entry, self._format = storage, entry, fmt

    def read(self) -> bytes:
        return self._payload().data

    def load(self, fmt: ResultFormat) -> Any:
        return self._payload().value

    def _payload(self) -> Payload:
        try:
            return self._storage.payload(self._entry, self._format)
        except CorruptEntry:
            newer = self._storage.lookup(self._entry.task_id)
            if newer is None or newer.file == self._entry.file:
                raise
            return self._storage.payload(newer, self._format)


class RecordedRun(Run):
    """A run owned by a run process, followed through its record in the storage.

    While the run goes a daemon thread reads the record every ``FOLLOW_SECONDS``
    (the widget and ``wait`` read the mirrored state); a finished run is read once.
    ``ended`` (from ``launch``) becomes readable when the run ends, so the record is
    read then, not up to ``FOLLOW_SECONDS`` later: what a rerun cell waits for.
    """

    def __init__(
        self,
        run_id: str,
        storage: Storage,
        tasks: list[Any],
        plan: Plan | None = None,
        ended: Connection | None = None,
    ) -> None:
        super().__init__(tasks, storage)
        self._id = run_id
        self._plan = plan
        self._ended_signal = ended
        known = dict(plan.tasks) if plan is not None else _walk(tasks)
        self._follower = Follower(storage.index, run_id, known)
        self._follower.poll()
        self._payloads: dict[str, Payload] = {}
        self._ended_event = threading.Event()
        if self._follower.status == RUNNING:
            threading.Thread(target=self._follow, name="labnb-follow", daemon=True).start()
        else:
            self._finish()

    @property
    def id(self) -> str:
        return self._id

    @property
    def state(self) -> RunState:
        return self._follower.state

    @property
    def recorded_id(self) -> str | None:
        return self._id

    @property
    def status(self) -> str:
        return self._follower.status

    @property
    def pid(self) -> int | None:
        """The run process's pid (on ``host``)."""
        row = self._follower.row
        return None if row is None else row.pid

    @property
    def host(self) -> str | None:
        row = self._follower.row
        return None if row is None else row.host

    def _follow(self) -> None:
        try:
            while self._follower.status == RUNNING:
                self._pause()
                try:
                    self._follower.poll()
                except Exception:  # a busy disk: the next look will do
                    log.warning("labnb could not read the record of run %s", self._id)
        finally:
            self._finish()

    def _pause(self, timeout: float = FOLLOW_SECONDS) -> None:
        """Until the next look at the record: ``timeout``, or less when the run ends."""
        ended = self._ended_signal
        if ended is None:
            time.sleep(timeout)
            return
        try:
            if ended.poll(timeout):
                ended.recv()
            else:
                return
        except (EOFError, OSError):  # its process is gone: the record says how it ended
            pass
        ended.close()
        self._ended_signal = None

    def _finish(self) -> None:
        if self._ended_signal is not None:
            # The record is final a moment before the run process is ready for the
            # Lab's next run (``warm_runs``): one asked for at once then finds it.
            self._pause(ENDED_SECONDS)
        if self._ended_signal is not None:
            self._ended_signal.close()
            self._ended_signal = None
        self._attach()
        self._ended()
        self._ended_event.set()

    def _attach(self) -> None:
        """Every task object this process has gets its ``.result`` (read on first access)."""
        plan = self._plan
        instances = plan.instances if plan is not None else {task_id(t): [t] for t in self.tasks}
        for key, payload in self._payloads_of({k: v[0] for k, v in instances.items()}).items():
            for instance in instances[key]:
                attach_result(instance, payload)

    def _payloads_of(self, tasks: dict[str, Any]) -> dict[str, Payload]:
        """The cached results of these tasks (by id), as payloads read on first use."""
        missing = [key for key in tasks if key not in self._payloads]
        for key, entry in self.storage.lookup_many(missing).items():
            fmt = meta_of(tasks[key]).format
            if fmt is not None and entry.format == fmt.name:
                self._payloads[key] = Payload(fmt, source=_CachedResult(self.storage, entry, fmt))
        return {key: self._payloads[key] for key in tasks if key in self._payloads}

    def wait(self, timeout: float | None = None) -> bool:
        return self._ended_event.wait(timeout)

    def first_failure(self) -> TaskFailed | None:
        """The failure that ended the run (the first task to fail), if any."""
        with self.state.lock:
            failed = [r for _, r in self.state.items() if r.status == FAILED and r.error]
        failed.sort(key=lambda record: record.finished or 0.0)
        return failed[0].error if failed else None

    @property
    def results(self) -> dict[Any, Any]:
        """``{task: result}`` for the submitted tasks that have finished so far
        (read from the storage, so from any process)."""
        finished = {key for key, record in self.state.items() if record.status in (DONE, LOADED)}
        wanted = {task_id(task): task for task in self.tasks if task_id(task) in finished}
        values = {}
        for key, payload in self._payloads_of(wanted).items():
            try:
                values[wanted[key]] = payload.value
            except Exception as error:  # e.g. a class only the workers could import
                self._unloadable(key, error)
        return values

    def _unloadable(self, key: str, error: Exception) -> None:
        """A result computed and cached, that this process cannot load: its task
        fails alone, saying why, and the other results stand."""
        with self.state.lock:
            record = self.state.records[key]
            record.status = FAILED
            record.error = TaskFailed(
                record.task,
                type(error).__qualname__,
                f"its result is cached but cannot be loaded in this process: {error}",
            )
            record.error.__cause__ = error
            self.state.version += 1

    def cancel(self) -> bool:
        """Ask the run process to stop (it does within a second); finished results stay."""
        return self.storage.index.request_cancel(self._id)

    def kill(self) -> None:
        """End the run process now (SIGKILL; its workers die with it) and record
        the run as cancelled: what a second Ctrl-C does."""
        pid = self.pid
        # Only while it runs: once over, its (warm) run process may run another run.
        if pid is not None and self.host == socket.gethostname() and not self.done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self.storage.index.finish_run(self._id, "cancelled")


def found_run(storage: Storage, run_id: str) -> RecordedRun:
    """The handle of a recorded run, with its submitted tasks rebuilt from the
    record where this process can (their classes importable or pickled by value);
    otherwise its tasks are known by id, type and text only."""
    tasks: list[Any] = []
    path = run_file(storage.index, run_id, TASKS_SUFFIX)
    if path is not None and path.exists():
        try:
            tasks = flat_pickle.loads(path.read_bytes())
        except Exception as error:
            log.info("labnb cannot rebuild the tasks of run %s here: %s", run_id, error)
    return RecordedRun(run_id, storage, tasks)


def _walk(tasks: list[Any]) -> dict[str, Any]:
    """Task objects by id: these and every dependency they reach."""
    found: dict[str, Any] = {}
    stack = list(tasks)
    while stack:
        task = stack.pop()
        key = task_id(task)
        if key not in found:
            found[key] = task
            stack.extend(dependencies_of(task))
    return found
