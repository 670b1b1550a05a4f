"""``%load_ext labnb``: the ``%%labtask`` cell magic and the ``%labnb`` line magic.

A thin layer: ``cells.py`` turns a cell into a task type and its sweep, the
Lab runs it. Bad lines raise IPython's ``UsageError``, which the notebook shows
as one line, and nothing runs.
"""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display

from ..errors import ConfigError
from ..lab import DEFAULT_STORAGE, Lab
from ..model.resources import format_size
from ..model.tasks import attach_config, code_version_of, normalise, task_id
from ..storage.runs import RUNNING, read_runs
from ..storage.schema import PARAMS
from .cells import (
    LineError,
    as_pandas,
    config_values,
    evaluate,
    make_task_type,
    merge_values,
    parse_keywords,
    parse_line,
    split_words,
    sweep,
)

_MAGICS: weakref.WeakKeyDictionary[Any, LabnbMagics] = weakref.WeakKeyDictionary()

LINE_USAGE = """%labnb                      show the default lab's cache browser
%labnb status               a short text summary of the default lab's cache
%labnb storage PATH         use PATH as the default lab's storage
%labnb uncache TYPE [k=v]   remove cached results of a %%labtask type (or those matching k=v)
%labnb uncache TYPE --old   remove the results of older versions of a %%labtask cell
%labnb explain NAME k=v ... why a %%labtask cell's task (these parameters) is cached or not"""


def load_ipython_extension(shell: Any) -> None:
    magics = _MAGICS.get(shell)
    if magics is None:
        magics = _MAGICS[shell] = LabnbMagics(shell)
    shell.register_magics(magics)  # registering again replaces: loading twice is harmless


def unload_ipython_extension(shell: Any) -> None:
    registry = shell.magics_manager.magics
    registry["cell"].pop("labtask", None)
    registry["line"].pop("labnb", None)


@magics_class
class LabnbMagics(Magics):
    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._storage: str = DEFAULT_STORAGE
        self._lab: Lab | None = None
        self._cell_types: dict[str, type] = {}
        """The task type each ``%%labtask`` cell last ran as: its current version."""

    @property
    def _namespace(self) -> dict[str, Any]:
        """The notebook's variables (a registered magic always has a shell)."""
        assert self.shell is not None
        return self.shell.user_ns

    @property
    def default_lab(self) -> Lab:
        if self._lab is None:
            self._lab = Lab(storage=self._storage)
        return self._lab

    @cell_magic
    def labtask(self, line: str, cell: str) -> Any:
        """Run this cell as a cached, parallel task, once per combination of the swept values.

        %%labtask NAME [param=value ...] [--config FILE] [--wait] [--lab LAB]
                  [--bust-cache] [--max-parallel N] [--mlflow] [--ignore NAME[,NAME]]

        ``--config params.yaml`` (or ``.toml``) adds the file's keys as parameters
        (lists sweep); a parameter also on the line takes the line's value.
        """
        namespace = self._namespace
        config = None
        try:
            spec = parse_line(line)
            lab = self._lab_named(spec.lab)
            values, swept = evaluate(spec.expressions, namespace, spec.name)
            if spec.config is not None:
                config, in_file, swept_in_file = config_values(spec.config, spec.name)
                values, swept = merge_values((in_file, swept_in_file), (values, swept))
            task_type = make_task_type(spec, cell, namespace, list(values))
        except (LineError, ConfigError) as error:
            raise UsageError(f"%%labtask: {error}") from None
        tasks = sweep(task_type, values)
        if config is not None:
            for each in tasks:
                attach_config(each, config)
        self._cell_types[spec.name] = task_type
        print(f"labnb: {spec.name}: {_reuse_summary(lab, tasks, spec.bust_cache)}")

        def publish(results: dict[Any, Any]) -> None:
            namespace[spec.name] = as_pandas(spec.name, tasks, results, swept)

        if spec.wait:
            publish(lab.run_tasks(tasks, bust_cache=spec.bust_cache))
            return None
        run = lab.submit(tasks, bust_cache=spec.bust_cache)
        namespace[spec.name] = run
        run.add_done_callback(lambda finished: publish(finished.results))
        display(run)
        return None

    @line_magic
    def labnb(self, line: str) -> Any:
        """The default lab: its cache browser, status, storage, or uncaching (see LINE_USAGE)."""
        words = split_words(line)
        if not words:
            return self.default_lab
        command, arguments = words[0], words[1:]
        if command == "storage" and len(arguments) == 1:
            self._storage, self._lab = arguments[0], None
            print(f"labnb: the default lab now caches in {self.default_lab.storage}")
            return None
        if command == "status" and not arguments:
            print(status_text(self.default_lab, self._cell_types))
            return None
        if command == "explain" and arguments:
            task_type = self._current_cell_type(line, arguments[0])
            try:
                values = parameters(arguments[0], arguments[1:], self._namespace)
                print(self.default_lab.explain(task_type(**dict(values))))
            except (LineError, TypeError) as error:
                raise UsageError(f"%labnb {line}: {error}") from None
            return None
        if command == "uncache" and arguments[1:] == ["--old"]:
            task_type = self._current_cell_type(line, arguments[0])
            removed = self.default_lab.uncache_older_versions(task_type)
            print(f"labnb: removed {removed} cached result(s) of older versions of {arguments[0]}")
            return None
        if command == "uncache" and arguments:
            try:
                removed = uncache_matching(
                    self.default_lab, arguments[0], arguments[1:], self._namespace
                )
            except LineError as error:
                raise UsageError(f"%labnb uncache: {error}") from None
            print(f"labnb: removed {removed} cached result(s) of {arguments[0]}")
            return None
        raise UsageError(f"%labnb: unknown command {line!r}\n{LINE_USAGE}")

    def _current_cell_type(self, line: str, name: str) -> type:
        """The task type the ``%%labtask`` cell ``name`` last ran as: its current version."""
        task_type = self._cell_types.get(name)
        if task_type is None:
            raise UsageError(
                f"%labnb {line}: run the %%labtask cell {name!r} first, "
                "so its current version is known"
            )
        return task_type

    def _lab_named(self, name: str | None) -> Lab:
        if name is None:
            return self.default_lab
        lab = self._namespace.get(name)
        if not isinstance(lab, Lab):
            raise LineError(f"--lab {name}: no labnb.Lab named {name!r} in the notebook")
        return lab


