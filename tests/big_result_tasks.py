"""Tasks with results of tens of megabytes, for tests/test_big_results.py."""

from __future__ import annotations

import numpy as np

import labnb

MEGABYTES = 24


def big_array(seed: int) -> np.ndarray:
    """A result of ``MEGABYTES`` that differs by seed."""
    return np.full(MEGABYTES * 2**20 // 8, float(seed))


@labnb.task
class BigPickled:
    seed: int

    def run(self) -> np.ndarray:
        return big_array(self.seed)


@labnb.task(cache=labnb.NumpyFormat())
class BigArray:
    seed: int

    def run(self) -> np.ndarray:
        return big_array(self.seed)


@labnb.task
class Summed:
    """Depends on a big result: its worker loads the dependency from its file."""

    part: BigPickled | BigArray

    def run(self) -> tuple[float, str]:
        return float(self.part.result.sum()), type(self.part.result).__name__
