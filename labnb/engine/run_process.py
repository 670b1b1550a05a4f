"""The run process: a run owned by a process of its own, not by the kernel that asked.

``launch`` hands a ``RunOrder`` to a new process, detached from the caller's
session and process group (a kernel restart, a SIGKILL of the kernel or a
Ctrl-C in the terminal does not reach it). That process plans, drives the
scheduler and the runner, commits results and keeps the run's record in the
storage up to date (``run_loop.RunLoop``); the caller follows the record
(``follow.Follower``), as does any other process that finds the run.

The process starts as a fork: of the caller when it has a single thread (a
script), else of the multiprocessing forkserver (a kernel has threads), which
has labnb imported already, so a run starts in milliseconds. It forks once
more and the middle process exits, so the run process belongs to no one: the
caller exiting normally leaves it running, and nothing waits for it at exit.
Notebook-defined classes and the context travel once, cloudpickled in the order.

With ``warm_seconds`` a run process whose runner is the process runner keeps
its workers after its run and waits for the next run of the same Lab
(``warm_runs``, which holds the rule that keeps stale code from running);
``launch`` hands a run to such a process when one takes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import cloudpickle

from ..errors import LabnbError
from ..intask.tracking import TrackingSetup
from ..model import flat_pickle
from ..model.formats import Payload, PickleFormat
from ..model.tasks import task_id
from ..runners.warmth import ModuleStamps
from ..storage.runs import OUTPUT_SUFFIX, TASKS_SUFFIX, run_file
from .tracebacks import Sources
from .warm_runs import Door, caller_identity, knock

START_SECONDS = 60.0
"""How long a caller waits for the run process to record the run (it imports the
tasks' modules first)."""


class RunStartError(LabnbError, RuntimeError):
    """The run process could not start the run (the reason is in the message)."""


@dataclass
class RunOrder:
    """Everything a run process needs, sent once."""

    run_id: str
    storage: str
    """The local storage's directory."""
    runner: str
    max_workers: int
    runner_options: dict[str, Any] | None
    """The Lab's runner's ``detached_options()`` (a Ray cluster's address)."""
    gpus: list[int] | None
    """The GPUs the Lab may give tasks (``Lab(gpus=...)`` checked; None: all NVML finds)."""
    code: dict[str, str]
    """Each task type's code hash, taken by the caller (``run_loop.code_hashes``)."""
    continue_on_failure: bool
    bust_cache: bool
    tasks: bytes
    """The submitted tasks, pickled flat (``model.flat_pickle``; also kept beside the
    run's record)."""
    tracking: TrackingSetup | None
    sources: Sources = field(default_factory=Sources)
    """Notebook cells' sources, for tracebacks (``tracebacks.notebook_sources``)."""
    cwd: str = field(default_factory=os.getcwd)
    path: list[str] = field(default_factory=lambda: list(sys.path))
    environment: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    loop: Callable[..., Any] | None = None
    """Builds the run's loop instead of ``RunLoop``, from the same arguments (a
    hyper-parameter search: ``search.loop.SearchLoop``, whose tasks come as it goes)."""
    warm_seconds: float = 0.0
    """How long the run process keeps its workers after the run for the next run
    of the same Lab from the same process (``warm_runs``); 0: it exits with the run."""
    caller: tuple[int, float] = field(default_factory=caller_identity)
    """The submitting process (pid, start time): a warm run process serves only it."""


@dataclass
class Launched:
    """A run that a run process has recorded."""

    pid: int
    ended: Connection
    """Readable once the run has ended (a message, or the end of the stream when its
    process is gone): a follower reads the record then instead of at its next look."""


def launch(order: RunOrder, context: bytes) -> Launched:
    """Start a run process for ``order`` and the Lab's ``context`` (pickled); returns
    once the run is recorded. The context goes as a message of its own:
    pickled once in the caller, never copied into another pickle.

    Raises ``RunStartError`` with the run process's reason when it cannot start
    (a task module it cannot import, a storage it cannot open).
    """
    from ..runners.process import main_module_hidden, start_context

    warm = knock(order) if order.warm_seconds > 0 else None
    if warm is not None:
        return _hand_over(warm, order, context)
    starter = start_context()
    ours, theirs = starter.Pipe()
    middle = starter.Process(target=_detach, args=(theirs,), name="labnb-run", daemon=False)
    with main_module_hidden():
        middle.start()
    theirs.close()
    try:
        return _hand_over(ours, order, context)
    finally:
        middle.join()


def _hand_over(conn: Connection, order: RunOrder, context: bytes) -> Launched:
    """Send the run to a run process at ``conn``; returns once it recorded the run."""
    try:
        conn.send_bytes(cloudpickle.dumps(order, protocol=pickle.HIGHEST_PROTOCOL))
        conn.send_bytes(context)
        if not conn.poll(START_SECONDS):
            raise RunStartError(f"the run process did not start within {START_SECONDS:.0f} s")
        status, detail = conn.recv()
    except (EOFError, OSError) as error:
        conn.close()
        raise RunStartError(f"the run process died before starting the run ({error})") from None
    if status != "started":
        conn.close()
        raise RunStartError(detail if status == "error" else "the run process ended first")
    return Launched(int(detail), conn)


def _detach(conn: Connection) -> None:
    """In the middle process: leave the caller's session, fork the run process, exit."""
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    try:
        _serve(conn)
    except BaseException:  # os._exit would swallow it: the run's log file keeps it
        traceback.print_exc()
    finally:
        os._exit(0)  # no multiprocessing clean-up: this process is nobody's child


def _serve(conn: Connection) -> None:
    """Run the order at ``conn``; with ``warm_seconds``, then each next run of the
    same Lab that comes, with the same workers while they are fit (``warm_runs``)."""
    # SIGTERM (``kill``, a shutdown) stops the run as a cancel does: workers
    # stopped, finished results kept, the record says how it ended. It also
    # ends a run process waiting for a next run, with its workers.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    order: RunOrder = pickle.loads(conn.recv_bytes())
    context = conn.recv_bytes()
    stamps = ModuleStamps()
    runner, digest = None, b""
    try:
        while True:
            given = _digest(context)
            if runner is not None and given != digest:
                runner.recycle()  # a new context: no worker keeps state made from the old one
            kept = _run(conn, order, context, runner)
            if kept is None:
                return
            runner, digest, context = kept, given, b""  # the digest is all a next run needs
            stamps.take()
            door = Door.open(order)
            _say_ended(conn)
            following = None if door is None else door.wait(stamps)
            if following is None:
                return
            conn, order, context = following
    except KeyboardInterrupt:
        pass
    finally:
        if runner is not None:
            runner.keep_workers = False
            runner.close()


def _digest(context: bytes) -> bytes:
    return hashlib.blake2b(context, digest_size=16).digest()


def _run(conn: Connection, order: RunOrder, context: bytes, runner: Any) -> Any:
    """Run one order (``runner``: a warm one kept from the last run, or None);
    the runner to keep for the next run, or None when this process should end."""
    from ..runners.process import ProcessRunner

    try:
        loop = _prepare(order, context, runner)
    except BaseException:
        conn.send(("error", "the run could not start:\n" + traceback.format_exc()))
        conn.close()
        return None

    def recorded() -> None:
        conn.send(("started", os.getpid()))

    keep = isinstance(loop.runner, ProcessRunner) and order.warm_seconds > 0
    if keep:
        loop.runner.keep_workers = True
    try:
        loop.run(recorded)
    except BaseException:
        _say_ended(conn)
        raise
    if not keep:
        _say_ended(conn)
        return None
    return loop.runner  # the caller hears that the run ended once the next can come


def _say_ended(conn: Connection) -> None:
    """Tell the caller the run's record is final (``Launched.ended``)."""
    with contextlib.suppress(OSError):  # it may be gone, or not listening
        conn.send(("ended", os.getpid()))
    conn.close()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _prepare(order: RunOrder, context: bytes, runner: Any = None) -> Any:
    """The run's ``RunLoop``, planned here from the order, on ``runner`` or a new one."""
    from ..runners.choice import make_runner
    from ..storage import LocalStorage
    from .job import RunSetup
    from .machine import this_machine
    from .planning import make_plan
    from .run_loop import RunLoop

    os.chdir(order.cwd)
    os.environ.clear()
    os.environ.update(order.environment)
    sys.path[:] = order.path
    storage = LocalStorage(order.storage)
    _quiet_standard_streams(storage, order.run_id)
    tasks_file = run_file(storage.index, order.run_id, TASKS_SUFFIX)
    if tasks_file is not None:
        tasks_file.write_bytes(order.tasks)
    roots = flat_pickle.loads(order.tasks)
    plan = make_plan(roots, storage, order.bust_cache, decode_roots=False)
    packed = Payload(PickleFormat(), data=context)  # decoded only where a task runs
    setup = RunSetup(packed, storage.writer(), order.tracking, order.sources)
    if runner is None:
        runner = make_runner(order.runner, order.max_workers, options=order.runner_options)
    root_ids = frozenset(task_id(task) for task in roots)
    loop = (order.loop or RunLoop)(
        plan,
        storage,
        runner,
        setup,
        order.continue_on_failure,
        order.run_id,
        root_ids,
        machine=this_machine(order.gpus),
        code=order.code,
    )
    return loop


def _quiet_standard_streams(storage: Any, run_id: str) -> None:
    """The run process outlives whatever terminal or kernel started it: its own
    output (labnb's warnings, a crash) goes to a file of the storage instead,
    ``runs/<run id>.log``."""
    path = run_file(storage.index, run_id, OUTPUT_SUFFIX)
    if path is None:
        return
    path.parent.mkdir(exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    out = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
