"""The loop of a worker process: receive the run's setup, then jobs, one at a time.

Kept in its own small module because the forkserver preloads it: new workers
fork from a process that has already imported it, so they start in milliseconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import cloudpickle
import psutil

from ..engine.execution import Failure, Job, Outcome, RunSetup, execute
from .base import Metric, Output, Progress, Started
from .shipping import JobReceiver

FLUSH_INTERVAL = 0.05
LAB_CHECK_SECONDS = 1.0
PR_SET_PDEATHSIG = 1
ORPHANED_EXIT = 70
"""Exit status of a worker whose Lab process died."""
THREAD_LIMIT_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class _Channel:
    """The worker's side of the pipe: outcomes at once; output and progress in
    batches every 50 ms (only the latest progress of a batch is sent; every metric is)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._progress: Progress | None = None
        self._metrics: list[Metric] = []
        self.task_id = ""
        threading.Thread(target=self._flush_forever, daemon=True, name="labnb-output").start()

    def output(self, text: str) -> None:
        self._pending.append(text)

    def progress(self, n: int, total: int | None, desc: str | None) -> None:
        self._progress = Progress(self.task_id, n, total, desc)

    def metric(self, name: str, value: float, step: int | None, when: float) -> None:
        self._metrics.append(Metric(self.task_id, name, value, step, when))

    def send(self, event: Any) -> None:
        """Send an event; cloudpickle, since an outcome may hold notebook-defined
        objects (a ResultFormat defined in a cell). An outcome that still cannot
        be sent becomes a clear failure of its task, not a dead worker."""
        try:
            data = cloudpickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            if not isinstance(event, Outcome):
                raise
            failure = Failure.from_exception(error, note="its result could not be sent to the Lab")
            data = pickle.dumps(
                Outcome(event.task_id, event.started, event.finished, failure=failure)
            )
        with self._lock:
            self._flush_locked()
            self._conn.send_bytes(data)

    def _flush_locked(self) -> None:
        if self._pending:
            text, self._pending = "".join(self._pending), []
            self._conn.send_bytes(pickle.dumps(Output(self.task_id, text)))
        if self._progress is not None:
            progress, self._progress = self._progress, None
            self._conn.send_bytes(pickle.dumps(progress))
        if self._metrics:
            metrics, self._metrics = self._metrics, []
            for metric in metrics:
                self._conn.send_bytes(pickle.dumps(metric))

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL)
            if self._pending or self._progress is not None or self._metrics:
                try:
                    with self._lock:
                        self._flush_locked()
                except OSError:
                    return


def follow_lab(lab_pid: int) -> None:
    """Die with the Lab's process, however it dies.

    A SIGKILLed Lab (or OOM-killed kernel) cannot stop its workers, and a
    worker never sees its pipe close: a forked one holds copies of the
    parent's pipe ends, a forkserver's child keeps the forkserver alive. So on
    Linux a forked worker gets SIGKILL from the kernel when its parent goes
    (``PR_SET_PDEATHSIG``), and every worker has a watcher thread that exits
    within a second of the Lab process ending (a zombie counts as ended).
    """
    if sys.platform == "linux" and os.getppid() == lab_pid:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    try:
        lab = psutil.Process(lab_pid)
    except psutil.Error:
        os._exit(ORPHANED_EXIT)
    threading.Thread(target=_watch_lab, args=(lab,), daemon=True, name="labnb-lab").start()


def _watch_lab(lab: psutil.Process) -> None:
    while True:
        time.sleep(LAB_CHECK_SECONDS)
        try:
            alive = lab.is_running() and lab.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            alive = False
        if not alive:
            os._exit(ORPHANED_EXIT)


def worker_main(
    conn: Connection, environment: dict[str, str], cwd: str, threads: int, lab_pid: int
) -> None:
    """Serve jobs until the parent says stop (an empty message) or goes away.

    ``environment`` and ``cwd`` are the Lab process's now: a forked worker would
    otherwise have the forkserver's, frozen when it started. ``threads``
    caps the BLAS/OpenMP threads of the libraries tasks import, so that N
    workers do not each start one thread per core and fight over them (as
    joblib's loky does; a value the user set in the environment wins).
    """
    follow_lab(lab_pid)
    # The parent handles Ctrl-C / the kernel's stop button and stops workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(cwd)
    for variable in THREAD_LIMIT_VARIABLES:
        os.environ.setdefault(variable, str(threads))
    try:
        setup: RunSetup | Failure = pickle.loads(conn.recv_bytes())
    except EOFError:
        return
    except Exception as exc:
        setup = Failure.from_exception(
            exc, note="the run's context could not be loaded in a worker"
        )
    channel = _Channel(conn)
    receiver = JobReceiver()
    while True:
        try:
            message = conn.recv_bytes()
        except EOFError:
            return
        if not message:
            return
        task_id, types_bytes, job_bytes = pickle.loads(message)
        channel.task_id = task_id
        channel.send(Started(task_id, os.getpid(), time.time()))
        channel.send(_run(task_id, receiver, types_bytes, job_bytes, setup, channel))


def _run(
    task_id: str,
    receiver: JobReceiver,
    types_bytes: bytes,
    job_bytes: bytes,
    setup: RunSetup | Failure,
    channel: _Channel,
) -> Outcome:
    now = time.time()
    if isinstance(setup, Failure):
        return Outcome(task_id, now, now, failure=setup)
    try:
        job: Job = receiver.loads(types_bytes, job_bytes)
    except Exception as exc:
        failure = Failure.from_exception(exc, note="the task could not be loaded in a worker")
        return Outcome(task_id, now, now, failure=failure)
    return execute(job, setup, channel, whole_process=True, ship=True)
