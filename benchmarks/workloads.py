"""Task types for ``compare_labtech.py``, written once for both libraries.

labnb is API-compatible with labtech, so the same class bodies serve both; the
library is picked by the ``BENCH_LIBRARY`` environment variable (``labnb`` or
``labtech``) when this module is first imported. The classes live in a real
module, not in ``__main__``, because both libraries' worker processes must
import them by name to unpickle tasks. An environment variable (rather than
importing both libraries here) keeps each side from paying for the other's
import in its workers, and is inherited by forked and spawned workers alike.
"""

from __future__ import annotations

import importlib
import os
import time
from typing import Any

LIBRARY: str = os.environ.get("BENCH_LIBRARY", "labnb")
if LIBRARY not in ("labnb", "labtech"):
    raise ImportError(f"BENCH_LIBRARY must be 'labnb' or 'labtech', not {LIBRARY!r}")
lib: Any = importlib.import_module(LIBRARY)

LEAVES = 1000
AGGREGATORS = 20
SLEEPS = 20
SLEEP_SECONDS = 0.2


@lib.task
class Leaf:
    """A trivial task: the cost measured is the library's per-task overhead."""

    i: int

    def run(self) -> int:
        return self.i


@lib.task
class Agg:
    """Sums the results of its leaves, so each leaf is a dependency of one aggregator."""

    j: int
    leaves: list

    def run(self) -> int:
        return sum(leaf.result for leaf in self.leaves)


@lib.task
class Sleep:
    """A task that only waits: measures scheduling of long tasks, not overhead."""

    i: int

    def run(self) -> int:
        time.sleep(SLEEP_SECONDS)
        return self.i


def aggregators() -> list[Any]:
    """The cold/warm DAG: ``AGGREGATORS`` aggregators over ``LEAVES`` distinct leaves."""
    per_agg = LEAVES // AGGREGATORS
    return [
        Agg(j=j, leaves=[Leaf(i=j * per_agg + k) for k in range(per_agg)])
        for j in range(AGGREGATORS)
    ]


def sleeps() -> list[Any]:
    return [Sleep(i=i) for i in range(SLEEPS)]
