"""Why a task is, or is not, cached: ``lab.explain(task)``.

A task is found in the cache by its id, which hashes its type name, its
``code_version`` and its parameters. When it is not cached, the useful answer
is the cached entries of its type that come nearest, and exactly what differs
from each: which parameters (cached value, value now), the ``code_version``, the
module that defined the type, and for a ``%%labtask`` cell what changed in
the cell since the cached version (``model.cell_versions``: its edited lines,
its changed inputs). The comparison is on the stored encoding of the
parameters, the same one the id is made from. A cached task whose type's code
changed since its result was made is said to be stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..model.cell_versions import CellVersion, cell_version_of
from ..model.code_hash import code_hash, same_code
from ..model.config_files import ConfigFile
from ..model.tasks import code_version_of, meta_of, stored_params, task_id
from ..storage import IndexEntry, Storage
from ..storage.schema import cell_value

NEAREST = 3
SCANNED = 20_000
"""Entries of the type compared at most (the newest)."""


@dataclass(frozen=True)
class Difference:
    what: str
    """``params.<field>``, ``code_version`` or ``module``."""
    cached: Any
    now: Any
    details: tuple[str, ...] = ()
    """For a ``%%labtask`` cell's ``code_version``: what changed in the cell
    (``CellVersion.changes_since``: its source's changed lines, its changed inputs)."""

    def __str__(self) -> str:
        return f"{self.what}: {self.cached!r} cached, {self.now!r} now"


@dataclass(frozen=True)
class Explanation:
    """``str()`` it (or let a notebook show it) to read why."""

    task: Any
    entry: IndexEntry | None
    """The task's own entry, when it is cached."""
    usable: bool
    """Whether ``run_tasks`` would load it rather than run the task."""
    nearest: tuple[tuple[IndexEntry, tuple[Difference, ...]], ...]
    """Not cached: the nearest cached entries of its type, and what differs."""
    config: ConfigFile | None = None
    """Cached: the config file it was computed from (``labnb.sweep``), if any."""
    stale: bool = False
    """Cached, but by an older version of its type's code (``model.code_hash``)."""

    def __str__(self) -> str:
        label = repr(self.task)
        if self.entry is not None:
            when = datetime.fromtimestamp(self.entry.finished).isoformat(" ", "seconds")
            state = "cached" if self.usable else f"cached but not usable ({self._why_not()})"
            run = f" by run {self.entry.run_id}" if self.entry.run_id else ""
            config = "" if self.config is None else f", from config {self.config.name}"
            stale = (
                " It was made by an older version of its code: its methods, or functions "
                "they call, changed since (code_version='auto' reruns on such edits)."
                if self.stale
                else ""
            )
            return f"{label} is {state}: computed {when}{run}{config}.{stale}"
        if not self.nearest:
            return f"{label} is not cached, and nothing of type {meta_of(self.task).type_name} is."
        lines = [f"{label} is not cached. The nearest cached entries of its type differ in:"]
        told: set[Any] = set()  # what changed since a version is said once
        for entry, differences in self.nearest:
            lines.append(f"- {entry.task_id[:12]}: " + "; ".join(map(str, differences)))
            for each in differences:
                if each.details and each.cached not in told:
                    told.add(each.cached)
                    lines.extend(f"    {line}" for line in each.details)
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _why_not(self) -> str:
        assert self.entry is not None
        if self.entry.status != "ok":
            return f"its result file is {self.entry.status}"
        return f"stored as {self.entry.format}, the type now caches as another format"


def explain(task: Any, storage: Storage, why_it_ran: bool = False) -> Explanation:
    """``why_it_ran``: for a task a run computed (now cached), answer as before it
    ran: its own entry and those finished after it started (its run mates) are
    left out, and the nearest of the others say what differs (the run widget's
    "Why?")."""
    meta = meta_of(task)
    key = task_id(task)
    entry = storage.lookup(key)
    before, mates = float("inf"), None
    if why_it_ran and entry is not None:
        before, mates = entry.started, entry.run_id
    if entry is not None and not why_it_ran:
        fmt = meta.format
        usable = entry.status == "ok" and fmt is not None and entry.format == fmt.name
        stale = same_code(entry.code, code_hash(type(task))) is False
        return Explanation(task, entry, usable, (), storage.config(entry.config), stale)
    params = stored_params(task)
    candidates = [
        other
        for other in storage.catalog.entries([meta.type_name])[-SCANNED:]
        if other.task_id != key
        and other.finished <= before
        and (mates is None or other.run_id != mates)
    ]
    compared = [(other, _differences(task, params, other, storage)) for other in candidates]
    compared.sort(key=lambda item: (len(item[1]), -item[0].finished))
    return Explanation(task, None, False, tuple(compared[:NEAREST]))


def _differences(
    task: Any, params: dict[str, Any], entry: IndexEntry, storage: Storage
) -> tuple[Difference, ...]:
    meta = meta_of(task)
    found = [
        Difference(f"params.{name}", _shown(entry.params.get(name)), _shown(params.get(name)))
        for name in sorted(set(params) | set(entry.params))
        if params.get(name) != entry.params.get(name)
    ]
    version = code_version_of(task)
    if entry.code_version != version:
        details = _cell_changes(type(task), entry.code_version, storage)
        found.append(Difference("code_version", entry.code_version, version, details))
    if entry.module and entry.module != meta.module:
        found.append(Difference("module", entry.module, meta.module))
    return tuple(found)


def _cell_changes(task_type: type, cached: str | None, storage: Storage) -> tuple[str, ...]:
    """What changed in a ``%%labtask`` cell since the version that made an entry,
    when both versions are known (older storages kept no versions: nothing said)."""
    now = cell_version_of(task_type)
    kept = None if now is None or cached is None else storage.index.read_config(cached)
    before = None if kept is None or now is None else CellVersion.from_text(now.name, kept[1])
    if now is None or before is None:
        return ()
    return now.changes_since(before)


def _shown(encoded: Any) -> Any:
    return None if encoded is None else cell_value(encoded)
