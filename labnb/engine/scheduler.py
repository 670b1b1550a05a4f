"""Which task runs next: pure bookkeeping of the dependency graph.

No processes and no I/O, so every policy here (dependency order, per-type
limits, resources, failure handling) can be tested exhaustively and any
runner can be driven by it. A task becomes ready the moment its own
dependencies are done; there are no levels to wait for.

With a ``Pool`` (the local runners), a task starts only when its needs are
free, and it is granted particular GPUs and cores. Ready tasks are taken in
the order they became ready; one that does not fit lets later ones pass
only if they need none of what it is waiting for, so a stream of small
tasks cannot starve a large one (a backfill without time estimates).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..model.resources import UNDECLARED, Resources
from .packing import Grant, Pool


@dataclass(frozen=True)
class Node:
    key: str
    dependencies: tuple[str, ...] = ()
    group: str = ""
    limit: int | None = None
    needs: Resources = UNDECLARED


class Scheduler:
    """Tracks waiting, ready, running, done and failed nodes.

    After a failure, dependents of the failed node are marked failed because of
    it ("blocked"); unless ``continue_on_failure``, nothing new starts either.
    """

    def __init__(
        self, nodes: Iterable[Node], continue_on_failure: bool = False, pool: Pool | None = None
    ) -> None:
        self._nodes = {node.key: node for node in nodes}
        self._continue = continue_on_failure
        self._pool = pool
        self.grants: dict[str, Grant] = {}
        """What each running node holds of the pool."""
        self._sequence = itertools.count()
        self._waiting: dict[str, int] = {}
        self._dependents: dict[str, list[str]] = {key: [] for key in self._nodes}
        self._ready: dict[str, deque[tuple[int, str]]] = {}
        self._running_in_group: Counter[str] = Counter()
        self.running: set[str] = set()
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.blocked: dict[str, str] = {}
        self.halted = False
        for node in self._nodes.values():
            unknown = [key for key in node.dependencies if key not in self._nodes]
            if unknown:
                raise ValueError(f"node {node.key} depends on unknown nodes {unknown}")
            for dependency in node.dependencies:
                self._dependents[dependency].append(node.key)
            self._waiting[node.key] = len(set(node.dependencies))
        for node in self._nodes.values():
            if self._waiting[node.key] == 0:
                self._make_ready(node.key)

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def over(self) -> bool:
        """Nothing is running and nothing more will start."""
        return not self.running and (self.halted or not any(self._ready.values()))

    def take(self) -> str | None:
        """The next ready node that may start (marked running, its grant taken), or None.

        A node may start when its type is under its limit and its needs fit.
        """
        if self.halted:
            return None
        waited_for: set[str] = set()
        """What the oldest node that does not fit is short of: later ones must not take it."""
        blocked = False
        for sequence, key in self._ready_in_order():
            needs = self._nodes[key].needs
            if self._pool is None:
                return self._start(sequence, key, None)
            short = self._pool.short_of(needs)
            if not short and not (waited_for and _takes(needs, waited_for)):
                return self._start(sequence, key, self._pool.grant(needs))
            if not blocked:
                waited_for, blocked = short, True
        return None

    def _ready_in_order(self) -> Iterator[tuple[int, str]]:
        """Ready nodes whose type is under its limit, oldest first."""
        open_queues = []
        for group, queue in self._ready.items():
            if not queue:
                continue
            limit = self._nodes[queue[0][1]].limit
            if limit is None or self._running_in_group[group] < limit:
                open_queues.append(queue)
        return heapq.merge(*open_queues)

    def _start(self, sequence: int, key: str, grant: Grant | None) -> str:
        group = self._nodes[key].group
        queue = self._ready[group]
        if queue[0][1] == key:
            queue.popleft()
        else:
            queue.remove((sequence, key))
        self.running.add(key)
        self._running_in_group[group] += 1
        if grant is not None:
            self.grants[key] = grant
        return key

    def set_aside(self, key: str) -> None:
        """A running node that another run computes: it gives back its grant
        (nothing of this machine's runs for it here) and stays running."""
        grant = self.grants.pop(key, None)
        if grant is not None and self._pool is not None:
            self._pool.release(grant)

    def regrant(self, key: str) -> bool:
        """Take a set-aside node's needs again, to compute it here after all;
        False when they are not free now."""
        if self._pool is None or key in self.grants:
            return True
        needs = self._nodes[key].needs
        if self._pool.short_of(needs):
            return False
        self.grants[key] = self._pool.grant(needs)
        return True

    def finish(self, key: str) -> None:
        self._stop_running(key)
        self.done.add(key)
        for dependent in self._dependents[key]:
            self._waiting[dependent] -= 1
            if self._waiting[dependent] == 0 and dependent not in self.blocked:
                self._make_ready(dependent)

    def fail(self, key: str) -> list[str]:
        """Mark ``key`` failed; returns the nodes that now cannot run because of it."""
        self._stop_running(key)
        self.failed.add(key)
        if not self._continue:
            self.halted = True
        newly_blocked = []
        stack = list(self._dependents[key])
        while stack:
            dependent = stack.pop()
            if dependent in self.blocked:
                continue
            self.blocked[dependent] = key
            newly_blocked.append(dependent)
            stack.extend(self._dependents[dependent])
        return newly_blocked

    def halt(self) -> None:
        """Start nothing more (a cancel); running nodes may still finish."""
        self.halted = True

    def _make_ready(self, key: str) -> None:
        group = self._nodes[key].group
        self._ready.setdefault(group, deque()).append((next(self._sequence), key))

    def _stop_running(self, key: str) -> None:
        self.running.remove(key)
        self._running_in_group[self._nodes[key].group] -= 1
        grant = self.grants.pop(key, None)
        if grant is not None and self._pool is not None:
            self._pool.release(grant)


def _takes(needs: Resources, kinds: set[str]) -> bool:
    """Whether a node with ``needs`` would use any of these kinds of resource."""
    uses = {"cpus"}  # every node counts at least one CPU unit
    if needs.gpus:
        uses.add("gpus")
    if needs.memory is not None:
        uses.add("memory")
    return bool(uses & kinds)
