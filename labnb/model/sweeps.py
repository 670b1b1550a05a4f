"""Sweeps: one set of parameters per combination of each parameter's values.

The one implementation of a sweep's order, shared by ``%%labtask`` lines and
config files (``config_sweep.py``): the cartesian product in the order the
parameters were given, the first parameter varying slowest, as nested
``for`` loops written in that order would.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


def combinations(values: Mapping[str, Sequence[Any]]) -> Iterator[dict[str, Any]]:
    """Each combination of the values, as keyword arguments (``{}`` once when empty)."""
    names = list(values)
    for combo in itertools.product(*values.values()):
        yield dict(zip(names, combo, strict=True))
