"""``RayRunner``: each job a Ray task, on a local Ray instance or a whole cluster.

labnb's scheduler still decides which task runs next (dependencies, per-type
``max_parallel``, stop on first failure); Ray decides where, and supplies
workers, resources, data movement and fault detection. How the pieces map:

- The run's ``RunSetup`` (context, payload writer, tracking), with the
  handle of the output actor, is ``ray.put`` once per run. Tasks receive its
  reference boxed in a list, so Ray does not resolve it per task; each
  worker process ``ray.get``s it once per run. (So numpy arrays in the
  context arrive zero-copy from the shared object store: read-only.)
- A Ray task returns two objects: a small report (the ``Outcome`` without its
  payload, plus the output since the last live flush) that the driver fetches
  at once, and the payload bytes, which stay in the object store on the node
  that made them. A dependent task receives its dependencies' payloads as
  object references passed as Ray task arguments, so Ray resolves them on the
  worker and its locality-aware scheduling prefers the node already holding
  the largest inputs; the bytes do not pass through the notebook on the way.
  The driver fetches payloads only when something reads a result, and all
  remaining ones when the run closes, so results outlive the run (and the
  cluster) exactly like the process runner's.
- Cached dependencies (loaded from storage by the Lab) are ``ray.put`` once
  per run, however many tasks use them.
- Live output and progress travel through one small actor (the *sink*),
  pinned to the driver's node: a worker sends a batch at most every
  ``FLUSH_SECONDS`` and only once its task has run that long, and the driver
  asks the sink for new batches every ``DRAIN_SECONDS``, collecting the
  answer when it arrives rather than waiting for it. Output of short tasks
  rides in the report instead, so a thousand quick tasks cost no actor calls. A task's
  report counts the batches it sent, after waiting for the sink to have them;
  the driver drains until it has them all before it reports the outcome, so
  every ``Output`` precedes its task's ``Outcome``.
- A worker or node that dies fails only its task, with ``WorkerDied``
  (after ``max_retries`` retries by Ray); ``close(cancel=True)`` force-cancels
  running Ray tasks, which kills their worker processes.

Per-task Ray options (``num_gpus``, ``memory``, custom ``resources``,
``max_retries``, ``runtime_env``, ``scheduling_strategy``...) come from an
optional ``ray_options`` dict on the task class. It is a class attribute, not
a field (unannotated, or annotated ``ClassVar``), so it is not part of the
task's identity: moving a task to a GPU does not invalidate its cache. This
needs no change to ``@labnb.task``, and it is read afresh at each run, so a
notebook can change it between runs::

    @labnb.task(max_parallel=2)
    class Train:
        ray_options: ClassVar[dict] = {"num_gpus": 1}
        seed: int

A task's declared needs (``@labnb.task(resources=...)`` or its
``resources()`` method) become Ray's ``num_cpus``, ``num_gpus`` and
``memory``, so one declaration serves the local runners and Ray; a
``ray_options`` entry wins over them (the escape hatch). ``gpu_memory`` has
no Ray equivalent (Ray's fractional GPUs are shares, not bytes) and is not
passed; say ``ray_options = {"num_gpus": 0.5}`` to share GPUs on Ray.

labtech's way works too: a task's ``runner_options()`` method may return
``{'ray': {'remote_options': {...}}}``, computed from its parameters, so one
type's tasks can ask for different resources. Precedence, the more specific
the later: the runner's ``task_options``, then declared needs, then the
class's ``ray_options``, then the task's ``runner_options()``. A number
written as a string (``'num_cpus': '2'``, as labtech's docs write it) is read
as that number.

Per-type ``max_parallel`` stays labnb's: its scheduler never submits more
tasks of a type than that, so Ray never runs more.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import threading
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from ..engine.job import Failure, Job, Outcome, RunSetup, execute
from ..model.formats import Payload, ResultFormat
from ..model.resources import Resources
from ..model.tasks import meta_of, needs_of
from . import base
from .backends import RayRunnerBackend
from .base import Event, Output, Progress, Runner, Started

__all__ = ["RayRunner", "RayRunnerBackend"]

_Metric: Any = getattr(base, "Metric", None)
"""The ``labnb.log_metric`` event, in labnb versions that have it."""
MetricRow = tuple[str, float, int | None, float]
"""(name, value, step, time) of one ``labnb.log_metric`` call."""

INSTALL_HINT = 'the Ray runner needs Ray: pip install "labnb[ray]"'
FLUSH_SECONDS = 0.1
"""A worker sends a running task's new output at most this often."""
DRAIN_SECONDS = 0.1
"""The driver collects live output from the sink at least this often while tasks run."""
QUEUED_PER_CPU = 2
"""Without ``max_workers``, this many tasks per cluster CPU are submitted at once.

Ray's resources (``num_cpus=1`` per task by default) bound how many run; the
extra ones wait in Ray's queue, so a worker starts its next task as soon as
it is free instead of after a round trip through the notebook: that halves
the per-task overhead of short tasks. Only a few are queued so that a failure
(which stops new tasks) and a cancel still act at once."""
SINK_TIMEOUT_SECONDS = 30.0
FETCH_TIMEOUT_SECONDS = 300.0
_RESERVED_OPTIONS = frozenset({"num_returns"})


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return ray


