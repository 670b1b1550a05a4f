"""Which task runs next: pure bookkeeping of the dependency graph.

No processes and no I/O, so every policy here (dependency order, per-type
limits, failure handling) can be tested exhaustively and any runner can be
driven by it. A task becomes ready the moment its own dependencies are done;
there are no levels to wait for.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    key: str
    dependencies: tuple[str, ...] = ()
    group: str = ""
    limit: int | None = None


class Scheduler:
    """Tracks waiting, ready, running, done and failed nodes.

    After a failure, dependents of the failed node are marked failed because of
    it ("blocked"); unless ``continue_on_failure``, nothing new starts either.
    """

    def __init__(self, nodes: Iterable[Node], continue_on_failure: bool = False) -> None:
        self._nodes = {node.key: node for node in nodes}
        self._continue = continue_on_failure
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
        """The next ready node whose type is under its limit (marked running), or None."""
        if self.halted:
            return None
        best: tuple[int, str] | None = None
        for group, queue in self._ready.items():
            if not queue:
                continue
            limit = self._nodes[queue[0][1]].limit
            if limit is not None and self._running_in_group[group] >= limit:
                continue
            if best is None or queue[0][0] < best[0]:
                best = (queue[0][0], group)
        if best is None:
            return None
        _, key = self._ready[best[1]].popleft()
        self.running.add(key)
        self._running_in_group[best[1]] += 1
        return key

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
