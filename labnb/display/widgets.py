"""The notebook widgets: ``RunView`` (a run, live) and ``CacheView`` (the cache browser).

Both are anywidgets whose front ends live in ``js/`` (bundled into ``static/``);
``docs/widget-protocol.md`` is the contract between the two sides.

Three rules shape this module:
- Updates are batched: one shared ticker thread looks at each live view ten
  times a second and sends only what changed, in one message per view.
- Every browser message is untrusted: the dispatcher answers anywidget's
  request/response protocol itself, so an unknown command or a malformed
  payload gets an error reply and a log line, never an exception in the kernel.
- Handlers may run on another thread than the ticker (ipykernel runs comm
  messages on a separate thread while a cell is busy), so view state is
  guarded by a lock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import traitlets

from ..engine.explain import explain
from ..engine.machine import gpu_usage
from ..engine.state import (
    CANCELLED,
    DONE,
    FAILED,
    LOADED,
    RUNNING,
    STARTING,
    WAITING,
    RunState,
)
from ..model.code_hash import code_hash, same_code
from ..model.tasks import code_version_of, defined_type, dependencies_of, is_task, meta_of
from ..storage import IndexEntry, QueryError, Tracking
from ..storage.catalog import REMOVE_BATCH
from ..storage.schema import PARAMS
from .cache_filter import HINT, FilterQuery, parse_filter
from .kernel import activity, in_kernel
from .labels import stored_text, task_label, value_text

log = logging.getLogger("labnb.widgets")

STATIC = Path(__file__).parent.parent / "static"
TICK_SECONDS = 0.1
HEARTBEAT_SECONDS = 1.0
MAX_TASK_ROWS = 200
"""Rows a run view sends at first; "Show more" adds as many again."""
MAX_ROW_LIMIT = 100_000
ROW_STATUSES = ("", STARTING, RUNNING, FAILED, WAITING, DONE, LOADED, CANCELLED)
"""What a run view's rows can be narrowed to ("" is every task)."""
DEFAULT_QUERY: dict[str, Any] = {
    "text": "",
    "type": "",
    "sort": "started",
    "descending": True,
    "page": 0,
    "page_size": 50,
}
LOG_TEXT_LIMIT = 1_000_000
MAX_FAILURE_KINDS = 8
COMPARE_POINTS = 5000
"""Points the cache browser's compare chart draws at most (the first by start)."""
SAVE_SECONDS = 30.0
"""How often a running run's display is re-sent, so the notebook saves its latest text."""
"""Characters of logs sent to the browser at most (the end of the logs)."""
METRIC_POINTS = 500
"""Points of one metric sent to the browser at most (evenly downsampled, keeping the last)."""
MAX_METRICS = 50
"""Metrics of one task sent to the browser at most."""
CLOSED_LOG: dict[str, Any] = {
    "id": "",
    "label": "",
    "status": "",
    "text": "",
    "metrics": [],
    "artifacts": [],
    "models": [],
}
"""``log_task`` while no log panel is open."""


class _Ticker:
    """One daemon thread that refreshes every live view, ten times a second at most."""

    def __init__(self) -> None:
        self._views: weakref.WeakSet[LiveView] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, view: LiveView) -> None:
        with self._lock:
            self._views.add(view)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="labnb-widgets", daemon=True
                )
                self._thread.start()

    def discard(self, view: LiveView) -> None:
        with self._lock:
            self._views.discard(view)

    def _loop(self) -> None:
        while True:
            time.sleep(TICK_SECONDS)
            with self._lock:
                views = list(self._views)
            for view in views:
                try:
                    view.tick()
                except Exception:
                    log.exception("labnb widget update failed")


ticker = _Ticker()