def uncache_matching(lab: Lab, type_name: str, words: list[str], namespace: dict[str, Any]) -> int:
    """Remove the cached results of ``type_name`` whose parameters match ``k=v`` words."""
    wanted = {PARAMS + name: value for name, value in parameters(type_name, words, namespace)}
    return lab.catalog.remove(types=[type_name], where=wanted)


def parameters(
    type_name: str, words: list[str], namespace: dict[str, Any]
) -> list[tuple[str, Any]]:
    """The ``k=v`` words of a line, each value evaluated in the notebook, as a task stores it."""
    found = []
    for name, expression in parse_keywords(words).items():
        try:
            found.append((name, normalise(eval(expression, namespace), type_name, name)))
        except Exception as error:
            raise LineError(f"{name}={expression}: {type(error).__name__}: {error}") from None
    return found


def status_text(lab: Lab, cells: dict[str, type] | None = None) -> str:
    """Results per type (sizes in human units, times local), the runs going on now,
    and for the cells run in this session how many results are of their current
    version and how many of older ones (``%labnb uncache NAME --old``). Read
    from the catalog in one grouped query: instant at 100,000 entries."""
    usage = lab.catalog.usage()
    total = sum(count for _, count, _, _ in usage)
    size = sum(stored for _, _, stored, _ in usage)
    lines = [
        f"labnb storage: {lab.storage}",
        f"{total:,} cached result{'' if total == 1 else 's'}, {format_size(size)}",
    ]
    if usage:
        width = max(len("type"), *(len(name) for name, _, _, _ in usage))
        lines.append(f"  {'type':<{width}}  {'results':>8}  {'size':>9}  last finished")
        for name, count, stored, last in usage:
            lines.append(
                f"  {name:<{width}}  {count:>8,}  {format_size(stored):>9}  {_local_time(last)}"
            )
    running = [record for record in read_runs(lab.storage.index) if record.status == RUNNING]
    for record in running:
        counts = record.counts()
        done = counts.get("done", 0) + counts.get("loaded", 0)
        extra = "".join(
            f", {counts[state]} {state}" for state in ("running", "failed") if counts.get(state)
        )
        lines.append(
            f"run {record.id} (running since {record.started.astimezone():%H:%M:%S}, "
            f"pid {record.pid}): {done} of {len(record.tasks)} done{extra}"
        )
    for name, task_type in sorted((cells or {}).items()):
        current = code_version_of(task_type)
        versions = lab.catalog.versions(task_type)
        now = sum(count for version, count, _ in versions if version == current)
        older = sum(count for version, count, _ in versions if version != current)
        if older:
            lines.append(
                f"{name}: {now} of the current version, {older} of older versions "
                f"(%labnb uncache {name} --old removes them)"
            )
    return "\n".join(lines)


def _local_time(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _reuse_summary(lab: Lab, tasks: list[Any], bust_cache: bool) -> str:
    """ "5 new parameter combinations, 15 reused": what the cell will compute."""
    reused = 0 if bust_cache else len(lab.storage.lookup_many([task_id(t) for t in tasks]))
    new = len(tasks) - reused
    return f"{new} new parameter combination{'' if new == 1 else 's'}, {reused} reused"