# --- the worker's side --------------------------------------------------------


@dataclass
class _Report:
    """What a Ray task returns besides its payload: small, so the driver fetches it at once."""

    outcome: Outcome
    """``payload`` is None: the payload bytes are the task's second return value."""
    format: ResultFormat | None
    pid: int
    node_id: str
    started: float
    output: str
    """Printed since the last batch sent to the sink."""
    progress: tuple[int, int | None, str | None] | None
    flushes: int
    """Batches sent to the sink; the driver must have them all before the outcome."""
    attempt: str
    metrics: list[MetricRow] = dataclasses.field(default_factory=list)
    """Logged since the last batch sent to the sink."""


class _LiveChannel:
    """The channel of the task running in this Ray worker process (one at a time).

    A daemon thread sends new output and the latest progress to the sink
    actor, only once the task has run ``FLUSH_SECONDS``: the first batch also
    announces the start (pid, node, time). ``end`` returns what is left for
    the report, after waiting until the sink has every batch sent.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = False
        self._sink: Any = None
        self._run = 0
        self.task_id = ""
        self._attempt = ""
        self._started = 0.0
        self._announced = False
        self._pending: list[str] = []
        self._progress: tuple[int, int | None, str | None] | None = None
        self._metrics: list[MetricRow] = []
        self._flushes = 0
        self._last: Any = None
        threading.Thread(target=self._flush_forever, daemon=True, name="labnb-live").start()

    def begin(self, sink: Any, run: int, task_id: str, attempt: str, started: float) -> None:
        with self._lock:
            self._sink, self._run, self.task_id, self._attempt = sink, run, task_id, attempt
            self._started, self._announced, self._active = started, False, True
            self._pending, self._progress, self._flushes, self._last = [], None, 0, None
            self._metrics = []

    def output(self, text: str) -> None:
        with self._lock:
            self._pending.append(text)

    def progress(self, n: int, total: int | None, desc: str | None) -> None:
        self._progress = (n, total, desc)

    def metric(self, name: str, value: float, step: int | None, when: float) -> None:
        with self._lock:
            self._metrics.append((name, value, step, when))

    def end(
        self,
    ) -> tuple[str, tuple[int, int | None, str | None] | None, list[MetricRow], int]:
        with self._lock:
            self._active = False
            text, self._pending = "".join(self._pending), []
            progress, self._progress = self._progress, None
            metrics, self._metrics = self._metrics, []
            flushes, last, self._last, self._sink = self._flushes, self._last, None, None
        if last is not None:
            import ray

            # Actor calls from one caller run in order: once the last one is
            # done, the sink holds every batch this task sent.
            with contextlib.suppress(Exception):  # a dead sink: live output is lost, not the task
                ray.get(last, timeout=SINK_TIMEOUT_SECONDS)
        return text, progress, metrics, flushes

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS / 2)
            with self._lock:
                if not self._active or time.time() - self._started < FLUSH_SECONDS:
                    continue
                if (
                    self._announced
                    and not self._pending
                    and self._progress is None
                    and not self._metrics
                ):
                    continue
                announce = None
                if not self._announced:
                    announce = (os.getpid(), _node_id(), self._started)
                    self._announced = True
                text, self._pending = "".join(self._pending), []
                progress, self._progress = self._progress, None
                metrics, self._metrics = self._metrics, []
                try:
                    self._last = self._sink.put.remote(
                        self._run, self.task_id, self._attempt, announce, text, progress, metrics
                    )
                    self._flushes += 1
                except Exception:  # the sink is gone: keep text and metrics for the report
                    self._pending.insert(0, text)
                    self._metrics[:0] = metrics


@dataclass
class _RunBox:
    """What every task of one run shares, put in the object store once per run."""

    setup: RunSetup
    sink: Any
    run: int


_channel: _LiveChannel | None = None
_box_cache: tuple[str, _RunBox] | None = None
_node: str | None = None


def _node_id() -> str:
    global _node
    if _node is None:
        import ray

        _node = ray.get_runtime_context().get_node_id()
    return _node


def _load_box(boxed: list[Any]) -> _RunBox:
    """The run's shared objects, fetched and unpickled once per worker process per run.

    The reference arrives inside a list because Ray resolves only top-level
    reference arguments, and would then unpickle the context for every task.
    """
    global _box_cache
    import ray

    (ref,) = boxed
    key = ref.hex()
    if _box_cache is None or _box_cache[0] != key:
        _box_cache = None  # let the previous run's context go first
        _box_cache = (key, ray.get(ref))
    return _box_cache[1]


def _run_in_worker(
    boxed: list[Any],
    work: tuple[Job, list[tuple[str, ResultFormat]]],
    *dependency_data: bytes,
) -> tuple[_Report, bytes | None]:
    """The body of every labnb Ray task; Ray has resolved the dependencies' payload refs.

    Few arguments on purpose: Ray serializes each one separately, and that
    is most of the notebook's cost per task.
    """
    global _channel
    started = time.time()
    attempt = secrets.token_hex(4)
    job, dependency_formats = work
    if _channel is None:
        _channel = _LiveChannel()
    channel = _channel
    try:
        box = _load_box(boxed)
    except Exception as exc:
        note = "the run's context could not be loaded in a Ray worker"
        failure = Failure.from_exception(exc, note=note)
        outcome = Outcome(job.task_id, started, time.time(), failure=failure)
        report = _Report(outcome, None, os.getpid(), _node_id(), started, "", None, 0, attempt)
        return report, None
    channel.begin(box.sink, box.run, job.task_id, attempt, started)
    try:
        job.dependencies = {
            task_id: Payload(fmt, data=data)
            for (task_id, fmt), data in zip(dependency_formats, dependency_data, strict=True)
        }
        outcome = execute(job, box.setup, channel, whole_process=True, ship=True)
    finally:
        text, progress, metrics, flushes = channel.end()
    fmt, data = None, None
    if outcome.payload is not None:
        fmt, data = outcome.payload.format, outcome.payload.data
        outcome.payload = None
    report = _Report(
        outcome, fmt, os.getpid(), _node_id(), started, text, progress, flushes, attempt, metrics
    )
    return report, data


class _Sink:
    """The actor that holds live output batches until the driver drains them."""

    def __init__(self) -> None:
        self._batches: list[tuple[Any, ...]] = []

    def put(self, *batch: Any) -> None:
        self._batches.append(batch)

    def drain(self) -> list[tuple[Any, ...]]:
        batches, self._batches = self._batches, []
        return batches


# --- the driver's side --------------------------------------------------------


class _RayPayload(Payload):
    """A result still in Ray's object store: fetched when first read.

    The runner passes ``ref`` to dependent tasks instead of the bytes, and
    fetches every payload still remote when the run closes.
    """

    __slots__ = ("ref",)

    def __init__(self, fmt: ResultFormat, ref: Any) -> None:
        super().__init__(fmt)
        self.ref: Any = ref

    def fetched(self, data: bytes) -> None:
        self._data = data
        self.ref = None

    def _fetch(self) -> None:
        if self.ref is not None:
            import ray

            self.fetched(ray.get(self.ref))

    @property
    def value(self) -> Any:
        self._fetch()
        return super().value

    @property
    def data(self) -> bytes:
        self._fetch()
        return super().data


@dataclass
class _Pending:
    task_id: str
    report: Any
    payload: Any


class RayRunner(Runner):
    """Runs each job as a Ray task; ``Lab(runner=RayRunner(address='auto'))`` on a cluster.

    ``address``: the cluster to connect to (``'auto'``, ``'ray://host:10001'``...);
    ``None`` starts a local Ray instance (or joins the one ``RAY_ADDRESS``
    names). If Ray is already initialised in this process it is used as it
    is and ``address`` and ``init_options`` are ignored. ``max_workers``
    bounds how many tasks run at once, exactly; by default Ray's resources
    bound them (one CPU per task unless options say otherwise) and labnb
    keeps ``QUEUED_PER_CPU`` tasks per cluster CPU submitted, the CPUs being
    counted at the start of each run, so nodes that joined count.
    ``max_retries``: how many times Ray reruns a task whose worker or node
    died (exceptions raised by tasks are never retried). ``task_options``
    are Ray options for every task (``{'num_cpus': 2}``); a task class's
    ``ray_options`` dict overrides them. ``init_options`` go to ``ray.init``.
    """

    def __init__(
        self,
        address: str | None = None,
        max_workers: int | None = None,
        *,
        max_retries: int = 0,
        task_options: Mapping[str, Any] | None = None,
        **init_options: Any,
    ) -> None:
        ray = _import_ray()
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive int or None, not {max_workers!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, not {max_retries!r}")
        self.task_options = _check_options(task_options or {}, "task_options")
        if not ray.is_initialized():
            ray.init(address=address, **init_options)
        self._ray = ray
        self.max_workers = max_workers
        self.max_retries = max_retries
        self.capacity = max_workers or 1
        self._driver_node = ray.get_runtime_context().get_node_id()
        self._remote: Any = ray.remote(_run_in_worker)
        self._sink: Any = None
        self._run = 0
        self._box_ref: Any = None
        self._options: dict[Hashable, Any] = {}
        self._pending: dict[Any, _Pending] = {}
        self._payloads: list[_RayPayload] = []
        self._put_refs: dict[str, Any] = {}
        self._received: dict[tuple[str, str], int] = {}
        self._announced: set[tuple[str, str]] = set()
        self._drain_ref: Any = None
        self._drained_at = time.monotonic()

    def __repr__(self) -> str:
        return f"RayRunner(max_workers={self.max_workers}, max_retries={self.max_retries})"

    def detached_options(self) -> dict[str, Any] | None:
        """A run process joins this runner's cluster as a driver of its own, with the
        same options: the run then lives as long as the cluster, not this process.
        Through Ray Client (``ray://``) there is no cluster address to join: None."""
        if self._ray.util.client.ray.is_connected():
            return None
        return {
            "address": self._ray.get_runtime_context().gcs_address,
            "max_workers": self.max_workers,
            "max_retries": self.max_retries,
            "task_options": dict(self.task_options),
        }

    # --- the Runner interface ----------------------------------------------------

    def open(self, setup: RunSetup) -> None:
        ray = self._ray
        self._run += 1
        self._options = {}
        if self._sink is None:
            self._sink = self._make_sink()
        try:
            self._box_ref = ray.put(_RunBox(setup, self._sink, self._run))
        except Exception as exc:
            raise TypeError(
                f"the Lab's context cannot be sent to Ray workers ({exc}); "
                "use runner='thread' or a picklable context"
            ) from exc
        if self.max_workers is None:
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            self.capacity = QUEUED_PER_CPU * cpus
        self._drained_at = time.monotonic()

    @property
    def busy(self) -> int:
        return len(self._pending)

    def submit(self, job: Job) -> None:
        assert self._box_ref is not None, "open() the runner first"
        formats = [(task_id, payload.format) for task_id, payload in job.dependencies.items()]
        data = [self._ref_for(task_id, payload) for task_id, payload in job.dependencies.items()]
        shipped = dataclasses.replace(job, dependencies={})  # they travel as object refs
        remote = self._options_for(type(job.task), needs_of(job.task), task_options(job.task))
        report, payload = remote.remote([self._box_ref], (shipped, formats), *data)
        self._pending[report] = _Pending(job.task_id, report, payload)

    def poll(self, timeout: float) -> list[Event]:
        if not self._pending:
            return []
        ray = self._ray
        now = time.monotonic()
        if self._drain_ref is None and self._sink is not None:
            if now - self._drained_at >= DRAIN_SECONDS:
                # Asked for now, collected when it arrives: the loop never blocks on it.
                self._drain_ref = self._sink.drain.remote()
                self._drained_at = now
            else:
                timeout = min(timeout, self._drained_at + DRAIN_SECONDS - now)
        watched = list(self._pending)
        if self._drain_ref is not None:
            watched.append(self._drain_ref)
        ready, _ = ray.wait(watched, num_returns=1, timeout=max(0.0, timeout))
        if ready and len(watched) > 1:
            ready, _ = ray.wait(watched, num_returns=len(watched), timeout=0)
        finished = [self._pending.pop(ref) for ref in ready if ref in self._pending]
        reports = self._fetch_reports(finished)
        live = {pending.task_id for pending in self._pending.values()}
        live.update(pending.task_id for pending in finished)
        events: list[Event] = []
        if self._drain_ref is not None and len(ready) > len(finished):
            self._collect_drain(live, events)
        # A task that sent live batches reports how many; its outcome waits
        # until all have arrived, so its output always comes first. The sink
        # had them all before the task returned, so one fresh drain suffices.
        for attempt in range(2):
            if not self._behind(finished, reports) or self._sink is None:
                break
            if self._drain_ref is None or attempt:
                self._drain_ref = self._sink.drain.remote()
                self._drained_at = time.monotonic()
            self._collect_drain(live, events)
        for pending, report in zip(finished, reports, strict=True):
            self._finish(pending, report, events)
        return events

    def close(self, cancel: bool = False) -> None:
        """Cancel what still runs (by killing its worker), then fetch this run's results."""
        for pending in self._pending.values():
            with contextlib.suppress(Exception):
                self._ray.cancel(pending.report, force=True)
        self._pending.clear()
        self._drain_ref = None  # holds nothing this run still needs
        self._fetch_payloads()
        self._put_refs.clear()
        self._received.clear()
        self._announced.clear()
        self._box_ref = None

    # --- helpers ----------------------------------------------------------------

    def _make_sink(self) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # On the driver's node (if it can take it): live output then never
        # waits on the network twice, and the sink lives as long as the driver.
        strategy = NodeAffinitySchedulingStrategy(self._driver_node, soft=True)
        actor = self._ray.remote(num_cpus=0, max_concurrency=1)(_Sink)
        return actor.options(scheduling_strategy=strategy).remote()

    def _options_for(self, cls: type, needs: Resources, own: dict[str, Any]) -> Any:
        """The remote function with this task's options (``own``: its ``runner_options()``),
        made once per distinct options (those with unhashable values: each time)."""
        key = _frozen((cls, needs, own))
        remote = None if key is None else self._options.get(key)
        if remote is None:
            options: dict[str, Any] = {
                "num_returns": 2,
                "max_retries": self.max_retries,
                "retry_exceptions": False,
                "name": meta_of(cls).type_name,
            }
            options.update(self.task_options)
            options.update(ray_resources(needs))
            options.update(_check_options(getattr(cls, "ray_options", None) or {}, cls))
            options.update(own)
            remote = self._remote.options(**options)
            if key is not None:
                self._options[key] = remote
        return remote

    def _ref_for(self, task_id: str, payload: Payload) -> Any:
        """A reference to a dependency's payload: where Ray made it, or put once per run."""
        if isinstance(payload, _RayPayload) and payload.ref is not None:
            return payload.ref
        ref = self._put_refs.get(task_id)
        if ref is None:
            ref = self._put_refs[task_id] = self._ray.put(payload.data)
        return ref

    def _fetch_reports(self, finished: list[_Pending]) -> list[_Report | Failure]:
        ray = self._ray
        if not finished:
            return []
        try:
            return ray.get([pending.report for pending in finished])
        except ray.exceptions.RayError:
            pass
        reports: list[_Report | Failure] = []
        for pending in finished:
            try:
                reports.append(ray.get(pending.report))
            except ray.exceptions.RayError as exc:
                reports.append(_failure_from_ray(exc))
        return reports

    def _behind(self, finished: list[_Pending], reports: list[_Report | Failure]) -> bool:
        return any(
            isinstance(report, _Report)
            and report.flushes > self._received.get((pending.task_id, report.attempt), 0)
            for pending, report in zip(finished, reports, strict=True)
        )

    def _collect_drain(self, live: set[str], events: list[Event]) -> None:
        """Turn the sink's batches for running (or just finished) tasks into events."""
        ray = self._ray
        ref, self._drain_ref = self._drain_ref, None
        try:
            batches = ray.get(ref, timeout=SINK_TIMEOUT_SECONDS)
        except ray.exceptions.RayError:
            # The sink died (its node went away): results still arrive in the
            # reports; a new sink serves the next run.
            self._sink = None
            return
        for run, task_id, attempt, announce, text, progress, metrics in batches:
            if run != self._run or task_id not in live:
                continue  # from a cancelled task or an earlier run
            key = (task_id, attempt)
            self._received[key] = self._received.get(key, 0) + 1
            if announce is not None:
                pid, node, started = announce
                events.append(Started(task_id, self._local_pid(pid, node), started))
                self._announced.add(key)
            if text:
                events.append(Output(task_id, text))
            if progress is not None:
                events.append(Progress(task_id, *progress))
            _add_metrics(task_id, metrics, events)

    def _finish(self, pending: _Pending, report: _Report | Failure, events: list[Event]) -> None:
        task_id = pending.task_id
        if isinstance(report, Failure):
            now = time.time()
            events.append(Outcome(task_id, now, now, failure=report))
            return
        key = (task_id, report.attempt)
        if key not in self._announced:
            pid = self._local_pid(report.pid, report.node_id)
            events.append(Started(task_id, pid, report.started))
        if report.output:
            events.append(Output(task_id, report.output))
        if report.progress is not None:
            events.append(Progress(task_id, *report.progress))
        _add_metrics(task_id, report.metrics, events)
        outcome = report.outcome
        if report.format is not None:
            payload = _RayPayload(report.format, pending.payload)
            self._payloads.append(payload)
            outcome.payload = payload
        events.append(outcome)
        self._announced.discard(key)
        self._received.pop(key, None)

    def _local_pid(self, pid: int, node: str) -> int:
        """A pid the widget can sample with psutil: 0 for processes on other machines."""
        return pid if node == self._driver_node else 0

    def _fetch_payloads(self) -> None:
        ray = self._ray
        remote = [payload for payload in self._payloads if payload.ref is not None]
        self._payloads = []
        if not remote:
            return
        try:
            fetched = ray.get([payload.ref for payload in remote], timeout=FETCH_TIMEOUT_SECONDS)
            for payload, data in zip(remote, fetched, strict=True):
                payload.fetched(data)
            return
        except ray.exceptions.RayError:
            pass
        for payload in remote:  # some are lost: keep the others, leave those to fail when read
            with contextlib.suppress(ray.exceptions.RayError):
                payload.fetched(ray.get(payload.ref, timeout=FETCH_TIMEOUT_SECONDS))


def _add_metrics(task_id: str, metrics: list[MetricRow], events: list[Event]) -> None:
    if _Metric is not None:
        events.extend(_Metric(task_id, *row) for row in metrics)


def ray_resources(needs: Resources) -> dict[str, Any]:
    """A task's declared needs as Ray options (only those it declared)."""
    options: dict[str, Any] = {}
    if needs.cpus is not None:
        options["num_cpus"] = needs.cpus
    if needs.gpus:
        options["num_gpus"] = needs.gpus
    if needs.memory is not None:
        options["memory"] = needs.memory
    return options


NUMERIC_OPTIONS = ("num_cpus", "num_gpus", "memory")


def task_options(task: Any) -> dict[str, Any]:
    """The Ray options a task's ``runner_options()`` asks for (``['ray']['remote_options']``)."""
    where = f"{type(task).__qualname__}.runner_options()"
    given = task.runner_options()
    if not isinstance(given, Mapping):
        raise TypeError(f"{where} must return a dict, not {given!r}")
    ray_part = given.get("ray") or {}
    if not isinstance(ray_part, Mapping):
        raise TypeError(f"{where}['ray'] must be a dict, not {ray_part!r}")
    options = _check_options(
        ray_part.get("remote_options") or {}, f"{where}['ray']['remote_options']"
    )
    for name in NUMERIC_OPTIONS:
        if isinstance(options.get(name), str):
            try:
                options[name] = float(options[name]) if "." in options[name] else int(options[name])
            except ValueError:
                raise TypeError(
                    f"{where}: {name} must be a number, not {options[name]!r}"
                ) from None
    return options


def _frozen(value: Any) -> Hashable | None:
    """``value`` as a hashable key (dicts and lists as tuples), or None where it has none."""

    def freeze(item: Any) -> Any:
        if isinstance(item, Mapping):
            pairs = ((repr(key), freeze(part)) for key, part in item.items())
            return ("dict", tuple(sorted(pairs, key=lambda pair: pair[0])))
        if isinstance(item, (list, tuple)):
            return (type(item).__name__, tuple(freeze(part) for part in item))
        return item

    key = freeze(value)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _check_options(options: Any, owner: Any) -> dict[str, Any]:
    where = owner if isinstance(owner, str) else f"{owner.__qualname__}.ray_options"
    if not isinstance(options, Mapping):
        raise TypeError(f"{where} must be a dict of Ray task options, not {options!r}")
    reserved = _RESERVED_OPTIONS.intersection(options)
    if reserved:
        raise ValueError(f"{where} cannot set {sorted(reserved)[0]!r}: labnb sets it")
    return dict(options)


_WORKER_DEATHS = (
    "WorkerCrashedError",
    "NodeDiedError",
    "LocalRayletDiedError",
    "RayActorError",
    "OutOfMemoryError",
    "ObjectLostError",
)


def _failure_from_ray(exc: BaseException) -> Failure:
    """A Failure for a Ray task that ended without a report of its own."""
    import ray.exceptions as errors

    summary = (str(exc).strip().splitlines() or [""])[0]
    deaths = tuple(getattr(errors, name) for name in _WORKER_DEATHS if hasattr(errors, name))
    if isinstance(exc, deaths):
        return Failure(
            "WorkerDied",
            f"Ray worker died while running this task ({type(exc).__name__}: {summary})",
        )
    if isinstance(exc, errors.TaskCancelledError):
        return Failure("Cancelled", "the Ray task was cancelled")
    if isinstance(exc, errors.RayTaskError):
        # labnb's task body catches the task's own errors, so this one happened
        # around it: most often the task's class cannot be imported on the worker.
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        failure = Failure.from_exception(cause, note="the task could not be run in a Ray worker")
        failure.traceback = exc.traceback_str or failure.traceback
        return failure
    return Failure(type(exc).__name__, f"Ray could not run this task: {summary}")
