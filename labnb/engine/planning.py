"""From the tasks a user asked for to what must run: the dependency graph, minus what is cached.

A cached task is loaded and its own dependencies are not even visited. The
result is one ``Node`` per task that must run, in an order where dependencies
come first, for the scheduler.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import CacheWarning, LabnbError
from ..model.formats import Payload
from ..model.tasks import dependencies_of, meta_of, needs_of, task_id
from ..storage import IndexEntry, Storage
from .scheduler import Node


class CycleError(LabnbError, ValueError):
    """Tasks depend on each other in a loop; raised before anything runs."""


@dataclass
class Plan:
    tasks: dict[str, Any] = field(default_factory=dict)
    """One task object per id, for every task visited."""
    instances: dict[str, list[Any]] = field(default_factory=dict)
    """Every distinct object seen per id: each gets ``.result`` after the run."""
    loaded: dict[str, Payload] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    run_ids: dict[str, str] = field(default_factory=dict)
    """mlflow run ids of loaded tasks that were mlflow runs."""
    timings: dict[str, tuple[float, float]] = field(default_factory=dict)
    """When loaded tasks' results were computed: (started, finished)."""
    code: dict[str, str] = field(default_factory=dict)
    """The code hash that computed each loaded result, where its entry recorded one."""
    modules: dict[str, str] = field(default_factory=dict)
    """The module whose class computed each loaded result, where its entry recorded one."""


def check_acyclic(roots: Sequence[Any]) -> None:
    """Walk by object identity: a cycle would make id computation loop forever.

    Iterative (a stack of dependency iterators, not recursion), so a chain of
    10,000 dependent tasks is walked like any other graph."""
    done: set[int] = set()
    for root in roots:
        if id(root) in done:
            continue
        path: list[Any] = [root]
        on_path: set[int] = {id(root)}
        pending: list[Iterator[Any]] = [iter(dependencies_of(root))]
        while pending:
            dependency = next(pending[-1], None)
            if dependency is None:
                pending.pop()
                finished = path.pop()
                on_path.discard(id(finished))
                done.add(id(finished))
            elif id(dependency) in on_path:
                loop = [*path[path.index(dependency) :], dependency]
                raise CycleError(
                    "tasks depend on each other in a cycle: "
                    + " -> ".join(type(item).__qualname__ for item in loop)
                )
            elif id(dependency) not in done:
                path.append(dependency)
                on_path.add(id(dependency))
                pending.append(iter(dependencies_of(dependency)))


def make_plan(
    roots: Sequence[Any], storage: Storage, bust_cache: bool, decode_roots: bool = True
) -> Plan:
    """What must run for ``roots``; cached roots are decoded (so a damaged one
    reruns) unless ``decode_roots`` is False (the run process never needs their values)."""
    try:
        return _make_plan(roots, storage, bust_cache, decode_roots)
    except RecursionError:
        # A cycle makes id computation recurse forever; say which tasks form it.
        # (Walking for cycles up front would cost as much as planning itself.)
        check_acyclic(roots)
        raise


def _make_plan(
    roots: Sequence[Any], storage: Storage, bust_cache: bool, decode_roots: bool
) -> Plan:
    plan = Plan()
    root_ids = {task_id(root) for root in roots}
    # Entries are read in batches: the roots' in one query (most lookups of a
    # rerun are roots), then, for each task that must run, its dependencies'.
    known = {} if bust_cache else storage.lookup_many(root_ids)
    asked = set(root_ids)

    # Depth first, dependencies before dependents, with an explicit stack: a
    # chain of 10,000 dependent tasks must not hit Python's recursion limit.
    stack: list[tuple[Any, bool]] = [(root, False) for root in reversed(roots)]
    while stack:
        task, finishing = stack.pop()
        key = task_id(task)
        if finishing:
            meta = meta_of(task)
            dependencies = tuple(
                dict.fromkeys(
                    task_id(dep) for dep in dependencies_of(task) if task_id(dep) not in plan.loaded
                )
            )
            plan.nodes.append(
                Node(key, dependencies, meta.type_name, meta.max_parallel, needs_of(task))
            )
            continue
        seen = plan.instances.setdefault(key, [])
        if any(item is task for item in seen):
            continue
        seen.append(task)
        if key in plan.tasks:
            continue
        plan.tasks[key] = task
        if not bust_cache and meta_of(task).format is not None:
            entry = known.get(key) if key in asked else storage.lookup(key)
            found = load_cached(storage, task, entry, decode=decode_roots and key in root_ids)
            if found is not None and entry is not None:
                plan.loaded[key], run_id = found
                plan.timings[key] = (entry.started, entry.finished)
                if entry.code is not None:
                    plan.code[key] = entry.code
                if entry.module:
                    plan.modules[key] = entry.module
                if run_id:
                    plan.run_ids[key] = run_id
                continue
        stack.append((task, True))
        dependencies = dependencies_of(task)
        if not bust_cache:
            new = [k for k in dict.fromkeys(map(task_id, dependencies)) if k not in asked]
            known.update(storage.lookup_many(new))
            asked.update(new)
        stack.extend((dependency, False) for dependency in reversed(dependencies))
    return plan


def load_cached(
    storage: Storage, task: Any, entry: IndexEntry | None, decode: bool
) -> tuple[Payload, str | None] | None:
    """The cached result of ``task`` (whose index entry is ``entry``) and its mlflow
    run id, or None. A broken entry warns and counts as not cached."""
    fmt = meta_of(task).format
    if entry is None or fmt is None or entry.format != fmt.name:
        return None
    try:
        payload = storage.payload(entry, fmt)
        if decode:
            payload.value  # noqa: B018 - fail here, not in the user's hands
    except Exception as exc:  # CorruptEntry, or a payload that cannot be decoded
        warnings.warn(
            f"cached result of {task!r} cannot be used, so the task will run again: {exc}",
            CacheWarning,
            stacklevel=2,
        )
        return None
    return payload, entry.mlflow_run_id
