"""The loop of a worker process: receive the run's setup, then jobs, one at a time.

Kept in its own small module because the forkserver preloads it: new workers
fork from a process that has already imported it, so they start in milliseconds.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import fcntl
import os
import pickle
import select
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

import cloudpickle
import psutil

from ..engine.job import Failure, Job, Outcome, RunSetup, execute
from ..intask.capture import ProcessStream
from .base import Metric, Output, Progress, Started
from .shipping import JobReceiver
from .warmth import NEW_RUN, REST, ModuleStamps, Ready

FLUSH_INTERVAL = 0.05
MAX_PENDING = 16
"""Chunks of output (at most ``FdCapture.READ_SIZE`` characters each) a worker
holds before the writer itself waits for the Lab."""
PIPE_BYTES = 1 << 20
"""The capture pipe's size (Linux's default limit; 64 KiB otherwise): a task that
prints a flood fills a small pipe at once, and then each write waits for the
reader thread, which waits for the printing thread's turn on the GIL."""
LAB_CHECK_SECONDS = 1.0
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
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
    batches every 50 ms (only the latest progress of a batch is sent; every metric is).

    Output waits in a deque that only a flush pops from, under ``_send_lock``:
    an append and a pop are atomic, so nothing written while a flush runs is
    lost. (A list swapped for a new one lost whatever was appended between
    reading and replacing it: thousands of 300,000 printed lines.) Once
    ``MAX_PENDING`` chunks wait, the writer flushes itself, so a flood waits
    for the Lab instead of piling up in the worker's memory.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._send_lock = threading.Lock()
        self._pending: deque[str] = deque()
        self._progress: Progress | None = None
        self._metrics: deque[Metric] = deque()
        self.task_id = ""
        self.write: Callable[[str], object] = self.deliver
        """Where the task's own text goes: the fd capture's stream, so that
        logging and prints stay in order; ``deliver`` until there is one."""
        self.before_flush: Callable[[], object] = lambda: None
        threading.Thread(target=self._flush_forever, daemon=True, name="labnb-output").start()

    def output(self, text: str) -> None:
        self.write(text)

    def deliver(self, text: str) -> None:
        """Queue text for the Lab, as it is to appear in the task's log."""
        self._pending.append(text)
        if len(self._pending) >= MAX_PENDING:
            with contextlib.suppress(OSError):  # the Lab is gone; the worker exits soon
                self.flush()

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
        with self._send_lock:
            self._flush_locked()
            self._conn.send_bytes(data)

    def flush(self) -> None:
        """Send what is pending now (output before progress and metrics, as written)."""
        with self._send_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        pending, metrics = self._pending, self._metrics
        if pending:
            pop = pending.popleft
            text = "".join([pop() for _ in range(len(pending))])
            self._conn.send_bytes(pickle.dumps(Output(self.task_id, text)))
        progress, self._progress = self._progress, None  # only the latest counts
        if progress is not None:
            self._conn.send_bytes(pickle.dumps(progress))
        while metrics:
            self._conn.send_bytes(pickle.dumps(metrics.popleft()))

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL)
            with contextlib.suppress(Exception):  # a task may have closed sys.stdout
                self.before_flush()
            if self._pending or self._progress is not None or self._metrics:
                try:
                    self.flush()
                except OSError:
                    return