class LiveView(anywidget.AnyWidget):
    """Base of both views: the command dispatcher, heartbeat and busy flag."""

    _css = STATIC / "widget.css"
    kernel_busy = traitlets.Bool(False).tag(sync=True)
    heartbeat = traitlets.Int(0).tag(sync=True)

    commands: ClassVar[dict[str, str]] = {}
    """Command name → method name; the method takes the validated payload dict."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.RLock()
        self._beat_at = 0.0
        self.on_msg(self._on_message)
        if in_kernel():
            activity.watch()
        ticker.add(self)

    def close(self) -> None:
        ticker.discard(self)
        super().close()

    def tick(self) -> None:
        """Called by the ticker thread: send what changed since the last tick."""
        now = time.monotonic()
        with self._lock, self.hold_sync():
            if now - self._beat_at >= HEARTBEAT_SECONDS:
                self._beat_at = now
                self.heartbeat += 1
                self.kernel_busy = activity.busy
            self.update()

    def update(self) -> None:
        """Set traits from the current state; subclasses send only what changed."""

    def _on_message(self, _: Any, content: Any, buffers: list[bytes]) -> None:
        if not isinstance(content, dict) or content.get("kind") != "anywidget-command":
            log.warning("labnb widget ignored a message that is not a command: %.200r", content)
            return
        try:
            response = self.dispatch(content.get("name"), content.get("msg"))
        except Exception as error:  # a bug of ours: answer, log, never raise into the kernel
            log.exception("labnb widget command %r failed", content.get("name"))
            response = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        self.send(
            {"id": content.get("id"), "kind": "anywidget-command-response", "response": response}
        )

    def dispatch(self, name: Any, payload: Any) -> dict[str, Any]:
        method = self.commands.get(name) if isinstance(name, str) else None
        if method is None:
            log.warning("labnb widget ignored an unknown command %.100r", name)
            return {"ok": False, "error": f"unknown command {name!r}"}
        if not isinstance(payload, dict):
            log.warning("labnb widget ignored %s with a malformed payload %.200r", name, payload)
            return {"ok": False, "error": "the payload must be an object"}
        with self._lock:
            return getattr(self, method)(payload)


def estimate_remaining(records: list[Any], now: float, parallel: int) -> float | None:
    """Seconds until the run ends, from how long its finished tasks took: what
    running tasks have left plus the waiting ones' share, spread over the tasks
    that run side by side. None before any task of the run has finished.

    (Dividing the elapsed time by the tasks done overshoots early: worker
    start-up and the first, unfinished batch count as if they were per-task.)
    """
    durations = [
        r.finished - r.started
        for r in records
        if r.status in (DONE, FAILED) and r.started is not None and r.finished is not None
    ]
    running = [r for r in records if r.status == RUNNING]
    waiting = sum(r.status in (WAITING, STARTING) for r in records)
    if not durations or not (running or waiting):
        return None
    typical = sum(durations) / len(durations)
    left = sum(max(0.0, typical - (now - (r.started or now))) for r in running)
    return (left + waiting * typical) / parallel


def _task_id_from(payload: dict[str, Any]) -> str | None:
    value = payload.get("id")
    if isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value):
        return value
    return None


def _metric_points(series: list[tuple[int | None, float]]) -> list[list[float]]:
    """``[[step, value], ...]`` (the index when no step was given), at most ``METRIC_POINTS``."""
    points = [
        [index if step is None else step, value] for index, (step, value) in enumerate(series)
    ]
    if len(points) <= METRIC_POINTS:
        return points
    last = len(points) - 1
    # Evenly spaced indices from the first point to the last (both always kept).
    picked = sorted({round(i * last / (METRIC_POINTS - 1)) for i in range(METRIC_POINTS)})
    return [points[i] for i in picked]


def _metrics_payload(series: dict[str, list[tuple[int | None, float]]]) -> list[dict[str, Any]]:
    """Each metric's name, last value and (downsampled) points, in logging order."""
    return [
        {"name": name, "last": values[-1][1], "points": _metric_points(values)}
        for name, values in list(series.items())[:MAX_METRICS]
        if values
    ]


def _tracked(entry: IndexEntry | None) -> dict[str, Any]:
    """``metrics``/``artifacts``/``models`` of a storage entry's ``tracking``, for the browser."""
    tracking = Tracking() if entry is None else entry.tracking
    series: dict[str, list[tuple[int | None, float]]] = {}
    for name, value, step, _ in tracking.metrics:
        series.setdefault(name, []).append((step, value))
    return {
        "metrics": _metrics_payload(series),
        "artifacts": [str(name) for name in tracking.artifacts],
        "models": [str(name) for name in tracking.models],
    }


def _error_line(error: Any) -> str | None:
    """``ExcType: first line of the message``, for a failed task's row."""
    if error is None:
        return None
    first = (error.message.strip().splitlines() or [""])[0]
    return f"{error.exc_type}: {first}"[:200]


def _params_label(task: Any) -> str:
    """The task as the user wrote it (``Fit(config={'depth': 3})``), not its repr."""
    return task_label(task)


