"""``'process'``: a pool of worker processes, one pipe each.

In a Jupyter kernel, workers fork from a forkserver, not from the Lab's
process: a kernel has threads, and forking a threaded process can deadlock.
A single-threaded process (a script) forks its workers directly, which is
safe and saves the forkserver's start-up. Each worker has its
own pipe and process sentinel, so when a worker dies the job it was running
is known and only that job fails (a shared executor would break every pending
job). A runner that ``keep_workers`` (a warm run process's) keeps its idle
workers from one run to the next; each is asked at the start of a run whether
a module it imported changed on disk and replaced if so (``warmth``), so a
notebook that edits an imported module gets the new code in the next run.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import signal
import sys
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import cloudpickle

from ..engine.cpus import available_cpus
from ..engine.job import Failure, Job, Outcome, RunSetup
from .base import Event, Runner
from .shipping import JobSender
from .warmth import NEW_RUN, REST, Ready
from .worker import worker_main

if "forkserver" in multiprocessing.get_all_start_methods():
    _CONTEXT: Any = multiprocessing.get_context("forkserver")
    _CONTEXT.set_forkserver_preload(["labnb.runners.worker"])
else:
    _CONTEXT = multiprocessing.get_context("spawn")
# A process with a single thread (a script) forks safely and instantly; only
# on Linux, where fork has no such caveats as macOS's system libraries.
_FORK: Any = multiprocessing.get_context("fork") if sys.platform == "linux" else None


def start_context() -> Any:
    """fork when this process has one thread, else the forkserver (a kernel has threads)."""
    if _FORK is not None and threading.active_count() == 1:
        return _FORK
    return _CONTEXT


STOP_GRACE_SECONDS = 2.0
READY_SECONDS = 10.0
"""How long a warm worker may take to answer between runs (it ends what its
tasks left running, which takes up to 3 s) before it is killed."""


@dataclass
class _Worker:
    process: Any
    conn: Connection
    sender: JobSender
    devices: dict[str, str]
    """The GPU variables it started with (``Grant.visible_devices``): CUDA reads
    them once per process, so a worker only runs jobs given the same GPUs."""
    task_id: str | None = None


class ProcessRunner(Runner):
    def __init__(self, max_workers: int) -> None:
        self.capacity = max_workers
        self.packs = True
        self._workers: list[_Worker] = []
        self._setup: bytes = b""
        self.keep_workers = False
        """Whether ``close`` (at the end of a run that was not cancelled) keeps idle
        workers for the next run instead of stopping them."""
        if start_context().get_start_method() == "forkserver":
            # Returns at once; the server imports labnb while the user does other things.
            with main_module_hidden():
                multiprocessing.forkserver.ensure_running()

    def open(self, setup: RunSetup) -> None:
        """Start a run: workers kept from the last one get its setup, unless a
        module they imported changed on disk (they exit) or they died meanwhile."""
        try:
            self._setup = cloudpickle.dumps(setup, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise TypeError(
                f"the Lab's context cannot be sent to worker processes ({exc}); "
                "use runner='thread' or a picklable context"
            ) from exc
        for worker in self._ask(NEW_RUN):
            try:
                worker.conn.send_bytes(self._setup)
            except OSError:
                self._end(worker)
                continue
            worker.sender = JobSender()  # the last run's classes may be gone, their ids reused

    def recycle(self) -> None:
        """Stop every worker now (the next run's context differs): new ones start as needed."""
        keep, self.keep_workers = self.keep_workers, False
        try:
            self.close()
        finally:
            self.keep_workers = keep

    @property
    def busy(self) -> int:
        return sum(worker.task_id is not None for worker in self._workers)

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._workers]

    def submit(self, job: Job) -> None:
        devices = job.grant.visible_devices() if job.grant is not None else {}
        while True:
            worker = self._idle_worker(devices) or self._spawn(devices)
            try:
                worker.conn.send_bytes(worker.sender.dumps(job))
            except OSError:  # it died while idle: forget it and use another
                self._remove(worker)
                continue
            worker.task_id = job.task_id
            return

    def poll(self, timeout: float) -> list[Event]:
        busy = [worker for worker in self._workers if worker.task_id is not None]
        if not busy:
            return []
        by_handle: dict[Any, _Worker] = {}
        for worker in busy:
            by_handle[worker.conn] = worker
            by_handle[worker.process.sentinel] = worker
        events: list[Event] = []
        for worker in {
            id(w): w for w in (by_handle[handle] for handle in wait(list(by_handle), timeout))
        }.values():
            self._drain(worker, events)
        return events

    def close(self, cancel: bool = False) -> None:
        """Stop every worker: idle ones are asked, busy ones terminated; any still
        alive after a grace period, or when a second Ctrl-C cuts the wait short,
        is killed. No worker outlives this call, except idle ones a runner that
        ``keep_workers`` keeps when the run was not cancelled (each ends what its
        tasks left running first)."""
        if self.keep_workers and not cancel:
            for worker in [w for w in self._workers if w.task_id is not None]:
                self._end(worker)
            self._ask(REST)
            self._setup = b""  # the next run brings its own: no context kept twice meanwhile
            return
        try:
            for worker in self._workers:
                if cancel or worker.task_id is not None:
                    _signal_group(worker.process, signal.SIGTERM)
                else:
                    with contextlib.suppress(OSError):
                        worker.conn.send_bytes(b"")
            deadline = time.monotonic() + STOP_GRACE_SECONDS  # one grace period for all
            for worker in self._workers:
                worker.process.join(max(0.0, deadline - time.monotonic()))
        finally:
            for worker in self._workers:
                if worker.process.is_alive():
                    _signal_group(worker.process, signal.SIGKILL)
                    worker.process.join()
                worker.conn.close()
            self._workers = []

    def stop(self, task_id: str) -> bool:
        """Kill the worker running ``task_id`` (and what its task started); its
        death is reported as the job's failure."""
        for worker in self._workers:
            if worker.task_id == task_id:
                _signal_group(worker.process, signal.SIGKILL)
                return True
        return False

    def _idle_worker(self, devices: dict[str, str]) -> _Worker | None:
        """An idle worker that sees these GPUs; when every slot is taken by idle
        workers that see others, one of them ends to make room for a new one."""
        idle = [worker for worker in self._workers if worker.task_id is None]
        for worker in idle:
            if worker.devices == devices:
                return worker
        if idle and len(self._workers) >= self.capacity:
            self._retire(idle[0])
        return None

    def _retire(self, worker: _Worker) -> None:
        with contextlib.suppress(OSError):
            worker.conn.send_bytes(b"")
        worker.process.join(STOP_GRACE_SECONDS)
        self._end(worker)

    def _end(self, worker: _Worker) -> None:
        """Kill a worker (and what its tasks started) if it lives, and forget it."""
        if worker.process.is_alive():
            _signal_group(worker.process, signal.SIGKILL)
        worker.process.join()
        self._remove(worker)

    def _ask(self, message: bytes) -> list[_Worker]:
        """Send every (idle) worker ``message`` and wait for each one's ``Ready``;
        returns those that answered fresh. The others (stale, dead, silent) are
        ended and forgotten. Events of a past run still in a pipe are dropped."""
        answered: list[_Worker] = []
        for worker in list(self._workers):
            try:
                worker.conn.send_bytes(message)
            except OSError:
                self._end(worker)
        deadline = time.monotonic() + READY_SECONDS
        for worker in list(self._workers):
            if _ready(worker.conn, deadline):
                answered.append(worker)
            else:
                self._end(worker)
        return answered

    def _spawn(self, devices: dict[str, str]) -> _Worker:
        context = start_context()
        parent_conn, child_conn = context.Pipe()
        threads = max(1, available_cpus() // self.capacity)
        process = context.Process(
            target=worker_main,
            args=(child_conn, {**os.environ, **devices}, os.getcwd(), threads, os.getpid()),
            name="labnb-worker",
        )
        with main_module_hidden():
            process.start()
        child_conn.close()
        parent_conn.send_bytes(self._setup)
        worker = _Worker(process, parent_conn, JobSender(), devices)
        self._workers.append(worker)
        return worker

    def _drain(self, worker: _Worker, events: list[Event]) -> None:
        try:
            while worker.conn.poll():
                event = pickle.loads(worker.conn.recv_bytes())
                events.append(event)
                if isinstance(event, Outcome):
                    worker.task_id = None
        except (EOFError, OSError):
            pass
        else:
            if worker.process.is_alive():
                return
        worker.process.join(STOP_GRACE_SECONDS)
        if worker.task_id is not None:
            failure = Failure("WorkerDied", _death_message(worker.process.exitcode))
            events.append(Outcome(worker.task_id, 0.0, 0.0, failure=failure))
        self._remove(worker)

    def _remove(self, worker: _Worker) -> None:
        worker.conn.close()
        self._workers.remove(worker)


def _ready(conn: Connection, deadline: float) -> bool:
    """Whether the worker at ``conn`` answers ``Ready`` and fresh before ``deadline``."""
    try:
        while conn.poll(max(0.0, deadline - time.monotonic())):
            event = pickle.loads(conn.recv_bytes())
            if isinstance(event, Ready):
                return event.fresh
    except (EOFError, OSError):
        pass
    return False


def _signal_group(process: Any, signum: int) -> None:
    """Signal a worker and the processes its task started (its process group)."""
    try:
        os.killpg(process.pid, signum)
    except OSError:  # not a group leader (yet), or gone: the worker alone
        with contextlib.suppress(OSError):
            os.kill(process.pid, signum)


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"exit code {exitcode}"
    return f"worker process died ({how}) while running this task"


@contextmanager
def main_module_hidden() -> Iterator[None]:
    """Keep multiprocessing from re-running the user's script in each new worker.

    spawn and forkserver children import the parent's ``__main__`` file so that
    pickles can refer to it, which re-executes an unguarded script. labnb never
    needs that: cloudpickle ships ``__main__`` classes and functions by value.
    (IPython's ``__main__`` also lacks the ``__spec__`` multiprocessing reads.)
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