class FdCapture:
    """File-descriptor level capture, as Sacred's "fd" mode: what a task's C
    extensions, subprocesses and ``os.write`` calls write to fd 1 or 2 lands in
    the task's log, not on the Lab's terminal.

    fd 1 and fd 2 of this worker become the write end of one pipe, and
    ``sys.stdout`` and ``sys.stderr`` one buffered text stream on it (a
    ``ProcessStream``, which the in-task routers leave alone): a print is a
    C-level buffered write, prints, logging and stderr keep their order, and a
    bytes or int written raises plain Python's TypeError. A thread reads the
    pipe and passes the text to the running task's channel, or to the worker's
    original stderr between tasks. The stream is flushed every 50 ms (live
    logs) and at the end of each task; between Python-level and fd-level
    writes, order is as loose as plain Python's when its stdout is a file.
    Text that is not UTF-8 is kept as backslash escapes, as Python's stderr
    prints it.
    """

    READ_SIZE = 1 << 20

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._lock = threading.Lock()
        self._active = False
        self._decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self._saved_streams = (sys.stdout, sys.stderr)
        self._saved_fds = (os.dup(1), os.dup(2))
        read_end, write_end = os.pipe()
        with contextlib.suppress(OSError, AttributeError):  # Linux: the most it allows
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(read_end, False)
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        self._read_end = read_end
        self.stream = ProcessStream(
            open(1, "wb", buffering=1 << 16, closefd=False),  # noqa: SIM115 - lives with the worker
            encoding="utf-8",
            errors="backslashreplace",
        )
        sys.stdout = sys.stderr = self.stream
        channel.write = self.stream.write
        channel.before_flush = self.stream.flush
        threading.Thread(target=self._read_forever, daemon=True, name="labnb-fd").start()

    def start(self) -> None:
        """From now on fd output belongs to the task that is starting."""
        self._flush_streams()
        with self._lock:
            self._drain_locked()
            self._active = True

    def stop(self) -> None:
        """Collect everything written to fd 1 and 2 so far (C stdio buffers too)
        into the task that is ending: its log is complete before its outcome is sent."""
        self._flush_streams()
        with self._lock:
            self._drain_locked()
            tail = self._decoder.decode(b"", final=True)
            if tail:
                self._channel.deliver(tail)
            self._active = False

    def close(self) -> None:
        """Give fd 1 and 2 back (the worker is ending: its own last words, such
        as a traceback, must reach the terminal)."""
        self._flush_streams()
        with self._lock:
            self._drain_locked()
        os.dup2(self._saved_fds[0], 1)
        os.dup2(self._saved_fds[1], 2)
        sys.stdout, sys.stderr = self._saved_streams

    def _flush_streams(self) -> None:
        for stream in {id(s): s for s in (self.stream, sys.stdout, sys.stderr)}.values():
            with contextlib.suppress(Exception):
                stream.flush()
        _flush_c_stdio()

    def _drain_locked(self) -> None:
        while True:
            try:
                data = os.read(self._read_end, self.READ_SIZE)
            except BlockingIOError:
                return
            if not data:
                return
            if self._active:
                self._channel.deliver(self._decoder.decode(data))
            else:
                _write_all(self._saved_fds[1], data)

    def _read_forever(self) -> None:
        poller = select.poll()
        poller.register(self._read_end, select.POLLIN)
        while True:
            poller.poll()
            try:
                with self._lock:
                    self._drain_locked()
            except OSError:
                return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError:
            return  # nowhere left to show it: the Lab's terminal is gone
        view = view[written:]


def _flush_c_stdio() -> None:
    """``fflush(NULL)``: C's stdout is block-buffered into a pipe, so a compiled
    library's ``printf`` would otherwise surface only when the worker exits."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)


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


_THREAD_LIMITS: list[Any] = []
"""The worker's threadpoolctl limits, kept for its lifetime."""


def _limit_loaded_thread_pools(threads: int) -> None:
    """Size the native thread pools of libraries already loaded (imported by the
    Lab's process before the fork: numpy, scikit-learn...), which the variables
    set above no longer reach, to this worker's share of the cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        return
    _THREAD_LIMITS.append(threadpool_limits(limits=threads))


@contextmanager
def on_cores(cores: tuple[int, ...]) -> Iterator[None]:
    """Run a job on the cores it was given: every thread of the worker (threads a
    library started earlier too) and the processes it starts are pinned to them,
    and native thread pools and the thread variables are sized to them, unless
    the user set those variables. Afterwards the worker's own are restored."""
    if not cores or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    saved = {variable: os.environ.get(variable) for variable in THREAD_LIMIT_VARIABLES}
    _pin_threads(set(cores))
    for variable in THREAD_LIMIT_VARIABLES:
        if variable not in _USER_THREAD_VARIABLES:
            os.environ[variable] = str(len(cores))
    try:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=len(cores)):
            yield
    finally:
        _pin_threads(before)
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value