class RunView(LiveView):
    """One run: overall and per-type bars, running tasks, and a live log panel."""

    _esm = STATIC / "run_view.js"
    summary = traitlets.Dict().tag(sync=True)
    types: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    tasks: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    log_task = traitlets.Dict(dict(CLOSED_LOG)).tag(sync=True)
    task_view: traitlets.Dict[str, Any] = traitlets.Dict(
        {"status": "", "limit": MAX_TASK_ROWS, "shown": 0, "matching": 0}
    ).tag(sync=True)
    """Which rows ``tasks`` holds: those in ``status`` ("" for all), the first
    ``limit`` of the ``matching`` ones, so a big sweep says "showing N of M"."""

    commands: ClassVar[dict[str, str]] = {
        "cancel": "_cancel",
        "open_logs": "_open_logs",
        "close_logs": "_close_logs",
        "show_tasks": "_show_tasks",
        "why": "_why",
    }

    def __init__(
        self,
        state: RunState,
        cancel: Callable[[], object] | None = None,
        storage: Any = None,
        run_id: str | None = None,
        blocking: bool = False,
        **kwargs: Any,
    ) -> None:
        """``run_id``: the run is owned by a run process and recorded under this id,
        so it outlives this kernel and can be found again (``lab.runs()``).
        ``blocking``: the kernel waits for the run in this cell, so clicks wait too."""
        self.blocking = blocking
        self._state = state
        self._cancel_run = cancel
        self._run_id = run_id
        self._handle: Any = None
        self._saved_at = time.monotonic()
        self._storage = storage  # where finished and loaded tasks' tracking is (or None)
        self._entries: dict[str, Any] = {}  # task id -> its storage entry, once found
        self._seen_version = -1
        self._log_id = ""
        self._samplers: dict[int, Any] = {}
        self._sampled_at = 0.0
        self._parallel = 0
        self._graph: dict[str, list[str]] = {}
        self._graph_size = -1
        self._labels: dict[str, str] = {}
        """Each task's label, written once: a task never changes, and labels are
        most of the cost of a tick's rows."""
        """The most tasks seen running at once: how many run side by side, for the ETA."""
        self._usage: dict[int, tuple[float | None, float | None]] = {}
        self._gpu_usage: dict[int, tuple[float | None, float | None]] = {}
        """GPU utilisation and memory of each running worker (NVML; empty without)."""
        super().__init__(**kwargs)
        self.refresh()

    def __repr__(self) -> str:
        counts = self._state.counts()
        text = (
            f"labnb run ({self._state.outcome}): {counts[DONE]} done, {counts[LOADED]} loaded, "
            f"{counts[FAILED]} failed, {counts[RUNNING]} running of {len(self._state.records)}"
        )
        if self._run_id is not None and self._state.outcome == RUNNING:
            text += f" [run {self._run_id}: follow it with lab.runs()[-1]]"
        return text

    def refresh(self) -> None:
        """Send the whole state now (used at creation and at the end of a blocking run)."""
        with self._lock, self.hold_sync():
            self._seen_version = -1
            self.update()

    def update(self) -> None:
        state = self._state
        now = time.time()
        if now - self._sampled_at >= HEARTBEAT_SECONDS:
            self._sample_usage()
            self._sampled_at = now
        if state.version == self._seen_version and state.outcome != RUNNING:
            return
        with state.lock:
            self._seen_version = state.version
            self.summary = self._summary(now)
            self.types = self._types()
            self.tasks = self._rows(now)
            if self._log_id:
                self.log_task = self._log_payload(self._log_id)
        self._save(state.outcome != RUNNING)
        if state.outcome != RUNNING and not self._log_running():
            ticker.discard(self)  # nothing will change any more

    def show(self) -> Any:
        """Display the view, and keep what the notebook saves of it (its text) the
        run's latest state: a reopened notebook, or nbviewer, shows how it went."""
        from IPython.display import display

        self._handle = display(self, display_id=True)
        return self._handle

    def _save(self, over: bool) -> None:
        """Re-send the display now and then (and once at the end), so the text
        saved into the notebook is the run's latest state, not its first moment."""
        now = time.monotonic()
        if self._handle is None or not (over or now - self._saved_at >= SAVE_SECONDS):
            return
        self._saved_at = now
        handle, self._handle = self._handle, (None if over else self._handle)
        handle.update(self)

    def _summary(self, now: float) -> dict[str, Any]:
        state = self._state
        counts = state.counts()
        end = state.finished_at or now
        elapsed = end - state.started_at
        self._parallel = max(self._parallel, counts[RUNNING])
        eta = None
        if state.outcome == RUNNING:
            eta = estimate_remaining(
                [record for _, record in state.items()], now, max(1, self._parallel)
            )
        over = state.outcome != RUNNING
        return {
            "total": len(state.records),
            "done": counts[DONE] + counts[LOADED],
            "loaded": counts[LOADED],
            "failed": counts[FAILED],
            "running": counts[RUNNING],
            "starting": counts[STARTING],
            # Every task in exactly one state: once the run is over, the waiting
            # ones never started; cancelled ones were stopped while running.
            "waiting": 0 if over else counts["waiting"],
            "not_started": counts["waiting"] if over else 0,
            "cancelled": counts[CANCELLED],
            "failures": self._failure_kinds(),
            "elapsed_s": round(elapsed, 1),
            "eta_s": None if eta is None else round(eta, 1),
            "state": state.outcome,
            "blocking": self.blocking,
            "run_id": self._run_id,
        }

    def _failure_kinds(self) -> list[dict[str, Any]]:
        """``[{"type": "ValueError", "count": 2, "id": <first such task>}, ...]``,
        most frequent first: what the summary says failed, each opening a traceback."""
        kinds: dict[str, dict[str, Any]] = {}
        for key, record in self._state.items():
            if record.status == FAILED and record.error is not None:
                kind = kinds.setdefault(record.error.exc_type, {"count": 0, "id": key})
                kind["count"] += 1
        ordered = sorted(kinds.items(), key=lambda item: -item[1]["count"])
        return [{"type": name, **kind} for name, kind in ordered[:MAX_FAILURE_KINDS]]

    def _types(self) -> list[dict[str, Any]]:
        """One row per task type with its counts, and ``after``: the types its tasks
        depend on (the run's graph, drawn by type: readable at any size)."""
        after = self._type_graph()
        by_type: dict[str, dict[str, Any]] = {}
        for _, record in self._state.items():
            name = record.type_name
            row = by_type.setdefault(
                name,
                {"type": name, "total": 0, "done": 0, "failed": 0, "after": after.get(name, [])},
            )
            row["total"] += 1
            if record.status in (DONE, LOADED):
                row["done"] += 1
            elif record.status == FAILED:
                row["failed"] += 1
        return list(by_type.values())

    def _type_graph(self) -> dict[str, list[str]]:
        """Type -> the types it depends on; read again only when the run grows."""
        records = self._state.records
        if self._graph_size != len(records):
            edges: dict[str, set[str]] = {}
            for record in list(records.values()):
                if is_task(record.task):
                    for dependency in dependencies_of(record.task):
                        named = meta_of(dependency).type_name
                        if named != record.type_name:
                            edges.setdefault(record.type_name, set()).add(named)
            self._graph = {name: sorted(needed) for name, needed in edges.items()}
            self._graph_size = len(records)
        return self._graph

    def _rows(self, now: float) -> list[dict[str, Any]]:
        """Running first, then failed and cancelled, then the latest finished, then
        loaded and waiting ones: narrowed to the chosen status, up to the limit."""
        order = {STARTING: 0, RUNNING: 0, FAILED: 1, CANCELLED: 1, DONE: 2, LOADED: 3, WAITING: 4}
        wanted, limit = self.task_view["status"], self.task_view["limit"]
        records = [(key, r) for key, r in self._state.items() if not wanted or r.status == wanted]
        records.sort(key=lambda item: (order[item[1].status], -(item[1].finished or 0)))
        self.task_view = {
            "status": wanted,
            "limit": limit,
            "shown": min(limit, len(records)),
            "matching": len(records),
        }
        rows = []
        for key, record in records[:limit]:
            cpu, memory = self._usage.get(record.pid or -1, (None, None))
            gpu_percent, gpu_memory = self._gpu_usage.get(record.pid or -1, (None, None))
            running = record.status == RUNNING
            end = now if running else (record.finished or now)
            n, total, desc = record.progress or (0, None, None)
            rows.append(
                {
                    "id": key,
                    "type": record.type_name,
                    "label": self._label(key, record.task),
                    "params": self._label(key, record.task),
                    "status": record.status,
                    "elapsed_s": round(end - record.started, 1) if record.started else None,
                    "cpu_percent": cpu if running else None,
                    "memory_mb": memory if running else None,
                    "resources": record.resources,
                    "gpu_percent": gpu_percent if running else None,
                    "gpu_memory_mb": gpu_memory if running else None,
                    "progress": None
                    if record.progress is None
                    else {"n": n, "total": total, "desc": desc},
                    "error": _error_line(record.error),
                }
            )
        return rows

    def _label(self, key: str, task: Any) -> str:
        label = self._labels.get(key)
        if label is None:
            label = self._labels[key] = _params_label(task)
        return label

    def _sample_usage(self) -> None:
        """CPU and memory of the workers running tasks, at most once a second."""
        import psutil

        pids = {
            record.pid
            for _, record in self._state.items()
            if record.status == RUNNING and record.pid
        }
        usage = {}
        for pid in pids:
            try:
                process = self._samplers.get(pid) or psutil.Process(pid)
                self._samplers[pid] = process
                usage[pid] = (
                    process.cpu_percent(None),
                    round(process.memory_info().rss / 2**20, 1),
                )
            except psutil.Error:
                usage[pid] = (None, None)
        self._samplers = {pid: p for pid, p in self._samplers.items() if pid in pids}
        self._usage = usage
        self._gpu_usage = gpu_usage(  # only tasks given GPUs: NVML is not loaded for others
            record.pid
            for _, record in self._state.items()
            if record.status == RUNNING
            and record.pid
            and (record.resources or "").startswith("GPU")
        )

    def _log_running(self) -> bool:
        record = self._state.records.get(self._log_id)
        return record is not None and record.status == RUNNING

    def _log_payload(self, key: str) -> dict[str, Any]:
        record = self._state.records[key]
        text = "".join(record.output)
        if not text and record.status in (DONE, FAILED) and self._storage is not None:
            text = self._storage.read_logs(key) or ""  # a run followed after it printed
        elif record.error is not None and record.error.traceback:
            text += record.error.traceback
        elif record.status == LOADED:
            text = "(loaded from the cache: these are the logs of the run that computed it)\n"
        tracked = self._tracked(key, record.status)
        if record.metrics:  # live, as the task logs them
            tracked["metrics"] = _metrics_payload(record.metrics)
        return {
            "id": key,
            "label": self._label(key, record.task),
            "status": record.status,
            "text": text[-LOG_TEXT_LIMIT:],
            **tracked,
        }

    def _tracked(self, key: str, status: str) -> dict[str, Any]:
        """What a finished or loaded task logged, from its storage entry (when there is one)."""
        entry = self._entries.get(key)
        if entry is None and self._storage is not None and status in (DONE, LOADED):
            try:
                entry = self._storage.lookup(key)
            except Exception:
                log.exception("labnb widget could not read the entry of task %s", key)
            if entry is not None:
                self._entries[key] = entry
        return _tracked(entry)

    # --- commands (validated payloads, under the view's lock) ---------------

    def _cancel(self, _: dict[str, Any]) -> dict[str, Any]:
        if self._cancel_run is None:
            return {"ok": False, "error": "this run is blocking the kernel: use the stop button"}
        self._cancel_run()
        return {"ok": True}

    def _open_logs(self, payload: dict[str, Any]) -> dict[str, Any]:
        key = _task_id_from(payload)
        if key is None or key not in self._state.records:
            log.warning("labnb widget: no task %.100r in this run", payload.get("id"))
            return {"ok": False, "error": "no such task in this run"}
        self._log_id = key
        with self._state.lock:
            self.log_task = self._log_payload(key)
        ticker.add(self)
        reply = self.log_task
        return {
            "ok": True,
            "text": reply["text"],
            "metrics": reply["metrics"],
            "artifacts": reply["artifacts"],
            "models": reply["models"],
        }

    def _close_logs(self, _: dict[str, Any]) -> dict[str, Any]:
        self._log_id = ""
        self.log_task = dict(CLOSED_LOG)
        return {"ok": True}

    def _why(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"id": ...}`` of a task this run computed: why it was not loaded from
        the cache (``lab.explain``, as it stood before the task ran)."""
        key = _task_id_from(payload)
        record = self._state.records.get(key) if key is not None else None
        if record is None or record.status == LOADED:
            return {"ok": False, "error": "no task of this run that ran"}
        if self._storage is None or not is_task(record.task):
            return {"ok": False, "error": "this run's storage is not at hand here"}
        return {"ok": True, "text": str(explain(record.task, self._storage, why_it_ran=True))}

    def _show_tasks(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"status": "failed", "limit": 400}``: the rows to show (``task_view``)."""
        status, limit = payload.get("status", ""), payload.get("limit", MAX_TASK_ROWS)
        if status not in ROW_STATUSES:
            return {"ok": False, "error": f"status must be one of {ROW_STATUSES}"}
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROW_LIMIT:
            return {"ok": False, "error": f"limit must be a whole number from 1 to {MAX_ROW_LIMIT}"}
        with self._state.lock:
            self.task_view = {**self.task_view, "status": status, "limit": limit}
            self.tasks = self._rows(time.time())
        return {
            "ok": True,
            "shown": self.task_view["shown"],
            "matching": self.task_view["matching"],
        }