def _pin_threads(cores: set[int]) -> None:
    for thread in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]:
        with contextlib.suppress(OSError):  # a thread that just ended
            os.sched_setaffinity(int(thread), cores)


_USER_THREAD_VARIABLES: set[str] = set()
"""Thread variables the Lab's environment set: the user's choice, never overridden."""


def adopt_task_processes() -> None:
    """Make the processes tasks start end with their worker, at the latest.

    The worker leads a process group of its own, which its tasks' subprocesses
    join, so the Lab stops a worker and everything it started with one
    ``killpg`` (a cancel, a time limit). It is also their subreaper (Linux): a
    daemon a task started (a double fork, ``cmd &``) is re-parented to the
    worker, not to init, so ``end_task_processes`` finds it when the worker
    ends with its run, or on a SIGTERM. Not at each task's end: a pool a task
    leaves for the next one to reuse (joblib's loky executor) must live on.
    """
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGTERM, _end_on_term)


def _end_on_term(signum: int, frame: Any) -> None:
    end_task_processes()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def end_task_processes() -> None:
    """End what tasks left running (subprocesses, their daemons) and reap them."""
    try:
        leftovers = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for process in leftovers:  # asked first: a pool's helpers tidy up on SIGTERM
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(leftovers, timeout=1)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=2)


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
    adopt_task_processes()
    # The parent handles Ctrl-C / the kernel's stop button and stops workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(environment)
    _USER_THREAD_VARIABLES.update(v for v in THREAD_LIMIT_VARIABLES if v in environment)
    os.chdir(cwd)
    for variable in THREAD_LIMIT_VARIABLES:
        os.environ.setdefault(variable, str(threads))
    given = os.environ["OMP_NUM_THREADS"]  # the user's own setting wins
    _limit_loaded_thread_pools(int(given) if given.isdigit() and int(given) > 0 else threads)
    stamps = ModuleStamps()
    try:
        setup = _load_setup(conn.recv_bytes())
    except EOFError:
        return
    channel = _Channel(conn)
    capture = FdCapture(channel)
    try:
        _serve(conn, channel, capture, setup, stamps)
    finally:
        end_task_processes()
        capture.close()


def _load_setup(data: bytes) -> RunSetup | Failure:
    try:
        setup: RunSetup = pickle.loads(data)
    except Exception as exc:
        return Failure.from_exception(exc, note="the run's context could not be loaded in a worker")
    return setup


def _serve(
    conn: Connection,
    channel: _Channel,
    capture: FdCapture,
    setup: RunSetup | Failure,
    stamps: ModuleStamps,
) -> None:
    """Jobs of one run after another (``warmth``): between runs the worker ends
    what its tasks left running, and it serves a new run only when no module it
    imported has changed on disk; otherwise it says so and exits."""
    receiver = JobReceiver()
    while True:
        try:
            message = conn.recv_bytes()
        except EOFError:
            return
        if not message:
            return
        if message == REST:
            end_task_processes()
            stamps.take()
            channel.send(Ready(os.getpid(), fresh=True))
            continue
        if message == NEW_RUN:
            fresh = not stamps.changed()
            channel.send(Ready(os.getpid(), fresh))
            if not fresh:
                return
            setup, receiver = _load_setup(conn.recv_bytes()), JobReceiver()
            continue
        task_id, types_bytes, job_bytes = pickle.loads(message)
        channel.task_id = task_id
        channel.send(Started(task_id, os.getpid(), time.time()))
        capture.start()
        try:
            outcome = _run(task_id, receiver, types_bytes, job_bytes, setup, channel)
        finally:
            capture.stop()
        channel.send(outcome)


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
    try:
        with on_cores(job.grant.cores if job.grant is not None else ()):
            return execute(job, setup, channel, whole_process=True, ship=True)
    except KeyboardInterrupt as exc:
        # A worker ignores SIGINT (the Lab stops workers itself), so this came
        # from the task's own code: its failure, not a dead worker.
        return Outcome(task_id, now, time.time(), failure=Failure.from_exception(exc))