class CacheView(LiveView):
    """The cache browser: the kernel asks the catalog for one page per query.

    Filtering, sorting, counting and paging run in SQLite (``Catalog``), so a
    page costs milliseconds at 100,000 entries, and an uncache refreshes one
    page, not the whole index. The filter box's text is read here
    (``cache_filter.py``), and "uncache all N matching" removes by that query
    in the kernel: the browser never sends (or holds) 20,000 ids.
    """

    _esm = STATIC / "cache_view.js"
    groups: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    columns: traitlets.List[str] = traitlets.List().tag(sync=True)
    rows: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    total_rows = traitlets.Int(0).tag(sync=True)
    query = traitlets.Dict(dict(DEFAULT_QUERY)).tag(sync=True)
    filter_info: traitlets.Dict[str, Any] = traitlets.Dict(
        {"hint": HINT, "error": "", "terms": [], "words": []}
    ).tag(sync=True)
    """How the kernel read the filter box: ``error`` ("" when it read well) and the
    field ``terms`` and free ``words`` it applies; ``hint`` is the syntax reminder."""
    uncaching: traitlets.Dict[str, Any] = traitlets.Dict(
        {"running": False, "removed": 0, "total": 0, "error": ""}
    ).tag(sync=True)
    """The last "uncache all matching": how many of ``total`` are gone so far."""

    commands: ClassVar[dict[str, str]] = {
        "uncache": "_uncache",
        "uncache_matching": "_uncache_matching",
        "compare": "_compare",
        "logs": "_logs",
        "refresh": "_refresh",
    }

    def __init__(self, lab: Any, **kwargs: Any) -> None:
        self._lab = lab
        self._catalog = lab.storage.catalog
        self._generation: int | None = None
        self._groups_for: tuple[Any, ...] | None = None
        self._remover: threading.Thread | None = None
        self._checked_at = 0.0
        self._reload_seconds = 0.0
        super().__init__(**kwargs)
        self.observe(self._on_query, names="query")
        self._reload()

    def __repr__(self) -> str:
        return f"labnb cache browser of {self._lab.storage!r}: {self.total_rows} cached tasks"

    def update(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._check_every:
            return
        self._checked_at = now
        if self._lab.storage.generation() != self._generation:
            self._reload()

    @property
    def _check_every(self) -> float:
        """Seconds between looks at the index: never more than a tenth of the
        kernel's time goes to refreshing, however big the cache."""
        return max(HEARTBEAT_SECONDS, 10 * self._reload_seconds)

    def _reload(self) -> None:
        """The index changed (maybe in another process): new counts and the current page."""
        started = time.monotonic()
        with self._lock:
            self._generation = self._lab.storage.generation()
            with self.hold_sync():
                self._send_page()
        self._reload_seconds = time.monotonic() - started

    @traitlets.validate("query")
    def _check_query(self, proposal: Any) -> dict[str, Any]:
        """A malformed query from the page never becomes state: it is corrected first."""
        query = _valid_query(proposal["value"])
        if query != proposal["value"]:
            log.warning("labnb cache browser corrected a malformed query %.200r", proposal["value"])
        return query

    def _on_query(self, change: dict[str, Any]) -> None:
        with self._lock, self.hold_sync():
            self._send_page(change["new"])

    def _filter(self, text: str) -> FilterQuery:
        return parse_filter(text, self._catalog.columns())

    def _send_page(self, query: dict[str, Any] | None = None) -> None:
        query = query or self.query
        wanted = self._filter(query["text"])
        self.filter_info = {
            "hint": HINT,
            "error": wanted.error,
            "terms": list(wanted.terms),
            "words": list(wanted.words),
        }
        self._send_groups(query["text"], wanted)
        total, rows = 0, list[dict[str, Any]]()
        if wanted.ok:  # a filter that does not read matches nothing, never everything
            try:
                total, rows = self._page(query, wanted)
            except QueryError:
                log.warning("labnb cache browser: no column %.100r to sort by", query["sort"])
                total, rows = self._page({**query, "sort": DEFAULT_QUERY["sort"]}, wanted)
        columns, cells = _page_columns(rows)
        self.columns = columns
        self.total_rows = total
        marks = self._version_marks(rows)
        self.rows = [
            {**_page_row(row, columns, cell), **mark}
            for row, cell, mark in zip(rows, cells, marks, strict=True)
        ]

    def _version_marks(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per row: ``version`` "current", "older" (another ``code_version`` than the
        type's definition now, with when that version was last used) or "stale"
        (same version, older code), or None where this kernel has no such type."""
        current: dict[str, tuple[str | None, str] | None] = {}
        last_used: dict[str, dict[str | None, float]] = {}
        marks: list[dict[str, Any]] = []
        for row in rows:
            name = row["type"]
            if name not in current:
                cls = defined_type(name)
                current[name] = None if cls is None else (code_version_of(cls), code_hash(cls))
            now = current[name]
            if now is None:
                marks.append({"version": None, "version_note": None})
            elif row["code_version"] != now[0]:
                if name not in last_used:
                    last_used[name] = {v: last for v, _, last in self._catalog.versions(name)}
                when = last_used[name].get(row["code_version"])
                note = f"made by version {row['code_version']!r} of {name}"
                if when is not None:
                    note += f", last used {datetime.fromtimestamp(when):%Y-%m-%d %H:%M}"
                marks.append({"version": "older", "version_note": note})
            elif same_code(row["code"], now[1]) is False:
                note = f"made by an older version of {name}'s code: lab.explain(task) says more"
                marks.append({"version": "stale", "version_note": note})
            else:
                marks.append({"version": "current", "version_note": None})
        return marks

    def _send_groups(self, text: str, wanted: FilterQuery) -> None:
        """Every type with how many of its entries match the filter (``count``) and
        how many are cached (``cached``): the type chips follow the filter."""
        key = (self._generation, text)
        if key == self._groups_for:
            return
        cached = self._catalog.groups()
        if not wanted.ok:
            matching: dict[str, int] = {}
        elif wanted.where or wanted.words:
            matching = self._catalog.groups(where=wanted.where, words=wanted.words)
        else:
            matching = cached
        self.groups = [
            {"type": name, "count": matching.get(name, 0), "cached": count}
            for name, count in cached.items()
        ]
        self._groups_for = key

    def _page(self, query: dict[str, Any], wanted: FilterQuery) -> tuple[int, list[dict[str, Any]]]:
        types = [query["type"]] if query["type"] else None
        total = self._catalog.count(types, where=wanted.where, words=wanted.words)
        rows = self._catalog.query(
            types,
            where=wanted.where,
            words=wanted.words,
            sort=query["sort"],
            descending=query["descending"],
            offset=query["page"] * query["page_size"],
            limit=query["page_size"],
        )
        return total, rows

    # --- commands ------------------------------------------------------------

    def _compare(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"x", "y", "colour"}``: columns of the shown type (``params.C``,
        ``metrics.accuracy``, ``duration_s``...; ``colour`` may be ""). Returns one
        point ``[x, y, colour, id]`` per matching task, at most ``COMPARE_POINTS``,
        read in the catalog like a page."""
        x, y, colour = payload.get("x"), payload.get("y"), payload.get("colour", "")
        query = self.query
        types = [query["type"]] if query["type"] else None
        allowed = set(self._catalog.columns(types)) | {"duration_s", "size_bytes"}
        for name in (x, y, *((colour,) if colour else ())):
            if not isinstance(name, str) or name not in allowed:
                return {"ok": False, "error": f"no column {str(name)[:100]!r} to compare"}
        wanted = self._filter(query["text"])
        total, rows = 0, []
        if wanted.ok:
            total = self._catalog.count(types, where=wanted.where, words=wanted.words)
            rows = self._catalog.query(
                types, where=wanted.where, words=wanted.words, limit=COMPARE_POINTS
            )
        points = [
            [row.get(x), row.get(y), row.get(colour) if colour else None, row["id"]] for row in rows
        ]
        return {"ok": True, "points": points, "total": total, "x": x, "y": y, "colour": colour}

    def _uncache(self, payload: dict[str, Any]) -> dict[str, Any]:
        ids = payload.get("ids")
        if not isinstance(ids, list) or len(ids) > 100_000:
            return {"ok": False, "error": "ids must be a list of task ids"}
        # Linear and bounded, whatever the page sends: each id looked at once,
        # duplicates and anything but an id string dropped before the catalog.
        wanted = list(dict.fromkeys(key for key in ids if _task_id_from({"id": key})))
        known = {entry.task_id for entry in self._catalog.entries(ids=wanted)} if wanted else set()
        unknown = [key for key in ids if not isinstance(key, str) or key not in known][:100]
        if unknown:
            log.warning("labnb cache browser refused to uncache unknown ids %.200r", unknown)
        removed = self._catalog.remove(list(known)) if known else 0
        self._reload()
        return {"ok": True, "removed": removed, "unknown": [str(key)[:64] for key in unknown]}

    def _uncache_matching(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{text, type, expected}``: remove every entry the shown query matches, as
        the user confirmed it. Refused when the query is not the one shown, or when
        another number of entries matches now (the confirmation said ``expected``).

        The ids are taken now (a task cached a moment later is not removed) and
        removed on a thread, ``REMOVE_BATCH`` at a time, ``uncaching`` telling the
        page how far it got: the reply comes at once, however many there are."""
        text, type_, expected = payload.get("text"), payload.get("type"), payload.get("expected")
        if not isinstance(text, str) or not isinstance(type_, str):
            return {"ok": False, "error": "text and type must be strings"}
        if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
            return {"ok": False, "error": "expected must be the number of matching tasks"}
        if (text, type_) != (self.query["text"], self.query["type"]):
            return {"ok": False, "error": "the filter changed: confirm again"}
        if self.uncaching["running"]:
            return {"ok": False, "error": "an uncache is still running"}
        wanted = self._filter(text)
        if not wanted.ok:
            return {"ok": False, "error": wanted.error}
        types = [type_] if type_ else None
        ids = self._catalog.ids(types, where=wanted.where, words=wanted.words)
        if len(ids) != expected:
            self._reload()
            return {
                "ok": False,
                "error": f"{len(ids)} tasks match now, not {expected}: look again and confirm",
                "matching": len(ids),
            }
        self.uncaching = {"running": True, "removed": 0, "total": len(ids), "error": ""}
        thread = threading.Thread(
            target=self._remove_in_batches, args=(ids,), name="labnb-uncache", daemon=True
        )
        thread.start()
        self._remover = thread
        return {"ok": True, "removing": len(ids)}

    def _remove_in_batches(self, ids: list[str]) -> None:
        removed, error = 0, ""
        try:
            for start in range(0, len(ids), REMOVE_BATCH):
                removed += self._catalog.remove(ids[start : start + REMOVE_BATCH])
                with self._lock:
                    self.uncaching = {**self.uncaching, "removed": removed}
        except Exception as exc:  # reported on the page, logged, never raised
            log.exception("labnb cache browser: uncaching failed")
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.uncaching = {
                **self.uncaching,
                "running": False,
                "removed": removed,
                "error": error,
            }
        self._reload()

    def _logs(self, payload: dict[str, Any]) -> dict[str, Any]:
        key = _task_id_from(payload)
        text = self._lab.storage.read_logs(key) if key else None
        if text is None:
            return {"ok": False, "error": "no logs for this task"}
        entry = self._lab.storage.lookup(key)
        return {"ok": True, "text": text[-LOG_TEXT_LIMIT:], **_tracked(entry)}

    def _refresh(self, _: dict[str, Any]) -> dict[str, Any]:
        self._reload()
        return {"ok": True}


def _page_columns(rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, str]]]:
    """The parameter and metric columns this page shows, and each row's cell texts.

    A dict parameter gets one column per key (``params.config.depth``; the
    catalog sorts and filters by it too); columns empty on this page are left out."""
    cells: list[dict[str, str]] = [{} for _ in rows]
    columns: dict[str, None] = {}
    shown = [name for name in (rows[0] if rows else {}) if "." in name]
    for name in [*shown, "result"]:  # a numeric result is a column like a metric
        values = [row[name] for row in rows]
        dicts = [_json_object(value) for value in values]
        if any(value is not None for value in values) and all(
            value is None or found is not None for value, found in zip(values, dicts, strict=True)
        ):
            for cell, found in zip(cells, dicts, strict=True):
                for key, item in (found or {}).items():
                    columns[f"{name}.{key}"] = None
                    cell[f"{name}.{key}"] = item if isinstance(item, str) else value_text(item)
            continue
        for cell, value in zip(cells, values, strict=True):
            if value is not None:
                columns[name] = None
                cell[name] = stored_text(value)
    return list(columns), cells


def _json_object(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, str) or not value.startswith("{"):
        return None
    try:
        found = json.loads(value)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _page_row(row: dict[str, Any], columns: list[str], cells: dict[str, str]) -> dict[str, Any]:
    from datetime import datetime, timezone

    fields = [
        f"{name[len(PARAMS) :]}={stored_text(value)}"
        for name, value in row.items()
        if name.startswith(PARAMS) and value is not None
    ]
    return {
        "id": row["id"],
        "type": row["type"],
        "label": f"{row['type']}({', '.join(fields)})"[:300],
        "params": {name: cells[name] for name in columns if name in cells},
        "started": datetime.fromtimestamp(row["started"], tz=timezone.utc).isoformat(),
        "duration_s": round(float(row["duration_s"]), 3),
        "size_bytes": int(row["size_bytes"]),
    }


def _valid_query(query: Any) -> dict[str, Any]:
    """The browser's query, with anything malformed replaced by the default."""
    valid = dict(DEFAULT_QUERY)
    if not isinstance(query, dict):
        return valid
    if isinstance(query.get("text"), str):
        valid["text"] = query["text"][:200]
    if isinstance(query.get("type"), str):
        valid["type"] = query["type"][:500]
    if isinstance(query.get("sort"), str) and len(query["sort"]) <= 500:
        valid["sort"] = query["sort"]
    if isinstance(query.get("descending"), bool):
        valid["descending"] = query["descending"]
    for name, low, high in (("page", 0, 10**9), ("page_size", 1, 500)):
        value = query.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            valid[name] = min(max(value, low), high)
    return valid
